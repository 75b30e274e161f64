import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { buildTestApp, call, createScopes } from '../helpers/build-test-app.ts'
import { testEngines } from '../helpers/test-databases.ts'

function metric (text: string, name: string, labels = ''): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels === '' ? ' ' : `{${labels}} `}`))
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1))
}

for (const engine of testEngines()) {
  describe(`${engine}: GET /metrics`, () => {
    it('counts requests by route, method and status, and reports jobs, queue lag, scopes and the pool', async (t) => {
      const { app } = await buildTestApp(t, { engine })
      await createScopes(app, [{ scope_id: 'a' }, { scope_id: 'b', active: false }, { scope_id: 'c' }])
      await call(app, 'GET', '/v2/scope')
      await call(app, 'GET', '/v2/scope?scope_id=nope')
      await call(app, 'GET', '/v2/scope/resets/99')
      await call(app, 'PUT', '/v2/scope', { all_scopes: true, state: '2019-01-01' })
      await new Promise((resolve) => setTimeout(resolve, 1100))
      const res = await app.inject({ method: 'GET', url: '/metrics' })
      assert.equal(res.statusCode, 200)
      assert.match(String(res.headers['content-type']), /text\/plain/)
      const text = res.body
      assert.equal(metric(text, 'scopekeeper_http_requests_total', 'route="/v2/scope",method="POST",status="200"'), 3)
      assert.equal(metric(text, 'scopekeeper_http_requests_total', 'route="/v2/scope",method="GET",status="404"'), 1)
      assert.equal(metric(text, 'scopekeeper_http_requests_total', 'route="/v2/scope/resets/:id",method="GET",status="404"'), 1)
      assert.equal(metric(text, 'scopekeeper_http_request_duration_seconds_count', 'route="/v2/scope",method="PUT",status="202"'), 1)
      assert.equal(metric(text, 'scopekeeper_reset_jobs', 'status="pending"'), 1)
      assert.equal(metric(text, 'scopekeeper_reset_jobs', 'status="done"'), 0)
      assert.ok((metric(text, 'scopekeeper_reset_queue_lag_seconds') ?? 0) >= 1)
      assert.equal(metric(text, 'scopekeeper_scopes', 'active="true"'), 2)
      assert.equal(metric(text, 'scopekeeper_scopes', 'active="false"'), 1)
      assert.ok(metric(text, 'scopekeeper_db_pool_connections', 'state="idle"') !== undefined)
      assert.ok(metric(text, 'process_resident_memory_bytes') !== undefined)
    })

    it('still answers when the database does not, leaving out only the figures read from it', async (t) => {
      const { app, database } = await buildTestApp(t, { engine })
      await call(app, 'GET', '/v2/scope')
      await database.close()
      const res = await app.inject({ method: 'GET', url: '/metrics' })
      assert.equal(res.statusCode, 200)
      assert.equal(metric(res.body, 'scopekeeper_http_requests_total', 'route="/v2/scope",method="GET",status="404"'), 1)
      assert.ok(metric(res.body, 'process_resident_memory_bytes') !== undefined)
      assert.ok(Number.isNaN(metric(res.body, 'scopekeeper_reset_queue_lag_seconds')), 'the lag is unknown, not 0')
      for (const name of ['scopekeeper_reset_jobs', 'scopekeeper_scopes']) {
        assert.ok(!res.body.split('\n').some((line) => line.startsWith(name + ' ') || line.startsWith(name + '{')), `${name} left out`)
      }
    })

    it('can be turned off', async (t) => {
      const { app } = await buildTestApp(t, { engine, env: { SCOPEKEEPER_METRICS_ENABLED: 'false' } })
      assert.equal((await app.inject({ method: 'GET', url: '/metrics' })).statusCode, 404)
    })
  })
}
