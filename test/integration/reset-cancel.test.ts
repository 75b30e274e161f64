// DELETE /v2/scope/resets/{id} (issue 14 §5), on every engine: a pending
// job is cancelled at once and never applied; a running one ends cancelled
// after its current batch, saying how many scopes it applied; a job that is
// over answers 409; and a cancel racing the worker ends the job cancelled or
// done, never half-applied without saying so.
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { pino } from 'pino'
import type { ClaimedResetJob } from '../../src/domain/reset-job.ts'
import type { ScopeState } from '../../src/domain/scope-state.ts'
import { processingLockName, type Coordinator } from '../../src/storage/coordination/coordinator.ts'
import { ResetWorker, type BatchDispatcher } from '../../src/reset/reset-worker.ts'
import { buildTestApp, call, createScopes, dumpJobs, dumpStates, tempDir } from '../helpers/build-test-app.ts'
import { waitFor } from '../helpers/server-process.ts'
import { testEngines } from '../helpers/test-databases.ts'

const OLD = '2020-01-01T00:00:00+00:00'
const TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$/

/** A promise and the function that settles it. */
function gate (): { opened: Promise<void>, open: () => void } {
  let open!: () => void
  const opened = new Promise<void>((resolve) => { open = resolve })
  return { opened, open }
}

/** Each scope's timestamp, by scope id. */
async function timestamps (app: Parameters<typeof call>[0]): Promise<Record<string, string>> {
  const listed = (await call(app, 'GET', '/v2/scope?limit=1000')).body.results as Array<{ scope_id: string, last_processed_timestamp: string }>
  return Object.fromEntries(listed.map((r) => [r.scope_id, r.last_processed_timestamp]))
}

const ids = (n: number) => Array.from({ length: n }, (_, i) => `s${i}`)

for (const engine of testEngines()) {
  describe(`${engine}: cancelling a reset (DELETE /v2/scope/resets/{id})`, () => {
    it('cancels a pending job at once (200); the worker never applies it, and a repeated DELETE answers it unchanged', async (t) => {
      const { app, database, worker } = await buildTestApp(t, { engine })
      await createScopes(app, ids(3).map((id) => ({ scope_id: id, last_processed_timestamp: OLD })))
      await call(app, 'PUT', '/v2/scope', { all_scopes: true, state: '2019-01-01' })
      const before = (await call(app, 'GET', '/v2/scope/resets/1')).body
      const states = await dumpStates(database)
      const cancelled = await call(app, 'DELETE', '/v2/scope/resets/1')
      assert.equal(cancelled.status, 200)
      assert.deepEqual({ ...cancelled.body, finished_at: undefined, cancel_requested_at: undefined }, {
        ...before, status: 'cancelled', finished_at: undefined, cancel_requested_at: undefined,
      })
      assert.match(cancelled.body.finished_at, TIME)
      assert.equal(cancelled.body.cancel_requested_at, cancelled.body.finished_at)
      assert.deepEqual([cancelled.body.started_at, cancelled.body.attempts, cancelled.body.scopes_applied], [null, 0, 0])
      await worker.drain()
      assert.deepEqual(await dumpStates(database), states)
      assert.deepEqual((await call(app, 'GET', '/v2/scope/resets/1')).body, cancelled.body)
      assert.deepEqual((await call(app, 'GET', '/v2/scope/resets?status=cancelled')).body.results.map((j: any) => j.id), [1])
      // Idempotent: the caller's wish already holds.
      const again = await call(app, 'DELETE', '/v2/scope/resets/1')
      assert.deepEqual([again.status, again.body], [200, cancelled.body])
    })

    it('asks a running job to stop (202); it ends cancelled after its current batch, with that batch applied and the rest untouched', async (t) => {
      const { app, database, locks } = await buildTestApp(t, { engine })
      // The first batch is held before its transaction, once the job is running.
      const inBatch = gate()
      const proceed = gate()
      let batches = 0
      const coordinator: Coordinator = {
        description: locks.coordinator.description,
        async tryLock (names) {
          if (++batches === 1) { inBatch.open(); await proceed.opened }
          return await locks.coordinator.tryLock(names)
        },
        close: async () => await locks.coordinator.close(),
      }
      const worker = new ResetWorker({ store: database, logger: pino({ level: 'silent' }), locks: { ...locks, coordinator } }, { batchSize: 2 })
      await createScopes(app, ids(6).map((id) => ({ scope_id: id, last_processed_timestamp: OLD })))
      await call(app, 'PUT', '/v2/scope', { all_scopes: true, state: '2019-01-01' })
      const running = worker.runOnce()
      await inBatch.opened
      const requested = await call(app, 'DELETE', '/v2/scope/resets/1')
      assert.equal(requested.status, 202)
      assert.equal(requested.body.status, 'running')
      assert.match(requested.body.cancel_requested_at, TIME)
      assert.equal(requested.body.finished_at, null)
      // Asking again keeps the first request.
      const again = await call(app, 'DELETE', '/v2/scope/resets/1')
      assert.deepEqual([again.status, again.body.cancel_requested_at], [202, requested.body.cancel_requested_at])
      proceed.open()
      assert.equal(await running, true)
      const job = (await call(app, 'GET', '/v2/scope/resets/1')).body
      assert.deepEqual([job.status, job.scopes_applied, job.scopes_waiting, job.cancel_requested_at], ['cancelled', 2, 0, requested.body.cancel_requested_at])
      assert.match(job.finished_at, TIME)
      assert.equal(batches, 1)
      const NEW = '2019-01-01T00:00:00+00:00'
      assert.deepEqual(await timestamps(app), { s0: NEW, s1: NEW, s2: OLD, s3: OLD, s4: OLD, s5: OLD })
      const [row] = await dumpJobs(database) as any[]
      assert.deepEqual([row.locked_by, row.locked_at], [null, null])
      // Over: a later DELETE answers it as it is.
      assert.equal((await call(app, 'DELETE', '/v2/scope/resets/1')).status, 200)
    })

    it('commits the batch in flight when asked to stop in the middle of it', async (t) => {
      const inBatch = gate()
      const proceed = gate()
      let calls = 0
      const ratedData = { async discardFrom () { if (++calls === 1) { inBatch.open(); await proceed.opened } } }
      const { app, worker } = await buildTestApp(t, { engine, ratedData, worker: { batchSize: 2 } })
      await createScopes(app, ids(6).map((id) => ({ scope_id: id, last_processed_timestamp: OLD })))
      await call(app, 'PUT', '/v2/scope', { all_scopes: true, state: '2019-01-01' })
      const running = worker.runOnce()
      await inBatch.opened
      const request = call(app, 'DELETE', '/v2/scope/resets/1')
      // SQLite has one connection: the request waits for the batch's commit.
      if (engine !== 'sqlite') assert.equal((await request).status, 202)
      proceed.open()
      assert.equal((await request).status, 202)
      await running
      const job = (await call(app, 'GET', '/v2/scope/resets/1')).body
      const moved = Object.values(await timestamps(app)).filter((ts) => ts !== OLD).length
      assert.equal(job.status, 'cancelled')
      assert.equal(job.scopes_applied, moved)
      // On a server the request is seen by the batch it came during.
      if (engine !== 'sqlite') assert.equal(moved, 2)
    })

    it('stops handing batches to a dispatcher once asked', async (t) => {
      const { app, database } = await buildTestApp(t, { engine })
      const inBatch = gate()
      const proceed = gate()
      const handed: string[][] = []
      const dispatcher: BatchDispatcher = {
        async dispatch (_job: ClaimedResetJob, scopes: ScopeState[]) {
          if (handed.length === 0) { inBatch.open(); await proceed.opened }
          handed.push(scopes.map((s) => s.scopeId))
        },
      }
      const worker = new ResetWorker({ store: database, logger: pino({ level: 'silent' }), dispatcher }, { batchSize: 2 })
      await createScopes(app, ids(6).map((id) => ({ scope_id: id })))
      await call(app, 'PUT', '/v2/scope', { all_scopes: true, state: '2019-01-01' })
      const running = worker.runOnce()
      await inBatch.opened
      assert.equal((await call(app, 'DELETE', '/v2/scope/resets/1')).status, 202)
      proceed.open()
      await running
      assert.deepEqual(handed, [['s0', 's1']])
      const job = (await call(app, 'GET', '/v2/scope/resets/1')).body
      assert.deepEqual([job.status, job.scopes_applied], ['cancelled', 2])
    })

    it("drops a cancelled job's waiting scopes, and a later job of those scopes runs after it", async (t) => {
      const { app, database, locks } = await buildTestApp(t, { engine })
      // CloudKitty's processor "holds" busy's lock until told otherwise.
      let busyHeld = true
      const busy = processingLockName('busy', locks.names)
      const coordinator: Coordinator = {
        description: locks.coordinator.description,
        async tryLock (names) {
          const taken = await locks.coordinator.tryLock(names.filter((n) => !busyHeld || n !== busy))
          return taken
        },
        close: async () => await locks.coordinator.close(),
      }
      const worker = new ResetWorker({ store: database, logger: pino({ level: 'silent' }), locks: { ...locks, coordinator } }, {
        batchSize: 10, pollIntervalMs: 20, lockRetryMaxMs: 50, concurrency: 2, periodSeconds: 3600,
      })
      t.after(async () => { await worker.stop() })
      await createScopes(app, ['busy', 'free1', 'free2'].map((id) => ({ scope_id: id, last_processed_timestamp: OLD })))
      await call(app, 'PUT', '/v2/scope', { scope_id: 'busy,free1,free2', state: '2019-01-01' })
      await call(app, 'PUT', '/v2/scope', { scope_id: 'busy', state: '2019-02-01' })
      worker.start()
      await waitFor(async () => (await call(app, 'GET', '/v2/scope/resets/1')).body.scopes_waiting === 1, 15_000, 'busy waiting')
      // The later job of busy is held back while the first is unfinished.
      await new Promise((resolve) => setTimeout(resolve, 100))
      assert.equal((await call(app, 'GET', '/v2/scope/resets/2')).body.status, 'pending')
      // Running, so 202; but the worker, polling its cancellation between
      // lock retries, may end it before the answer is written: then 200.
      assert.ok([200, 202].includes((await call(app, 'DELETE', '/v2/scope/resets/1')).status))
      await waitFor(async () => (await call(app, 'GET', '/v2/scope/resets/1')).body.status === 'cancelled', 15_000, 'job 1 cancelled')
      const first = (await call(app, 'GET', '/v2/scope/resets/1')).body
      assert.deepEqual([first.scopes_applied, first.scopes_waiting], [2, 0])
      const waits = await database.db.selectFrom('scopekeeper_reset_job_waits').selectAll().where('job_id', '=', 1).execute()
      assert.deepEqual(waits, [])
      assert.deepEqual(await timestamps(app), { busy: OLD, free1: '2019-01-01T00:00:00+00:00', free2: '2019-01-01T00:00:00+00:00' })
      busyHeld = false
      await waitFor(async () => (await call(app, 'GET', '/v2/scope/resets/2')).body.status === 'done', 15_000, 'job 2 done')
      assert.equal((await timestamps(app)).busy, '2019-02-01T00:00:00+00:00')
    })

    it('ends, at its next claim, a job asked to stop that went back to the queue (handed back, retrying, or its worker gone)', async (t) => {
      const { app, database, worker } = await buildTestApp(t, { engine })
      await createScopes(app, ids(2).map((id) => ({ scope_id: id, last_processed_timestamp: OLD })))
      await call(app, 'PUT', '/v2/scope', { scope_id: 's0', state: '2019-01-01' })
      await call(app, 'PUT', '/v2/scope', { scope_id: 's1', state: '2019-01-01' })
      const requested = '2024-01-01 00:00:00.000000'
      // Job 1: pending again after a failed attempt, its retry far off. Job 2: running under a worker whose lease expired.
      await database.db.updateTable('scopekeeper_reset_jobs').set({ cancel_requested_at: requested, run_at: '2999-01-01 00:00:00.000000', attempts: 1 }).where('id', '=', 1).execute()
      await database.db.updateTable('scopekeeper_reset_jobs').set({
        status: 'running', cancel_requested_at: requested, locked_by: 'gone', locked_at: '2020-01-01 00:00:00.000000', attempts: 1,
      }).where('id', '=', 2).execute()
      await worker.drain()
      const jobs = (await call(app, 'GET', '/v2/scope/resets')).body.results.map((j: any) => [j.id, j.status, j.scopes_applied, j.attempts])
      assert.deepEqual(jobs, [[2, 'cancelled', 0, 1], [1, 'cancelled', 0, 1]])
      assert.deepEqual(await timestamps(app), { s0: OLD, s1: OLD })
    })

    it('answers 409 for a done or failed job, 404 for an unknown one, 400 for a bad id or a query parameter', async (t) => {
      const failing = { async discardFrom (scope: ScopeState) { if (scope.scopeId === 'bad') throw new Error('refused') } }
      const { app, worker } = await buildTestApp(t, { engine, ratedData: failing, env: { SCOPEKEEPER_RESET_MAX_ATTEMPTS: '1' } })
      await createScopes(app, [{ scope_id: 'good' }, { scope_id: 'bad' }])
      await call(app, 'PUT', '/v2/scope', { scope_id: 'good', state: '2019-01-01' })
      await call(app, 'PUT', '/v2/scope', { scope_id: 'bad', state: '2019-01-01' })
      await worker.drain()
      const done = await call(app, 'DELETE', '/v2/scope/resets/1')
      assert.deepEqual([done.status, done.body], [409, { message: 'Reset 1 is done: it can no longer be cancelled.' }])
      const failed = await call(app, 'DELETE', '/v2/scope/resets/2')
      assert.deepEqual([failed.status, failed.body], [409, { message: 'Reset 2 has failed: it no longer runs, so it cannot be cancelled.' }])
      assert.deepEqual((await call(app, 'GET', '/v2/scope/resets')).body.results.map((j: any) => [j.status, j.cancel_requested_at]), [['failed', null], ['done', null]])
      const missing = await call(app, 'DELETE', '/v2/scope/resets/42')
      assert.deepEqual([missing.status, missing.body], [404, { message: 'No reset found with id 42.' }])
      for (const url of ['/v2/scope/resets/0', '/v2/scope/resets/abc', '/v2/scope/resets/1?scope_id=good']) {
        assert.equal((await call(app, 'DELETE', url)).status, 400, url)
      }
    })

    it('guards DELETE with scope:cancel_reset, apart from reading jobs', async (t) => {
      const dir = tempDir(t)
      const file = join(dir, 'policy.yaml')
      writeFileSync(file, '"scope:cancel_reset": "!"\n')
      const { app, database } = await buildTestApp(t, { engine, env: { SCOPEKEEPER_OSLO_POLICY_POLICY_FILE: file } })
      await createScopes(app, [{ scope_id: 'a' }])
      await call(app, 'PUT', '/v2/scope', { scope_id: 'a', state: '2019-01-01' })
      const refused = await call(app, 'DELETE', '/v2/scope/resets/1')
      assert.deepEqual([refused.status, refused.body], [403, { message: 'You are not authorized to perform this action' }])
      assert.equal((await call(app, 'GET', '/v2/scope/resets/1')).body.status, 'pending')
      assert.deepEqual((await dumpJobs(database) as any[]).map((j) => j.cancel_requested_at), [null])
    })

    it('ends a job cancelled or done when a cancel races the worker, and a cancelled one moved exactly scopes_applied scopes', async (t) => {
      const SCOPES = 10
      const DELAYS_MS = [0, 1, 3, 6, 10, 15, 20, 30, 50, 100]
      const ratedData = { async discardFrom () { await new Promise((resolve) => setTimeout(resolve, 1)) } }
      const { app, worker } = await buildTestApp(t, { engine, ratedData, worker: { batchSize: 2, pollIntervalMs: 2 } })
      t.after(async () => { await worker.stop() })
      await createScopes(app, ids(SCOPES).map((id) => ({ scope_id: id, last_processed_timestamp: OLD })))
      worker.start()
      const seen = new Set<string>()
      for (let round = 1; round <= 20; round++) {
        const day = `2019-01-${String(round).padStart(2, '0')}T00:00:00+00:00`
        const put = await call(app, 'PUT', '/v2/scope', { all_scopes: true, state: day })
        const id = Number(String(put.headers.location).split('/').pop())
        // From before its claim to after its end, the job's whole life.
        await new Promise((resolve) => setTimeout(resolve, DELAYS_MS[round % DELAYS_MS.length]))
        const cancel = await call(app, 'DELETE', `/v2/scope/resets/${id}`)
        await waitFor(async () => ['cancelled', 'done'].includes((await call(app, 'GET', `/v2/scope/resets/${id}`)).body.status), 15_000, `job ${id} over`)
        const job = (await call(app, 'GET', `/v2/scope/resets/${id}`)).body
        const now = await timestamps(app)
        const moved = ids(SCOPES).filter((s) => now[s] === day)
        // Batches go in id order: what moved is a prefix, and is what the job says.
        assert.deepEqual(moved, ids(job.scopes_applied), `round ${round}: ${JSON.stringify(job)}`)
        if (job.status === 'done') assert.equal(job.scopes_applied, SCOPES)
        // 200: cancelled by the time of the answer (pending, or its worker already ended it); 202: still running then.
        if (cancel.status === 200) assert.deepEqual([job.status, job.scopes_applied], ['cancelled', cancel.body.scopes_applied])
        if (cancel.status === 202) assert.equal(cancel.body.status, 'running')
        if (cancel.status === 409) assert.equal(job.status, 'done')
        assert.ok([200, 202, 409].includes(cancel.status), String(cancel.status))
        seen.add(`${cancel.status} ${job.status}`)
      }
      process.stdout.write(`# ${engine}: cancel outcomes seen: ${[...seen].sort().join(', ')}\n`)
    })
  })
}
