// A real Keystone 22 (Zed), from Debian's python3-keystone, served by uWSGI
// on loopback out of one temporary directory, for the auth tests. How it is
// set up follows what was established on these machines (issue 6): SQLite in
// WAL mode, fernet tokens, an in-memory cache, cheap password hashing,
// absolute paths everywhere, and Debian's scripts run on /usr/bin/python3.
// With `tls`, uWSGI serves it over HTTPS with a certificate of a private CA
// made for the test, on two ports: one that asks for no client certificate,
// and one that refuses a client without one signed by that CA.
import { spawn, execFile, type ChildProcess } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { keystoneFetch } from '../../src/auth/keystone-tls.ts'
import { freePort } from './free-port.ts'

const PYTHON = '/usr/bin/python3'
const KEYSTONE_MANAGE = '/usr/bin/keystone-manage'
const KEYSTONE_WSGI = '/usr/bin/keystone-wsgi-public'
const UWSGI = '/usr/bin/uwsgi_python3'
const OPENSSL = '/usr/bin/openssl'
const START_TIMEOUT_MS = 120_000
const REQUEST_TIMEOUT_MS = 30_000

/** Why a real Keystone cannot run here, or undefined when it can. */
export function keystoneUnavailable (): string | undefined {
  const hint = "install Debian's python3-keystone and uwsgi-plugin-python3 with scripts/setup-system-packages.sh (as root)"
  for (const file of [PYTHON, KEYSTONE_MANAGE, KEYSTONE_WSGI, UWSGI]) {
    if (!existsSync(file)) return `${file} is missing; ${hint}`
  }
  return undefined
}

/**
 * Fails the calling file under CI=true when Keystone cannot run; otherwise
 * prints a loud SKIPPED line. Returns the reason to skip, or undefined.
 */
export function keystoneSkipReason (): string | undefined {
  const missing = keystoneUnavailable()
  if (missing === undefined) return undefined
  if (process.env.CI === 'true') throw new Error(`A real Keystone is required when CI=true: ${missing}`)
  process.stderr.write(`\n!!! SKIPPED Keystone tests: ${missing}\n`)
  return `SKIPPED: ${missing}`
}

/** The PEM files of a Keystone served over TLS: its private CA, its server certificate, and a client certificate of that CA. */
export interface KeystoneTlsFiles {
  ca: string
  serverCert: string
  serverKey: string
  clientCert: string
  clientKey: string
}

/** A Keystone user and the project its tokens are scoped to (all in domain Default). */
export interface KeystoneUser {
  name: string
  password: string
  project: string
}


// Debian's scripts on Debian's python, whatever a developer's PATH or
// PYTHON* variables say.
function childEnv (config: string): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('PYTHON') && !name.startsWith('OS_')))
  return { ...env, PATH: '/usr/sbin:/usr/bin:/sbin:/bin', OS_KEYSTONE_CONFIG_FILES: config }
}

function run (file: string, args: string[], env: NodeJS.ProcessEnv): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { env, timeout: START_TIMEOUT_MS, maxBuffer: 64 * 1024 * 1024 }, (error, _stdout, stderr) => {
      if (error === null) return resolve()
      reject(new Error(`${[file, ...args].join(' ')} failed: ${error.message}\n${stderr.split('\n').slice(-20).join('\n')}`))
    })
  })
}

// As root, the key repositories need an explicit owner. Rollback journaling
// makes writes after a token request fail with "database is locked": WAL.
const SETUP_SCRIPT = `
import sqlite3, sys
from keystone.cmd import cli
conf, db, password, url = sys.argv[1:5]
owner = ['--keystone-user', 'root', '--keystone-group', 'root']
def manage(*args):
    cli.CONF.reset()
    cli.main(argv=['keystone-manage', '--config-file', conf, *args])
manage('db_sync')
manage('fernet_setup', *owner)
manage('credential_setup', *owner)
connection = sqlite3.connect(db)
connection.execute('pragma journal_mode = wal')
connection.close()
manage('bootstrap', '--bootstrap-password', password, '--bootstrap-region-id', 'RegionOne',
       '--bootstrap-admin-url', url, '--bootstrap-internal-url', url, '--bootstrap-public-url', url)
`

/** Makes a private CA, a server certificate for 127.0.0.1 and localhost, and a client certificate, in `dir`. */
async function makeCertificates (dir: string): Promise<KeystoneTlsFiles> {
  mkdirSync(dir, { mode: 0o700 })
  const f = (name: string) => join(dir, name)
  const files: KeystoneTlsFiles = { ca: f('ca.pem'), serverCert: f('server.pem'), serverKey: f('server.key'), clientCert: f('client.pem'), clientKey: f('client.key') }
  const env = { PATH: '/usr/bin:/bin' }
  await run(OPENSSL, ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('ca.key'), '-out', files.ca, '-days', '2', '-subj', '/CN=scopekeeper test CA'], env)
  writeFileSync(f('server.ext'), 'subjectAltName = IP:127.0.0.1, DNS:localhost\nextendedKeyUsage = serverAuth\n')
  writeFileSync(f('client.ext'), 'extendedKeyUsage = clientAuth\n')
  for (const [who, cert, key, cn] of [['server', files.serverCert, files.serverKey, '127.0.0.1'], ['client', files.clientCert, files.clientKey, 'scopekeeper']] as const) {
    await run(OPENSSL, ['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', f(`${who}.csr`), '-subj', `/CN=${cn}`], env)
    await run(OPENSSL, ['x509', '-req', '-in', f(`${who}.csr`), '-CA', files.ca, '-CAkey', f('ca.key'), '-CAcreateserial', '-out', cert, '-days', '2', '-extfile', f(`${who}.ext`)], env)
  }
  return files
}

const running = new Set<ChildProcess>()
// A test process that dies must not leave a Keystone behind.
process.once('exit', () => {
  for (const child of running) {
    try { process.kill(-child.pid!, 'SIGKILL') } catch { /* already gone */ }
  }
})

/**
 * A running Keystone on 127.0.0.1 with:
 * - `admin` (role admin on project admin), from `keystone-manage bootstrap`;
 * - `service`: scopekeeper's service user, role admin on project service
 *   (the classic service user; a service-role-only user may not validate
 *   tokens in this release);
 * - `member`: role member (only) on project demo.
 * Start with {@link startKeystone}; `stop()` removes everything.
 * Further projects and users: {@link KeystoneServer.createProjectMember}.
 */
export class KeystoneServer {
  readonly admin: KeystoneUser
  readonly service: KeystoneUser = { name: 'scopekeeper', password: 'service-secret', project: 'service' }
  readonly member: KeystoneUser = { name: 'alice', password: 'alice-secret', project: 'demo' }
  /** Seconds from an empty directory to a running Keystone with its users. */
  startSeconds = 0
  private uwsgi: ChildProcess | undefined
  /** The fetch of this helper's own requests: with `tls`, one that trusts the test CA and shows its client certificate. */
  private readonly fetch: typeof fetch = globalThis.fetch
  private readonly closeFetch: () => Promise<void> = async () => {}

  private constructor (
    readonly dir: string, readonly port: number, adminPassword: string,
    /** With `tls`: the certificates, and the port that requires a client certificate. */
    readonly tls?: KeystoneTlsFiles & { mutualPort: number },
    /** `[resource] list_limit`: project and domain lists cut at this many, with `truncated: true`. */
    readonly listLimit?: number,
  ) {
    this.admin = { name: 'admin', password: adminPassword, project: 'admin' }
    if (tls !== undefined) {
      const own = keystoneFetch({ ca: readFileSync(tls.ca), cert: readFileSync(tls.clientCert), key: readFileSync(tls.clientKey), rejectUnauthorized: true })
      this.fetch = own.fetch
      this.closeFetch = own.close
    }
  }

  /** `http://127.0.0.1:PORT` (`https://` with `tls`), Keystone's root. */
  get url (): string {
    return `${this.tls === undefined ? 'http' : 'https'}://127.0.0.1:${this.port}`
  }

  /** With `tls`: `https://127.0.0.1:PORT` of the port that refuses clients without a certificate of the test CA. */
  get mutualTlsUrl (): string {
    if (this.tls === undefined) throw new Error('this Keystone was started without tls')
    return `https://127.0.0.1:${this.tls.mutualPort}`
  }

  get configFile (): string {
    return join(this.dir, 'keystone.conf')
  }

  /** The settings that point scopekeeper at this Keystone with `auth_strategy = keystone`. */
  authEnv (): Record<string, string> {
    return {
      SCOPEKEEPER_DEFAULT_AUTH_STRATEGY: 'keystone',
      SCOPEKEEPER_KEYSTONE_AUTHTOKEN_WWW_AUTHENTICATE_URI: `${this.url}/v3`,
      SCOPEKEEPER_KEYSTONE_AUTHTOKEN_AUTH_URL: `${this.url}/v3`,
      SCOPEKEEPER_KEYSTONE_AUTHTOKEN_USERNAME: this.service.name,
      SCOPEKEEPER_KEYSTONE_AUTHTOKEN_PASSWORD: this.service.password,
      SCOPEKEEPER_KEYSTONE_AUTHTOKEN_PROJECT_NAME: this.service.project,
      SCOPEKEEPER_KEYSTONE_AUTHTOKEN_REGION_NAME: 'RegionOne',
    }
  }

  /** @internal Called by {@link startKeystone}. */
  static async create ({ tls = false, listLimit }: { tls?: boolean, listLimit?: number } = {}): Promise<KeystoneServer> {
    const started = performance.now()
    const dir = mkdtempSync(join(tmpdir(), 'scopekeeper-keystone-'))
    let server: KeystoneServer
    try {
      const files = tls ? { ...await makeCertificates(join(dir, 'tls')), mutualPort: await freePort() } : undefined
      server = new KeystoneServer(dir, await freePort(), 'admin-secret', files, listLimit)
    } catch (error) {
      rmSync(dir, { recursive: true, force: true })
      throw error
    }
    try {
      // uWSGI spends seconds importing Keystone, which needs only the
      // configuration file: let it do so while the database is set up.
      server.writeConfig()
      const serving = server.spawnUwsgi()
      await server.setUp()
      try {
        await server.waitUntilServing(serving, 30_000)
      } catch {
        // Should loading have raced the database set-up, start over on the finished one.
        await server.stop({ keepFiles: true })
        await server.start()
      }
      await server.createUsers()
    } catch (error) {
      await server.stop()
      throw error
    }
    server.startSeconds = (performance.now() - started) / 1000
    return server
  }

  private writeConfig (): void {
    const d = this.dir
    for (const sub of ['fernet-keys', 'receipt-keys', 'credential-keys']) mkdirSync(join(d, sub), { mode: 0o700 })
    // Absolute paths everywhere: anything left relative is looked up in /etc/keystone.
    writeFileSync(this.configFile, [
      '[DEFAULT]',
      `log_file = ${join(d, 'keystone.log')}`,
      '[database]',
      `connection = sqlite:///${join(d, 'keystone.sqlite')}`,
      '[token]',
      'provider = fernet',
      '[fernet_tokens]',
      `key_repository = ${join(d, 'fernet-keys')}`,
      '[fernet_receipts]',
      `key_repository = ${join(d, 'receipt-keys')}`,
      '[credential]',
      `key_repository = ${join(d, 'credential-keys')}`,
      // Without a cache each validation takes about a second.
      '[cache]',
      'enabled = true',
      'backend = dogpile.cache.memory',
      '[identity]',
      'password_hash_rounds = 4',
      // Only projects and domains: users and roles, which this helper lists, stay whole.
      ...(this.listLimit === undefined ? [] : ['[resource]', `list_limit = ${this.listLimit}`]),
      '',
    ].join('\n'))
  }

  private async setUp (): Promise<void> {
    const d = this.dir
    // keystone-manage db_sync, fernet_setup, credential_setup, then WAL, then
    // bootstrap: keystone-manage's own entry point, run in one Python process
    // (each keystone-manage start costs seconds of imports).
    const script = join(d, 'setup.py')
    writeFileSync(script, SETUP_SCRIPT)
    const v3 = `${this.url}/v3/`
    await run(PYTHON, [script, this.configFile, join(d, 'keystone.sqlite'), this.admin.password, v3], childEnv(this.configFile))
  }

  /** Serves Keystone again after {@link stop} with `keepFiles`, and waits until it answers. */
  async start (): Promise<void> {
    await this.waitUntilServing(this.spawnUwsgi())
  }

  private spawnUwsgi (): ChildProcess {
    const t = this.tls
    // --https-socket ADDR,CERT,KEY[,CIPHERS,CLIENT_CA]: a CLIENT_CA written
    // `!FILE` makes a client certificate signed by FILE mandatory.
    const sockets = t === undefined
      ? ['--http-socket', `127.0.0.1:${this.port}`]
      : ['--https-socket', `127.0.0.1:${this.port},${t.serverCert},${t.serverKey}`,
          '--https-socket', `127.0.0.1:${t.mutualPort},${t.serverCert},${t.serverKey},HIGH,!${t.ca}`]
    const child = spawn(UWSGI, [...sockets, '--master', '--processes', '1', '--threads', '1', '--lazy-apps',
      '--wsgi-file', KEYSTONE_WSGI, '--logto', join(this.dir, 'uwsgi.log'),
      // --http-socket closes each connection after its response without
      // saying so; clients that reuse it would then fail now and then.
      '--add-header', 'Connection: close'], {
      env: childEnv(this.configFile), stdio: 'ignore', detached: true,
    })
    this.uwsgi = child
    running.add(child)
    child.once('exit', () => running.delete(child))
    return child
  }

  private async waitUntilServing (child: ChildProcess, timeoutMs = START_TIMEOUT_MS): Promise<void> {
    const deadline = Date.now() + timeoutMs
    while (Date.now() < deadline) {
      if (child.exitCode !== null || child.signalCode !== null) break
      try {
        const res = await this.fetch(`${this.url}/v3`, { signal: AbortSignal.timeout(2000) })
        await res.arrayBuffer()
        if (res.status === 200) return
      } catch { /* not listening yet */ }
      await sleep(100)
    }
    const log = join(this.dir, 'uwsgi.log')
    const tail = existsSync(log) ? readFileSync(log, 'utf8').split('\n').slice(-30).join('\n') : ''
    throw new Error(`Keystone did not answer on ${this.url} within ${timeoutMs / 1000} s; uwsgi log:\n${tail}`)
  }

  /** Stops serving (connections are then refused); with `keepFiles` it can `start()` again. */
  async stop ({ keepFiles = false } = {}): Promise<void> {
    const child = this.uwsgi
    this.uwsgi = undefined
    if (child !== undefined && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve))
      // SIGINT stops uWSGI's master and workers (SIGTERM would reload them).
      try { process.kill(-child.pid!, 'SIGINT') } catch { /* gone */ }
      const stopped = await Promise.race([exited.then(() => true), sleep(10_000, undefined, { ref: false }).then(() => false)])
      if (!stopped) {
        try { process.kill(-child.pid!, 'SIGKILL') } catch { /* gone */ }
        await exited
      }
    }
    if (!keepFiles) await this.closeFetch()
    // TEST_KEYSTONE_KEEP=1 leaves the directory (logs, database) for a post-mortem.
    if (!keepFiles && process.env.TEST_KEYSTONE_KEEP !== '1') rmSync(this.dir, { recursive: true, force: true })
  }

  /** A request to Keystone's API; throws unless the status is one of `expect`. */
  async api (method: string, path: string, { token, body, headers = {}, expect = [200, 201, 204] }: {
    token?: string, body?: unknown, headers?: Record<string, string>, expect?: number[]
  } = {}): Promise<Response> {
    const res = await this.fetch(`${this.url}/v3${path}`, {
      method,
      headers: {
        ...(token === undefined ? {} : { 'x-auth-token': token }),
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...headers,
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    })
    // Read whole: uWSGI's https-socket worker waits for the client to
    // close a connection whose body was left unread (undici then keeps it
    // for its 4 s keep-alive), and serves nobody else meanwhile.
    const content = await res.arrayBuffer()
    if (!expect.includes(res.status)) throw new Error(`Keystone ${method} ${path}: ${res.status} ${Buffer.from(content).toString()}`)
    return new Response([204, 304].includes(res.status) ? null : content, { status: res.status, headers: res.headers })
  }

  /** A fresh project-scoped token for `user`. */
  async token (user: KeystoneUser): Promise<string> {
    const res = await this.api('POST', '/auth/tokens', {
      body: {
        auth: {
          identity: { methods: ['password'], password: { user: { name: user.name, domain: { id: 'default' }, password: user.password } } },
          scope: { project: { name: user.project, domain: { id: 'default' } } },
        },
      },
      expect: [201],
    })
    await res.body?.cancel()
    return res.headers.get('x-subject-token')!
  }

  /**
   * Revokes `token`, then waits past the next second boundary: Keystone
   * rejects tokens issued within the same second as a revocation event.
   */
  async revoke (token: string): Promise<void> {
    await this.api('DELETE', '/auth/tokens', { token: await this.token(this.admin), headers: { 'x-subject-token': token }, expect: [204] })
    await waitPastSecond()
  }

  /** Registers a service and its public, internal and admin endpoints at `url`, in RegionOne. */
  async registerService (type: string, name: string, url: string): Promise<void> {
    const admin = await this.token(this.admin)
    const service = await (await this.api('POST', '/services', { token: admin, body: { service: { type, name } } })).json() as { service: { id: string } }
    for (const iface of ['public', 'internal', 'admin']) {
      await this.api('POST', '/endpoints', { token: admin, body: { endpoint: { service_id: service.service.id, interface: iface, url, region_id: 'RegionOne' } } })
    }
  }

  /**
   * Creates `user` with `role` on its project (made when missing, in domain
   * Default) and returns the project's id. Tokens issued in the same second
   * as a role assignment may not carry it: the caller waits with
   * {@link waitPastSecond} before asking for one.
   */
  async createUser (user: KeystoneUser, role: string): Promise<string> {
    const admin = await this.token(this.admin)
    const { roles } = await (await this.api('GET', `/roles?name=${role}`, { token: admin })).json() as { roles: Array<{ id: string }> }
    const project = await this.ensureProject(user.project, admin)
    const created = await (await this.api('POST', '/users', {
      token: admin, body: { user: { name: user.name, password: user.password, domain_id: 'default', default_project_id: project } },
    })).json() as { user: { id: string } }
    await this.api('PUT', `/projects/${project}/users/${created.user.id}/roles/${roles[0].id}`, { token: admin })
    return project
  }

  /** The id of project `name` in domain Default, made when missing. */
  async projectId (name: string): Promise<string> {
    return await this.ensureProject(name, await this.token(this.admin))
  }

  private async ensureProject (name: string, admin: string): Promise<string> {
    const res = await this.api('POST', '/projects', { token: admin, body: { project: { name, domain_id: 'default' } }, expect: [201, 409] })
    if (res.status === 201) return (await res.json() as { project: { id: string } }).project.id
    await res.body?.cancel()
    const { projects } = await (await this.api('GET', `/projects?name=${name}`, { token: admin })).json() as { projects: Array<{ id: string }> }
    return projects[0].id
  }

  /**
   * Creates project `name` (in `domainId`, default `default`), enabled
   * unless told otherwise, and returns its id; an existing one is a failure.
   */
  async createProject (name: string, { domainId = 'default', enabled = true }: { domainId?: string, enabled?: boolean } = {}): Promise<string> {
    const admin = await this.token(this.admin)
    const res = await this.api('POST', '/projects', { token: admin, body: { project: { name, domain_id: domainId, enabled } }, expect: [201] })
    return (await res.json() as { project: { id: string } }).project.id
  }

  /** Creates domain `name` and returns its id. */
  async createDomain (name: string): Promise<string> {
    const res = await this.api('POST', '/domains', { token: await this.token(this.admin), body: { domain: { name } }, expect: [201] })
    return (await res.json() as { domain: { id: string } }).domain.id
  }

  /** Enables or disables project `id`. */
  async setProjectEnabled (id: string, enabled: boolean): Promise<void> {
    await this.api('PATCH', `/projects/${id}`, { token: await this.token(this.admin), body: { project: { enabled } } })
  }

  /** Deletes project `id`. */
  async deleteProject (id: string): Promise<void> {
    await this.api('DELETE', `/projects/${id}`, { token: await this.token(this.admin), expect: [204] })
  }

  /** Gives user `userName` (domain Default) role `role` on project `projectId`, creating the role when missing. */
  async grantRole (userName: string, projectId: string, role: string): Promise<void> {
    const admin = await this.token(this.admin)
    const { roles } = await (await this.api('GET', `/roles?name=${encodeURIComponent(role)}`, { token: admin })).json() as { roles: Array<{ id: string }> }
    const roleId = roles[0]?.id ?? (await (await this.api('POST', '/roles', { token: admin, body: { role: { name: role } }, expect: [201] })).json() as { role: { id: string } }).role.id
    const { users } = await (await this.api('GET', `/users?name=${encodeURIComponent(userName)}&domain_id=default`, { token: admin })).json() as { users: Array<{ id: string }> }
    await this.api('PUT', `/projects/${projectId}/users/${users[0].id}/roles/${roleId}`, { token: admin })
  }

  private async createUsers (): Promise<void> {
    await this.createUser(this.service, 'admin')
    await this.createUser(this.member, 'member')
    await waitPastSecond()
  }
}

/** Resolves once the wall clock has passed the next whole second. */
export async function waitPastSecond (): Promise<void> {
  const now = Date.now()
  await sleep(1000 - (now % 1000) + 50)
}

/**
 * Starts a real Keystone, set up from scratch in a temporary directory; with
 * `tls`, served over HTTPS (see {@link KeystoneServer.tls}).
 */
export async function startKeystone (options: { tls?: boolean, listLimit?: number } = {}): Promise<KeystoneServer> {
  return await KeystoneServer.create(options)
}
