// The real python-cloudkittyclient and python-openstackclient (Debian's, on
// /usr/bin/python3) through a real Keystone (test/helpers/keystone-server.ts)
// against a `scopekeeper serve --auth keystone` process configured by a
// cloudkitty.conf: the clients get a token, find the `rating` endpoint in
// the catalog, and the server checks the token and its policy file.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { existsSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, it, type TestContext } from 'node:test'
import { tempDir } from '../helpers/build-test-app.ts'
import { keystoneSkipReason, startKeystone, type KeystoneServer, type KeystoneUser } from '../helpers/keystone-server.ts'
import { BIN, startServerProcess, type ServerProcess } from '../helpers/server-process.ts'

const CLOUDKITTY = '/usr/bin/cloudkitty'
const OPENSTACK = '/usr/bin/openstack'
const CLIENT_TIMEOUT_MS = 60_000
const FORBIDDEN = 'You are not authorized to perform this action'

function missingClients (): string | undefined {
  for (const bin of [CLOUDKITTY, OPENSTACK]) {
    if (!existsSync(bin)) return `${bin} is not installed; run scripts/setup-system-packages.sh (as root)`
  }
  return undefined
}

function skipReason (): string | undefined {
  const keystone = keystoneSkipReason()
  if (keystone !== undefined) return keystone
  const clients = missingClients()
  if (clients === undefined) return undefined
  if (process.env.CI === 'true') throw new Error(`The CloudKitty and OpenStack clients are required when CI=true: ${clients}`)
  process.stderr.write(`\n!!! SKIPPED: ${clients}\n`)
  return `SKIPPED: ${clients}`
}

interface Run {
  code: number
  stdout: string
  stderr: string
}

function run (file: string, args: string[], env: Record<string, string> = {}): Promise<Run> {
  // No OS_* from the developer's shell may leak in.
  const clean = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('OS_')))
  return new Promise((resolve, reject) => {
    execFile(file, args, { env: { ...clean, PYTHONWARNINGS: 'ignore', ...env }, timeout: CLIENT_TIMEOUT_MS, encoding: 'utf8' }, (error, stdout, stderr) => {
      if (error === null) return resolve({ code: 0, stdout, stderr })
      if (error.killed || typeof error.code !== 'number') return reject(new Error(`${file} ${args.join(' ')}: ${error.message}; ${stderr}`))
      resolve({ code: error.code, stdout, stderr })
    })
  })
}

const skip = skipReason()

describe('CloudKitty and OpenStack clients through a real Keystone', { skip }, () => {
  const hooks: Array<() => unknown> = []
  const suite = { after: (fn: () => unknown) => { hooks.push(fn) } } as unknown as TestContext
  let keystone: KeystoneServer
  let server: ServerProcess
  let dir: string

  /** The clients' Keystone options for `user`, as an openrc file would set them. */
  function openrc (user: KeystoneUser): Record<string, string> {
    return {
      OS_AUTH_URL: `${keystone.url}/v3`, OS_USERNAME: user.name, OS_PASSWORD: user.password, OS_PROJECT_NAME: user.project,
      OS_USER_DOMAIN_NAME: 'Default', OS_PROJECT_DOMAIN_NAME: 'Default', OS_REGION_NAME: 'RegionOne', OS_IDENTITY_API_VERSION: '3',
    }
  }

  const cloudkitty = (user: KeystoneUser, ...args: string[]) => run(CLOUDKITTY, ['--os-rating-api-version', '2', ...args], openrc(user))
  const openstack = (user: KeystoneUser, ...args: string[]) => run(OPENSTACK, ['--rating-api-version', '2', ...args], openrc(user))

  async function seed (scopeId: string): Promise<void> {
    const res = await fetch(`${server.url}/v2/scope`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-auth-token': await keystone.token(keystone.admin) },
      body: JSON.stringify({ scope_id: scopeId, last_processed_timestamp: '2024-01-01T00:00:00Z' }),
    })
    assert.equal(res.status, 200, await res.text())
  }

  before(async () => {
    dir = tempDir(suite)
    keystone = await startKeystone()
    hooks.push(() => keystone.stop())
    process.stdout.write(`# Keystone started in ${keystone.startSeconds.toFixed(1)} s\n`)
    writeFileSync(join(dir, 'policy.yaml'), '# members may read the scope states\n"scope:get_state": "role:admin or role:member"\n')
    writeFileSync(join(dir, 'cloudkitty.conf'), [
      '[keystone_authtoken]',
      `www_authenticate_uri = ${keystone.url}/v3`,
      `auth_url = ${keystone.url}/v3`,
      'auth_type = password',
      `username = ${keystone.service.name}`,
      `password = ${keystone.service.password}`,
      `project_name = ${keystone.service.project}`,
      'user_domain_name = Default',
      'project_domain_name = Default',
      'region_name = RegionOne',
      '',
      '[oslo_policy]',
      `policy_file = ${join(dir, 'policy.yaml')}`,
      '',
    ].join('\n'))
    server = await startServerProcess(suite, ['--auth', 'keystone', '--config', join(dir, 'cloudkitty.conf'), '--database', `sqlite:///${join(dir, 'sk.sqlite')}`])
    await keystone.registerService('rating', 'cloudkitty', server.url)
    await seed('ck-one')
    await seed('ck-two')
  })
  after(async () => { for (const fn of hooks.reverse()) await fn() })

  it('lists scope states for an admin with `cloudkitty scope state get`', async () => {
    const listed = await cloudkitty(keystone.admin, 'scope', 'state', 'get', '-f', 'json')
    assert.equal(listed.code, 0, listed.stderr)
    assert.deepEqual(JSON.parse(listed.stdout).map((r: any) => r['Scope ID']), ['ck-one', 'ck-two'])
  })

  it('lists scope states for an admin with `openstack rating scope state get`', async () => {
    const listed = await openstack(keystone.admin, 'rating', 'scope', 'state', 'get', '--scope-id', 'ck-two', '-f', 'json')
    assert.equal(listed.code, 0, listed.stderr)
    assert.deepEqual(JSON.parse(listed.stdout).map((r: any) => r['Scope ID']), ['ck-two'])
  })

  it('resets as an admin; the reset is applied', async () => {
    const reset = await cloudkitty(keystone.admin, 'scope', 'state', 'reset', '--scope-id', 'ck-one', '2023-06-01T00:00:00Z')
    assert.deepEqual(reset, { code: 0, stdout: '', stderr: '' })
    const deadline = Date.now() + 20_000
    for (;;) {
      const listed = await cloudkitty(keystone.admin, 'scope', 'state', 'get', '--scope-id', 'ck-one', '-f', 'json')
      if (JSON.parse(listed.stdout)[0].State === '2023-06-01T00:00:00+00:00') break
      assert.ok(Date.now() < deadline, 'the reset was not applied within 20 s')
      await new Promise((resolve) => setTimeout(resolve, 200))
    }
  })

  it('lets a member read, as the policy file says, and refuses the reset with the 403 message', async () => {
    const listed = await cloudkitty(keystone.member, 'scope', 'state', 'get', '-f', 'json')
    assert.equal(listed.code, 0, listed.stderr)
    assert.equal(JSON.parse(listed.stdout).length, 2)
    const reset = await cloudkitty(keystone.member, 'scope', 'state', 'reset', '--all-scopes', '2023-01-01T00:00:00Z')
    assert.equal(reset.code, 1)
    assert.ok(`${reset.stdout}${reset.stderr}`.includes(FORBIDDEN), reset.stderr)
  })

  it('refuses a request without a token with 401 and the Keystone URI, serving discovery without one', async () => {
    const res = await fetch(`${server.url}/v2/scope`)
    assert.equal(res.status, 401)
    assert.equal(res.headers.get('www-authenticate'), `Keystone uri="${keystone.url}/v3"`)
    assert.deepEqual(await res.json(), { message: 'The request you have made requires authentication.' })
    assert.equal((await fetch(`${server.url}/`)).status, 200)
  })

  it('refuses to start with a policy file rule that does not parse, naming it, exit 2', async () => {
    writeFileSync(join(dir, 'broken.yaml'), '"scope:patch_state": "role:admin and or role:member"\n')
    const started = await run(process.execPath, [BIN, 'serve', '--port', '0', '--auth', 'keystone', '--config', join(dir, 'cloudkitty.conf'),
      '--database', `sqlite:///${join(dir, 'broken.sqlite')}`], { SCOPEKEEPER_OSLO_POLICY_POLICY_FILE: join(dir, 'broken.yaml') })
    assert.equal(started.code, 2)
    assert.match(started.stderr, /Invalid policy rule "scope:patch_state" in policy file .*broken\.yaml/)
  })

  it('refuses to start with --auth keystone and no Keystone settings, naming them, exit 2', async () => {
    const started = await run(process.execPath, [BIN, 'serve', '--port', '0', '--auth', 'keystone', '--database', `sqlite:///${join(dir, 'bare.sqlite')}`])
    assert.equal(started.code, 2)
    assert.match(started.stderr, /\[keystone_authtoken\] auth_url \(SCOPEKEEPER_KEYSTONE_AUTHTOKEN_AUTH_URL\), username/)
  })
})
