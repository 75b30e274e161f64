// A deployment shaped as kolla-ansible renders CloudKitty's
// (ansible/roles/cloudkitty/templates/cloudkitty.conf.j2): a fresh MariaDB
// database with CloudKitty's schema and its own users, a real Keystone whose
// service user's password holds # and ;, and the cloudkitty.conf of the API
// container, with the container's paths (log_dir, log_file, lock_path)
// inside the test's folder.
import { randomBytes } from 'node:crypto'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { TestContext } from 'node:test'
import { tempDir } from './build-test-app.ts'
import { deferCleanup } from './cleanup.ts'
import { connectRaw, createCloudKittySchema, type RawDatabase } from './cloudkitty-schema.ts'
import { startKeystone, waitPastSecond, type KeystoneServer } from './keystone-server.ts'
import { freshDatabaseUrl } from './test-databases.ts'

// tooz reads coordination_url with Python's urlsplit, where # starts a
// fragment: CloudKitty's processor could not use a password holding one
// there, so the lock user's secret holds ; and = but no #.
export const DATABASE_PASSWORD = 'S3cr#t;pw=x:y/z'
export const LOCK_PASSWORD = 'L0ck;pw=x'
export const SERVICE_PASSWORD = 'Sk#pw;1=2'
/** Every secret the file holds: none may reach a log. */
export const KOLLA_SECRETS = [DATABASE_PASSWORD, LOCK_PASSWORD, SERVICE_PASSWORD, 'mc#secret;key', 'rabbit#pw']

export interface KollaDeployment {
  dir: string
  /** The API container's cloudkitty.conf. */
  conf: string
  /** Its `[oslo_policy] policy_file`, empty (the defaults) until a test writes rules. */
  policyFile: string
  /** Its `log_dir/log_file`, where a server given only this file logs. */
  logFile: string
  keystone: KeystoneServer
  coordinationUrl: string
  /** The database as root, for seeding. */
  root: RawDatabase
}

/** Sets up the deployment, or returns undefined when MariaDB is skipped; torn down after the test. */
export async function startKollaDeployment (t: TestContext): Promise<KollaDeployment | undefined> {
  const dir = tempDir(t)
  const rootUrl = await freshDatabaseUrl(t, 'mariadb', dir)
  if (rootUrl === undefined) return undefined
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
  // Keystone revokes the user's tokens issued up to the second of the
  // change (fernet tokens carry whole seconds): a server token got in that
  // same second would be refused when the server validates with it.
  await waitPastSecond()

  const coordinationUrl = `mysql://${lockUser}:${LOCK_PASSWORD}@127.0.0.1:3306/${database}`
  const policyFile = join(dir, 'policy.yaml')
  writeFileSync(policyFile, '')
  mkdirSync(join(dir, 'kolla-logs', 'cloudkitty'), { recursive: true })
  const conf = join(dir, 'cloudkitty.conf')
  writeFileSync(conf, `[DEFAULT]
debug = False

log_dir = ${dir}/kolla-logs/cloudkitty

# Force cloudkitty-api.log or will use app.wsgi
log_file = ${dir}/kolla-logs/cloudkitty/cloudkitty-api.log
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

[oslo_policy]
policy_file = ${policyFile}

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
  return { dir, conf, policyFile, logFile: join(dir, 'kolla-logs', 'cloudkitty', 'cloudkitty-api.log'), keystone, coordinationUrl, root }
}
