import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { describe, it } from 'node:test'
import { buildTestApp, call } from '../helpers/build-test-app.ts'
import { deferCleanup } from '../helpers/cleanup.ts'
import { BIN, waitFor } from '../helpers/server-process.ts'
import { testEngines } from '../helpers/test-databases.ts'

const SCOPES = 20_000
const WORKERS = 3

// Resets accepted in this order; each narrows by collector (c0…c5), so the
// last accepted reset touching a scope differs from scope to scope.
const RESETS: Array<{ collectors?: string[], state: string }> = [
  { state: '2019-01-01T00:00:00Z' },
  { collectors: ['c0', 'c2', 'c4'], state: '2019-02-01T00:00:00Z' },
  { collectors: ['c0', 'c3'], state: '2019-03-01T00:00:00Z' },
  { collectors: ['c5'], state: '2019-04-01T00:00:00Z' },
  { collectors: ['c1', 'c2'], state: '2019-05-01T00:00:00Z' },
]

function expectedFor (collector: string): string {
  let last = ''
  for (const reset of RESETS) if (reset.collectors === undefined || reset.collectors.includes(collector)) last = reset.state
  return last.replace('Z', '+00:00')
}

for (const engine of testEngines().filter((e) => e !== 'sqlite')) {
  describe(`${engine}: reset workers killed with -9`, () => {
    it(`applies every reset over ${SCOPES} scopes, in acceptance order, while ${WORKERS} workers are repeatedly killed`, async (t) => {
      const { app, database, url, dir } = await buildTestApp(t, { engine })
      for (let i = 0; i < SCOPES; i += 2000) {
        await database.db.insertInto('cloudkitty_storage_states').values(Array.from({ length: 2000 }, (_, j) => ({
          identifier: `p${String(i + j).padStart(6, '0')}`, scope_key: 'project_id', fetcher: 'keystone', collector: `c${(i + j) % 6}`,
          last_processed_timestamp: '2020-01-01 00:00:00', active: (i + j) % 7 === 0 ? 0 : 1,
        }))).execute()
      }
      for (const reset of RESETS) {
        const body = reset.collectors === undefined ? { all_scopes: true, state: reset.state } : { all_scopes: true, collector: reset.collectors, state: reset.state }
        assert.equal((await call(app, 'PUT', '/v2/scope', body)).status, 202)
      }

      const env = {
        ...process.env,
        SCOPEKEEPER_LOG_LEVEL: 'warn',
        SCOPEKEEPER_RESET_LEASE_SECONDS: '1',
        SCOPEKEEPER_RESET_POLL_INTERVAL: '0.05',
        SCOPEKEEPER_RESET_BATCH_SIZE: '100',
        SCOPEKEEPER_ORCHESTRATOR_COORDINATION_URL: `file://${dir}/locks`,
      }
      const spawnWorker = (): ChildProcess => spawn(process.execPath, [BIN, 'worker', '--database', url, '--concurrency', '2'], { env, stdio: 'ignore' })
      const workers = Array.from({ length: WORKERS }, spawnWorker)
      deferCleanup(t, () => { for (const w of workers) w.kill('SIGKILL') })
      const jobs = async () => await database.db.selectFrom('scopekeeper_reset_jobs').select(['id', 'status', 'scopes_applied', 'scopes_total']).orderBy('id').execute()

      // A kill every 0.4 s, a dozen at most: enough to land mid-batch, mid-claim
      // and mid-lease many times, while leaving the workers room to progress
      // (they start in about 0.5 s and apply some 20 000 scopes a second).
      let kills = 0
      while (kills < 12 && (await jobs()).some((j) => j.status !== 'done')) {
        await new Promise((resolve) => setTimeout(resolve, 400))
        const victim = kills % WORKERS
        workers[victim].kill('SIGKILL')
        workers[victim] = spawnWorker()
        kills++
      }
      // Let the survivors finish what the last kill interrupted.
      await waitFor(async () => (await jobs()).every((j) => j.status === 'done'), 60_000, 'every job done')
      for (const w of workers) w.kill('SIGKILL')

      const final = await jobs()
      assert.ok(kills >= 3, `workers were killed (${kills})`)
      assert.ok(final.every((j) => j.status === 'done' && j.scopes_applied === j.scopes_total), JSON.stringify(final))
      const rows = (await call(app, 'GET', `/v2/scope?limit=${SCOPES}`)).body.results
      assert.equal(rows.length, SCOPES)
      const wrong = rows.filter((r: any) => r.last_processed_timestamp !== expectedFor(r.collector))
      assert.deepEqual(wrong.slice(0, 3), [], `${wrong.length} scopes do not hold their last accepted reset`)
      t.diagnostic(`${engine}: ${kills} kill -9, ${RESETS.length} jobs, ${SCOPES} scopes, ${final.reduce((n, j) => n + j.scopes_total, 0)} scope resets applied`)
    })
  })
}
