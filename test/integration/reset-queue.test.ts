import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { sql } from 'kysely'
import { pino } from 'pino'
import { ResetWorker } from '../../src/reset/reset-worker.ts'
import { claimNextJob } from '../../src/storage/reset-job-repository.ts'
import { buildTestApp, call, createScopes, dumpJobs } from '../helpers/build-test-app.ts'
import { waitFor } from '../helpers/server-process.ts'
import { testEngines } from '../helpers/test-databases.ts'

const LONG_AGO = new Date('2000-01-01T00:00:00Z')

for (const engine of testEngines()) {
  describe(`${engine}: the shared reset queue`, () => {
    it('lets a worker claim only jobs that share no scope with an older unfinished job', async (t) => {
      const { app, database } = await buildTestApp(t, { engine })
      await createScopes(app, ['a', 'b', 'c'].map((id) => ({ scope_id: id })))
      for (const scope of ['a,b', 'b', 'c']) assert.equal((await call(app, 'PUT', '/v2/scope', { scope_id: scope, state: '2019-01-01' })).status, 202)
      const claim = async (worker: string) => await claimNextJob(database, worker, new Date(), LONG_AGO)
      const [first, second, third] = [await claim('w1'), await claim('w2'), await claim('w3')]
      assert.equal(first?.id, 1)
      assert.equal(second?.id, 3, 'job 2 waits: it shares scope b with running job 1')
      assert.equal(third, undefined)
      await database.db.updateTable('scopekeeper_reset_jobs').set({ status: 'done', locked_by: null }).where('id', '=', 1).execute()
      assert.equal((await claim('w3'))?.id, 2)
    })

    it('makes a reset of every scope wait for older jobs, and newer jobs wait for it', async (t) => {
      const { app, database } = await buildTestApp(t, { engine })
      await createScopes(app, ['a', 'b', 'c'].map((id) => ({ scope_id: id })))
      for (const body of [{ scope_id: 'a' }, { all_scopes: true }, { scope_id: 'c' }]) {
        assert.equal((await call(app, 'PUT', '/v2/scope', { ...body, state: '2019-01-01' })).status, 202)
      }
      const claim = async (worker: string) => await claimNextJob(database, worker, new Date(), LONG_AGO)
      const finish = async (id: number) => { await database.db.updateTable('scopekeeper_reset_jobs').set({ status: 'done', locked_by: null }).where('id', '=', id).execute() }
      assert.equal((await claim('w1'))?.id, 1)
      assert.equal(await claim('w2'), undefined, 'job 2 waits for job 1, job 3 for job 2')
      await finish(1)
      assert.equal((await claim('w2'))?.id, 2)
      assert.equal(await claim('w3'), undefined)
      await finish(2)
      assert.equal((await claim('w3'))?.id, 3)
    })

    it('has several workers drain overlapping resets so that the last accepted one of each scope wins', async (t) => {
      const { app, database, locks } = await buildTestApp(t, { engine })
      const ids = Array.from({ length: 30 }, (_, i) => `s${i}`)
      await createScopes(app, ids.map((id) => ({ scope_id: id })))
      const expected = new Map<string, string>()
      for (let j = 0; j < 12; j++) {
        const chosen = ids.filter((_, i) => (i + j) % 3 !== 0)
        const day = String(1 + ((j * 7) % 28)).padStart(2, '0')
        assert.equal((await call(app, 'PUT', '/v2/scope', { scope_id: chosen, state: `2019-02-${day}` })).status, 202)
        for (const id of chosen) expected.set(id, `2019-02-${day}T00:00:00+00:00`)
      }
      const logger = pino({ level: 'silent' })
      const workers = [0, 1, 2].map(() => new ResetWorker({ store: database, logger, locks }, { batchSize: 7, pollIntervalMs: 10, concurrency: 2 }))
      for (const w of workers) w.start()
      await waitFor(async () => (await dumpJobs(database) as any[]).every((j) => j.status === 'done'), 30_000, 'every job done')
      for (const w of workers) await w.stop()
      const listed = (await call(app, 'GET', '/v2/scope?limit=100')).body.results
      for (const row of listed) assert.equal(row.last_processed_timestamp, expected.get(row.scope_id), row.scope_id)
    })

    it('rolls a batch back when another worker took the job over meanwhile', async (t) => {
      // On SQLite no other process can write while the batch holds the write
      // lock, so a takeover cannot land mid-batch there.
      if (engine === 'sqlite') return
      let steal: (() => Promise<void>) | undefined
      const store = { async discardFrom () { if (steal !== undefined) { const s = steal; steal = undefined; await s() } } }
      const { app, database, locks } = await buildTestApp(t, { engine, ratedData: store })
      await createScopes(app, [{ scope_id: 'x', last_processed_timestamp: '2020-01-01' }])
      await call(app, 'PUT', '/v2/scope', { scope_id: 'x', state: '2019-01-01' })
      steal = async () => {
        // Outside the batch's transaction, as another worker would.
        await sql`UPDATE scopekeeper_reset_jobs SET locked_by = 'thief'`.execute(database.db)
      }
      const worker = new ResetWorker({ store: database, logger: pino({ level: 'silent' }), ratedData: store, locks })
      assert.equal(await worker.runOnce(), true)
      const [job] = await dumpJobs(database) as any[]
      assert.deepEqual([job.status, job.locked_by, job.scopes_applied], ['running', 'thief', 0])
      assert.equal((await call(app, 'GET', '/v2/scope?scope_id=x')).body.results[0].last_processed_timestamp, '2020-01-01T00:00:00+00:00')
    })
  })
}
