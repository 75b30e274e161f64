import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { buildTestApp, call } from '../helpers/build-test-app.ts'
import { testEngines } from '../helpers/test-databases.ts'

for (const engine of testEngines()) {
  describe(`${engine}: HTTP surface`, () => {
    it('answers unknown paths with a JSON 404', async (t) => {
      const { app } = await buildTestApp(t, { engine })
      for (const url of ['/v1/scope', '/v2/scopes', '/v2/scope/x', '/nope?x=1']) {
        const res = await call(app, 'GET', url)
        assert.equal(res.status, 404, url)
        assert.equal(typeof res.body.message, 'string')
        assert.match(String(res.headers['content-type']), /application\/json/)
      }
    })

    it('answers an unsupported method on a known path with 405 and an Allow header', async (t) => {
      const { app } = await buildTestApp(t, { engine })
      for (const method of ['DELETE', 'TRACE'] as const) {
        const res = await app.inject({ method, url: '/v2/scope' })
        assert.equal(res.statusCode, 405, method)
        assert.deepEqual(String(res.headers.allow).split(', ').sort(), ['GET', 'HEAD', 'OPTIONS', 'PATCH', 'POST', 'PUT'])
        assert.match(res.json().message, new RegExp(method))
      }
      assert.equal((await app.inject({ method: 'DELETE', url: '/v2/scope/' })).statusCode, 405)
      const root = await app.inject({ method: 'POST', url: '/' })
      assert.equal(root.statusCode, 405)
      assert.match(String(root.headers.allow), /GET/)
    })

    it('serves /v2/scope/ with a trailing slash as /v2/scope', async (t) => {
      const { app } = await buildTestApp(t, { engine })
      assert.equal((await call(app, 'POST', '/v2/scope/', { scope_id: 'a' })).status, 200)
      assert.equal((await call(app, 'GET', '/v2/scope/?scope_id=a')).body.results[0].scope_id, 'a')
    })

    it('puts a distinct req-<uuid> request id on every response, errors included', async (t) => {
      const { app } = await buildTestApp(t, { engine })
      const seen = new Set<string>()
      for (const [method, url] of [['GET', '/v2/scope'], ['GET', '/missing'], ['DELETE', '/v2/scope'], ['GET', '/'], ['GET', '/healthz']] as const) {
        const res = await app.inject({ method, url })
        const id = String(res.headers['x-openstack-request-id'])
        assert.match(id, /^req-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/)
        seen.add(id)
      }
      assert.equal(seen.size, 5)
    })

    it('answers malformed bodies with a JSON 4xx, never a 5xx', async (t) => {
      const { app } = await buildTestApp(t, { engine })
      const cases: Array<[string | undefined, string | undefined, number]> = [
        ['{"scope_id": ', 'application/json', 400],
        ['', 'application/json', 400],
        ['scope_id=a', 'application/x-www-form-urlencoded', 415],
        ['{"scope_id":"a"}', 'text/plain', 415],
        [undefined, undefined, 400],
        ['{"__proto__": {"x": 1}, "scope_id": "a"}', 'application/json', 400],
        ['{"scope_id":"' + 'a'.repeat(2_000_000) + '"}', 'application/json', 413],
      ]
      for (const method of ['PUT', 'PATCH', 'POST'] as const) {
        for (const [payload, type, status] of cases) {
          const res = await app.inject({ method, url: '/v2/scope', payload, headers: type === undefined ? {} : { 'content-type': type } })
          assert.equal(res.statusCode, status, `${method} ${type} ${payload?.slice(0, 40)}`)
          assert.equal(typeof res.json().message, 'string')
        }
      }
    })

    it('names bad JSON plainly', async (t) => {
      const { app } = await buildTestApp(t, { engine })
      const res = await app.inject({ method: 'POST', url: '/v2/scope', payload: '{bad', headers: { 'content-type': 'application/json' } })
      assert.deepEqual(res.json(), { message: 'The request body is not valid JSON.' })
    })

    it('discovers the v2 API at / as CloudKitty does', async (t) => {
      const { app } = await buildTestApp(t, { engine })
      const res = await app.inject({ method: 'GET', url: '/', headers: { host: 'rating.example:8889' } })
      assert.equal(res.statusCode, 200)
      assert.deepEqual(res.json(), { versions: [{ id: 'v2', status: 'CURRENT', links: [{ href: 'http://rating.example:8889/v2', rel: 'self' }] }] })
    })

    it('reports health from the database, 503 when it does not answer', async (t) => {
      const { app, database } = await buildTestApp(t, { engine })
      assert.deepEqual((await call(app, 'GET', '/healthz')).body, { status: 'ok' })
      await database.close()
      const res = await call(app, 'GET', '/healthz')
      assert.equal(res.status, 503)
      assert.equal(typeof res.body.message, 'string')
      assert.ok(Number(res.headers['retry-after']) > 0)
    })

    it('publishes an OpenAPI 3.1 document built from the validating schemas', async (t) => {
      const { app } = await buildTestApp(t, { engine })
      const doc = (await call(app, 'GET', '/v2/openapi.json')).body
      assert.equal(doc.openapi, '3.1.0')
      const scope = doc.paths['/v2/scope']
      assert.deepEqual(Object.keys(scope).sort(), ['get', 'patch', 'post', 'put'])
      assert.deepEqual(scope.get.parameters.map((p: any) => p.name).sort(), ['active', 'collector', 'fetcher', 'limit', 'marker', 'offset', 'rated_after', 'rated_before', 'scope_id', 'scope_key', 'stuck'])
      const putBody = scope.put.requestBody.content['application/json'].schema
      assert.deepEqual(Object.keys(putBody.properties).sort(), ['all_scopes', 'collector', 'fetcher', 'last_processed_timestamp', 'reason', 'scope_id', 'scope_key', 'state'])
      assert.equal(putBody.additionalProperties, false)
      const events = doc.paths['/v2/scope/events'].get
      assert.deepEqual(events.parameters.map((p: any) => p.name).sort(), ['kind', 'limit', 'marker', 'scope_id', 'since', 'until', 'user_id'])
      assert.ok(events.responses['200'])
      assert.deepEqual(scope.patch.requestBody.content['application/json'].schema.required, ['scope_id'])
      assert.ok(scope.put.responses['202'])
      // Issue 14: dry runs, ETag and If-Match are documented where they are validated.
      for (const method of ['put', 'patch', 'post']) {
        assert.deepEqual(scope[method].parameters.filter((p: any) => p.in === 'query').map((p: any) => p.name), ['dry_run'], method)
      }
      assert.deepEqual(Object.keys(scope.put.responses['200'].content['application/json'].schema.properties),
        ['dry_run', 'scopes_total', 'scopes_inactive', 'last_processed_timestamp', 'discard_from', 'results'])
      assert.deepEqual(scope.patch.parameters.filter((p: any) => p.in === 'header').map((p: any) => p.name), ['if-match', 'idempotency-key', 'x-reason'])
      for (const method of ['put', 'post']) assert.deepEqual(scope[method].parameters.filter((p: any) => p.in === 'header').map((p: any) => p.name), ['idempotency-key', 'x-reason'], method)
      for (const method of ['get', 'patch', 'post']) assert.ok(scope[method].responses['200'].headers.etag, method)
      assert.ok(scope.patch.responses['412'])
    })
  })
}
