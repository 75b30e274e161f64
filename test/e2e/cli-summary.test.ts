// `scopekeeper scope summary` and the lag flags of `scope state list`
// (--rated-before, --rated-after, --stuck, --no-stuck) end to end: the real
// CLI process against the real server process on SQLite.
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { tempDir } from '../helpers/build-test-app.ts'
import { ok, runCli, suiteContext, withoutOsVariables, type CliRun } from '../helpers/cli-process.ts'
import { startServerProcess, type ServerProcess } from '../helpers/server-process.ts'
import { ScopeClient } from '../../src/cli/scope-client.ts'

const HOUR = 3600_000
// Half a period from every bucket bound, so that the seconds the test takes move no scope across one.
const started = Math.floor(Date.now() / 1000) * 1000
const behind = (periods: number) => new Date(started - periods * HOUR).toISOString().slice(0, 19) + 'Z'

describe('scopekeeper scope summary and the lag flags (the real CLI against the real server)', () => {
  const suite = suiteContext()
  let server: ServerProcess
  let home: string

  function cli (args: string[]): Promise<CliRun> {
    return runCli(args, { env: { ...withoutOsVariables(), HOME: home, OS_ENDPOINT: server.url }, cwd: home })
  }
  const ids = async (args: string[]) => ok(await cli(['scope', 'state', 'list', '--all', '-f', 'value', '-c', 'scope_id', ...args])).stdout.split('\n').filter(Boolean).sort()

  before(async () => {
    home = tempDir(suite.t)
    server = await startServerProcess(suite.t, ['--database', `sqlite:///${join(home, 'summary.sqlite')}`])
    const client = new ScopeClient({ endpoint: server.url })
    // Last processed k periods ago: lag k − 1 periods (and the seconds since).
    for (const [id, periods, active] of [['on-time', 1.5, true], ['late', 4.5, true], ['stuck', 40.5, true], ['off', 40.5, false]] as const) {
      await client.createScope({ scope_id: id, last_processed_timestamp: behind(periods), active })
    }
  })
  after(() => suite.cleanup())

  it('prints the summary as a table, and as JSON with the cut-off', async () => {
    const table = ok(await cli(['scope', 'summary']))
    assert.match(table.stdout, /\| Active +\| 3 +\|/)
    assert.match(table.stdout, /\| Stuck +\| 1 +\|/)
    const run = ok(await cli(['scope', 'summary', '-f', 'json', '--cutoff', behind(2.5)]))
    const summary = JSON.parse(run.stdout)
    assert.equal(summary.Period, 3600)
    assert.deepEqual([summary.Active, summary.Inactive, summary.Stuck], [3, 1, 1])
    assert.deepEqual([summary['Lag 0-1 Periods'], summary['Lag 1-2 Periods'], summary['Lag 2-6 Periods'], summary['Lag 6-24 Periods'], summary['Lag 24+ Periods']], [1, 0, 1, 0, 1])
    assert.equal(summary.Cutoff, behind(2.5).replace('Z', '+00:00'))
    assert.deepEqual([summary['Rated Through Cutoff'], summary['Not Rated Through Cutoff']], [1, 2])
    const filtered = JSON.parse(ok(await cli(['scope', 'summary', '-f', 'json', '--scope-id', 'late', '--scope-id', 'on-time'])).stdout)
    assert.deepEqual([filtered.Active, filtered.Stuck], [2, 0])
  })

  it('lists by rated-through time and by stuck', async () => {
    assert.deepEqual(await ids(['--active', '--rated-before', behind(2.5)]), ['late', 'stuck'])
    assert.deepEqual(await ids(['--rated-after', behind(2.5)]), ['on-time'])
    assert.deepEqual(await ids(['--stuck']), ['stuck'])
    assert.deepEqual(await ids(['--no-stuck']), ['late', 'off', 'on-time'])
  })

  it("exits 1 with the server's message on a bad timestamp", async () => {
    const run = await cli(['scope', 'state', 'list', '--rated-before', 'soon'])
    assert.equal(run.code, 1)
    assert.match(run.stderr, /rated_before/)
    const summary = await cli(['scope', 'summary', '--cutoff', 'tomorrow'])
    assert.equal(summary.code, 1)
    assert.match(summary.stderr, /cutoff/)
  })
})
