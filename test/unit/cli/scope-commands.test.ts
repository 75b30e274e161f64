import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { Command } from 'commander'
import { ResetJobReply } from '../../../src/api/v2/scope/reset-job-schemas.ts'
import { CreateScopeBody, ListScopesQuery, PatchScopeBody, ResetScopesBody, ScopeStateReply } from '../../../src/api/v2/scope/scope-schemas.ts'
import { flagOf, registerScopeCommands, RESET_JOB_COLUMNS, SCOPE_COLUMNS } from '../../../src/cli/scope-commands.ts'

function program (): Command {
  const root = new Command('scopekeeper')
  registerScopeCommands(root, { stdout: { write: () => true }, stderr: { write: () => true }, env: {}, cwd: '/' })
  return root
}

function find (root: Command, path: string[]): Command {
  return path.reduce((command, name) => command.commands.find((c) => c.name() === name)!, root)
}

function flags (command: Command): string[] {
  return command.options.map((o) => o.long!)
}

describe('scope commands', () => {
  it('offers a flag for every field of each request schema, named after the wire field', () => {
    const root = program()
    const list = find(root, ['scope', 'state', 'list'])
    for (const field of Object.keys(ListScopesQuery.properties)) assert.ok(flags(list).includes(flagOf(field)), `list ${flagOf(field)}`)
    assert.ok(flags(list).includes('--inactive'))
    assert.deepEqual(list.aliases(), ['get'])
    const reset = find(root, ['scope', 'state', 'reset'])
    for (const field of Object.keys(ResetScopesBody.properties)) assert.ok(flags(reset).includes(flagOf(field)), `reset ${flagOf(field)}`)
    const patch = find(root, ['scope', 'patch'])
    for (const field of Object.keys(PatchScopeBody.properties)) assert.ok(flags(patch).includes(flagOf(field)), `patch ${flagOf(field)}`)
    const create = find(root, ['scope', 'create'])
    for (const field of Object.keys(CreateScopeBody.properties).filter((f) => f !== 'scope_id')) assert.ok(flags(create).includes(flagOf(field)), `create ${flagOf(field)}`)
    assert.equal(create.registeredArguments[0].name(), 'scope_id')
  })

  it('shows every field of the reply schemas but the deprecated state alias', () => {
    assert.deepEqual(SCOPE_COLUMNS.map((c) => c.key), Object.keys(ScopeStateReply.properties).filter((k) => k !== 'state'))
    assert.deepEqual(RESET_JOB_COLUMNS.map((c) => c.key), Object.keys(ResetJobReply.properties))
  })

  it('gives every command the output and connection options of the OpenStack client', () => {
    const root = program()
    for (const path of [['scope', 'state', 'list'], ['scope', 'state', 'reset'], ['scope', 'patch'], ['scope', 'create']]) {
      const command = find(root, path)
      for (const flag of ['--format', '--column', '--noindent', '--quote', '--os-cloud', '--os-endpoint', '--os-auth-url', '--os-token',
        '--os-region-name', '--os-interface', '--os-cacert', '--insecure', '--timeout', '--debug']) {
        assert.ok(flags(command).includes(flag), `${path.join(' ')} ${flag}`)
      }
    }
    assert.ok(flags(find(root, ['scope', 'state', 'list'])).includes('--sort-column'))
  })
})
