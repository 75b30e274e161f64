// Keystone authentication and oslo.policy authorization against a real
// Keystone 22 (test/helpers/keystone-server.ts), started once for this file.
// Without Keystone installed these tests are skipped, loudly; under CI=true
// they fail instead.
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { createServer, type Socket } from 'node:net'
import { join } from 'node:path'
import { after, before, describe, it, type TestContext } from 'node:test'
import type { FastifyInstance } from 'fastify'
import fc from 'fast-check'
import { KeystoneAuth, type KeystoneAuthOptions } from '../../src/auth/keystone-auth.ts'
import { PolicyEnforcer } from '../../src/auth/policy/policy-enforcer.ts'
import type { ScopeKeeperError } from '../../src/domain/errors.ts'
import { buildTestApp, tempDir } from '../helpers/build-test-app.ts'
import { keystoneSkipReason, startKeystone, waitPastSecond, type KeystoneServer } from '../helpers/keystone-server.ts'
import { waitFor } from '../helpers/server-process.ts'

const FORBIDDEN = 'You are not authorized to perform this action'
const TS = '2024-01-01T00:00:00Z'

/** The four verbs, each as a request that succeeds for an admin on scope `id`. */
function verbs (id: string): Array<{ method: 'GET' | 'PUT' | 'PATCH' | 'POST', url: string, body?: unknown, ok: number }> {
  return [
    { method: 'POST', url: '/v2/scope', body: { scope_id: id, last_processed_timestamp: TS }, ok: 200 },
    { method: 'GET', url: `/v2/scope?scope_id=${id}`, ok: 200 },
    { method: 'PATCH', url: '/v2/scope', body: { scope_id: id, active: false }, ok: 200 },
    { method: 'PUT', url: '/v2/scope', body: { scope_id: id, state: TS }, ok: 202 },
  ]
}

async function send (app: FastifyInstance, method: string, url: string, { token, body, headers = {} }: { token?: string, body?: unknown, headers?: Record<string, string> } = {}) {
  const res = await app.inject({
    method: method as 'GET',
    url,
    headers: {
      ...(token === undefined ? {} : { 'x-auth-token': token }),
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...headers,
    },
    ...(body === undefined ? {} : { payload: JSON.stringify(body) }),
  })
  let json: any
  try { json = res.json() } catch { json = undefined }
  return { status: res.statusCode, body: json, headers: res.headers }
}

const skip = keystoneSkipReason()

describe('Keystone authentication and policy, against a real Keystone', { skip }, () => {
  let keystone: KeystoneServer

  before(async () => {
    keystone = await startKeystone()
    process.stdout.write(`# Keystone started in ${keystone.startSeconds.toFixed(1)} s\n`)
  })
  after(async () => { await keystone?.stop() })

  async function keystoneApp (t: TestContext, env: Record<string, string> = {}) {
    return (await buildTestApp(t, { env: { ...keystone.authEnv(), ...env } })).app
  }

  function policyFile (t: TestContext, text: string): string {
    const file = join(tempDir(t), 'policy.yaml')
    writeFileSync(file, text)
    return file
  }

  /** A KeystoneAuth on this Keystone, with a spy on its requests and a clock the test moves. */
  function directAuth (options: Partial<KeystoneAuthOptions> = {}, { dropFirstConnection = false } = {}) {
    const calls: Array<{ method: string, url: string, headers: Record<string, string> }> = []
    let drop = dropFirstConnection
    const clock = { offsetMs: 0 }
    const logged: string[] = []
    const log = (msg: string) => (_obj: unknown, message?: string) => { logged.push(`${msg}: ${message ?? ''}`) }
    const enforcer = new PolicyEnforcer()
    const auth = new KeystoneAuth({
      wwwAuthenticateUri: `${keystone.url}/v3`,
      authUrl: `${keystone.url}/v3`,
      username: keystone.service.name,
      password: keystone.service.password,
      projectName: keystone.service.project,
      userDomainName: 'Default',
      projectDomainName: 'Default',
      userDomainId: '',
      projectDomainId: '',
      regionName: 'RegionOne',
      interface: 'internal',
      serviceTokenRoles: ['service'],
      serviceTokenRolesRequired: false,
      tokenCacheMs: 300_000,
      tokenCacheSize: 100,
      negativeCacheMs: 10_000,
      requestTimeoutMs: 10_000,
      ...options,
    }, {
      logger: { warn: log('warn'), error: log('error'), info: log('info') } as any,
      isAdmin: (c) => enforcer.isAdmin(c),
      clock: () => Date.now() + clock.offsetMs,
      fetch: async (input, init) => {
        calls.push({ method: init?.method ?? 'GET', url: String(input), headers: { ...(init?.headers as Record<string, string>) } })
        if (drop) {
          // What undici throws when the server closed a kept-alive connection under it.
          drop = false
          throw new TypeError('fetch failed', { cause: Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET' }) })
        }
        return await fetch(input, init)
      },
    })
    const validations = () => calls.filter((c) => c.method === 'GET').length
    const ownTokens = () => calls.filter((c) => c.method === 'POST').length
    return { auth, calls, clock, logged, validations, ownTokens }
  }

  it('answers an admin token on all four verbs', async (t) => {
    const app = await keystoneApp(t)
    const token = await keystone.token(keystone.admin)
    for (const { method, url, body, ok } of verbs('ks-admin')) {
      const res = await send(app, method, url, { token, body })
      assert.equal(res.status, ok, `${method}: ${JSON.stringify(res.body)}`)
    }
  })

  it('authenticates its service user by user_domain_id and project_domain_id, which win over the domain names', async (t) => {
    const app = await keystoneApp(t, {
      SCOPEKEEPER_KEYSTONE_AUTHTOKEN_USER_DOMAIN_ID: 'default',
      SCOPEKEEPER_KEYSTONE_AUTHTOKEN_PROJECT_DOMAIN_ID: 'default',
      // Names Keystone does not know: only the ids can make this work.
      SCOPEKEEPER_KEYSTONE_AUTHTOKEN_USER_DOMAIN_NAME: 'NoSuchDomain',
      SCOPEKEEPER_KEYSTONE_AUTHTOKEN_PROJECT_DOMAIN_NAME: 'NoSuchDomain',
    })
    const res = await send(app, 'GET', '/v2/scope', { token: await keystone.token(keystone.admin) })
    assert.equal(res.status, 404, JSON.stringify(res.body))
    const { auth, logged } = directAuth({ userDomainId: 'nosuchdomain', projectDomainId: 'default' })
    await assert.rejects(auth.authenticate({ 'x-auth-token': await keystone.token(keystone.admin) }), (e: ScopeKeeperError) => e.code === 'IDENTITY_UNAVAILABLE')
    assert.ok(logged.some((l) => /refused scopekeeper's service credentials .*username scopekeeper in domain id nosuchdomain, password, project_name service in domain id default/.test(l)), logged.join('\n'))
  })

  it("serves with nothing but kolla-ansible's [keystone_authtoken]: domain ids, no domain names, memcache settings ignored", async (t) => {
    const conf = join(tempDir(t), 'cloudkitty.conf')
    writeFileSync(conf, [
      '[keystone_authtoken]',
      'service_type = rating',
      `www_authenticate_uri = ${keystone.url}`,
      `auth_url = ${keystone.url}`,
      'auth_type = password',
      'project_domain_id = default',
      'user_domain_id = default',
      'project_name = service',
      `username = ${keystone.service.name}`,
      `password = ${keystone.service.password}`,
      'region_name = RegionOne',
      'cafile = ',
      '',
      'memcache_security_strategy = ENCRYPT',
      'memcache_secret_key = s3cr#t;key',
      'memcached_servers = 127.0.0.1:1,127.0.0.1:2',
      '',
    ].join('\n'))
    // Only the file: none of keystone.authEnv(). (The test helper asks for
    // noauth unless told, so auth_strategy comes from the environment.)
    const { app } = await buildTestApp(t, { env: { SCOPEKEEPER_CONFIG: conf, SCOPEKEEPER_DEFAULT_AUTH_STRATEGY: 'keystone' } })
    assert.equal((await send(app, 'GET', '/v2/scope')).status, 401)
    assert.equal((await send(app, 'POST', '/v2/scope', { token: await keystone.token(keystone.admin), body: { scope_id: 'ks-kolla' } })).status, 200)
    assert.equal((await send(app, 'GET', '/v2/scope?scope_id=ks-kolla', { token: await keystone.token(keystone.member) })).status, 403)
  })

  it('forbids a member token on all four verbs (403)', async (t) => {
    const app = await keystoneApp(t)
    const admin = await keystone.token(keystone.admin)
    assert.equal((await send(app, 'POST', '/v2/scope', { token: admin, body: { scope_id: 'ks-member' } })).status, 200)
    const member = await keystone.token(keystone.member)
    for (const { method, url, body } of verbs('ks-member')) {
      const res = await send(app, method, url, { token: member, body: method === 'POST' ? { scope_id: 'ks-member-2' } : body })
      assert.equal(res.status, 403, method)
      assert.deepEqual(res.body, { message: FORBIDDEN })
      assert.match(String(res.headers['x-openstack-request-id']), /^req-/)
    }
  })

  it('answers 401 with WWW-Authenticate without a token, and serves discovery and health without one', async (t) => {
    const app = await keystoneApp(t)
    for (const { method, url, body } of [...verbs('ks-anon'), { method: 'GET' as const, url: '/v2/scope/resets' }, { method: 'GET' as const, url: '/v2/nowhere' }]) {
      const res = await send(app, method, url, { body })
      assert.equal(res.status, 401, `${method} ${url}`)
      assert.deepEqual(res.body, { message: 'The request you have made requires authentication.' })
      assert.equal(res.headers['www-authenticate'], `Keystone uri="${keystone.url}/v3"`)
    }
    assert.equal((await send(app, 'GET', '/v2/scope', { token: '' })).status, 401)
    assert.equal((await send(app, 'GET', '/')).status, 200)
    assert.equal((await send(app, 'GET', '/healthz')).status, 200)
    assert.equal((await send(app, 'GET', '/v2/openapi.json')).status, 200)
  })

  it('answers 401 to garbage tokens, however long or odd, never a 5xx', async (t) => {
    const app = await keystoneApp(t)
    const admin = await keystone.token(keystone.admin)
    const garbage = ['garbage', 'gAAAAAB' + 'x'.repeat(170), admin.slice(0, -4) + 'AAAA', 'a'.repeat(6000), 'tok\u00e9n', 'two words', `${admin}, ${admin}`]
    for (const token of garbage) {
      const res = await send(app, 'GET', '/v2/scope', { token })
      assert.equal(res.status, 401, `${token.slice(0, 20)}…: ${JSON.stringify(res.body)}`)
      assert.equal(res.headers['www-authenticate'], `Keystone uri="${keystone.url}/v3"`)
    }
  })

  it('answers 401, never a 5xx, to any token Keystone did not issue', async (t) => {
    const app = await keystoneApp(t)
    const headerSafe = fc.string({ unit: fc.integer({ min: 0x20, max: 0xff }).filter((c) => c !== 0x7f).map((c) => String.fromCharCode(c)), minLength: 1, maxLength: 300 })
      .filter((s) => s.trim() !== '')
    // Tokens that look like Fernet ones get past our own checks and reach Keystone.
    const base64url = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_='
    const fernetLike = fc.string({ unit: fc.constantFrom(...base64url), minLength: 0, maxLength: 250 }).map((s) => `gAAAAAB${s}`)
    await fc.assert(fc.asyncProperty(fc.oneof(headerSafe, fernetLike), fc.constantFrom('GET', 'PUT', 'PATCH', 'POST'), async (token, method) => {
      const res = await send(app, method, '/v2/scope', { token, body: method === 'GET' ? undefined : { scope_id: 'x', state: TS } })
      assert.equal(res.status, 401, `${JSON.stringify(token)}: ${res.status} ${JSON.stringify(res.body)}`)
    }), { numRuns: 100 })
  })

  it('answers 401 to a revoked token once token_cache_time has passed', async (t) => {
    const app = await keystoneApp(t, { SCOPEKEEPER_KEYSTONE_AUTHTOKEN_TOKEN_CACHE_TIME: '2' })
    const token = await keystone.token(keystone.admin)
    await send(app, 'POST', '/v2/scope', { token, body: { scope_id: 'ks-revoked' } })
    assert.equal((await send(app, 'GET', '/v2/scope', { token })).status, 200)
    await keystone.revoke(token)
    await waitFor(async () => (await send(app, 'GET', '/v2/scope', { token })).status === 401, 15_000, 'the revoked token to be refused')
    const res = await send(app, 'GET', '/v2/scope', { token })
    assert.equal(res.status, 401)
    assert.equal(res.headers['www-authenticate'], `Keystone uri="${keystone.url}/v3"`)
    // Another token of the same user still works.
    assert.equal((await send(app, 'GET', '/v2/scope', { token: await keystone.token(keystone.admin) })).status, 200)
  })

  it('lets a policy file grant scope:get_state to role:member: GET 200, PUT still 403', async (t) => {
    const app = await keystoneApp(t, { SCOPEKEEPER_OSLO_POLICY_POLICY_FILE: policyFile(t, '"scope:get_state": "role:admin or role:member"\n') })
    const admin = await keystone.token(keystone.admin)
    assert.equal((await send(app, 'POST', '/v2/scope', { token: admin, body: { scope_id: 'ks-policy' } })).status, 200)
    const member = await keystone.token(keystone.member)
    const got = await send(app, 'GET', '/v2/scope?scope_id=ks-policy', { token: member })
    assert.equal(got.status, 200)
    assert.equal(got.body.results[0].scope_id, 'ks-policy')
    const put = await send(app, 'PUT', '/v2/scope', { token: member, body: { scope_id: 'ks-policy', state: TS } })
    assert.equal(put.status, 403)
    assert.deepEqual(put.body, { message: FORBIDDEN })
  })

  it("checks an owner rule against the caller's Keystone project", async (t) => {
    const app = await keystoneApp(t, { SCOPEKEEPER_OSLO_POLICY_POLICY_FILE: policyFile(t, 'scope:get_state: rule:admin_or_owner\n') })
    const admin = await keystone.token(keystone.admin)
    const { projects } = await (await keystone.api('GET', '/projects?name=demo', { token: admin })).json() as { projects: Array<{ id: string }> }
    const demo = projects[0].id
    for (const id of [demo, 'someone-else']) await send(app, 'POST', '/v2/scope', { token: admin, body: { scope_id: id } })
    const member = await keystone.token(keystone.member)
    assert.equal((await send(app, 'GET', `/v2/scope?scope_id=${demo}`, { token: member })).status, 200)
    assert.equal((await send(app, 'GET', '/v2/scope?scope_id=someone-else', { token: member })).status, 403)
    assert.equal((await send(app, 'GET', `/v2/scope?scope_id=${demo},someone-else`, { token: member })).status, 403)
    assert.equal((await send(app, 'GET', '/v2/scope?scope_id=someone-else', { token: admin })).status, 200)
  })

  it('passes a service token with a service role to the policy as service_roles', async (t) => {
    const app = await keystoneApp(t, {
      SCOPEKEEPER_KEYSTONE_AUTHTOKEN_SERVICE_TOKEN_ROLES: 'admin',
      SCOPEKEEPER_OSLO_POLICY_POLICY_FILE: policyFile(t, '"scope:get_state": "role:admin or service_roles:admin"\n'),
    })
    const admin = await keystone.token(keystone.admin)
    await send(app, 'POST', '/v2/scope', { token: admin, body: { scope_id: 'ks-service' } })
    const member = await keystone.token(keystone.member)
    assert.equal((await send(app, 'GET', '/v2/scope', { token: member })).status, 403)
    assert.equal((await send(app, 'GET', '/v2/scope', { token: member, headers: { 'x-service-token': admin } })).status, 200)
    assert.equal((await send(app, 'GET', '/v2/scope', { token: member, headers: { 'x-service-token': 'garbage' } })).status, 401)
    const required = await keystoneApp(t, { SCOPEKEEPER_KEYSTONE_AUTHTOKEN_SERVICE_TOKEN_ROLES_REQUIRED: 'true' })
    assert.equal((await send(required, 'GET', '/v2/scope', { token: admin, headers: { 'x-service-token': member } })).status, 401)
  })

  it('shares one validation among concurrent requests and asks again about a refused token only after negative_cache_time', async () => {
    const { auth, clock, validations, ownTokens } = directAuth()
    const token = await keystone.token(keystone.admin)
    const results = await Promise.all(Array.from({ length: 20 }, () => auth.authenticate({ 'x-auth-token': token })))
    assert.ok(results.every((c) => c.roles.includes('admin') && c.isAdmin && c.projectId !== null))
    assert.equal(validations(), 1)
    assert.equal(ownTokens(), 1)
    await auth.authenticate({ 'x-auth-token': token })
    assert.equal(validations(), 1, 'served from the cache')
    for (let i = 0; i < 3; i++) await assert.rejects(auth.authenticate({ 'x-auth-token': 'garbage' }), (e: ScopeKeeperError) => e.code === 'UNAUTHENTICATED')
    assert.equal(validations(), 2, 'a refusal is cached')
    clock.offsetMs = 11_000
    await assert.rejects(auth.authenticate({ 'x-auth-token': 'garbage' }), (e: ScopeKeeperError) => e.code === 'UNAUTHENTICATED')
    assert.equal(validations(), 3)
  })

  it('never trusts a cached token past its expiry, whatever token_cache_time says', async () => {
    const { auth, clock, validations } = directAuth({ tokenCacheMs: 3_600_000 })
    const token = await keystone.token(keystone.admin)
    const body = await (await keystone.api('GET', '/auth/tokens?nocatalog', { token, headers: { 'x-subject-token': token } })).json() as { token: { expires_at: string } }
    await auth.authenticate({ 'x-auth-token': token })
    clock.offsetMs = Date.parse(body.token.expires_at) - Date.now() - 60_000
    await auth.authenticate({ 'x-auth-token': token })
    assert.equal(validations(), 1, 'still cached a minute before expiry')
    clock.offsetMs += 61_000
    await assert.rejects(auth.authenticate({ 'x-auth-token': token }), (e: ScopeKeeperError) => e.code === 'UNAUTHENTICATED')
  })

  it('renews its own token before it expires', async () => {
    const { auth, clock, ownTokens, calls } = directAuth({ tokenCacheMs: 0 })
    const token = await keystone.token(keystone.admin)
    await auth.authenticate({ 'x-auth-token': token })
    await auth.authenticate({ 'x-auth-token': token })
    assert.equal(ownTokens(), 1)
    const first = calls.at(-1)!.headers['x-auth-token']
    // Keystone's tokens live an hour; ours is renewed two minutes before.
    clock.offsetMs = 57 * 60_000
    await auth.authenticate({ 'x-auth-token': token })
    assert.equal(ownTokens(), 1)
    clock.offsetMs = 59 * 60_000
    await auth.authenticate({ 'x-auth-token': await keystone.token(keystone.admin) })
    assert.equal(ownTokens(), 2)
    assert.notEqual(calls.at(-1)!.headers['x-auth-token'], first)
  })

  it('renews its own token at once when Keystone revokes it', async () => {
    const { auth, ownTokens, calls, validations } = directAuth({ tokenCacheMs: 0 })
    await auth.authenticate({ 'x-auth-token': await keystone.token(keystone.admin) })
    const own = calls.find((c) => c.method === 'GET')!.headers['x-auth-token']
    await keystone.revoke(own)
    const credentials = await auth.authenticate({ 'x-auth-token': await keystone.token(keystone.member) })
    assert.ok(credentials.roles.includes('member') && !credentials.roles.includes('admin'), credentials.roles.join())
    assert.equal(credentials.isAdmin, false)
    assert.equal(ownTokens(), 2)
    assert.equal(validations(), 3, 'the refused validation was retried once')
  })

  it('tries once more when Keystone closed a kept-alive connection', async () => {
    const { auth, calls } = directAuth({}, { dropFirstConnection: true })
    const credentials = await auth.authenticate({ 'x-auth-token': await keystone.token(keystone.admin) })
    assert.ok(credentials.roles.includes('admin'))
    assert.equal(calls.length, 3, 'own token (dropped, then again), then the validation')
  })

  it('answers 503 when Keystone does not answer within http_connect_timeout', async (t) => {
    // A listener that accepts connections and never answers: a hung Keystone.
    const sockets: Socket[] = []
    const hung = createServer((socket) => { sockets.push(socket) })
    await new Promise<void>((resolve) => hung.listen(0, '127.0.0.1', resolve))
    t.after(() => { for (const s of sockets) s.destroy(); hung.close() })
    const url = `http://127.0.0.1:${(hung.address() as { port: number }).port}/v3`
    const { auth } = directAuth({ authUrl: url, requestTimeoutMs: 300 })
    await assert.rejects(auth.authenticate({ 'x-auth-token': await keystone.token(keystone.admin) }), (e: ScopeKeeperError) => e.code === 'IDENTITY_UNAVAILABLE')
    const app = await keystoneApp(t, { SCOPEKEEPER_KEYSTONE_AUTHTOKEN_AUTH_URL: url, SCOPEKEEPER_KEYSTONE_AUTHTOKEN_HTTP_CONNECT_TIMEOUT: '0.3' })
    const res = await send(app, 'GET', '/v2/scope', { token: await keystone.token(keystone.admin) })
    assert.equal(res.status, 503)
    assert.equal(res.body.message, 'The identity service (Keystone) is unavailable; try again later.')
  })

  it("answers 503 when Keystone refuses scopekeeper's own credentials, and says why in the log", async () => {
    const { auth, logged } = directAuth({ password: 'wrong' })
    await assert.rejects(auth.authenticate({ 'x-auth-token': await keystone.token(keystone.admin) }), (e: ScopeKeeperError) => e.code === 'IDENTITY_UNAVAILABLE')
    assert.ok(logged.some((l) => /refused scopekeeper's service credentials/.test(l)), logged.join('\n'))
  })

  it('answers 503 while Keystone is down, never letting a request through, and recovers when it returns', async (t) => {
    const app = await keystoneApp(t)
    const admin = await keystone.token(keystone.admin)
    assert.equal((await send(app, 'POST', '/v2/scope', { token: admin, body: { scope_id: 'ks-outage' } })).status, 200)
    const member = await keystone.token(keystone.member)
    const fresh = await keystone.token(keystone.admin)
    await keystone.stop({ keepFiles: true })
    for (const token of [member, fresh, 'garbage-while-down']) {
      for (const { method, url, body } of verbs('ks-outage')) {
        const res = await send(app, method, url, { token, body: method === 'POST' ? { scope_id: 'ks-outage-2' } : body })
        assert.equal(res.status, 503, `${method} ${JSON.stringify(res.body)}`)
        assert.equal(typeof res.body.message, 'string')
        assert.ok(Number(res.headers['retry-after']) > 0)
      }
    }
    assert.equal((await send(app, 'GET', '/v2/scope')).status, 401, 'no token needs no Keystone')
    await keystone.start()
    await waitPastSecond()
    assert.equal((await send(app, 'GET', '/v2/scope?scope_id=ks-outage', { token: fresh })).status, 200)
    assert.equal((await send(app, 'GET', '/v2/scope?scope_id=ks-outage', { token: member })).status, 403)
  })
})
