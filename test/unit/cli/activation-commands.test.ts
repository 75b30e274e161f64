import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { Command } from 'commander'
import { ActivationBody, ActivationReply } from '../../../src/api/v2/scope/scope-schemas.ts'
import { ACTIVATION_COLUMNS, flagOf, registerScopeCommands } from '../../../src/cli/scope-commands.ts'
import { ACTIVATION_FIELDS, ACTIVATION_REPLY_FIELDS } from '../../../src/cli/wire.ts'

function command (name: string): Command {
  const root = new Command('scopekeeper')
  registerScopeCommands(root, { stdout: { write: () => true }, stderr: { write: () => true }, env: {}, cwd: '/' })
  return root.commands.find((c) => c.name() === 'scope')!.commands.find((c) => c.name() === name)!
}

describe('scope activate|deactivate', () => {
  it("holds the client's activation fields to the server's schemas, in their order", () => {
    assert.deepEqual([...ACTIVATION_FIELDS], Object.keys(ActivationBody.properties))
    assert.deepEqual([...ACTIVATION_REPLY_FIELDS], Object.keys(ActivationReply.properties))
    assert.deepEqual(ACTIVATION_COLUMNS.map((c) => c.key), Object.keys(ActivationReply.properties))
  })

  it('offers a flag for every body field but active, which the command names', () => {
    for (const name of ['activate', 'deactivate']) {
      const flags = command(name).options.map((o) => o.long!)
      for (const field of Object.keys(ActivationBody.properties).filter((f) => f !== 'active')) assert.ok(flags.includes(flagOf(field)), `${name} ${flagOf(field)}`)
      for (const flag of ['--idempotency-key', '--format', '--column', '--os-endpoint', '--os-cloud']) assert.ok(flags.includes(flag), `${name} ${flag}`)
    }
  })
})
