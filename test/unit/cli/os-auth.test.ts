import assert from 'node:assert/strict'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, it, type TestContext } from 'node:test'
import { tempDir } from '../../helpers/build-test-app.ts'
import { cloudConfigFiles } from '../../../src/cli/clouds-yaml.ts'
import { HttpTransport } from '../../../src/cli/http-transport.ts'
import {
  CatalogError, findEndpoint, identityV3Url, openSession, resolveConnection, tokenRequestBody, type ConnectionFlags,
} from '../../../src/cli/os-auth.ts'
import { ApiError } from '../../../src/cli/scope-client.ts'
import { UsageError } from '../../../src/cli/usage-error.ts'
import { ratingCatalog, startFakeKeystone } from './fake-keystone.ts'

/** A home, a config folder and a working folder of their own, so the machine's clouds.yaml cannot leak in. */
function sandbox (t: TestContext) {
  const root = tempDir(t)
  const home = join(root, 'home')
  const cwd = join(root, 'work')
  mkdirSync(join(home, '.config', 'openstack'), { recursive: true })
  mkdirSync(cwd, { recursive: true })
  const env = { HOME: home, XDG_CONFIG_DIRS: join(root, 'xdg-site') }
  return { root, home, cwd, env }
}

const resolve = (flags: ConnectionFlags, env: Record<string, string>, cwd = '/nonexistent') => resolveConnection(flags, env, cwd)

describe('CLI connection settings', () => {
  it('takes a flag over its OS_* variable, and the variable over clouds.yaml', (t) => {
    const { home, cwd, env } = sandbox(t)
    writeFileSync(join(home, '.config', 'openstack', 'clouds.yaml'), `
clouds:
  prod:
    auth:
      auth_url: https://keystone.cloud/v3
      username: from-yaml
      password: yaml-pass
      project_name: from-yaml
      user_domain_name: Default
    region_name: RegionYaml
    interface: internal
`)
    const settings = resolveConnection({ osCloud: 'prod', osUsername: 'from-flag' }, { ...env, OS_USERNAME: 'from-env', OS_PROJECT_NAME: 'from-env', OS_REGION_NAME: 'RegionEnv' }, cwd)
    assert.equal(settings.authType, 'password')
    assert.equal(settings.auth.username, 'from-flag')
    assert.equal(settings.auth.project_name, 'from-env')
    assert.equal(settings.auth.password, 'yaml-pass')
    assert.equal(settings.auth.auth_url, 'https://keystone.cloud/v3')
    assert.equal(settings.regionName, 'RegionEnv')
    assert.equal(settings.interface, 'internal')
    assert.match(settings.cloud!, /^prod \(.*clouds\.yaml\)$/)
  })

  it('reads the cloud named by OS_CLOUD, merging its secure.yaml entry, and its TLS and timeout settings', (t) => {
    const { home, cwd, env } = sandbox(t)
    const dir = join(home, '.config', 'openstack')
    writeFileSync(join(dir, 'clouds.yaml'), 'clouds:\n  lab:\n    auth:\n      auth_url: https://k:5000\n      username: u\n    verify: false\n    cacert: /etc/ca.pem\n    api_timeout: 7\n    regions: [RegionLab, RegionOther]\n')
    writeFileSync(join(dir, 'secure.yaml'), 'clouds:\n  lab:\n    auth:\n      password: from-secure\n')
    const settings = resolveConnection({}, { ...env, OS_CLOUD: 'lab' }, cwd)
    assert.equal(settings.auth.password, 'from-secure')
    assert.equal(settings.auth.username, 'u')
    assert.equal(settings.transport.insecure, true)
    assert.equal(settings.transport.caFile, '/etc/ca.pem')
    assert.equal(settings.transport.timeoutSeconds, 7)
    assert.equal(settings.regionName, 'RegionLab')
  })

  it('looks for clouds.yaml where the OpenStack client does: OS_CLIENT_CONFIG_FILE, the current folder, the user and site config folders', (t) => {
    const { home, cwd, env } = sandbox(t)
    const files = cloudConfigFiles('clouds', { ...env, OS_CLIENT_CONFIG_FILE: '/x/my-clouds.yaml', XDG_CONFIG_HOME: join(home, 'xdg') }, cwd)
    assert.deepEqual(files.slice(0, 4), ['/x/my-clouds.yaml', join(cwd, 'clouds.yaml'), join(cwd, 'clouds.yml'), join(cwd, 'clouds.json')])
    assert.ok(files.indexOf(join(home, 'xdg', 'openstack', 'clouds.yaml')) < files.indexOf(join(home, '.config', 'openstack', 'clouds.yaml')))
    assert.ok(files.includes(join(env.XDG_CONFIG_DIRS, 'openstack', 'clouds.yaml')))
    assert.equal(files.at(-3), '/etc/openstack/clouds.yaml')

    // The first file found wins: the current folder over the user's folder.
    writeFileSync(join(cwd, 'clouds.yaml'), 'clouds:\n  c:\n    auth: {endpoint: "http://from-cwd:8889"}\n    auth_type: none\n')
    writeFileSync(join(home, '.config', 'openstack', 'clouds.yaml'), 'clouds:\n  c:\n    auth: {endpoint: "http://from-home:8889"}\n    auth_type: none\n')
    assert.equal(resolveConnection({ osCloud: 'c' }, env, cwd).endpoint, 'http://from-cwd:8889')
    const json = join(cwd, 'elsewhere.json')
    writeFileSync(json, JSON.stringify({ clouds: { c: { rating_endpoint_override: 'http://from-json:8889', auth_type: 'none' } } }))
    assert.equal(resolveConnection({ osCloud: 'c' }, { ...env, OS_CLIENT_CONFIG_FILE: json }, cwd).endpoint, 'http://from-json:8889')
  })

  it('names the file and its clouds when the cloud is not there, and says when there is no clouds.yaml at all', (t) => {
    const { home, cwd, env } = sandbox(t)
    assert.throws(() => resolveConnection({ osCloud: 'prod' }, env, cwd), (e: Error) => e instanceof UsageError && /no clouds\.yaml was found/.test(e.message))
    writeFileSync(join(home, '.config', 'openstack', 'clouds.yaml'), 'clouds:\n  lab: {}\n  dev: {}\n')
    assert.throws(() => resolveConnection({ osCloud: 'prod' }, env, cwd), (e: Error) => e instanceof UsageError && /Cloud 'prod' is not in .*clouds\.yaml \(it has: lab, dev\)/.test(e.message))
    writeFileSync(join(home, '.config', 'openstack', 'clouds.yaml'), 'clouds: [not, a, map]\n')
    assert.throws(() => resolveConnection({ osCloud: 'prod' }, env, cwd), UsageError)
  })

  it('guesses the auth type from what is set, as the OpenStack client does', () => {
    assert.equal(resolve({ osEndpoint: 'http://api:8889' }, {}).authType, 'none')
    assert.equal(resolve({}, { OS_ENDPOINT: 'http://api:8889', OS_TOKEN: 't' }).authType, 'token_endpoint')
    assert.equal(resolve({}, { OS_AUTH_URL: 'http://k/v3', OS_TOKEN: 't' }).authType, 'token')
    assert.equal(resolve({}, { OS_AUTH_URL: 'http://k/v3', OS_USERNAME: 'u', OS_PASSWORD: 'p' }).authType, 'password')
    assert.equal(resolve({}, { OS_AUTH_URL: 'http://k/v3', OS_APPLICATION_CREDENTIAL_ID: 'a', OS_APPLICATION_CREDENTIAL_SECRET: 's' }).authType, 'application_credential')
    assert.equal(resolve({ osAuthType: 'cloudkitty-noauth', osEndpoint: 'http://api:8889' }, { OS_USERNAME: 'u' }).authType, 'none')
    assert.equal(resolve({}, { OS_ENDPOINT: 'http://api:8889', OS_PROJECT_NAME: 'p', OS_TENANT_ID: 'tid' }).auth.project_id, 'tid')
  })

  it('refuses incomplete or unknown settings as usage errors that say what is missing', () => {
    const refuses = (flags: ConnectionFlags, env: Record<string, string>, pattern: RegExp) =>
      assert.throws(() => resolve(flags, env), (e: Error) => e instanceof UsageError && pattern.test(e.message), pattern.source)
    refuses({}, {}, /No API to talk to: give --os-endpoint/)
    refuses({}, { OS_USERNAME: 'u', OS_PASSWORD: 'p' }, /needs --os-auth-url \(OS_AUTH_URL\)/)
    refuses({}, { OS_AUTH_URL: 'http://k', OS_USERNAME: 'u' }, /needs --os-password/)
    refuses({ osAuthType: 'none' }, {}, /needs --os-endpoint/)
    refuses({ osAuthType: 'kerberos' }, {}, /Unsupported auth type 'kerberos'/)
    refuses({ osEndpoint: 'http://x', osInterface: 'private' }, {}, /Unknown interface 'private'/)
    refuses({ osEndpoint: 'http://x', timeout: '-3' }, {}, /Invalid timeout '-3'/)
  })

  it('accepts the catalog interface in its v2 spelling and reads OS_INSECURE, OS_CACERT and OS_API_TIMEOUT', () => {
    const settings = resolve({}, { OS_ENDPOINT: 'http://x', OS_INTERFACE: 'internalURL', OS_INSECURE: 'True', OS_CACERT: '/ca.pem', OS_API_TIMEOUT: '2.5' })
    assert.equal(settings.interface, 'internal')
    assert.deepEqual({ ...settings.transport }, { insecure: true, caFile: '/ca.pem', certFile: undefined, keyFile: undefined, timeoutSeconds: 2.5 })
  })

  it('finds the Keystone v3 URL whether the auth URL names a version or not', () => {
    assert.equal(identityV3Url('http://k:5000'), 'http://k:5000/v3')
    assert.equal(identityV3Url('http://k:5000/v3/'), 'http://k:5000/v3')
    assert.equal(identityV3Url('https://cloud/identity/v2.0'), 'https://cloud/identity/v3')
  })

  it('builds Keystone token requests with the default domain standing in for a missing one', () => {
    assert.deepEqual(tokenRequestBody('password', { username: 'u', password: 'p', project_name: 'proj' }), {
      auth: {
        identity: { methods: ['password'], password: { user: { name: 'u', domain: { id: 'default' }, password: 'p' } } },
        scope: { project: { name: 'proj', domain: { id: 'default' } } },
      },
    })
    assert.deepEqual(tokenRequestBody('password', { user_id: 'uid', password: 'p', domain_name: 'd' }), {
      auth: { identity: { methods: ['password'], password: { user: { id: 'uid', password: 'p' } } }, scope: { domain: { name: 'd' } } },
    })
    assert.deepEqual(tokenRequestBody('token', { token: 't', system_scope: 'all' }), {
      auth: { identity: { methods: ['token'], token: { id: 't' } }, scope: { system: { all: true } } },
    })
    assert.deepEqual(tokenRequestBody('application_credential', { application_credential_name: 'n', application_credential_secret: 's', username: 'u', user_domain_name: 'D', project_name: 'ignored' }), {
      auth: { identity: { methods: ['application_credential'], application_credential: { name: 'n', secret: 's', user: { name: 'u', domain: { name: 'D' } } } } },
    })
  })

  it('picks the catalog endpoint by interface and region, and names what the catalog offers when nothing matches', () => {
    const catalog = ratingCatalog()
    assert.equal(findEndpoint(catalog, 'rating', 'public'), 'http://rating.example/public-r1')
    assert.equal(findEndpoint(catalog, 'rating', 'public', 'RegionTwo'), 'http://rating.example/public-r2')
    assert.equal(findEndpoint(catalog, 'rating', 'internal', 'RegionOne'), 'http://rating.example/internal-r1')
    assert.throws(() => findEndpoint(catalog, 'rating', 'admin'), (e: Error) => e instanceof CatalogError &&
      e.message === "The Keystone catalog has no admin endpoint of service type 'rating' (it has: internal in RegionOne, public in RegionOne, public in RegionTwo); set --os-interface or --os-region-name.")
    assert.throws(() => findEndpoint(catalog.slice(0, 1), 'rating', 'public'), /no service of type 'rating' \(it has: identity\)/)
  })
})

describe('CLI Keystone sessions (against fake-keystone)', () => {
  it('gets a project-scoped token with a password and the rating endpoint of the region from the catalog', async (t) => {
    const keystone = await startFakeKeystone(t)
    const settings = resolve({}, {
      OS_AUTH_URL: keystone.authUrl, OS_USERNAME: 'admin', OS_PASSWORD: 'secret', OS_PROJECT_NAME: 'admin',
      OS_USER_DOMAIN_NAME: 'Default', OS_PROJECT_DOMAIN_NAME: 'Default', OS_REGION_NAME: 'RegionTwo',
    })
    const session = await openSession(settings, new HttpTransport())
    assert.deepEqual(session, { endpoint: 'http://rating.example/public-r2', token: keystone.tokens.at(-1) })
    assert.equal(keystone.requests.length, 1)
    assert.equal(keystone.requests[0].url, '/v3/auth/tokens')
    assert.deepEqual(keystone.requests[0].body.auth.scope, { project: { name: 'admin', domain: { name: 'Default' } } })
    assert.deepEqual(keystone.requests[0].body.auth.identity.password.user, { name: 'admin', domain: { name: 'Default' }, password: 'secret' })
  })

  it('uses the internal interface from OS_INTERFACE, and the auth URL without its version', async (t) => {
    const keystone = await startFakeKeystone(t)
    const session = await openSession(resolve({}, {
      OS_AUTH_URL: keystone.authUrl.replace('/v3', ''), OS_USER_ID: 'admin-id', OS_PASSWORD: 'secret', OS_PROJECT_ID: 'p1', OS_INTERFACE: 'internal',
    }), new HttpTransport())
    assert.equal(session.endpoint, 'http://rating.example/internal-r1')
  })

  it('asks for no catalog when --os-endpoint is given, and sends the new token there', async (t) => {
    const keystone = await startFakeKeystone(t)
    const session = await openSession(resolve({ osEndpoint: 'http://127.0.0.1:8889' }, {
      OS_AUTH_URL: keystone.authUrl, OS_USERNAME: 'admin', OS_PASSWORD: 'secret', OS_PROJECT_NAME: 'admin',
    }), new HttpTransport())
    assert.deepEqual(session, { endpoint: 'http://127.0.0.1:8889', token: keystone.tokens.at(-1) })
    assert.equal(keystone.requests[0].url, '/v3/auth/tokens?nocatalog')
  })

  it('keeps an OS_TOKEN given without a scope and reads its catalog; exchanges it when a project is given', async (t) => {
    const keystone = await startFakeKeystone(t)
    const kept = await openSession(resolve({}, { OS_AUTH_URL: keystone.authUrl, OS_TOKEN: 'preset-token' }), new HttpTransport())
    assert.deepEqual(kept, { endpoint: 'http://rating.example/public-r1', token: 'preset-token' })
    assert.equal(keystone.requests[0].method, 'GET')
    assert.equal(keystone.requests[0].headers['x-subject-token'], 'preset-token')

    const exchanged = await openSession(resolve({ osProjectName: 'admin' }, { OS_AUTH_URL: keystone.authUrl, OS_TOKEN: 'preset-token' }), new HttpTransport())
    assert.notEqual(exchanged.token, 'preset-token')
    assert.deepEqual(keystone.requests[1].body.auth.identity, { methods: ['token'], token: { id: 'preset-token' } })
  })

  it('sends OS_TOKEN as is to OS_ENDPOINT without asking Keystone', async () => {
    assert.deepEqual(await openSession(resolve({}, { OS_ENDPOINT: 'http://api:8889', OS_TOKEN: 't' }), new HttpTransport()), { endpoint: 'http://api:8889', token: 't' })
  })

  it('authenticates with an application credential', async (t) => {
    const keystone = await startFakeKeystone(t)
    const session = await openSession(resolve({}, {
      OS_AUTH_URL: keystone.authUrl, OS_AUTH_TYPE: 'v3applicationcredential', OS_APPLICATION_CREDENTIAL_ID: 'app-id', OS_APPLICATION_CREDENTIAL_SECRET: 'app-secret',
    }), new HttpTransport())
    assert.deepEqual(session, { endpoint: 'http://rating.example/public-r1', token: keystone.tokens.at(-1) })
    assert.deepEqual(keystone.requests[0].body.auth, { identity: { methods: ['application_credential'], application_credential: { id: 'app-id', secret: 'app-secret' } } })
  })

  it("reports Keystone's refusal with Keystone's message", async (t) => {
    const keystone = await startFakeKeystone(t)
    await assert.rejects(openSession(resolve({}, {
      OS_AUTH_URL: keystone.authUrl, OS_USERNAME: 'admin', OS_PASSWORD: 'wrong', OS_PROJECT_NAME: 'admin',
    }), new HttpTransport()), (e: Error) => e instanceof ApiError && e.status === 401 &&
      e.message === `Keystone at ${keystone.authUrl} refused to authenticate: The request you have made requires authentication.`)
  })

  it('says when an unscoped token brings no catalog', async (t) => {
    const keystone = await startFakeKeystone(t)
    await assert.rejects(openSession(resolve({}, { OS_AUTH_URL: keystone.authUrl, OS_USERNAME: 'admin', OS_PASSWORD: 'secret' }), new HttpTransport()),
      (e: Error) => e instanceof CatalogError && /Keystone returned no catalog .*set OS_PROJECT_NAME/.test(e.message))
  })

  it('redacts the password and tokens in --debug output', async (t) => {
    const keystone = await startFakeKeystone(t)
    const lines: string[] = []
    const session = await openSession(resolve({}, {
      OS_AUTH_URL: keystone.authUrl, OS_USERNAME: 'admin', OS_PASSWORD: 'secret', OS_PROJECT_NAME: 'admin',
    }), new HttpTransport({ debug: (text) => lines.push(text) }))
    const dump = lines.join('\n')
    assert.match(dump, /REQ: curl -g -i -X POST "http:\/\/127\.0\.0\.1:\d+\/v3\/auth\/tokens"/)
    assert.match(dump, /"password":"\*\*\*"/)
    assert.match(dump, /x-subject-token: \{SHA256\}[0-9a-f]{64}/)
    assert.ok(!dump.includes('secret'), 'the password is not printed')
    assert.ok(!dump.includes(session.token!), 'the token is not printed')
  })
})
