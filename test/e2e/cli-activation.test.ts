// `scopekeeper scope activate|deactivate` end to end: the real CLI process
// against the real server process (SQLite). One server serves the whole
// file; each test works on scopes of its own collector.
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { parse } from 'yaml'
import { tempDir } from '../helpers/build-test-app.ts'
import { cleanEnv, ok, runCli, suiteContext, type CliRun } from '../helpers/cli-process.ts'
import { startServerProcess, type ServerProcess } from '../helpers/server-process.ts'
import { ScopeClient } from '../../src/cli/scope-client.ts'

describe('scopekeeper scope activate|deactivate (the real CLI against the real server)', () => {
  const suite = suiteContext()
  let server: ServerProcess
  let client: ScopeClient
  let home: string

  function cli (args: string[]): Promise<CliRun> {
    return runCli(args, { env: { ...cleanEnv(home), OS_ENDPOINT: server.url }, cwd: home })
  }

  /** `count` scopes of `collector`, the first `inactive` of them inactive. */
  async function seed (collector: string, count: number, inactive = 0): Promise<string[]> {
    const ids = Array.from({ length: count }, (_, i) => `${collector}-${i}`)
    for (const [i, id] of ids.entries()) await client.createScope({ scope_id: id, collector, active: i >= inactive })
    return ids
  }

  async function flags (collector: string): Promise<boolean[]> {
    return (await client.listScopes({ collector: [collector] })).map((s) => s.active)
  }

  before(async () => {
    home = tempDir(suite.t)
    server = await startServerProcess(suite.t, ['--database', `sqlite:///${join(home, 'cli.sqlite')}`])
    client = new ScopeClient({ endpoint: server.url })
  })
  after(() => suite.cleanup())

  it('deactivates the scopes of a collector and prints the counts as a table', async () => {
    await seed('deact', 3, 1)
    const run = ok(await cli(['scope', 'deactivate', '--collector', 'deact', '--reason', 'collector retired']))
    assert.match(run.stdout, /^\+-+\+-+\+\n\| Field +\| Value +\|\n/)
    assert.match(run.stdout, /\| Dry Run +\| False +\|/)
    assert.match(run.stdout, /\| Active +\| False +\|/)
    assert.match(run.stdout, /\| Scopes Total +\| 3 +\|/)
    assert.match(run.stdout, /\| Scopes Flipped +\| 2 +\|/)
    assert.match(run.stdout, /\| Scope Activation Toggle Date +\| \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00 \|/)
    assert.doesNotMatch(run.stdout, /Scopes \|/)
    assert.deepEqual(await flags('deact'), [false, false, false])
    // The history says why, for each switched scope.
    const [event] = (await client.listScopeEvents({ scope_id: ['deact-1'] })).results
    assert.deepEqual([event.kind, event.reason], ['deactivated', 'collector retired'])
  })

  it('activates by scope id (repeated) and answers in json and yaml', async () => {
    const ids = await seed('act', 3, 3)
    const json = ok(await cli(['scope', 'activate', '--scope-id', ids[0], '--scope-id', ids[1], '--collector', 'act', '-f', 'json']))
    assert.deepEqual(JSON.parse(json.stdout), {
      'Dry Run': false, Active: true, 'Scopes Total': 2, 'Scopes Flipped': 2, 'Scope Activation Toggle Date': JSON.parse(json.stdout)['Scope Activation Toggle Date'],
    })
    assert.deepEqual(await flags('act'), [true, true, false])
    const yaml = ok(await cli(['scope', 'activate', '--fetcher', 'keystone', '--collector', 'act', '-f', 'yaml']))
    assert.deepEqual([parse(yaml.stdout)['Scopes Total'], parse(yaml.stdout)['Scopes Flipped']], [3, 1])
    const value = ok(await cli(['scope', 'activate', '--collector', 'act', '-f', 'value', '-c', 'scopes_flipped', '-c', 'Scope Activation Toggle Date']))
    assert.equal(value.stdout, '0\nNone\n')
  })

  it('shows a dry run with the scopes that would switch, and switches nothing', async () => {
    await seed('dry', 3, 1)
    const table = ok(await cli(['scope', 'deactivate', '--collector', 'dry', '--dry-run']))
    assert.match(table.stdout, /\| Dry Run +\| True +\|/)
    assert.match(table.stdout, /\| Scopes Flipped +\| 2 +\|/)
    // Then the scopes that would switch, as `scope state list` shows them.
    assert.match(table.stdout, /\| Scope ID +\| Scope Key +\| Fetcher +\| Collector +\|/)
    assert.match(table.stdout, /\| dry-1 +\| project_id +\| keystone +\| dry +\|/)
    assert.doesNotMatch(table.stdout, /\| dry-0 /)
    const json = JSON.parse(ok(await cli(['scope', 'deactivate', '--collector', 'dry', '--dry-run', '-f', 'json'])).stdout)
    assert.deepEqual(json.Scopes.map((s: Record<string, unknown>) => s['Scope ID']), ['dry-1', 'dry-2'])
    assert.deepEqual(await flags('dry'), [false, true, true])
  })

  it('sends an Idempotency-Key: a repeated --idempotency-key is answered as the first time', async () => {
    await seed('idem', 2)
    const first = ok(await cli(['scope', 'deactivate', '--collector', 'idem', '--idempotency-key', 'cli-activation-1', '-f', 'json']))
    await client.patchScope({ scope_id: 'idem-0', active: true })
    const again = ok(await cli(['scope', 'deactivate', '--collector', 'idem', '--idempotency-key', 'cli-activation-1', '-f', 'json']))
    assert.deepEqual(JSON.parse(again.stdout), JSON.parse(first.stdout))
    // The replay switched nothing: idem-0 stays as the PATCH left it.
    assert.deepEqual(await flags('idem'), [true, false])
  })

  it('switches every scope only when asked with --all-scopes, and refuses a bare command (exit 2)', async () => {
    const bare = await cli(['scope', 'deactivate'])
    assert.equal(bare.code, 2)
    assert.match(bare.stderr, /Give at least one of --scope-id, --scope-key, --fetcher, --collector, or --all-scopes\./)
    const both = await cli(['scope', 'deactivate', '--all-scopes', '--collector', 'x'])
    assert.equal(both.code, 2)
    const dry = JSON.parse(ok(await cli(['scope', 'deactivate', '--all-scopes', '--dry-run', '-f', 'json', '-c', 'scopes_total'])).stdout)
    assert.ok(dry['Scopes Total'] > 0)
  })

  it("prints the server's message and exits 1 when nothing matches", async () => {
    const run = await cli(['scope', 'activate', '--collector', 'no-such-collector'])
    assert.equal(run.code, 1)
    assert.equal(run.stdout, '')
    assert.match(run.stderr, /^scopekeeper: No resource found for provided filters\. \(HTTP 404\) \(Request-ID: req-[0-9a-f-]{36}\)\n$/)
  })
})
