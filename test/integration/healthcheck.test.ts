import assert from 'node:assert/strict'
import { rmSync, writeFileSync } from 'node:fs'
import { hostname } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import type { FastifyInstance } from 'fastify'
import { HealthChecks } from '../../src/api/healthcheck.ts'
import { buildTestApp, tempDir } from '../helpers/build-test-app.ts'
import { requireOsloMiddleware, startOsloScript } from '../helpers/oslo-middleware.ts'
import { waitFor } from '../helpers/server-process.ts'
import { startTcpProxy } from '../helpers/tcp-proxy.ts'
import { freshDatabaseUrl, testEngines } from '../helpers/test-databases.ts'

// oslo.middleware's answers for CloudKitty's pipeline (disable_by_file
// alone), as its templates render them: checked against oslo itself below.
const JSON_OK = '{\n    "detailed": false,\n    "reasons": [\n        "OK"\n    ]\n}'
const HTML_OK = '<HTML>\n<HEAD><TITLE>Healthcheck Status</TITLE></HEAD>\n<BODY>\n\n<H2>Result of 1 checks:</H2>\n' +
  '<TABLE bgcolor="#ffffff" border="1">\n<TBODY>\n<TR>\n\n<TH>\nReason\n</TH>\n</TR>\n<TR>\n\n    <TD>OK</TD>\n\n</TR>\n</TBODY>\n</TABLE>\n<HR></HR>\n\n</BODY>\n</HTML>'
const TEXT = 'text/plain; charset=UTF-8'
const HTML = 'text/html; charset=UTF-8'

const BOUNDS = { SCOPEKEEPER_DATABASE_CONNECT_TIMEOUT: '1', SCOPEKEEPER_DATABASE_POOL_TIMEOUT: '2', SCOPEKEEPER_DATABASE_STATEMENT_TIMEOUT: '5' }

async function health (app: FastifyInstance, method: 'GET' | 'HEAD' | 'OPTIONS' = 'GET', accept?: string) {
  const res = await app.inject({ method, url: '/healthcheck', headers: accept === undefined ? {} : { accept } })
  return { status: res.statusCode, type: res.headers['content-type'], body: res.body, headers: res.headers }
}

async function listening (app: FastifyInstance): Promise<string> {
  return await app.listen({ host: '127.0.0.1', port: 0 })
}

for (const engine of testEngines()) {
  describe(`${engine}: /healthcheck`, () => {
    it('answers GET with OK as text/plain, HEAD with 204 and OPTIONS like GET, over HTTP', async (t) => {
      const { app } = await buildTestApp(t, { engine })
      const base = await listening(app)
      const get = await fetch(`${base}/healthcheck`)
      assert.deepEqual([get.status, get.headers.get('content-type'), await get.text()], [200, TEXT, 'OK'])
      const head = await fetch(`${base}/healthcheck`, { method: 'HEAD' })
      assert.deepEqual([head.status, head.headers.get('content-type'), await head.text()], [204, null, ''])
      const options = await fetch(`${base}/healthcheck`, { method: 'OPTIONS' })
      assert.deepEqual([options.status, options.headers.get('content-type'), await options.text()], [200, TEXT, 'OK'])
      assert.equal(options.headers.get('allow'), 'GET, HEAD, OPTIONS')
      const post = await fetch(`${base}/healthcheck`, { method: 'POST' })
      assert.equal(post.status, 405)
      const healthz = await fetch(`${base}/healthz`)
      assert.deepEqual([healthz.status, await healthz.json()], [200, { status: 'ok' }])
    })

    it('answers JSON, HTML or text as the Accept header asks, with webob\'s preferences', async (t) => {
      const { app } = await buildTestApp(t, { engine })
      const cases: Array<[string, string, string]> = [
        ['application/json', 'application/json', JSON_OK],
        ['text/html', HTML, HTML_OK],
        ['text/plain', TEXT, 'OK'],
        ['*/*', TEXT, 'OK'],
        ['text/*', TEXT, 'OK'],
        ['image/png', TEXT, 'OK'],
        ['text/html;q=0.5, application/json', 'application/json', JSON_OK],
        ['application/json;q=0.9, text/html;q=0.9', HTML, HTML_OK],
        ['text/plain;q=0, */*;q=0.5', HTML, HTML_OK],
        ['*/*;q=0.1, application/*', 'application/json', JSON_OK],
        // Of equally specific ranges, the first counts.
        ['text/html;q=0.1, text/html, text/plain;q=0.5', TEXT, 'OK'],
        // A range with a media type parameter matches none of oslo's offers.
        ['application/json; charset=utf-8', TEXT, 'OK'],
        // Not an Accept header webob can parse: text/plain, never a 406.
        ['application/json;q=2', TEXT, 'OK'],
        ['json', TEXT, 'OK'],
      ]
      for (const [accept, type, body] of cases) {
        const res = await health(app, 'GET', accept)
        assert.deepEqual([res.status, res.type, res.body], [200, type, body], accept)
      }
    })

    it('answers 503 DISABLED BY FILE while the disable file exists, and 200 again once it is gone', async (t) => {
      const file = join(tempDir(t), 'healthcheck_disable')
      const { app } = await buildTestApp(t, { engine, env: { SCOPEKEEPER_HEALTHCHECK_DISABLE_BY_FILE_PATH: file } })
      assert.equal((await health(app)).status, 200)
      writeFileSync(file, '')
      const disabled = await health(app)
      assert.deepEqual([disabled.status, disabled.type, disabled.body], [503, TEXT, 'DISABLED BY FILE'])
      assert.equal((await health(app, 'GET', 'application/json')).body, '{\n    "detailed": false,\n    "reasons": [\n        "DISABLED BY FILE"\n    ]\n}')
      assert.equal((await health(app, 'GET', 'text/html')).body, HTML_OK.replace('<TD>OK</TD>', '<TD>DISABLED BY FILE</TD>'))
      const head = await health(app, 'HEAD')
      assert.deepEqual([head.status, head.type, head.headers['content-length'], head.body], [503, TEXT, '0', ''])
      assert.equal((await health(app, 'OPTIONS')).status, 503)
      const healthz = await app.inject({ method: 'GET', url: '/healthz' })
      assert.equal(healthz.statusCode, 503)
      assert.equal(typeof healthz.json().message, 'string')
      rmSync(file)
      assert.deepEqual([(await health(app)).status, (await health(app, 'HEAD')).status], [200, 204])
      assert.equal((await app.inject({ method: 'GET', url: '/healthz' })).statusCode, 200)
    })

    it('answers 503 naming the database, not its URL or the driver\'s words, while it does not answer', async (t) => {
      const url = await freshDatabaseUrl(t, engine, tempDir(t))
      if (url === undefined) return
      let target = url
      let proxy: Awaited<ReturnType<typeof startTcpProxy>> | undefined
      if (engine !== 'sqlite') {
        const direct = new URL(url)
        proxy = await startTcpProxy(t, direct.hostname, Number(direct.port || (engine === 'postgres' ? 5432 : 3306)))
        const proxied = new URL(url)
        proxied.hostname = '127.0.0.1'
        proxied.port = String(proxy.port)
        target = proxied.toString()
      }
      const { app, database } = await buildTestApp(t, { engine, env: { ...BOUNDS, SCOPEKEEPER_DATABASE_URL: target } })
      const detailed = await buildTestApp(t, { engine, env: { ...BOUNDS, SCOPEKEEPER_DATABASE_URL: target, SCOPEKEEPER_HEALTHCHECK_DETAILED: 'true' } })
      assert.equal((await health(app)).status, 200)
      if (proxy === undefined) {
        await database.close()
        await detailed.database.close()
      } else {
        await proxy.cut()
      }

      const text = await health(app)
      assert.deepEqual([text.status, text.body], [503, 'OK\nDATABASE UNAVAILABLE'])
      const json = await health(app, 'GET', 'application/json')
      assert.deepEqual([json.status, JSON.parse(json.body)], [503, { detailed: false, reasons: ['OK', 'DATABASE UNAVAILABLE'] }])
      const html = await health(app, 'GET', 'text/html')
      assert.match(html.body, /<H2>Result of 2 checks:<\/H2>[^]*<TD>OK<\/TD>[^]*<TD>DATABASE UNAVAILABLE<\/TD>/)
      assert.equal((await health(app, 'HEAD')).status, 503)
      const healthz = await app.inject({ method: 'GET', url: '/healthz' })
      assert.deepEqual([healthz.statusCode, healthz.json().message], [503, 'The database does not answer.'])
      assert.ok(Number(healthz.headers['retry-after']) > 0)
      for (const body of [text.body, json.body, html.body, healthz.body, (await health(detailed.app, 'GET', 'application/json')).body]) {
        for (const secret of [target, new URL(target).host, new URL(target).pathname.slice(1), 'ECONNREFUSED', 'destroyed', 'Error']) {
          assert.ok(secret === '' || !body.includes(secret), `${JSON.stringify(secret)} in ${body}`)
        }
      }

      if (proxy === undefined) return
      await proxy.restore()
      await waitFor(async () => (await health(app)).status === 200, 10_000, 'health to come back')
      assert.equal((await health(app, 'HEAD')).status, 204)
    })
  })
}

describe('/healthcheck', () => {
  it('needs no token under Keystone auth, like /healthz and OPTIONS', async (t) => {
    // Nothing here reaches Keystone: a request without a token is refused before.
    const { app } = await buildTestApp(t, {
      env: {
        SCOPEKEEPER_DEFAULT_AUTH_STRATEGY: 'keystone',
        SCOPEKEEPER_KEYSTONE_AUTHTOKEN_AUTH_URL: 'http://127.0.0.1:9/v3',
        SCOPEKEEPER_KEYSTONE_AUTHTOKEN_USERNAME: 'cloudkitty',
        SCOPEKEEPER_KEYSTONE_AUTHTOKEN_PASSWORD: 'secret',
        SCOPEKEEPER_KEYSTONE_AUTHTOKEN_PROJECT_NAME: 'service',
      },
    })
    assert.equal((await app.inject({ method: 'GET', url: '/v2/scope' })).statusCode, 401)
    assert.deepEqual([(await health(app)).status, (await health(app, 'HEAD')).status, (await health(app, 'OPTIONS')).status], [200, 204, 200])
    assert.equal((await app.inject({ method: 'GET', url: '/healthz' })).statusCode, 200)
    assert.equal((await app.inject({ method: 'OPTIONS', url: '/v2/scope' })).statusCode, 200)
  })

  it('gives each check\'s kind, reason and details in detailed mode, and nothing about the host', async (t) => {
    const file = join(tempDir(t), 'healthcheck_disable')
    const { app } = await buildTestApp(t, { env: { SCOPEKEEPER_HEALTHCHECK_DISABLE_BY_FILE_PATH: file, SCOPEKEEPER_HEALTHCHECK_DETAILED: 'true' } })
    const json = await health(app, 'GET', 'application/json')
    assert.equal(json.body, '{\n    "detailed": true,\n    "reasons": [\n        {\n            "class": "HealthcheckResult",\n' +
      `            "details": "Path '${file}' was not found",\n            "reason": "OK"\n        }\n    ]\n}`)
    writeFileSync(file, '')
    const html = await health(app, 'GET', 'text/html')
    assert.equal(html.status, 503)
    assert.equal(html.body, '<HTML>\n<HEAD><TITLE>Healthcheck Status</TITLE></HEAD>\n<BODY>\n\n<H2>Result of 1 checks:</H2>\n' +
      '<TABLE bgcolor="#ffffff" border="1">\n<TBODY>\n<TR>\n<TH>\nKind\n</TH>\n<TH>\nReason\n</TH>\n<TH>\nDetails\n</TH>\n\n</TR>\n' +
      `<TR>\n<TD>HealthcheckResult</TD>\n    <TD>DISABLED BY FILE</TD>\n<TD>Path &#39;${file}&#39; was found</TD>\n</TR>\n` +
      '</TBODY>\n</TABLE>\n<HR></HR>\n\n\n</BODY>\n</HTML>')
    assert.equal((await health(app)).body, 'DISABLED BY FILE')
    for (const body of [json.body, html.body]) {
      for (const internal of [hostname(), process.version, process.platform, String(process.pid)]) assert.ok(!body.includes(internal), internal)
    }
  })

  it('escapes a disable file path outside ASCII as Python\'s json.dumps does', async (t) => {
    const file = join(tempDir(t), 'désactivé "now"')
    const { app } = await buildTestApp(t, { env: { SCOPEKEEPER_HEALTHCHECK_DISABLE_BY_FILE_PATH: file, SCOPEKEEPER_HEALTHCHECK_DETAILED: 'true' } })
    const { body } = await health(app, 'GET', 'application/json')
    assert.ok(body.includes('d\\u00e9sactiv\\u00e9 \\"now\\"'), body)
    assert.equal(JSON.parse(body).reasons[0].details, `Path '${file}' was not found`)
  })

  it('shares one database ping among overlapping checks, and pings afresh after', async (t) => {
    const { database } = await buildTestApp(t)
    let pings = 0
    const checks = new HealthChecks({ ping: async () => { pings++; await database.ping() } }, '')
    const answers = await Promise.all(Array.from({ length: 50 }, async () => await checks.run()))
    assert.equal(pings, 1)
    assert.ok(answers.every((a) => a === answers[0] && a.isHealthy))
    await checks.run()
    assert.equal(pings, 2)
    await database.close()
    assert.equal((await checks.run()).isHealthy, false)
  })

  it('answers as oslo.middleware\'s own Healthcheck for any Accept header, method and disable file', async (t) => {
    if (!requireOsloMiddleware(t)) return
    const oslo = startOsloScript(t, 'oslo-healthcheck.py')
    const file = join(tempDir(t), 'healthcheck_disable')
    const unset = (await buildTestApp(t)).app
    const set = (await buildTestApp(t, { env: { SCOPEKEEPER_HEALTHCHECK_DISABLE_BY_FILE_PATH: file } })).app
    const ows = fc.constantFrom('', ' ', '\t', '  ')
    const range = fc.oneof(
      { weight: 3, arbitrary: fc.constantFrom('text/plain', 'text/html', 'application/json', '*/*') },
      { weight: 2, arbitrary: fc.constantFrom('TEXT/HTML', 'Application/Json', 'text/*', 'application/*', '*/html', 'image/png', 'text/plain+xml', 'text', '*') },
    )
    const parameter = fc.oneof(
      fc.constantFrom('q=0', 'q=0.', 'q=0.5', 'Q=0.25', 'q=1', 'q=1.000', 'q=0.001', 'q=0.0001', 'q=1.5', 'q=x', 'q='),
      fc.constantFrom('charset=utf-8', 'level=1', 'foo="a,b;c"', 'foo="\\"q\\""', 'bare', 'x=', '=y'),
    )
    const element = fc.tuple(range, fc.array(fc.tuple(ows, ows, parameter), { maxLength: 3 }))
      .map(([r, ps]) => r + ps.map(([a, b, p]) => `${a};${b}${p}`).join(''))
    const header = fc.oneof(
      { weight: 8, arbitrary: fc.tuple(fc.array(element, { minLength: 0, maxLength: 4 }), fc.constantFrom(',', ', ', ' ,', ',,', ' , ')).map(([es, sep]) => es.join(sep)) },
      { weight: 1, arbitrary: fc.string({ unit: fc.constantFrom(...'ab/*;=,." \t\\qQ0.15') as fc.Arbitrary<string>, maxLength: 30 }) },
    )
    await fc.assert(fc.asyncProperty(
      fc.option(header, { nil: undefined }), fc.constantFrom('GET', 'HEAD', 'OPTIONS'), fc.constantFrom('unset', 'absent', 'present'),
      async (accept, method, disable) => {
        if (disable === 'present') writeFileSync(file, '')
        else rmSync(file, { force: true })
        const ours = await health(disable === 'unset' ? unset : set, method as 'GET', accept)
        const theirs = await oslo({ method, accept: accept ?? null, disable_by_file_path: disable === 'unset' ? null : file })
        assert.deepEqual({ status: ours.status, content_type: ours.type ?? null, body: ours.body }, theirs, JSON.stringify({ accept, method, disable }))
      },
    ), { numRuns: 500 })
  })
})
