import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { writeFileSync } from 'node:fs'
import { connect, createServer, type AddressInfo, type Socket } from 'node:net'
import { join } from 'node:path'
import { describe, it, type TestContext } from 'node:test'
import { createSecureContext, TLSSocket } from 'node:tls'
import { sql } from 'kysely'
import { createConnection } from 'mysql2/promise'
import pg from 'pg'
import { pino } from 'pino'
import { ConfigError, loadConfig } from '../../src/config/load-config.ts'
import { openDatabaseFromConfig } from '../../src/server.ts'
import { migrateToLatest } from '../../src/storage/migrate.ts'
import type { OpenDatabase } from '../../src/storage/open-database.ts'
import { tempDir } from '../helpers/build-test-app.ts'
import { deferCleanup } from '../helpers/cleanup.ts'
import { waitFor } from '../helpers/server-process.ts'
import { startTcpProxy } from '../helpers/tcp-proxy.ts'
import { freshDatabaseUrl, testEngines, TEST_MARIADB_URL, TEST_POSTGRES_URL } from '../helpers/test-databases.ts'

// As an operator writes it in cloudkitty.conf: nothing encoded.
const PASSWORD = 'S3cr#t;p@ss:w/rd'

/** The configured database, opened as `serve` opens it; its warning lines are kept. */
function open (t: TestContext, env: Record<string, string>): { database: OpenDatabase, warnings: Array<Record<string, any>> } {
  const warnings: Array<Record<string, any>> = []
  const logger = pino({ level: 'warn' }, { write: (line: string) => { warnings.push(JSON.parse(line)) } })
  const config = loadConfig({ env: { SCOPEKEEPER_DATABASE_RETRY_INTERVAL: '1', SCOPEKEEPER_DATABASE_MAX_RETRIES: '1', ...env } })
  const database = openDatabaseFromConfig(config, logger)
  deferCleanup(t, async () => { await database.close() })
  return { database, warnings }
}

/** Fails with a one-line ConfigError naming the setting and hiding the password. */
async function assertUnusable (promise: Promise<unknown>, reason: RegExp, secret = PASSWORD): Promise<string> {
  const error = await promise.then(() => undefined, (e: unknown) => e)
  assert.ok(error instanceof ConfigError, `a ConfigError, not ${String((error as Error)?.stack ?? error)}`)
  assert.doesNotMatch(error.message, /\n/)
  assert.match(error.message, /^\[database\] connection '[^']*:\*\*\*@/)
  assert.match(error.message, reason)
  assert.ok(!error.message.includes(secret), error.message)
  return error.message
}

function mysqlUrl (base: string, user: string, password: string, database: string, port = 3306, host = '127.0.0.1'): string {
  return `mysql+pymysql://${user}:${password}@${host}:${port}/${database}${base}`
}

async function freePort (): Promise<number> {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  await new Promise((resolve) => server.close(resolve))
  return port
}

/** A MariaDB user with this password on a fresh database; both dropped after the test. */
async function mariadbUser (t: TestContext, password: string): Promise<{ user: string, database: string } | undefined> {
  const url = await freshDatabaseUrl(t, 'mariadb', tempDir(t))
  if (url === undefined) return undefined
  const database = new URL(url).pathname.slice(1)
  const user = `sk_${randomBytes(4).toString('hex')}`
  const admin = await createConnection({ uri: TEST_MARIADB_URL })
  await admin.query('CREATE USER ?@? IDENTIFIED BY ?', [user, '127.0.0.1', password])
  await admin.query(`GRANT ALL ON \`${database}\`.* TO ?@?`, [user, '127.0.0.1'])
  await admin.end()
  deferCleanup(t, async () => {
    const dropper = await createConnection({ uri: TEST_MARIADB_URL })
    await dropper.query('DROP USER IF EXISTS ?@?', [user, '127.0.0.1'])
    await dropper.end()
  })
  return { user, database }
}

/** A PostgreSQL role owning a fresh database; both dropped after the test. */
async function postgresRole (t: TestContext): Promise<{ role: string, database: string } | undefined> {
  const role = `sk_${randomBytes(4).toString('hex')}`
  const admin = new pg.Client({ connectionString: TEST_POSTGRES_URL })
  try {
    await admin.connect()
  } catch {
    // freshDatabaseUrl skips, or fails under CI=true, with the reason.
    await freshDatabaseUrl(t, 'postgres', tempDir(t))
    return undefined
  }
  await admin.query(`CREATE ROLE ${role} LOGIN`)
  await admin.end()
  // Registered first, so it runs after the database is dropped.
  deferCleanup(t, async () => {
    const dropper = new pg.Client({ connectionString: TEST_POSTGRES_URL })
    await dropper.connect()
    await dropper.query(`DROP ROLE IF EXISTS ${role}`)
    await dropper.end()
  })
  const url = await freshDatabaseUrl(t, 'postgres', tempDir(t))
  if (url === undefined) return undefined
  const database = new URL(url).pathname.slice(1)
  const owner = new pg.Client({ connectionString: TEST_POSTGRES_URL })
  await owner.connect()
  await owner.query(`ALTER DATABASE ${database} OWNER TO ${role}`)
  await owner.end()
  return { role, database }
}

interface PostgresFront {
  port: number
  /** TLS handshakes completed. */
  tlsSessions: number
  /** The subject CN of each client certificate presented. */
  clientCertificates: string[]
  /** Each password a client sent. */
  passwords: string[]
}

/**
 * A front for the local PostgreSQL, which has neither TLS nor password
 * authentication (its pg_hba trusts 127.0.0.1, and it is shared): it
 * answers the client's SSLRequest itself ('S' and a TLS handshake with
 * `tls`, 'N' without), fakes a cleartext password check when `password` is
 * given (the client's password must equal it), then forwards the startup
 * message and the rest to the real server.
 */
async function startFakePostgresFront (t: TestContext, options: { tls?: { cert: Buffer, key: Buffer, ca?: Buffer }, password?: string }): Promise<PostgresFront> {
  const front: PostgresFront = { port: 0, tlsSessions: 0, clientCertificates: [], passwords: [] }
  const sockets = new Set<Socket>()
  const secureContext = options.tls === undefined ? undefined : createSecureContext(options.tls)
  const serve = async (raw: Socket) => {
    let stream: Socket = raw
    let buffered = Buffer.alloc(0)
    let wake: (() => void) | undefined
    const onData = (chunk: Buffer) => { buffered = Buffer.concat([buffered, chunk]); wake?.() }
    const read = async (n: number): Promise<Buffer> => {
      while (buffered.length < n) await new Promise<void>((resolve) => { wake = resolve })
      const out = buffered.subarray(0, n)
      buffered = buffered.subarray(n)
      return out
    }
    const untyped = async () => { const head = await read(4); return Buffer.concat([head, await read(head.readInt32BE(0) - 4)]) }
    stream.on('data', onData)
    let startup = await untyped()
    const code = startup.readInt32BE(4)
    if (code === 80877103) {
      if (secureContext === undefined) {
        raw.write('N')
      } else {
        raw.removeListener('data', onData)
        raw.write('S')
        const secure = new TLSSocket(raw, { isServer: true, secureContext, requestCert: options.tls?.ca !== undefined, rejectUnauthorized: false })
        sockets.add(secure)
        await once(secure, 'secure')
        front.tlsSessions++
        const peer = secure.getPeerCertificate()
        if (peer?.subject?.CN !== undefined) front.clientCertificates.push(String(peer.subject.CN))
        stream = secure
        stream.on('data', onData)
      }
      startup = await untyped()
    }
    if (options.password !== undefined) {
      stream.write(Buffer.from([0x52, 0, 0, 0, 8, 0, 0, 0, 3]))
      await read(1)
      const message = await untyped()
      const password = message.subarray(4, message.length - 1).toString('utf8')
      front.passwords.push(password)
      if (password !== options.password) {
        const fields = Buffer.from('SFATAL\0VFATAL\0C28P01\0Mpassword authentication failed (fake check)\0\0')
        const error = Buffer.alloc(5)
        error.write('E')
        error.writeInt32BE(4 + fields.length, 1)
        stream.end(Buffer.concat([error, fields]))
        return
      }
    }
    stream.removeListener('data', onData)
    const upstream = connect(5432, '127.0.0.1')
    sockets.add(upstream)
    upstream.on('error', () => stream.destroy())
    upstream.write(startup)
    if (buffered.length > 0) upstream.write(buffered)
    stream.pipe(upstream).pipe(stream)
  }
  const server = createServer((socket) => {
    sockets.add(socket)
    socket.on('error', () => {})
    socket.on('close', () => sockets.delete(socket))
    serve(socket).catch(() => socket.destroy())
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  front.port = (server.address() as AddressInfo).port
  deferCleanup(t, async () => {
    for (const s of sockets) s.destroy()
    await new Promise((resolve) => server.close(resolve))
  })
  return front
}

/** A CA, a server certificate it signs for DNS:localhost only, a client certificate, and a CA that signed nothing. */
function certificates (dir: string) {
  const run = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' })
  run('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=scopekeeper test CA', '-keyout', 'ca.key', '-out', 'ca.pem')
  run('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=unrelated CA', '-keyout', 'other.key', '-out', 'other.pem')
  writeFileSync(join(dir, 'san.cnf'), 'subjectAltName=DNS:localhost\n')
  run('req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-keyout', 'server.key', '-out', 'server.csr')
  run('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2', '-extfile', 'san.cnf', '-out', 'server.pem')
  run('req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=scopekeeper client', '-keyout', 'client.key', '-out', 'client.csr')
  run('x509', '-req', '-in', 'client.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2', '-out', 'client.pem')
  return { dir, ca: join(dir, 'ca.pem'), other: join(dir, 'other.pem'), serverCert: join(dir, 'server.pem'), serverKey: join(dir, 'server.key'), clientCert: join(dir, 'client.pem'), clientKey: join(dir, 'client.key') }
}

async function currentUser (database: OpenDatabase): Promise<string> {
  const { rows } = await sql<{ user: string }>`SELECT CURRENT_USER AS ${sql.ref('user')}`.execute(database.db)
  return String(rows[0].user)
}

const engines = testEngines()

describe('mariadb: the database URL as kolla-ansible and operators write it', { skip: engines.includes('mariadb') ? false : 'mariadb is not in TEST_ENGINES' }, () => {
  it('connects with an unencoded password holding # ; : / and @, read from a cloudkitty.conf', async (t) => {
    const made = await mariadbUser(t, PASSWORD)
    if (made === undefined) return
    const file = join(tempDir(t), 'cloudkitty.conf')
    writeFileSync(file, `[database]\nconnection = ${mysqlUrl('?charset=utf8', made.user, PASSWORD, made.database)}\nmax_retries = 1\n`)
    const database = openDatabaseFromConfig(loadConfig({ file, env: {} }), pino({ level: 'silent' }))
    deferCleanup(t, async () => { await database.close() })
    await migrateToLatest(database)
    assert.match(await currentUser(database), new RegExp(`^${made.user}@`))
    // ?charset=utf8 still talks utf8mb4, so 4-byte characters travel.
    const { rows } = await sql<{ charset: string, text: string }>`SELECT @@character_set_connection AS charset, ${'scope 😀'} AS text`.execute(database.db)
    assert.deepEqual(rows[0], { charset: 'utf8mb4', text: 'scope 😀' })
    assert.ok(!database.description.includes('S3cr'), database.description)
  })

  it('connects with the password percent-encoded, and refuses a wrong one in one line', async (t) => {
    const made = await mariadbUser(t, PASSWORD)
    if (made === undefined) return
    const encoded = encodeURIComponent(PASSWORD)
    const { database } = open(t, { SCOPEKEEPER_DATABASE_URL: mysqlUrl('', made.user, encoded, made.database) })
    await migrateToLatest(database)
    assert.match(await currentUser(database), new RegExp(`^${made.user}@`))
    const wrong = open(t, { SCOPEKEEPER_DATABASE_URL: mysqlUrl('', made.user, `${PASSWORD}x`, made.database) })
    await assertUnusable(migrateToLatest(wrong.database), /cannot connect: Access denied/)
    assert.equal(wrong.warnings.length, 0, 'a refused password is not retried')
  })

  it('connects to an IPv6 address in brackets', async (t) => {
    const made = await mariadbUser(t, PASSWORD)
    if (made === undefined) return
    const server = createServer((client) => {
      const upstream = connect(3306, '127.0.0.1')
      for (const s of [client, upstream]) s.on('error', () => {})
      client.pipe(upstream).pipe(client)
      deferCleanup(t, () => { client.destroy(); upstream.destroy() })
    })
    server.listen(0, '::1')
    const listening = await Promise.race([once(server, 'listening').then(() => true), once(server, 'error').then(() => false)])
    if (!listening) { t.skip('no IPv6 loopback here'); return }
    deferCleanup(t, async () => { await new Promise((resolve) => server.close(resolve)) })
    const { port } = server.address() as AddressInfo
    const { database } = open(t, { SCOPEKEEPER_DATABASE_URL: mysqlUrl('', made.user, PASSWORD, made.database, port, '[::1]') })
    // The grant is for 127.0.0.1, which is what the server sees of the proxy.
    assert.match(await currentUser(database), new RegExp(`^${made.user}@`))
  })

  it('refuses an ssl_ca it cannot read, and a server without TLS when ssl_ca asks for it, in one line', async (t) => {
    const made = await mariadbUser(t, PASSWORD)
    if (made === undefined) return
    assert.throws(() => open(t, { SCOPEKEEPER_DATABASE_URL: mysqlUrl('?ssl_ca=/nonexistent', made.user, PASSWORD, made.database) }), (error: Error) => {
      assert.ok(error instanceof ConfigError)
      assert.equal(error.message, `[database] connection 'mysql+pymysql://${made.user}:***@127.0.0.1:3306/${made.database}?ssl_ca=/nonexistent': cannot read ssl_ca /nonexistent: no such file`)
      return true
    })
    // This MariaDB has no TLS: PyMySQL would go on in plain text; we stop.
    const { ca } = certificates(tempDir(t))
    const { database } = open(t, { SCOPEKEEPER_DATABASE_URL: mysqlUrl(`?ssl_ca=${ca}`, made.user, PASSWORD, made.database) })
    await assertUnusable(migrateToLatest(database), /the server does not offer TLS/)
  })

  it('gives up after max_retries attempts at a closed port, one warning line per retried attempt', async (t) => {
    const port = await freePort()
    const { database, warnings } = open(t, { SCOPEKEEPER_DATABASE_URL: mysqlUrl('', 'ck', PASSWORD, 'ck', port), SCOPEKEEPER_DATABASE_MAX_RETRIES: '2' })
    const message = await assertUnusable(migrateToLatest(database), /cannot connect after 2 attempts \(\[database\] max_retries = 2\): .*ECONNREFUSED/)
    assert.ok(message.startsWith(`[database] connection 'mysql+pymysql://ck:***@127.0.0.1:${port}/ck': `), message)
    assert.equal(warnings.length, 1)
    assert.deepEqual({ ...warnings[0], time: undefined, pid: undefined, hostname: undefined, reason: undefined }, {
      level: 40, database: `mysql+pymysql://ck:***@127.0.0.1:${port}/ck`, attempt: 1, attempts: 2,
      msg: 'database connection failed; retrying in 1 s', time: undefined, pid: undefined, hostname: undefined, reason: undefined,
    })
    assert.match(warnings[0].reason, /ECONNREFUSED/)
    assert.ok(!JSON.stringify(warnings).includes('S3cr'))
  })

  it('connects to a server that appears while it retries, with max_retries = -1 as kolla writes', async (t) => {
    const made = await mariadbUser(t, PASSWORD)
    if (made === undefined) return
    const proxy = await startTcpProxy(t, '127.0.0.1', 3306)
    await proxy.cut()
    const { database, warnings } = open(t, { SCOPEKEEPER_DATABASE_URL: mysqlUrl('', made.user, PASSWORD, made.database, proxy.port), SCOPEKEEPER_DATABASE_MAX_RETRIES: '-1' })
    setTimeout(() => { void proxy.restore() }, 1500)
    await migrateToLatest(database)
    assert.ok(warnings.length >= 1, 'the refused attempts were logged')
    assert.ok(warnings.every((w) => w.attempts === 'unlimited' && w.database.includes(':***@')))
    assert.match(await currentUser(database), new RegExp(`^${made.user}@`))
  })

  it('replaces a pooled connection older than connection_recycle_time', async (t) => {
    const made = await mariadbUser(t, PASSWORD)
    if (made === undefined) return
    const { database } = open(t, { SCOPEKEEPER_DATABASE_URL: mysqlUrl('', made.user, PASSWORD, made.database), SCOPEKEEPER_DATABASE_CONNECTION_RECYCLE_TIME: '1' })
    const connectionId = async () => Number((await sql<{ id: number }>`SELECT CONNECTION_ID() AS id`.execute(database.db)).rows[0].id)
    const first = await connectionId()
    assert.equal(await connectionId(), first, 'a young connection is reused')
    await new Promise((resolve) => setTimeout(resolve, 1200))
    const second = await connectionId()
    assert.notEqual(second, first)
    assert.equal(await connectionId(), second)
    // The old one was closed, not left open.
    const admin = await createConnection({ uri: TEST_MARIADB_URL })
    deferCleanup(t, async () => { await admin.end() })
    await waitFor(async () => {
      const [rows] = await admin.query('SELECT COUNT(*) AS n FROM information_schema.processlist WHERE id = ?', [first])
      return Number((rows as Array<{ n: number }>)[0].n) === 0
    }, 10_000, 'the recycled connection to close')
  })
})

describe('postgres: the database URL as kolla-ansible and operators write it', { skip: engines.includes('postgres') ? false : 'postgres is not in TEST_ENGINES' }, () => {
  const url = (role: string, password: string, port: number, database: string, query = '', host = '127.0.0.1') =>
    `postgresql+psycopg2://${role}:${password}@${host}:${port}/${database}${query}`

  it('sends an unencoded password holding # ; : / and @ whole, and a percent-encoded one decoded', async (t) => {
    const made = await postgresRole(t)
    if (made === undefined) return
    const front = await startFakePostgresFront(t, { password: PASSWORD })
    for (const written of [PASSWORD, encodeURIComponent(PASSWORD)]) {
      const { database } = open(t, { SCOPEKEEPER_DATABASE_URL: url(made.role, written, front.port, made.database) })
      await migrateToLatest(database)
      assert.equal(await currentUser(database), made.role)
    }
    assert.deepEqual(new Set(front.passwords), new Set([PASSWORD]))
    const wrong = open(t, { SCOPEKEEPER_DATABASE_URL: url(made.role, `${PASSWORD}x`, front.port, made.database) })
    await assertUnusable(migrateToLatest(wrong.database), /cannot connect: password authentication failed/)
    assert.equal(wrong.warnings.length, 0)
  })

  it('refuses sslmode=require in one line when the server has no TLS, and falls back to plain for prefer and allow', async (t) => {
    const made = await postgresRole(t)
    if (made === undefined) return
    const required = open(t, { SCOPEKEEPER_DATABASE_URL: url(made.role, PASSWORD, 5432, made.database, '?sslmode=require') })
    await assertUnusable(migrateToLatest(required.database), /the server does not offer TLS, which sslmode=require asks for/)
    for (const query of ['', '?sslmode=prefer', '?sslmode=allow', '?sslmode=disable']) {
      const { database } = open(t, { SCOPEKEEPER_DATABASE_URL: url(made.role, PASSWORD, 5432, made.database, query) })
      assert.equal(await currentUser(database), made.role, query)
    }
  })

  it('gives sslmode libpq\'s meanings against a server with TLS', async (t) => {
    const made = await postgresRole(t)
    if (made === undefined) return
    const files = certificates(tempDir(t))
    const { readFileSync } = await import('node:fs')
    const front = await startFakePostgresFront(t, { tls: { cert: readFileSync(files.serverCert), key: readFileSync(files.serverKey), ca: readFileSync(files.ca) } })
    const attempt = async (query: string, host = '127.0.0.1') => {
      const { database } = open(t, { SCOPEKEEPER_DATABASE_URL: url(made.role, PASSWORD, front.port, made.database, query, host) })
      const before = front.tlsSessions
      await migrateToLatest(database)
      assert.equal(await currentUser(database), made.role)
      return front.tlsSessions - before
    }
    // prefer (the default) and require encrypt without verifying anything.
    assert.ok(await attempt('') >= 1)
    assert.ok(await attempt('?sslmode=require') >= 1)
    assert.equal(await attempt('?sslmode=disable'), 0)
    assert.equal(await attempt('?sslmode=allow'), 0)
    // verify-ca checks the chain, not the name; verify-full both.
    assert.ok(await attempt(`?sslmode=verify-ca&sslrootcert=${files.ca}`) >= 1)
    assert.ok(await attempt(`?sslmode=verify-full&sslrootcert=${files.ca}`, 'localhost') >= 1)
    const misnamed = open(t, { SCOPEKEEPER_DATABASE_URL: url(made.role, PASSWORD, front.port, made.database, `?sslmode=verify-full&sslrootcert=${files.ca}`) })
    await assertUnusable(migrateToLatest(misnamed.database), /cannot connect: TLS: .*(IP|altnames)/i)
    for (const query of [`?sslmode=verify-ca&sslrootcert=${files.other}`, `?sslmode=require&sslrootcert=${files.other}`]) {
      const untrusted = open(t, { SCOPEKEEPER_DATABASE_URL: url(made.role, PASSWORD, front.port, made.database, query) })
      await assertUnusable(migrateToLatest(untrusted.database), /cannot connect: TLS: /)
    }
    // A client certificate is presented when given.
    await attempt(`?sslmode=require&sslcert=${files.clientCert}&sslkey=${files.clientKey}`)
    assert.deepEqual(front.clientCertificates, ['scopekeeper client'])
  })

  it('replaces a pooled connection older than connection_recycle_time', async (t) => {
    const made = await postgresRole(t)
    if (made === undefined) return
    const { database } = open(t, { SCOPEKEEPER_DATABASE_URL: url(made.role, PASSWORD, 5432, made.database), SCOPEKEEPER_DATABASE_CONNECTION_RECYCLE_TIME: '1' })
    const backendPid = async () => Number((await sql<{ pid: number }>`SELECT pg_backend_pid() AS pid`.execute(database.db)).rows[0].pid)
    const first = await backendPid()
    assert.equal(await backendPid(), first, 'a young connection is reused')
    await new Promise((resolve) => setTimeout(resolve, 1200))
    const second = await backendPid()
    assert.notEqual(second, first)
    const admin = new pg.Client({ connectionString: TEST_POSTGRES_URL })
    await admin.connect()
    deferCleanup(t, async () => { await admin.end() })
    await waitFor(async () => (await admin.query('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [first])).rowCount === 0, 10_000, 'the recycled connection to close')
  })

  it('gives up after max_retries attempts at a closed port', async (t) => {
    const port = await freePort()
    const { database, warnings } = open(t, { SCOPEKEEPER_DATABASE_URL: url('ck', PASSWORD, port, 'ck'), SCOPEKEEPER_DATABASE_MAX_RETRIES: '2' })
    await assertUnusable(migrateToLatest(database), /cannot connect after 2 attempts .*ECONNREFUSED/)
    assert.equal(warnings.length, 1)
  })
})
