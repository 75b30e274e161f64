import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { buildTestApp } from '../helpers/build-test-app.ts'

// Nothing here reaches Keystone: a request without a token is refused before.
const KEYSTONE = {
  SCOPEKEEPER_DEFAULT_AUTH_STRATEGY: 'keystone',
  SCOPEKEEPER_KEYSTONE_AUTHTOKEN_AUTH_URL: 'http://127.0.0.1:9/v3',
  SCOPEKEEPER_KEYSTONE_AUTHTOKEN_USERNAME: 'cloudkitty',
  SCOPEKEEPER_KEYSTONE_AUTHTOKEN_PASSWORD: 'secret',
  SCOPEKEEPER_KEYSTONE_AUTHTOKEN_PROJECT_NAME: 'service',
}

const sorted = (allow: string | null) => String(allow).split(', ').sort()

describe('OPTIONS', () => {
  it("answers every known path with 200, no body and an Allow header of that path's methods", async (t) => {
    const { app } = await buildTestApp(t)
    const base = await app.listen({ host: '127.0.0.1', port: 0 })
    const expected: Array<[string, string[]]> = [
      ['/', ['GET', 'HEAD', 'OPTIONS']],
      ['/v2/scope', ['GET', 'HEAD', 'OPTIONS', 'PATCH', 'POST', 'PUT']],
      ['/v2/scope/', ['GET', 'HEAD', 'OPTIONS', 'PATCH', 'POST', 'PUT']],
      ['/v2/scope?scope_id=a', ['GET', 'HEAD', 'OPTIONS', 'PATCH', 'POST', 'PUT']],
      ['/v2/scope/resets', ['GET', 'HEAD', 'OPTIONS']],
      ['/v2/scope/resets/7', ['DELETE', 'GET', 'HEAD', 'OPTIONS']],
      ['/v2/openapi.json', ['GET', 'HEAD', 'OPTIONS']],
      ['/healthz', ['GET', 'HEAD', 'OPTIONS']],
    ]
    for (const [path, methods] of expected) {
      const res = await fetch(`${base}${path}`, { method: 'OPTIONS' })
      assert.deepEqual([res.status, sorted(res.headers.get('allow')), await res.text()], [200, methods, ''], path)
    }
    // /healthcheck answers OPTIONS as oslo's Healthcheck answers any method but HEAD.
    const health = await fetch(`${base}/healthcheck`, { method: 'OPTIONS' })
    assert.deepEqual([health.status, sorted(health.headers.get('allow')), await health.text()], [200, ['GET', 'HEAD', 'OPTIONS'], 'OK'])
  })

  it('answers an unknown path with 404, as any other method', async (t) => {
    const { app } = await buildTestApp(t)
    for (const url of ['/nowhere', '/v2', '/v2/scope/resets/1/more']) {
      const res = await app.inject({ method: 'OPTIONS', url })
      assert.equal(res.statusCode, 404, url)
      assert.equal(typeof res.json().message, 'string')
    }
  })

  it("needs no token under Keystone auth, as haproxy's default httpchk (OPTIONS /) sends none", async (t) => {
    const { app } = await buildTestApp(t, { env: KEYSTONE })
    assert.equal((await app.inject({ method: 'GET', url: '/v2/scope' })).statusCode, 401)
    for (const url of ['/', '/v2/scope', '/v2/scope/resets/1']) {
      const res = await app.inject({ method: 'OPTIONS', url })
      assert.equal(res.statusCode, 200, url)
      assert.match(String(res.headers.allow), /OPTIONS/)
    }
    // A token is not even looked at: a bad one changes nothing (Keystone is unreachable here).
    assert.equal((await app.inject({ method: 'OPTIONS', url: '/v2/scope', headers: { 'x-auth-token': 'bad' } })).statusCode, 200)
  })
})
