// What a real `scopekeeper serve` writes to [DEFAULT] log_file under
// Keystone auth, at debug level, while it is sent tokens every way a client
// can send them and while its database URL fails: no token, no service
// password and no database, lock or broker password may be in it.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import pg from 'pg'
import { tempDir } from '../helpers/build-test-app.ts'
import { deferCleanup } from '../helpers/cleanup.ts'
import { keystoneSkipReason, startKeystone, waitPastSecond } from '../helpers/keystone-server.ts'
import { BIN, startServerProcess, waitFor } from '../helpers/server-process.ts'
import { freshDatabaseUrl, TEST_POSTGRES_URL } from '../helpers/test-databases.ts'

// Unencoded, as operators write them: an '@' SQLAlchemy ends the password
// at, and ':' '/' '#' besides.
const DATABASE_PASSWORD = 'Db@pw:w0rd/x#9'
const LOCK_PASSWORD = 'L0ck@pw;7'
// tooz ends the host part at a '#' even in a password: refused at start.
const UNUSABLE_LOCK_PASSWORD = 'L0ck@Unus4ble#7'
const BROKER_PASSWORD = 'Rabb1t-pw'
const SERVICE_PASSWORD = 'Svc#pw;1=2@x'
// SQLAlchemy reads host 'hhhost.invalid' and a parameter out of this one,
// and its driver names that host when it cannot resolve it.
const AMBIGUOUS_PASSWORD = 'Amb1g@hhhost.invalid?application_name=zz9'

function run (args: string[], env: Record<string, string>): Promise<{ code: number, stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, timeout: 60_000 }, (error, _stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : -1, stderr })
    })
  })
}

describe('secrets in the log under Keystone auth', { skip: keystoneSkipReason() }, () => {
  it('logs no token, service password or database password, whichever way they come', { timeout: 300_000 }, async (t) => {
    const dir = tempDir(t)
    const rootUrl = await freshDatabaseUrl(t, 'postgres', dir)
    if (rootUrl === undefined) return
    const database = new URL(rootUrl).pathname.slice(1)
    const role = `sk_${randomBytes(3).toString('hex')}`
    const root = new pg.Client({ connectionString: TEST_POSTGRES_URL })
    await root.connect()
    deferCleanup(t, async () => {
      // The role owns the database and its tables: they go first.
      await root.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`)
      await root.query(`DROP ROLE IF EXISTS ${role}`)
      await root.end()
    })
    await root.query(`CREATE ROLE ${role} LOGIN PASSWORD '${DATABASE_PASSWORD}'`)
    await root.query(`ALTER DATABASE ${database} OWNER TO ${role}`)

    const keystone = await startKeystone()
    deferCleanup(t, async () => { await keystone.stop() })
    const admin = await keystone.token(keystone.admin)
    const { users } = await (await keystone.api('GET', `/users?name=${keystone.service.name}`, { token: admin })).json() as { users: Array<{ id: string }> }
    await keystone.api('PATCH', `/users/${users[0].id}`, { token: admin, body: { user: { password: SERVICE_PASSWORD } } })
    // Keystone revokes the user's tokens issued up to the second of the
    // change, and fernet tokens carry whole seconds: one the server got in
    // that same second would be refused (401) when it validates with it.
    await waitPastSecond()

    const logFile = join(dir, 'scopekeeper-api.log')
    const conf = join(dir, 'cloudkitty.conf')
    writeFileSync(conf, `[DEFAULT]
debug = true
log_file = ${logFile}
transport_url = rabbit://openstack:${BROKER_PASSWORD}@127.0.0.1:5672//

[database]
connection = postgresql://${role}:${DATABASE_PASSWORD}@127.0.0.1:5432/${database}
max_retries = 2
retry_interval = 1

[keystone_authtoken]
www_authenticate_uri = ${keystone.url}
auth_url = ${keystone.url}
auth_type = password
project_domain_id = default
user_domain_id = default
project_name = service
username = ${keystone.service.name}
password = ${SERVICE_PASSWORD}
region_name = RegionOne

[orchestrator]
coordination_url = postgresql://${role}:${LOCK_PASSWORD}@127.0.0.1:5432/${database}
`)
    const server = await startServerProcess(t, ['--config-file', conf], { SCOPEKEEPER_RESET_POLL_INTERVAL: '0.05' }, { logFile })
    const request = async (path: string, headers: Record<string, string>, init: RequestInit = {}) => {
      const res = await fetch(`${server.url}${path}`, { ...init, headers: { ...headers, ...(init.body === undefined ? {} : { 'content-type': 'application/json' }) } })
      await res.arrayBuffer()
      return res.status
    }

    const user = await keystone.token(keystone.admin)
    const service = await keystone.token({ ...keystone.service, password: SERVICE_PASSWORD })
    const bad = `gAAAAAB${randomBytes(90).toString('base64url')}`
    const tokens = { user, service, bad }
    assert.equal(await request('/v2/scope', { 'x-auth-token': user }, { method: 'POST', body: JSON.stringify({ scope_id: 'p1' }) }), 200)
    assert.equal(await request('/v2/scope', { 'x-auth-token': user }, { method: 'PUT', body: JSON.stringify({ scope_id: 'p1', state: '2019-07-01T00:00:00Z' }) }), 202)
    assert.equal(await request('/v2/scope?scope_id=p1', { 'x-auth-token': user }), 200)
    assert.equal(await request('/v2/scope', { 'x-auth-token': bad }), 401)
    assert.equal(await request('/v2/scope', { 'x-auth-token': user, 'x-service-token': service }), 200)
    assert.equal(await request('/v2/scope', { 'x-auth-token': user, 'x-service-token': bad }), 401)
    for (const path of [`/v2/scope?token=${user}`, `/v2/scope?X-Auth-Token=${user}`, `/v2/scope?scope_id=p1&x-auth-token=${bad}`, `/v2/nowhere?token=${service}`, `/v2/scope/resets?os_token=${user}`]) {
      await request(path, {})
      await request(path, { 'x-auth-token': user })
    }
    await waitFor(async () => readFileSync(logFile, 'utf8').includes('"msg":"reset job done"'), 30_000, 'the reset to be applied')
    server.child.kill('SIGHUP')
    await waitFor(async () => /"msg":"reloaded /.test(readFileSync(logFile, 'utf8')), 15_000, 'the SIGHUP to be handled')
    assert.equal(await server.stop(), 0)

    // Starts that fail: a database password SQLAlchemy cannot end for sure,
    // a sure one with no server behind the port, a lock password tooz cannot read.
    const refusals: string[] = []
    for (const [env, refusal] of [
      [{ SCOPEKEEPER_DATABASE_URL: `postgresql://${role}:${AMBIGUOUS_PASSWORD}@127.0.0.1:5432/${database}` }, /^scopekeeper: \[database\] connection '.*': cannot connect after 2 attempts/],
      [{ SCOPEKEEPER_DATABASE_URL: `postgresql://${role}:${DATABASE_PASSWORD}@127.0.0.1:1/${database}` }, /^scopekeeper: \[database\] connection '.*': cannot connect after 2 attempts/],
      [{ SCOPEKEEPER_ORCHESTRATOR_COORDINATION_URL: `postgresql://${role}:${UNUSABLE_LOCK_PASSWORD}@127.0.0.1:5432/${database}` }, /^scopekeeper: \[orchestrator\] coordination_url .* has an '@' after its host part/],
    ] as const) {
      const failed = await run(['serve', '--port', '0', '--config-file', conf], env)
      assert.equal(failed.code, 2, failed.stderr)
      assert.match(failed.stderr, refusal)
      refusals.push(failed.stderr)
    }

    const log = readFileSync(logFile, 'utf8')
    const entries = log.split('\n').filter(Boolean).map((line) => JSON.parse(line))
    // The log holds what it is checked for: debug lines, each kind of request, the failed starts.
    assert.ok(entries.some((e) => e.level === 20 && e.msg === 'Full set of CONF' && e.options['keystone_authtoken.password'] === '****'))
    assert.ok(entries.some((e) => e.status === 401) && entries.some((e) => e.status === 202) && entries.some((e) => e.status === 404))
    assert.equal(entries.filter((e) => e.msg === 'request' && /(^|&)(token|X-Auth-Token|x-auth-token|os_token)=\*\*\*(&|$)/.test(e.query)).length, 10)
    assert.ok(entries.filter((e) => /^database connection failed; retrying/.test(e.msg)).length >= 2)
    assert.ok(entries.some((e) => /ENOTFOUND \*\*\*/.test(e.reason)), 'the host SQLAlchemy read out of the password is masked')

    const secrets: Record<string, string> = {
      ...Object.fromEntries(Object.entries(tokens).flatMap(([name, token]) => [[`${name} token`, token], [`the start of the ${name} token`, token.slice(0, 24)], [`the end of the ${name} token`, token.slice(-24)]])),
      'the service password': SERVICE_PASSWORD,
      'the database password': DATABASE_PASSWORD,
      'the database password after its @': DATABASE_PASSWORD.split('@')[1],
      'the lock password': LOCK_PASSWORD,
      'the unusable lock password': UNUSABLE_LOCK_PASSWORD.slice(5),
      'the broker password': BROKER_PASSWORD,
      'the ambiguous password': AMBIGUOUS_PASSWORD,
      'the host read out of the ambiguous password': 'hhhost',
      'the parameter read out of the ambiguous password': 'zz9',
    }
    for (const [what, secret] of Object.entries(secrets)) {
      assert.ok(!log.includes(secret), `${what} is in the log file`)
      for (const stderr of refusals) assert.ok(!stderr.includes(secret), `${what} is in the error of a failed start: ${stderr}`)
    }
  })
})
