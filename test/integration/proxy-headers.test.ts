import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import Fastify, { type FastifyInstance } from 'fastify'
import { registerProxyHeaders } from '../../src/api/proxy-headers.ts'
import { ScopeClient } from '../../src/cli/scope-client.ts'
import { buildTestApp, createScopes } from '../helpers/build-test-app.ts'
import { requireOsloMiddleware, startOsloScript } from '../helpers/oslo-middleware.ts'
import { testEngines } from '../helpers/test-databases.ts'

const TRUST = { SCOPEKEEPER_OSLO_MIDDLEWARE_ENABLE_PROXY_HEADERS_PARSING: 'true' }
const HOST = 'backend:8889'

async function discovered (app: FastifyInstance, headers: Record<string, string>): Promise<string> {
  const res = await app.inject({ method: 'GET', url: '/', headers: { host: HOST, ...headers } })
  assert.equal(res.statusCode, 200)
  return res.json().versions[0].links[0].href
}

const HAPROXY = { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'rating.example', 'x-forwarded-for': '192.0.2.60', 'x-forwarded-prefix': '/rating' }

for (const engine of testEngines()) {
  describe(`${engine}: links behind a proxy`, () => {
    it('makes discovery, Location and Link absolute https URLs of the public host and prefix', async (t) => {
      const { app } = await buildTestApp(t, { engine, env: TRUST })
      await createScopes(app, [{ scope_id: 'a' }, { scope_id: 'b' }])
      assert.equal(await discovered(app, HAPROXY), 'https://rating.example/rating/v2')
      const base = await app.listen({ host: '127.0.0.1', port: 0 })
      const put = await fetch(`${base}/v2/scope`, {
        method: 'PUT', headers: { ...HAPROXY, 'content-type': 'application/json' }, body: JSON.stringify({ scope_id: 'a', state: '2019-01-01' }),
      })
      assert.equal(put.status, 202)
      assert.match(String(put.headers.get('location')), /^https:\/\/rating\.example\/rating\/v2\/scope\/resets\/\d+$/)
      const list = await fetch(`${base}/v2/scope?limit=1&scope_id=a,b`, { headers: HAPROXY })
      assert.match(String(list.headers.get('link')), /^<https:\/\/rating\.example\/rating\/v2\/scope\?scope_id=a%2Cb&marker=\d+&limit=1>; rel="next"$/)
    })

    it("points Location and Link at the Host the caller used, which the CLI and a client follow", async (t) => {
      const { app, worker } = await buildTestApp(t, { engine })
      await createScopes(app, [{ scope_id: 'a' }, { scope_id: 'b' }, { scope_id: 'c' }])
      const base = await app.listen({ host: '127.0.0.1', port: 0 })
      const client = new ScopeClient({ endpoint: base })
      const accepted = await client.resetScopes({ scope_id: 'a', state: '2019-01-01' })
      assert.equal(accepted.location, `${base}/v2/scope/resets/${accepted.jobId}`)
      await worker.drain()
      assert.equal((await client.waitForReset(accepted.jobId!, { intervalMs: 10 })).status, 'done')
      const seen: string[] = []
      for (let next: string | undefined = `${base}/v2/scope?limit=1`; next !== undefined;) {
        const page: Response = await fetch(next)
        if (page.status === 404) break
        seen.push(...(await page.json() as any).results.map((r: any) => r.scope_id))
        next = /^<([^>]+)>; rel="next"$/.exec(page.headers.get('link') ?? '')?.[1]
        if (next !== undefined) assert.ok(next.startsWith(`${base}/v2/scope?`), next)
      }
      assert.deepEqual(seen, ['a', 'b', 'c'])
    })
  })
}

describe('proxy headers', () => {
  it('are ignored without [oslo_middleware] enable_proxy_headers_parsing', async (t) => {
    const { app } = await buildTestApp(t)
    assert.equal(await discovered(app, { ...HAPROXY, forwarded: 'proto=https;host=other.example' }), `http://${HOST}/v2`)
  })

  it('give scheme, host and prefix from X-Forwarded-* when trusted, the first of a list', async (t) => {
    const { app } = await buildTestApp(t, { env: TRUST })
    assert.equal(await discovered(app, HAPROXY), 'https://rating.example/rating/v2')
    assert.equal(await discovered(app, { 'x-forwarded-proto': 'https, http', 'x-forwarded-host': 'rating.example:8443, backend' }), 'https://rating.example:8443/v2')
    assert.equal(await discovered(app, { 'x-forwarded-prefix': '/rating/' }), `http://${HOST}/rating/v2`)
  })

  it('let Forwarded win wholesale over X-Forwarded-*, its first element counting and quotes read', async (t) => {
    const { app } = await buildTestApp(t, { env: TRUST })
    // No proto in Forwarded: X-Forwarded-Proto is not consulted (oslo's else branch).
    assert.equal(await discovered(app, { ...HAPROXY, forwarded: 'for=192.0.2.60;host=public.example' }), 'http://public.example/rating/v2')
    assert.equal(await discovered(app, { forwarded: 'for="[2001:db8:cafe::17]:4711";proto="https";host="rating.example:443", for=10.0.0.1;proto=http;host=inner' }),
      'https://rating.example:443/v2')
    assert.equal(await discovered(app, { forwarded: 'Proto=HTTPS; HOST=rating.example' }), 'https://rating.example/v2')
  })

  it('never let a hostile value into a header: an invalid host, scheme or prefix is ignored', async (t) => {
    const { app } = await buildTestApp(t, { env: TRUST })
    for (const host of ['evil.example>; rel="x"', 'evil.example/path', 'user@evil.example', 'a b', '"quoted"', 'evil.example:80:80', '[::1', 'e\tvil']) {
      assert.equal(await discovered(app, { 'x-forwarded-host': host }), `http://${HOST}/v2`, host)
      assert.equal(await discovered(app, { forwarded: `host="${host.replaceAll('"', '\\"')}"` }), `http://${HOST}/v2`, host)
    }
    for (const proto of ['javascript', 'https:', 'ftp', 'https\\']) assert.equal(await discovered(app, { 'x-forwarded-proto': proto }), `http://${HOST}/v2`, proto)
    for (const prefix of ['//evil.example', 'rating', '/a b', '/x>', '/a?b', '/a#b']) assert.equal(await discovered(app, { 'x-forwarded-prefix': prefix }), `http://${HOST}/v2`, prefix)
    // Nor a hostile Host of the request itself: the link is then relative.
    const res = await app.inject({ method: 'GET', url: '/', headers: { host: 'evil>; rel="x"' } })
    assert.equal(res.json().versions[0].links[0].href, '/v2')
  })

  it('keep every link a plain URL whatever X-Forwarded-Host and Forwarded carry', async (t) => {
    const { app } = await buildTestApp(t, { env: TRUST })
    const printable = fc.string({ unit: fc.integer({ min: 0x20, max: 0xff }).filter((c) => c !== 0x7f).map((c) => String.fromCharCode(c)), maxLength: 40 })
    const plain = /^https?:\/\/(?:[A-Za-z0-9_.-]+|\[[0-9A-Fa-f:.]+\])(?::\d+)?(?:\/[A-Za-z0-9._~!$&'()*+,;=:@%-]+)*\/v2$/
    await fc.assert(fc.asyncProperty(printable, printable, printable, async (host, forwarded, prefix) => {
      const href = await discovered(app, { 'x-forwarded-host': host, 'x-forwarded-prefix': prefix, ...(forwarded === '' ? {} : { forwarded }) })
      assert.match(href, plain)
    }), { numRuns: 300 })
  })

  it('are read as oslo.middleware\'s HTTPProxyToWSGI reads them', async (t) => {
    if (!requireOsloMiddleware(t)) return
    const oslo = startOsloScript(t, 'oslo-proxy-headers.py')
    const bare = (enabled: boolean) => {
      const app = Fastify()
      registerProxyHeaders(app, enabled)
      app.get('/', async (request) => request.origin)
      t.after(async () => { await app.close() })
      return app
    }
    const apps = { true: bare(true), false: bare(false) }
    // Values our validation keeps, so that only the precedence and the split differ, if anything.
    const proto = fc.constantFrom('http', 'https')
    const host = fc.constantFrom('rating.example', 'rating.example:8443', '10.0.0.5:8889', '[2001:db8::1]:443', 'a_b.example')
    const address = fc.constantFrom('192.0.2.60', '203.0.113.7', 'unknown', '_hidden')
    const prefix = fc.constantFrom('/rating', '/a/b', '/rating-api')
    const ows = fc.constantFrom('', ' ', '  ')
    const key = (name: string) => fc.constantFrom(name, name.toUpperCase(), name[0].toUpperCase() + name.slice(1))
    const pair = fc.oneof(
      fc.tuple(key('proto'), proto), fc.tuple(key('host'), host), fc.tuple(key('for'), address), fc.tuple(key('by'), address),
    ).chain(([k, v]) => fc.tuple(ows, ows, ows).map(([a, b, c]) => `${a}${k}${b}=${c}${v}`))
    const element = fc.array(pair, { minLength: 1, maxLength: 4 }).map((pairs) => pairs.join(';'))
    const forwarded = fc.array(element, { minLength: 1, maxLength: 3 }).map((elements) => elements.join(','))
    const headers = fc.record({
      forwarded: fc.option(fc.oneof(forwarded, fc.constant('')), { nil: undefined }),
      'x-forwarded-proto': fc.option(proto, { nil: undefined }),
      'x-forwarded-host': fc.option(host, { nil: undefined }),
      'x-forwarded-for': fc.option(address, { nil: undefined }),
      'x-forwarded-prefix': fc.option(prefix, { nil: undefined }),
    }, { requiredKeys: [] })
    await fc.assert(fc.asyncProperty(headers, fc.boolean(), async (sent, enabled) => {
      const present = Object.fromEntries(Object.entries(sent).filter(([, v]) => v !== undefined)) as Record<string, string>
      const ours = (await apps[String(enabled) as 'true' | 'false'].inject({ method: 'GET', url: '/', headers: { host: HOST, ...present } })).json()
      const theirs = await oslo({ enabled, headers: present })
      assert.deepEqual(ours, { protocol: theirs.scheme, host: theirs.host, prefix: theirs.script_name, client: theirs.remote_addr })
    }), { numRuns: 500 })
  })
})
