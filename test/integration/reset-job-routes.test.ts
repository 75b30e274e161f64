import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { ScopeState } from '../../src/domain/scope-state.ts'
import { buildTestApp, call, createScopes } from '../helpers/build-test-app.ts'
import { waitFor } from '../helpers/server-process.ts'
import { testEngines } from '../helpers/test-databases.ts'

const TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$/

for (const engine of testEngines()) {
  describe(`${engine}: reset progress (/v2/scope/resets)`, () => {
    it("names the job in PUT's Location and shows it pending, then done", async (t) => {
      const { app, worker } = await buildTestApp(t, { engine })
      await createScopes(app, [{ scope_id: 'a' }, { scope_id: 'b' }, { scope_id: 'c' }])
      const put = await call(app, 'PUT', '/v2/scope', { scope_id: 'a,b', state: '2019-07-16T08:00:00Z' })
      assert.equal(put.status, 202)
      assert.deepEqual(put.body, {})
      // Absolute, from the Host the caller used (inject's is localhost:80).
      assert.equal(put.headers.location, 'http://localhost:80/v2/scope/resets/1')
      const pending = await call(app, 'GET', String(put.headers.location))
      assert.equal(pending.status, 200)
      assert.deepEqual({ ...pending.body, created_at: undefined }, {
        id: 1, status: 'pending', last_processed_timestamp: '2019-07-16T08:00:00+00:00', scopes_total: 2, scopes_applied: 0, scopes_waiting: 0,
        attempts: 0, max_attempts: 10, last_error: null, request_id: put.headers['x-openstack-request-id'],
        created_by: { auth: 'noauth', user_id: null, user_name: null, project_id: null }, reason: null,
        created_at: undefined, started_at: null, finished_at: null, cancel_requested_at: null,
      })
      assert.match(pending.body.created_at, TIME)
      await worker.drain()
      const done = (await call(app, 'GET', '/v2/scope/resets/1')).body
      assert.deepEqual([done.status, done.scopes_applied, done.attempts], ['done', 2, 1])
      assert.match(done.started_at, TIME)
      assert.match(done.finished_at, TIME)
    })

    it('shows a failed job with its attempts and last error', async (t) => {
      const store = { async discardFrom (scope: ScopeState) { throw new Error(`storage refused ${scope.scopeId}`) } }
      const { app, worker } = await buildTestApp(t, { engine, ratedData: store, env: { SCOPEKEEPER_RESET_MAX_ATTEMPTS: '2' } })
      await createScopes(app, [{ scope_id: 'a' }])
      await call(app, 'PUT', '/v2/scope', { scope_id: 'a', state: '2019-01-01' })
      await waitFor(async () => { await worker.drain(); return (await call(app, 'GET', '/v2/scope/resets/1')).body.status === 'failed' })
      const failed = (await call(app, 'GET', '/v2/scope/resets/1')).body
      assert.deepEqual([failed.attempts, failed.scopes_applied, failed.last_error], [2, 0, 'storage refused a'])
      assert.match(failed.finished_at, TIME)
    })

    it('lists jobs newest first, filtered by status and scope_id, with paging', async (t) => {
      const { app, worker } = await buildTestApp(t, { engine })
      await createScopes(app, [{ scope_id: 'a' }, { scope_id: 'b' }])
      await call(app, 'PUT', '/v2/scope', { scope_id: 'a', state: '2019-01-01' })
      await worker.drain()
      await call(app, 'PUT', '/v2/scope', { scope_id: 'b', state: '2019-01-02' })
      await call(app, 'PUT', '/v2/scope', { all_scopes: true, state: '2019-01-03' })
      const ids = async (query: string) => (await call(app, 'GET', `/v2/scope/resets${query}`)).body.results.map((j: any) => j.id)
      assert.deepEqual(await ids(''), [3, 2, 1])
      assert.deepEqual(await ids('?status=pending'), [3, 2])
      assert.deepEqual(await ids('?status=done,failed'), [1])
      assert.deepEqual(await ids('?scope_id=a'), [3, 1])
      assert.deepEqual(await ids('?scope_id=b&status=pending'), [3, 2])
      assert.deepEqual(await ids('?limit=1&offset=1'), [2])
      assert.deepEqual(await ids('?scope_id=nobody'), [])
    })

    it('answers 404 for an unknown job and 400 for bad parameters', async (t) => {
      const { app } = await buildTestApp(t, { engine })
      const missing = await call(app, 'GET', '/v2/scope/resets/42')
      assert.equal(missing.status, 404)
      assert.match(missing.body.message, /42/)
      for (const url of ['/v2/scope/resets/abc', '/v2/scope/resets/0', '/v2/scope/resets?status=stuck', '/v2/scope/resets?limit=0', '/v2/scope/resets?bogus=1']) {
        const res = await call(app, 'GET', url)
        assert.equal(res.status, 400, url)
        assert.equal(typeof res.body.message, 'string')
      }
      const wrongMethod = await call(app, 'PATCH', '/v2/scope/resets/1')
      assert.equal(wrongMethod.status, 405)
      assert.equal(wrongMethod.headers.allow, 'GET, HEAD, DELETE, OPTIONS')
    })
  })
}
