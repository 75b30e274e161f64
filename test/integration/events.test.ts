import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { buildTestApp, call, createScopes } from '../helpers/build-test-app.ts'
import { testEngines } from '../helpers/test-databases.ts'

const NOAUTH = { auth: 'noauth', user_id: null, user_name: null, project_id: null, roles: [] }

async function history (app: Parameters<typeof call>[0], query: string) {
  const res = await call(app, 'GET', `/v2/scope/events?${query}`)
  assert.equal(res.status, 200, res.text)
  return res.body.results as any[]
}

async function eventRows (database: { db: any }): Promise<any[]> {
  return await database.db.selectFrom('scopekeeper_events').selectAll().orderBy('id').execute()
}

for (const engine of testEngines()) {
  describe(`${engine}: the audit history (GET /v2/scope/events)`, () => {
    it('records each change with who, when, the request id and the reason, newest first', async (t) => {
      const { app, worker } = await buildTestApp(t, { engine, env: { SCOPEKEEPER_COLLECT_PERIOD: '3600' } })
      const post = await call(app, 'POST', '/v2/scope', { scope_id: 'trial', active: false, last_processed_timestamp: '2024-03-01', reason: 'a trial project' })
      const patch = await app.inject({
        method: 'PATCH', url: '/v2/scope', headers: { 'content-type': 'application/json', 'x-reason': 'trial converted' },
        payload: JSON.stringify({ scope_id: 'trial', active: true, collector: 'prometheus' }),
      })
      assert.equal(patch.statusCode, 200)
      const put = await call(app, 'PUT', '/v2/scope', { scope_id: 'trial', state: '2024-01-01' })
      await worker.drain()
      const events = await history(app, 'scope_id=trial')
      assert.deepEqual(events.map((e) => e.kind), ['reset_applied', 'reset_requested', 'activated', 'patched', 'created'])
      const [applied, requested, activated, patched, created] = events
      for (const event of events) {
        assert.deepEqual({ auth: event.auth, user_id: event.user_id, user_name: event.user_name, project_id: event.project_id, roles: event.roles }, NOAUTH)
        assert.equal(event.scope_id, 'trial')
        assert.match(event.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$/)
      }
      assert.deepEqual([created.request_id, created.reason], [post.headers['x-openstack-request-id'], 'a trial project'])
      assert.deepEqual(created.details, { scope_key: 'project_id', fetcher: 'keystone', collector: 'gnocchi', active: false, last_processed_timestamp: '2024-03-01T00:00:00+00:00' })
      assert.deepEqual([patched.request_id, patched.reason], [patch.headers['x-openstack-request-id'], 'trial converted'])
      assert.deepEqual(patched.details, { changes: { collector: { old: 'gnocchi', new: 'prometheus' } } })
      assert.deepEqual(activated.details, { active: { old: false, new: true } })
      assert.equal(activated.request_id, patched.request_id)
      assert.deepEqual([requested.job_id, requested.request_id], [1, put.headers['x-openstack-request-id']])
      assert.deepEqual(requested.details, {
        filter: { scope_id: ['trial'], scope_key: null, fetcher: null, collector: null }, last_processed_timestamp: '2024-01-01T00:00:00+00:00', scopes_total: 1,
      })
      // The batch is the job's: its requester and request id, the scope's old and new timestamps.
      assert.deepEqual([applied.job_id, applied.request_id], [1, requested.request_id])
      assert.deepEqual(applied.details, { old_last_processed_timestamp: '2024-03-01T00:00:00+00:00', last_processed_timestamp: '2024-01-01T00:00:00+00:00' })
      // Reset jobs say who asked.
      const job = (await call(app, 'GET', '/v2/scope/resets/1')).body
      assert.deepEqual([job.created_by, job.reason], [{ auth: 'noauth', user_id: null, user_name: null, project_id: null }, null])
    })

    it('records nothing for a change that is refused or rolled back', async (t) => {
      const { app, database } = await buildTestApp(t, { engine })
      await createScopes(app, [{ scope_id: 'a' }])
      const before = await eventRows(database)
      assert.equal((await call(app, 'POST', '/v2/scope', { scope_id: 'a' })).status, 409)
      assert.equal((await call(app, 'PATCH', '/v2/scope', { scope_id: 'missing', active: false })).status, 404)
      assert.equal((await call(app, 'PUT', '/v2/scope', { scope_id: 'missing', state: '2019-01-01' })).status, 404)
      // A PATCH that changes nothing is no change.
      assert.equal((await call(app, 'PATCH', '/v2/scope', { scope_id: 'a', active: true })).status, 200)
      assert.deepEqual(await eventRows(database), before)
    })

    it("writes one row per reset batch, and expands each scope's entry with its own old timestamp", async (t) => {
      const { app, database, worker } = await buildTestApp(t, { engine, worker: { batchSize: 3 } })
      const ids = Array.from({ length: 8 }, (_, i) => `s${i}`)
      await createScopes(app, ids.map((id, i) => ({ scope_id: id, last_processed_timestamp: `2024-01-0${i + 1}` })))
      assert.equal((await call(app, 'PUT', '/v2/scope', { all_scopes: true, state: '2019-07-01' })).status, 202)
      await worker.drain()
      const batches = (await eventRows(database)).filter((row) => row.kind === 'reset_applied')
      assert.equal(batches.length, 3, 'eight scopes in batches of three')
      for (const [i, id] of ids.entries()) {
        const [entry] = await history(app, `scope_id=${id}&kind=reset_applied`)
        assert.deepEqual(entry.details, { old_last_processed_timestamp: `2024-01-0${i + 1}T00:00:00+00:00`, last_processed_timestamp: '2019-07-01T00:00:00+00:00' })
      }
      // Without a scope filter, a batch is one entry with its count.
      const listed = await history(app, 'kind=reset_applied')
      assert.deepEqual(listed.map((e) => [e.scope_id, e.details.scopes_applied]), [[null, 2], [null, 3], [null, 3]])
    })

    it('filters by scope_id, kind, user_id, since and until, and pages by marker to the end', async (t) => {
      let now = new Date('2024-05-01T00:00:00Z')
      const { app } = await buildTestApp(t, { engine, clock: () => now })
      for (let i = 0; i < 7; i++) {
        now = new Date(Date.UTC(2024, 4, 1 + i))
        await createScopes(app, [{ scope_id: `f${i}` }])
        await call(app, 'PATCH', '/v2/scope', { scope_id: `f${i}`, active: false })
      }
      assert.deepEqual((await history(app, 'kind=created,deactivated&scope_id=f2')).map((e) => e.kind), ['deactivated', 'created'])
      assert.deepEqual((await history(app, 'since=2024-05-03&until=2024-05-04T00:00:00Z&kind=created')).map((e) => e.scope_id), ['f3', 'f2'])
      assert.equal((await call(app, 'GET', '/v2/scope/events?user_id=someone')).status, 404)
      // Every event once, newest first, whatever the page size.
      const everything = (await history(app, 'limit=1000')).map((e) => e.id)
      await fc.assert(fc.asyncProperty(fc.integer({ min: 1, max: 15 }), async (limit) => {
        const seen: number[] = []
        let url: string | undefined = `/v2/scope/events?limit=${limit}&kind=created,deactivated`
        while (url !== undefined) {
          const res = await call(app, 'GET', url)
          assert.equal(res.status, 200)
          seen.push(...res.body.results.map((e: any) => e.id))
          const next = /<([^>]+)>; rel="next"/.exec(String(res.headers.link ?? ''))?.[1]
          url = next === undefined ? undefined : new URL(next).pathname + new URL(next).search
          if (url !== undefined && (await call(app, 'GET', url)).status === 404) url = undefined
        }
        assert.deepEqual(seen, everything)
      }), { numRuns: 8 })
    })

    it('refuses bad filters with a 400 naming the parameter', async (t) => {
      const { app } = await buildTestApp(t, { engine })
      for (const [query, name] of [['kind=stuck', 'kind'], ['since=yesterday', 'since'], ['limit=0', 'limit'], ['marker=-1', 'marker'], ['colour=red', 'colour']]) {
        const res = await call(app, 'GET', `/v2/scope/events?${query}`)
        assert.equal(res.status, 400, query)
        assert.match(res.body.message, new RegExp(`\\b${name}\\b`), query)
      }
    })

    it('purges events past [audit] retention_days in bounded batches, and keeps every event at 0', async (t) => {
      let now = new Date('2024-01-01T00:00:00Z')
      const { app, database, worker } = await buildTestApp(t, { engine, clock: () => now, env: { SCOPEKEEPER_AUDIT_RETENTION_DAYS: '2' } })
      await createScopes(app, Array.from({ length: 5 }, (_, i) => ({ scope_id: `old${i}` })))
      now = new Date('2024-01-04T00:00:00Z')
      await createScopes(app, [{ scope_id: 'recent' }])
      assert.equal(await worker.purgeAudit(), 5)
      assert.deepEqual((await eventRows(database)).map((row) => row.scope_id), ['recent'])
      const keeping = await buildTestApp(t, { engine, clock: () => now })
      await createScopes(keeping.app, [{ scope_id: 'kept' }])
      now = new Date('2030-01-01T00:00:00Z')
      assert.equal(await keeping.worker.purgeAudit(), 0)
      assert.equal((await eventRows(keeping.database)).length, 1)
    })
  })
}
