// scopekeeper started with nothing but a cloudkitty.conf shaped like the one
// kolla-ansible renders (ansible/roles/cloudkitty/templates/cloudkitty.conf.j2):
// no auth_strategy line, secrets holding # and ;, domain ids instead of
// names, memcache options, coordination_url = mysql://… on CloudKitty's own
// database, against a real MariaDB, a real Keystone and a real tooz client.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { processingLockName } from '../../src/reset/coordination/coordinator.ts'
import { tempDir } from '../helpers/build-test-app.ts'
import { deferCleanup } from '../helpers/cleanup.ts'
import { connectRaw, createCloudKittySchema } from '../helpers/cloudkitty-schema.ts'
import { keystoneSkipReason, startKeystone } from '../helpers/keystone-server.ts'
import { startServerProcess, waitFor } from '../helpers/server-process.ts'
import { freshDatabaseUrl } from '../helpers/test-databases.ts'
import { requireTooz, startToozHolder } from '../helpers/tooz-holder.ts'

// tooz reads coordination_url with Python's urlsplit, where # starts a
// fragment: CloudKitty's processor could not use a password holding one
// there, so the lock user's secret holds ; and = but no #.
const DATABASE_PASSWORD = 'S3cr#t;pw=x:y/z'
const LOCK_PASSWORD = 'L0ck;pw=x'
const SERVICE_PASSWORD = 'Sk#pw;1=2'

describe('a kolla-ansible cloudkitty.conf on MariaDB and Keystone', { skip: keystoneSkipReason() }, () => {
  it('asks for a token by default, serves an admin, and makes a reset wait for the tooz lock on coordination_url', async (t) => {
    if (!requireTooz(t)) return
    const dir = tempDir(t)
    const rootUrl = await freshDatabaseUrl(t, 'mariadb', dir)
    if (rootUrl === undefined) return
    const database = new URL(rootUrl).pathname.slice(1)
    const suffix = randomBytes(3).toString('hex')
    const [user, lockUser] = [`ck_${suffix}`, `cklock_${suffix}`]
    const root = await connectRaw('mariadb', rootUrl)
    deferCleanup(t, async () => {
      await root.exec(`DROP USER IF EXISTS '${user}'@'%', '${lockUser}'@'%'`)
      await root.close()
    })
    await root.exec(`CREATE USER '${user}'@'%' IDENTIFIED BY '${DATABASE_PASSWORD}'`)
    await root.exec(`GRANT ALL ON \`${database}\`.* TO '${user}'@'%'`)
    await root.exec(`CREATE USER '${lockUser}'@'%' IDENTIFIED BY '${LOCK_PASSWORD}'`)
    await root.exec(`GRANT ALL ON \`${database}\`.* TO '${lockUser}'@'%'`)
    // The deployment's own schema, as CloudKitty's migrations leave it.
    await createCloudKittySchema(root, 'mariadb')

    const keystone = await startKeystone()
    deferCleanup(t, async () => { await keystone.stop() })
    const admin = await keystone.token(keystone.admin)
    const { users } = await (await keystone.api('GET', `/users?name=${keystone.service.name}`, { token: admin })).json() as { users: Array<{ id: string }> }
    await keystone.api('PATCH', `/users/${users[0].id}`, { token: admin, body: { user: { password: SERVICE_PASSWORD } } })

    const coordinationUrl = `mysql://${lockUser}:${LOCK_PASSWORD}@127.0.0.1:3306/${database}`
    const conf = join(dir, 'cloudkitty.conf')
    writeFileSync(conf, `[DEFAULT]
debug = False
transport_url = rabbit://openstack:rabbit#pw@127.0.0.1:5672//

[database]
connection = mysql+pymysql://${user}:${DATABASE_PASSWORD}@127.0.0.1:3306/${database}
connection_recycle_time = 10
max_pool_size = 2
max_retries = -1

[keystone_authtoken]
service_type = rating
www_authenticate_uri = ${keystone.url}
auth_url = ${keystone.url}
auth_type = password
project_domain_id = default
user_domain_id = default
project_name = service
username = ${keystone.service.name}
password = ${SERVICE_PASSWORD}
region_name = RegionOne
cafile =

memcache_security_strategy = ENCRYPT
memcache_secret_key = mc#secret;key
memcached_servers = 127.0.0.1:11211

[oslo_middleware]
enable_proxy_headers_parsing = true

[oslo_concurrency]
lock_path = ${dir}/tmp

[oslo_messaging_rabbit]
use_queue_manager = true
rabbit_quorum_queue = true

[collect]
collector = gnocchi

[collector_gnocchi]
auth_section = keystone_authtoken
region_name = RegionOne

[fetcher]
backend = keystone

[fetcher_keystone]
keystone_version = 3
auth_section = keystone_authtoken
region_name = RegionOne

[api]
host_ip = 127.0.0.1
port = 8889

[orchestrator]
coordination_url = ${coordinationUrl}
max_workers = 2

[storage]
backend = sqlalchemy
version = 1
`)
    // Nothing but the file: --port 0 only so that tests can run side by side.
    const server = await startServerProcess(t, ['--config-file', conf], { SCOPEKEEPER_RESET_POLL_INTERVAL: '0.05' })
    const request = async (method: string, path: string, token?: string, body?: unknown) => {
      const res = await fetch(`${server.url}${path}`, {
        method,
        headers: { ...(token === undefined ? {} : { 'x-auth-token': token }), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      })
      return { status: res.status, headers: res.headers, body: await res.json() as any }
    }

    const anonymous = await request('GET', '/v2/scope')
    assert.equal(anonymous.status, 401)
    assert.match(anonymous.headers.get('www-authenticate') ?? '', /^Keystone uri=/)
    const token = await keystone.token(keystone.admin)
    assert.equal((await request('GET', '/v2/scope', token)).status, 200)
    assert.equal((await request('GET', '/v2/scope', await keystone.token(keystone.member))).status, 403)

    for (const scopeId of ['busy', 'free']) {
      assert.equal((await request('POST', '/v2/scope', token, { scope_id: scopeId, last_processed_timestamp: '2020-01-01T00:00:00Z' })).status, 200)
    }
    // CloudKitty's processor rating 'busy': its lock, on the coordination_url, through tooz.
    const processor = await startToozHolder(t, coordinationUrl)
    const name = processingLockName('busy', { collector: 'gnocchi', fetcher: 'keystone', scopeKey: 'project_id' })
    assert.equal(await processor.hold(name), true)
    const put = await request('PUT', '/v2/scope', token, { scope_id: ['busy', 'free'], last_processed_timestamp: '2019-01-01T00:00:00Z' })
    assert.equal(put.status, 202)
    const job = new URL(put.headers.get('location')!).pathname
    await waitFor(async () => (await request('GET', job, token)).body.scopes_applied === 1, 20_000, 'free applied')
    const waiting = (await request('GET', job, token)).body
    assert.deepEqual([waiting.status, waiting.scopes_waiting], ['running', 1])
    const stamps = async () => Object.fromEntries((await request('GET', '/v2/scope?scope_id=busy,free', token)).body.results.map((r: any) => [r.scope_id, r.last_processed_timestamp]))
    assert.deepEqual(await stamps(), { busy: '2020-01-01T00:00:00+00:00', free: '2019-01-01T00:00:00+00:00' })

    assert.equal(await processor.release(name), true)
    await waitFor(async () => (await request('GET', job, token)).body.status === 'done', 20_000, 'the reset done')
    assert.deepEqual(await stamps(), { busy: '2019-01-01T00:00:00+00:00', free: '2019-01-01T00:00:00+00:00' })
    // No secret of the file reaches the log.
    for (const secret of [DATABASE_PASSWORD, LOCK_PASSWORD, SERVICE_PASSWORD, 'mc#secret;key', 'rabbit#pw']) {
      assert.ok(!server.lines.some((line) => line.includes(secret)), `${secret} appears in the log`)
    }
  })
})
