import assert from 'node:assert/strict'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { after, before, describe, it, type TestContext } from 'node:test'
import fc from 'fast-check'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { pino } from 'pino'
import { buildApp } from '../../src/app.ts'
import { loadConfig } from '../../src/config/load-config.ts'
import { openDatabaseFromConfig } from '../../src/server.ts'
import { migrateToLatest } from '../../src/storage/migrate.ts'
import { tempDir } from '../helpers/build-test-app.ts'
import { deferCleanup } from '../helpers/cleanup.ts'
import { keystoneSkipReason, startKeystone, type KeystoneServer } from '../helpers/keystone-server.ts'
import { waitFor } from '../helpers/server-process.ts'

/** The app on a fresh SQLite file, logging at info through a real pino logger into `lines`. */
async function loggingApp (t: TestContext, env: Record<string, string> = {}) {
  const lines: string[] = []
  const stream = new Writable({
    write (chunk: Buffer, _encoding, done) { lines.push(...chunk.toString('utf8').split('\n').filter((l) => l !== '')); done() },
  })
  const config = loadConfig({ env: { SCOPEKEEPER_DEFAULT_AUTH_STRATEGY: 'noauth', ...env, SCOPEKEEPER_DATABASE_URL: `sqlite:///${join(tempDir(t), 'log.sqlite')}` } })
  const logger = pino({ level: 'info' }, stream)
  const database = openDatabaseFromConfig(config, logger)
  await migrateToLatest(database)
  const app = await buildApp(config, { database, logger })
  deferCleanup(t, async () => { await app.close(); await database.close() })
  /** The request line of `res`, as written (its text and its fields). */
  const lineOf = async (res: LightMyRequestResponse): Promise<{ text: string, fields: Record<string, unknown> }> => {
    const id = String(res.headers['x-openstack-request-id'])
    const find = () => lines.find((l) => l.includes(id) && l.includes('"msg":"request"'))
    await waitFor(async () => find() !== undefined, 5000, `the log line of ${id}`)
    const text = find()!
    return { text, fields: JSON.parse(text) }
  }
  return { app, lines, lineOf }
}

async function send (app: FastifyInstance, url: string, headers: Record<string, string> = {}, method: 'GET' | 'PUT' = 'GET') {
  return await app.inject({ method, url, headers })
}

describe('the request log line', () => {
  it('gives method, path, query, status, ms, client and request id, once per request', async (t) => {
    const { app, lines, lineOf } = await loggingApp(t)
    const res = await send(app, '/v2/scope?scope_id=a,b&limit=2')
    const { fields } = await lineOf(res)
    assert.deepEqual({ ...fields, time: undefined, pid: undefined, hostname: undefined, ms: undefined }, {
      level: 30, time: undefined, pid: undefined, hostname: undefined, ms: undefined, msg: 'request',
      request_id: res.headers['x-openstack-request-id'], method: 'GET', path: '/v2/scope', query: 'scope_id=a,b&limit=2', status: 404,
      client: '127.0.0.1', user_id: null, project_id: null,
    })
    assert.equal(typeof fields.ms, 'number')
    assert.equal(lines.filter((l) => l.includes(String(res.headers['x-openstack-request-id']))).length, 1)
  })

  it('masks the value of every query parameter the route does not declare, a token above all', async (t) => {
    const { app, lineOf } = await loggingApp(t)
    const cases: Array<[string, string]> = [
      ['/v2/scope?X-Auth-Token=gAAAAsecret&limit=1', 'X-Auth-Token=***&limit=1'],
      ['/v2/scope?token=gAAAAsecret', 'token=***'],
      ['/v2/scope?scope%5Fid=a&scope_ids=gAAAAsecret', 'scope%5Fid=a&scope_ids=***'],
      ['/v2/scope/resets?status=done&offset=gAAAAsecret', 'status=done&offset=gAAAAsecret'],
      ['/v2/scope/resets?scope_key=gAAAAsecret', 'scope_key=***'],
      ['/healthcheck?limit=gAAAAsecret', 'limit=***'],
      ['/nowhere?scope_id=gAAAAsecret', 'scope_id=***'],
      ['/v2/scope?gAAAAsecret', '***'],
      ['/v2/scope?gAAAA%3Dsecret=1', '***=***'],
      ['/v2/scope?limit=1&&', 'limit=1&&'],
      ['/v2/scope?', ''],
      ['/v2/scope', ''],
    ]
    for (const [url, query] of cases) {
      const { text, fields } = await lineOf(await send(app, url))
      assert.equal(fields.query, query, url)
      // offset is declared on /v2/scope/resets: its value is kept, even when it is not a number.
      if (!query.includes('gAAAAsecret')) assert.ok(!text.includes('secret'), text)
    }
  })

  it('never shows the value of an undeclared query parameter, whatever the query string', async (t) => {
    const { app, lineOf } = await loggingApp(t)
    const routes: Record<string, string[]> = {
      '/v2/scope': ['scope_id', 'scope_key', 'fetcher', 'collector', 'active', 'limit', 'offset', 'marker'],
      '/v2/scope/resets': ['status', 'scope_id', 'limit', 'offset'],
      '/v2/scope/resets/1': [],
      '/healthcheck': [],
      '/': [],
      '/nowhere': [],
    }
    const text = fc.string({ unit: 'grapheme', maxLength: 12 })
    // What must never show: every undeclared value carries this marker.
    const secret = text.map((s) => `SEKRIT${s}`)
    const undeclaredName = fc.oneof(fc.constantFrom('token', 'X-Auth-Token', 'x-auth-token', 'password', 'Limit', 'scope_id[]', ''),
      fc.string({ unit: fc.constantFrom(...'abcxyz_-.%+=[]'), maxLength: 8 }))
    // As on the wire: the client escapes what encodeURIComponent leaves (' ! ( ) *).
    const encode = (s: string) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
    const route = fc.constantFrom(...Object.keys(routes)).chain((path) => {
      const declared = routes[path]
      const kept = declared.length === 0 ? [] : [fc.tuple(fc.constantFrom(...declared), text).map(([name, value]) => ({ part: `${name}=${encode(value)}`, isSecret: false }))]
      const masked = fc.tuple(undeclaredName, secret, fc.boolean())
        // An encoded declared name is that name to Fastify, so declared.
        .filter(([name]) => !declared.includes(name))
        .map(([name, value, bare]) => ({ part: bare ? encode(value) : `${encode(name)}=${encode(value)}`, isSecret: true }))
      return fc.tuple(fc.constant(path), fc.array(fc.oneof(...kept, masked), { maxLength: 5 }))
    })
    await fc.assert(fc.asyncProperty(route, async ([path, parameters]) => {
      const url = parameters.length === 0 ? path : `${path}?${parameters.map((p) => p.part).join('&')}`
      const { text: line, fields } = await lineOf(await send(app, url))
      assert.ok(!line.includes('SEKRIT'), `${url}\n${line}`)
      const logged = String(fields.query).split('&')
      for (const { part } of parameters.filter((p) => !p.isSecret)) assert.ok(logged.includes(part), `${part} kept in ${String(fields.query)}`)
    }), { numRuns: 300 })
  })

  it("carries the caller's well-formed X-OpenStack-Request-ID as global_request_id, and drops others as oslo does", async (t) => {
    const { app, lineOf } = await loggingApp(t)
    const good = 'req-0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0'
    assert.equal((await lineOf(await send(app, '/', { 'x-openstack-request-id': good }))).fields.global_request_id, good)
    for (const bad of [good.toUpperCase().replace('REQ', 'req'), `${good} `, `${good}0`, good.slice(4), 'req-nonsense', `${good}, ${good}`]) {
      const { fields } = await lineOf(await send(app, '/', { 'x-openstack-request-id': bad }))
      assert.equal('global_request_id' in fields, false, bad)
    }
  })

  it("gives the proxy's first client when proxy headers are trusted, the socket's peer otherwise", async (t) => {
    const headers = { 'x-forwarded-for': '192.0.2.60, 10.0.0.1' }
    const plain = await loggingApp(t)
    assert.equal((await plain.lineOf(await send(plain.app, '/', headers))).fields.client, '127.0.0.1')
    const trusting = await loggingApp(t, { SCOPEKEEPER_OSLO_MIDDLEWARE_ENABLE_PROXY_HEADERS_PARSING: 'true' })
    assert.equal((await trusting.lineOf(await send(trusting.app, '/', headers))).fields.client, '192.0.2.60')
    assert.equal((await trusting.lineOf(await send(trusting.app, '/', { ...headers, forwarded: 'for="[2001:db8::17]:4711"' }))).fields.client, '2001:db8::17')
    // Over a real socket, the peer is the socket's.
    const base = await plain.app.listen({ host: '127.0.0.1', port: 0 })
    const res = await fetch(`${base}/healthcheck`)
    const id = String(res.headers.get('x-openstack-request-id'))
    await waitFor(async () => plain.lines.some((l) => l.includes(id)), 5000, 'the line of a socket request')
    assert.equal(JSON.parse(plain.lines.find((l) => l.includes(id))!).client, '127.0.0.1')
  })
})

const skip = keystoneSkipReason()

describe('the request log line under Keystone', { skip }, () => {
  let keystone: KeystoneServer
  before(async () => { keystone = await startKeystone() })
  after(async () => { await keystone?.stop() })

  it('names the user and project of a validated token, and nobody before authentication', async (t) => {
    const { app, lineOf } = await loggingApp(t, keystone.authEnv())
    const token = await keystone.token(keystone.member)
    const admin = await keystone.token(keystone.admin)
    const { users } = await (await keystone.api('GET', `/users?name=${keystone.member.name}`, { token: admin })).json() as { users: Array<{ id: string }> }
    const { fields } = await lineOf(await send(app, `/v2/scope?X-Auth-Token=${token}`, { 'x-auth-token': token }))
    assert.deepEqual([fields.user_id, fields.project_id], [users[0].id, await keystone.projectId(keystone.member.project)])
    assert.equal(fields.query, 'X-Auth-Token=***')
    const refused = await lineOf(await send(app, '/v2/scope'))
    assert.deepEqual([refused.fields.status, 'user_id' in refused.fields, 'project_id' in refused.fields], [401, false, false])
  })
})
