import { readdirSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { userInfo } from 'node:os'
import { join } from 'node:path'
import type * as Mysql from 'mysql2/promise'
import type { Connection, ConnectionOptions, RowDataPacket, SslOptions } from 'mysql2/promise'
import type { Coordinator, HeldLocks } from './coordinator.ts'
import { SessionPool } from './session-pool.ts'
import { ToozUrlError, type ToozUrl } from './tooz-url.ts'

// mysql2 is loaded when a URL first names mysql://.
const require = createRequire(import.meta.url)

function readOptionFile (option: string, path: string): Buffer {
  try {
    return readFileSync(path)
  } catch (error) {
    throw new ToozUrlError(`cannot read the ${option} file ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`)
  }
}

/**
 * pymysql's TLS settings from tooz's `ssl_*` options (`tooz/drivers/mysql.py`
 * `MySQLDriver.get_connection` builds the `ssl` dict; pymysql's
 * `Connection.__init__` turns TLS on for any non-empty dict and
 * `_create_ssl_ctx` decides verification): with `ssl_ca` or `ssl_capath`
 * the certificate and (unless `ssl_check_hostname` is false) the host name
 * are checked; without, neither is, unless `ssl_verify_mode` asks.
 */
function sslOptions (options: ReadonlyMap<string, string>): SslOptions | undefined {
  const get = (name: string): string | undefined => options.get(`ssl_${name}`)
  const checkHostnameText = get('check_hostname')?.toLowerCase()
  const checkHostnameOption = checkHostnameText === undefined
    ? undefined
    : ['true', '1', 'yes'].includes(checkHostnameText) ? true : ['false', '0', 'no'].includes(checkHostnameText) ? false : undefined
  const given = ['ca', 'capath', 'cert', 'key', 'cipher', 'verify_mode'].some((name) => get(name) !== undefined) || checkHostnameOption !== undefined
  if (!given) return undefined
  const caFile = get('ca')
  const caPath = get('capath')
  const hasNoCa = caFile === undefined && caPath === undefined
  const checkHostname = !hasNoCa && (checkHostnameOption ?? true)
  const verifyMode = get('verify_mode')?.toLowerCase()
  let verify = !hasNoCa
  if (verifyMode !== undefined) {
    if (['none', '0', 'false', 'no'].includes(verifyMode)) verify = false
    else if (['optional', 'required', '1', 'true', 'yes'].includes(verifyMode)) verify = true
  }
  // Python's ssl refuses this pair: pymysql's connect would raise.
  if (checkHostname && !verify) throw new ToozUrlError('ssl_verify_mode none needs ssl_check_hostname=false too (pymysql raises "Cannot set verify_mode to CERT_NONE when check_hostname is enabled")')
  const ca: Buffer[] = []
  if (caFile !== undefined) ca.push(readOptionFile('ssl_ca', caFile))
  if (caPath !== undefined) {
    // An OpenSSL hashed directory: <hash>.<n> files, as `c_rehash` writes them.
    let entries: string[]
    try {
      entries = readdirSync(caPath).filter((entry) => /^[0-9a-f]{8}\.[0-9]+$/.test(entry)).sort()
    } catch (error) {
      throw new ToozUrlError(`cannot read the ssl_capath directory ${caPath}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`)
    }
    for (const entry of entries) ca.push(readOptionFile('ssl_capath', join(caPath, entry)))
  }
  const certFile = get('cert')
  const keyFile = get('key')
  const cipher = get('cipher')
  return {
    ...(ca.length > 0 ? { ca } : {}),
    // load_cert_chain(cert, keyfile=key): a key without a cert is ignored,
    // and a cert file may carry its key.
    ...(certFile !== undefined ? { cert: readOptionFile('ssl_cert', certFile), key: readOptionFile(keyFile !== undefined ? 'ssl_key' : 'ssl_cert', keyFile ?? certFile) } : {}),
    ...(cipher !== undefined ? { ciphers: cipher } : {}),
    rejectUnauthorized: verify,
    verifyIdentity: checkHostname,
  }
}

/**
 * Connection settings as tooz's `MySQLDriver.get_connection` hands them to
 * pymysql: host (pymysql defaults it to localhost), port (3306), user
 * (pymysql defaults it to the OS user), password and database exactly as
 * written in the URL (tooz does not percent-decode them), the
 * `unix_socket` option, and the `ssl_*` options.
 */
export function mysqlConnectionOptions (url: ToozUrl): ConnectionOptions {
  const database = url.path.slice(1)
  const socketPath = url.options.get('unix_socket')
  const ssl = sslOptions(url.options)
  return {
    ...(socketPath !== undefined ? { socketPath } : { host: url.hostname ?? 'localhost', port: url.port ?? 3306 }),
    user: url.username !== undefined && url.username !== '' ? url.username : userInfo().username,
    password: url.password ?? '',
    ...(database !== '' ? { database } : {}),
    // pymysql's default character set.
    charset: 'utf8mb4',
    ...(ssl !== undefined ? { ssl } : {}),
  }
}

/** Several named locks per session need MySQL 5.7.5 or MariaDB 10.0.2; before, each GET_LOCK dropped the previous one. */
function canHoldSeveral (version: string): boolean {
  const [major = 0, minor = 0, patch = 0] = (/^(\d+)\.(\d+)\.(\d+)/.exec(version) ?? []).slice(1).map(Number)
  const at = major * 10_000 + minor * 100 + patch
  return /mariadb/i.test(version) ? at >= 10_00_02 : at >= 5_07_05
}

/**
 * tooz's MySQL driver: a lock is `GET_LOCK(name, 0)` on a connection of its
 * own, released by `RELEASE_LOCK(name)` (`tooz/drivers/mysql.py`
 * `MySQLLock.acquire` and `release`; a NULL answer is not taken). A batch is
 * one statement on one dedicated session, whose answer is one column (a
 * select list of hundreds of columns sends V8 into minutes of compiling
 * mysql2's row parser); each holder has a session of its own, since a
 * session re-taking its own lock succeeds.
 */
export class MysqlCoordinator implements Coordinator {
  private readonly pool: SessionPool<Connection>

  constructor (private readonly options: ConnectionOptions, readonly description: string) {
    const mysql = require('mysql2/promise') as typeof Mysql
    this.pool = new SessionPool(async () => {
      const connection = await mysql.createConnection(this.options)
      // A session the server drops fails its next query; without a listener the error would be thrown.
      connection.on('error', () => {})
      const [rows] = await connection.query<Array<{ v: string } & RowDataPacket>>('SELECT VERSION() AS v')
      if (!canHoldSeveral(rows[0].v)) {
        await connection.end().catch(() => {})
        throw new Error(`${rows[0].v} holds one named lock per session; tooz's locks need MySQL 5.7.5 or MariaDB 10.0.2 here`)
      }
      return connection
    }, async (connection) => { connection.destroy() })
  }

  async tryLock (names: readonly string[]): Promise<HeldLocks> {
    const unique = [...new Set(names)]
    if (unique.length === 0) return { held: new Set(), release: async () => {} }
    const { session, result: answers } = await this.pool.withSession(async (connection) => {
      try {
        const [rows] = await connection.query<Array<{ r: string } & RowDataPacket>>(
          `SELECT CONCAT(${unique.map(() => "IFNULL(GET_LOCK(?, 0), 'E')").join(', ')}) AS r`, unique)
        return rows[0].r
      } catch (error) {
        // Some may have been taken before the failure: ending the session drops them.
        connection.destroy()
        throw error
      }
    })
    const held = new Set(unique.filter((_, i) => answers[i] === '1'))
    const release = this.pool.releaser(session, async () => {
      if (held.size > 0) await session.query(`SELECT CONCAT(${[...held].map(() => "IFNULL(RELEASE_LOCK(?), 'E')").join(', ')}) AS r`, [...held])
    })
    return { held, release }
  }

  /** Ends every session; the server releases the locks they still held. */
  async close (): Promise<void> {
    await this.pool.close()
  }
}
