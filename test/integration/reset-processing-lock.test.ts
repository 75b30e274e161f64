// Resets against CloudKitty's processing lock, held by a real tooz client
// the way CloudKitty's processor holds it, on each of tooz's four backends
// that scopekeeper speaks.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { describe, it, type TestContext } from 'node:test'
import { pino } from 'pino'
import { processingLockName } from '../../src/storage/coordination/coordinator.ts'
import { openCoordinator } from '../../src/storage/coordination/open-coordinator.ts'
import type { RatedDataStore } from '../../src/reset/rated-data-hook.ts'
import { ResetWorker, type ProcessingLocks } from '../../src/reset/reset-worker.ts'
import { buildTestApp, call, createScopes, dumpJobs, type TestApp } from '../helpers/build-test-app.ts'
import { deferCleanup } from '../helpers/cleanup.ts'
import { waitFor } from '../helpers/server-process.ts'
import { TEST_MARIADB_URL, TEST_POSTGRES_URL } from '../helpers/test-databases.ts'
import { cloudkittyLockNames, requireTooz, startToozHolder } from '../helpers/tooz-holder.ts'

const BACKENDS: Record<string, (dir: string) => string> = {
  file: (dir) => `file://${join(dir, 'tooz-locks')}`,
  mysql: () => TEST_MARIADB_URL,
  postgresql: () => TEST_POSTGRES_URL,
  // A namespace of its own per test: tests running at once share the Redis.
  redis: () => `redis://127.0.0.1:6379?namespace=sk_${randomBytes(4).toString('hex')}`,
}

const OLD = '2020-01-01T00:00:00+00:00'
const NEW = '2019-01-01T00:00:00+00:00'

async function setUp (t: TestContext, backend: string, options: { batchSize?: number, ratedData?: RatedDataStore } = {}) {
  const test = await buildTestApp(t, { ratedData: options.ratedData })
  const url = BACKENDS[backend](test.dir)
  const coordinator = openCoordinator(url)
  deferCleanup(t, async () => { await coordinator.close() })
  const locks: ProcessingLocks = { coordinator, names: test.locks.names }
  const resetWorker = new ResetWorker({ store: test.database, logger: pino({ level: 'silent' }), locks, ratedData: options.ratedData }, {
    batchSize: options.batchSize ?? 2, pollIntervalMs: 20, lockRetryMaxMs: 100, periodSeconds: test.config.collect.period,
  })
  return { ...test, url, locks, resetWorker }
}

async function timestamps (app: TestApp['app']): Promise<Record<string, string>> {
  const listed = (await call(app, 'GET', '/v2/scope?limit=1000')).body.results as Array<{ scope_id: string, last_processed_timestamp: string }>
  return Object.fromEntries(listed.map((r) => [r.scope_id, r.last_processed_timestamp]))
}

for (const backend of Object.keys(BACKENDS)) {
  describe(`${backend}: resets under CloudKitty's processing lock`, () => {
    it('leaves a scope whose lock a tooz client holds on its old timestamp, and applies it once released', async (t) => {
      if (!requireTooz(t)) return
      const { app, database, url, locks, resetWorker } = await setUp(t, backend)
      await createScopes(app, ['busy', 'free1', 'free2', 'free3'].map((id) => ({ scope_id: id, last_processed_timestamp: OLD })))
      // The name as CloudKitty's own get_lock computes it, from the configuration.
      const [name] = await cloudkittyLockNames(locks.names, ['busy'])
      assert.equal(name, processingLockName('busy', locks.names))
      const processor = await startToozHolder(t, url)
      assert.equal(await processor.hold(name), true)

      assert.equal((await call(app, 'PUT', '/v2/scope', { all_scopes: true, state: NEW })).status, 202)
      resetWorker.start()
      t.after(async () => { await resetWorker.stop() })
      await waitFor(async () => ((await dumpJobs(database)) as any[])[0].scopes_applied === 3, 20_000, 'the three free scopes applied')
      const [job] = await dumpJobs(database) as any[]
      assert.deepEqual([job.status, job.scopes_waiting], ['running', 1])
      assert.deepEqual(await timestamps(app), { busy: OLD, free1: NEW, free2: NEW, free3: NEW })
      const progress = (await call(app, 'GET', '/v2/scope/resets/1')).body
      assert.equal(progress.scopes_waiting, 1)

      // The worker keeps coming back, and keeps off while the lock is held.
      await new Promise((resolve) => setTimeout(resolve, 400))
      assert.equal((await timestamps(app)).busy, OLD)

      assert.equal(await processor.release(name), true)
      await waitFor(async () => ((await dumpJobs(database)) as any[])[0].status === 'done', 20_000, 'the job done')
      const [done] = await dumpJobs(database) as any[]
      assert.deepEqual([done.scopes_applied, done.scopes_waiting], [4, 0])
      assert.equal((await timestamps(app)).busy, NEW)
      const left = await database.db.selectFrom('scopekeeper_reset_job_waits').selectAll().execute()
      assert.deepEqual(left, [])
    })

    it('holds each lock while it applies, so the processor cannot take it meanwhile', async (t) => {
      if (!requireTooz(t)) return
      let seen: boolean | undefined
      let probe: (() => Promise<boolean>) | undefined
      const { app, url, locks, resetWorker } = await setUp(t, backend, { ratedData: { async discardFrom () { seen = await probe?.() } } })
      const processor = await startToozHolder(t, url)
      const name = processingLockName('watched', locks.names)
      probe = async () => await processor.try(name)
      await createScopes(app, [{ scope_id: 'watched', last_processed_timestamp: OLD }])
      assert.equal((await call(app, 'PUT', '/v2/scope', { scope_id: 'watched', state: NEW })).status, 202)
      await resetWorker.drain()
      assert.equal(seen, false, 'the processor could not take the lock while the reset applied')
      assert.equal(await processor.try(name), true, 'released after the commit')
      assert.equal((await timestamps(app)).watched, NEW)
    })
  })
}

describe('file: a large reset beside a long rating pass', () => {
  it('applies every other scope of a 5 000-scope reset while one scope stays locked, and remembers the waiting one across workers', async (t) => {
    if (!requireTooz(t)) return
    const { app, database, url, locks, resetWorker } = await setUp(t, 'file', { batchSize: 500 })
    const ids = Array.from({ length: 5000 }, (_, i) => `p${String(i).padStart(5, '0')}`)
    await database.db.insertInto('cloudkitty_storage_states').values(ids.map((id) => ({
      identifier: id, scope_key: 'project_id', fetcher: 'keystone', collector: 'gnocchi', last_processed_timestamp: '2020-01-01 00:00:00.000000', active: 1,
    }))).execute()
    const busy = processingLockName('p02500', locks.names)
    const processor = await startToozHolder(t, url)
    assert.equal(await processor.hold(busy), true)
    assert.equal((await call(app, 'PUT', '/v2/scope', { all_scopes: true, state: NEW })).status, 202)
    resetWorker.start()
    await waitFor(async () => ((await dumpJobs(database)) as any[])[0].scopes_applied === 4999, 30_000, 'all but one applied')
    // This worker stops with the scope still waiting; another one finishes the job.
    await resetWorker.stop()
    const [stopped] = await dumpJobs(database) as any[]
    assert.deepEqual([stopped.status, stopped.scopes_waiting], ['pending', 1])
    const next = new ResetWorker({ store: database, logger: pino({ level: 'silent' }), locks }, { pollIntervalMs: 20, lockRetryMaxMs: 100 })
    next.start()
    t.after(async () => { await next.stop() })
    await new Promise((resolve) => setTimeout(resolve, 300))
    const busyRow = await database.db.selectFrom('cloudkitty_storage_states').select('last_processed_timestamp').where('identifier', '=', 'p02500').executeTakeFirstOrThrow()
    assert.match(String(busyRow.last_processed_timestamp), /^2020-01-01/)
    await processor.release(busy)
    await waitFor(async () => ((await dumpJobs(database)) as any[])[0].status === 'done', 20_000, 'the job done')
    const stale = await database.db.selectFrom('cloudkitty_storage_states').select('identifier').where('last_processed_timestamp', 'not like', '2019-01-01%').execute()
    assert.deepEqual(stale, [])
  })
})
