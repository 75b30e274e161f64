// scopekeeper against a real Keystone 22 served over HTTPS with a private CA
// made for this file (test/helpers/keystone-server.ts `tls`): one port that
// asks for no client certificate, one that requires one of the same CA.
// Without Keystone installed these tests are skipped, loudly; under CI=true
// they fail instead.
import assert from 'node:assert/strict'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, it, type TestContext } from 'node:test'
import { KeystoneAuth, keystoneAuthOptions } from '../../src/auth/keystone-auth.ts'
import { PolicyEnforcer } from '../../src/auth/policy/policy-enforcer.ts'
import { loadConfig } from '../../src/config/load-config.ts'
import type { ScopeKeeperError } from '../../src/domain/errors.ts'
import { buildTestApp, tempDir } from '../helpers/build-test-app.ts'
import { keystoneSkipReason, startKeystone, type KeystoneServer } from '../helpers/keystone-server.ts'

const skip = keystoneSkipReason()
const UNAVAILABLE = 'The identity service (Keystone) is unavailable; try again later.'

describe('Keystone over TLS with a private CA, against a real Keystone', { skip }, () => {
  let keystone: KeystoneServer

  before(async () => {
    keystone = await startKeystone({ tls: true })
    process.stdout.write(`# Keystone (TLS) started in ${keystone.startSeconds.toFixed(1)} s\n`)
  })
  after(async () => { await keystone?.stop() })

  const tls = () => keystone.tls!

  /** The environment that points scopekeeper at `url` (the plain TLS port by default), plus `env`. */
  function settings (env: Record<string, string>, url = keystone.url): Record<string, string> {
    return {
      ...keystone.authEnv(),
      SCOPEKEEPER_KEYSTONE_AUTHTOKEN_AUTH_URL: `${url}/v3`,
      SCOPEKEEPER_KEYSTONE_AUTHTOKEN_WWW_AUTHENTICATE_URI: `${url}/v3`,
      // No catalog match: validations go to auth_url too, so both requests use the port under test.
      SCOPEKEEPER_KEYSTONE_AUTHTOKEN_REGION_NAME: 'NoSuchRegion',
      ...env,
    }
  }

  /** GET /v2/scope with an admin token through the whole app: its status and message. */
  async function listAsAdmin (t: TestContext, env: Record<string, string>, url?: string): Promise<{ status: number, message?: string }> {
    const { app } = await buildTestApp(t, { env: settings(env, url) })
    const res = await app.inject({ method: 'GET', url: '/v2/scope', headers: { 'x-auth-token': await keystone.token(keystone.admin) } })
    return { status: res.statusCode, message: (res.json() as { message?: string }).message }
  }

  /** A KeystoneAuth built from `env` as the server builds it, with a logger that keeps what it is told. */
  function directAuth (env: Record<string, string>, url?: string) {
    const logged: string[] = []
    const log = (level: string) => (_obj: unknown, message?: string) => { logged.push(`${level}: ${message ?? ''}`) }
    const config = loadConfig({ env: { SCOPEKEEPER_LOG_LEVEL: 'silent', ...settings(env, url) } })
    const enforcer = new PolicyEnforcer()
    const auth = new KeystoneAuth(keystoneAuthOptions(config.keystone), {
      logger: { warn: log('warn'), error: log('error'), info: log('info') } as any,
      isAdmin: (c) => enforcer.isAdmin(c),
    })
    return { auth, logged }
  }

  it('serves an admin token when cafile names the CA that signed Keystone\'s certificate', async (t) => {
    // No scope yet: 404 is the admin's answer (a refused or failed check would be 401, 403 or 503).
    assert.deepEqual(await listAsAdmin(t, { SCOPEKEEPER_KEYSTONE_AUTHTOKEN_CAFILE: tls().ca }), { status: 404, message: 'No resource found for provided filters.' })
  })

  it('answers 503, never a 500, without cafile, and logs that the certificate is not trusted and what to set', async (t) => {
    assert.deepEqual(await listAsAdmin(t, {}), { status: 503, message: UNAVAILABLE })
    const { auth, logged } = directAuth({})
    await assert.rejects(auth.authenticate({ 'x-auth-token': await keystone.token(keystone.admin) }), (e: ScopeKeeperError) => e.code === 'IDENTITY_UNAVAILABLE')
    assert.ok(logged.some((l) => /^error: Keystone at https:\/\/127\.0\.0\.1:\d+ presented a certificate that scopekeeper does not trust \(UNABLE_TO_VERIFY_LEAF_SIGNATURE: .*\): name the CA that signed it in \[keystone_authtoken\] cafile$/.test(l)), logged.join('\n'))
    await auth.close()
  })

  it('answers 503 when cafile holds another CA, saying so', async () => {
    // The server certificate is no CA: Keystone's certificate is not signed by it.
    const { auth, logged } = directAuth({ SCOPEKEEPER_KEYSTONE_AUTHTOKEN_CAFILE: tls().clientCert })
    await assert.rejects(auth.authenticate({ 'x-auth-token': await keystone.token(keystone.admin) }), (e: ScopeKeeperError) => e.code === 'IDENTITY_UNAVAILABLE')
    assert.ok(logged.some((l) => /does not trust .*the CA in \[keystone_authtoken\] cafile did not sign it/.test(l)), logged.join('\n'))
    await auth.close()
  })

  it('serves an admin token with insecure = true and no cafile, as keystonemiddleware does', async (t) => {
    assert.equal((await listAsAdmin(t, { SCOPEKEEPER_KEYSTONE_AUTHTOKEN_INSECURE: 'true' })).status, 404)
    // insecure wins over cafile, whose file is then not even read (keystoneauth1's Session.load_from_options).
    assert.equal((await listAsAdmin(t, { SCOPEKEEPER_KEYSTONE_AUTHTOKEN_INSECURE: 'true', SCOPEKEEPER_KEYSTONE_AUTHTOKEN_CAFILE: join(tempDir(t), 'absent.pem') })).status, 404)
  })

  it('presents certfile and keyfile to a Keystone that requires a client certificate', async (t) => {
    const mutual = keystone.mutualTlsUrl
    const ca = { SCOPEKEEPER_KEYSTONE_AUTHTOKEN_CAFILE: tls().ca }
    assert.equal((await listAsAdmin(t, { ...ca, SCOPEKEEPER_KEYSTONE_AUTHTOKEN_CERTFILE: tls().clientCert, SCOPEKEEPER_KEYSTONE_AUTHTOKEN_KEYFILE: tls().clientKey }, mutual)).status, 404)
    // certfile alone holding both the certificate and its key (requests' single-file cert).
    const both = join(tempDir(t), 'client-and-key.pem')
    writeFileSync(both, Buffer.concat([readFileSync(tls().clientCert), readFileSync(tls().clientKey)]))
    assert.equal((await listAsAdmin(t, { ...ca, SCOPEKEEPER_KEYSTONE_AUTHTOKEN_CERTFILE: both }, mutual)).status, 404)
  })

  it('answers 503 without a client certificate where Keystone requires one, and says which settings to set', async (t) => {
    const ca = { SCOPEKEEPER_KEYSTONE_AUTHTOKEN_CAFILE: tls().ca }
    assert.deepEqual(await listAsAdmin(t, ca, keystone.mutualTlsUrl), { status: 503, message: UNAVAILABLE })
    const { auth, logged } = directAuth(ca, keystone.mutualTlsUrl)
    await assert.rejects(auth.authenticate({ 'x-auth-token': await keystone.token(keystone.admin) }), (e: ScopeKeeperError) => e.code === 'IDENTITY_UNAVAILABLE')
    assert.ok(logged.some((l) => /Keystone at https:\/\/127\.0\.0\.1:\d+ .*if Keystone requires a client certificate, set \[keystone_authtoken\] certfile and keyfile/.test(l)), logged.join('\n'))
    await auth.close()
  })

  it('validates users\' tokens over TLS: a member is forbidden, a garbage token is a 401', async (t) => {
    const { app } = await buildTestApp(t, { env: settings({ SCOPEKEEPER_KEYSTONE_AUTHTOKEN_CAFILE: tls().ca }) })
    const admin = await keystone.token(keystone.admin)
    const created = await app.inject({ method: 'POST', url: '/v2/scope', headers: { 'x-auth-token': admin, 'content-type': 'application/json' }, payload: { scope_id: 'tls-scope' } })
    assert.equal(created.statusCode, 200, created.body)
    assert.equal((await app.inject({ method: 'GET', url: '/v2/scope', headers: { 'x-auth-token': await keystone.token(keystone.member) } })).statusCode, 403)
    assert.equal((await app.inject({ method: 'GET', url: '/v2/scope', headers: { 'x-auth-token': 'garbage' } })).statusCode, 401)
    assert.equal((await app.inject({ method: 'GET', url: '/v2/scope', headers: { 'x-auth-token': admin } })).statusCode, 200)
  })
})
