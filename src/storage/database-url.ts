import { readFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { X509Certificate } from 'node:crypto'
import { createSecureContext } from 'node:tls'
import { ConfigError } from '../config/load-config.ts'

/** The setting a database URL comes from, named as cloudkitty.conf names it. */
export const DATABASE_URL_SETTING = '[database] connection'

/** A query parameter's value; a parameter given more than once keeps every value, in order. */
export type QueryValue = string | string[]

/**
 * A database URL read as SQLAlchemy's `make_url` reads it
 * (`sqlalchemy/engine/url.py`, `_parse_url`, 1.4 and 2.0 alike):
 * `dialect[+driver]://user:password@host:port/database?query`.
 *
 * `username` and `password` are percent-decoded; `host` and `database` are
 * kept as written (SQLAlchemy decodes the database only from 2.1 on); the
 * query is read by Python's `parse_qsl` (`+` is a space, `%XX` decoded,
 * parameters without a value dropped).
 */
export interface DatabaseUrl {
  /** The URL as written. */
  text: string
  /** The backend, lower-cased: `mysql`, `mariadb`, `postgresql`, `postgres`, `sqlite`… */
  dialect: string
  /** The DBAPI after `+` (`pymysql`, `psycopg2`…); accepted and otherwise ignored. */
  driver: string | undefined
  username: string | undefined
  password: string | undefined
  /** An IPv6 address without its brackets. */
  host: string | undefined
  port: number | undefined
  database: string | undefined
  query: Record<string, QueryValue>
}

interface Reading extends DatabaseUrl {
  /** Where the password is written in `text`, to mask it. */
  passwordSpan: [number, number] | undefined
  /** The raw query string, undefined without `?`. */
  rawQuery: string | undefined
  /** Where the raw query starts in `text`. */
  queryAt: number
}

// sqlalchemy/engine/url.py, _parse_url, split in two: the userinfo, then
// the rest. The rest always matches (every part is optional and the pattern
// has no end anchor), so the split changes nothing. Python's `\w` also takes
// non-ASCII letters; a dialect so named is unsupported either way.
const SCHEME = /^([\w+]+):\/\//
const USERINFO = /^([^:/]*)(?::([^@]*))?@/
// Python's `.` stops at a newline only: `[^\n]`.
const HOST_PART = /^(?:(?:\[([^/?]+)\]|([^/:?]+))?(?::([^/?]*))?)?(?:\/([^?]*))?(?:\?([^\n]*))?/

// What Python's int() accepts of ASCII text (the port: int(components["port"])).
const PYTHON_INT = /^\s*[+-]?\d+(?:_\d+)*\s*$/

const utf8 = new TextDecoder('utf-8', { ignoreBOM: true })

/**
 * Python's `urllib.parse.unquote` (what SQLAlchemy applies to the user and
 * the password): each run of ASCII characters has its `%XX` decoded to bytes,
 * read as UTF-8 with U+FFFD for bad sequences; a `%` not followed by two hex
 * digits stays; other characters are kept as they are.
 */
export function pythonUnquote (text: string): string {
  if (!text.includes('%')) return text
  return text.replace(/[\x00-\x7f]+/g, (run) => {
    const bytes: number[] = []
    for (let i = 0; i < run.length; i++) {
      if (run[i] === '%' && /^[0-9a-fA-F]{2}$/.test(run.slice(i + 1, i + 3))) {
        bytes.push(parseInt(run.slice(i + 1, i + 3), 16))
        i += 2
      } else {
        bytes.push(run.charCodeAt(i))
      }
    }
    return utf8.decode(Uint8Array.from(bytes))
  })
}

/** Python's `urllib.parse.parse_qsl` as SQLAlchemy calls it: `&` only, blank values dropped. */
function parseQsl (query: string): Record<string, QueryValue> {
  const result: Record<string, QueryValue> = {}
  for (const item of query.split('&')) {
    const eq = item.indexOf('=')
    if (eq < 0 || eq === item.length - 1) continue
    const name = pythonUnquote(item.slice(0, eq).replaceAll('+', ' '))
    const value = pythonUnquote(item.slice(eq + 1).replaceAll('+', ' '))
    const previous = result[name]
    result[name] = previous === undefined ? value : [...(Array.isArray(previous) ? previous : [previous]), value]
  }
  return result
}

type HostPart = Pick<Reading, 'host' | 'port' | 'database' | 'query' | 'rawQuery' | 'queryAt'> & { problem: string | undefined }

function readHostPart (text: string, at: number): HostPart {
  const m = HOST_PART.exec(text.slice(at))!
  const [, ipv6, ipv4, rawPort, database, rawQuery] = m
  let port: number | undefined
  let problem: string | undefined
  if (rawPort !== undefined) {
    // SQLAlchemy: `if components["port"]: int(...)`, and URL.create refuses
    // the empty string that is left otherwise.
    const n = PYTHON_INT.test(rawPort) ? Number(rawPort.trim().replaceAll('_', '')) : NaN
    if (Number.isInteger(n) && n >= 1 && n <= 65535) port = n
    else problem = 'the port is not a number from 1 to 65535'
  }
  // SQLAlchemy's pattern is not anchored at the end: what it leaves over
  // (after a bracketed host, say) is silently dropped, so such a reading is
  // not what was meant either.
  if (problem === undefined && at + m[0].length < text.length) problem = 'text follows the host that SQLAlchemy would drop'
  const host = ipv4 ?? ipv6
  const queryAt = rawQuery === undefined ? text.length : at + m[0].length - rawQuery.length
  return { host, port, database, query: rawQuery === undefined ? {} : parseQsl(rawQuery), rawQuery, queryAt, problem }
}

// The parts an unencoded '@' of a password spills into when SQLAlchemy ends
// the password at its first '@': no host name, database name or parameter
// name holds an '@', so a reading that puts one there is not what was meant.
function spilledAt (part: HostPart): string | undefined {
  if (part.problem !== undefined) return part.problem
  if (part.host?.includes('@') === true) return "the host would hold an '@'"
  if (part.database?.includes('@') === true) return "the database name would hold an '@'"
  if (part.rawQuery?.split('&').some((item) => item.split('=', 1)[0].includes('@')) === true) return "a parameter name would hold an '@'"
  return undefined
}

/**
 * Reads a URL, or says why it cannot be read. SQLAlchemy's reading comes
 * first: a URL that CloudKitty reads into a usable host, port and database
 * means the same here. SQLAlchemy ends the password at its first `@`, so an
 * unencoded `@` in a password makes it read a host holding an `@`, a port
 * that is not a number or a database holding an `@`: CloudKitty cannot
 * connect with that reading. Only then does the password run on to the next
 * `@`, until what follows reads as host[:port][/database][?query].
 */
function readUrl (text: string): Reading | { problem: string } {
  const scheme = SCHEME.exec(text)
  if (scheme === null) return { problem: 'it does not start with dialect[+driver]://' }
  const [dialect, driver] = scheme[1].toLowerCase().split('+')
  const start = scheme[0].length
  const base = { text, dialect, driver }
  const userinfo = USERINFO.exec(text.slice(start))
  const hostAt = userinfo === null ? start : start + userinfo[0].length
  const sqlalchemys = readHostPart(text, hostAt)
  const spilled = spilledAt(sqlalchemys)
  // SQLite's "host part" is a path: it is taken as it stands.
  if (spilled === undefined || dialect === 'sqlite') {
    if (sqlalchemys.problem !== undefined) return { problem: sqlalchemys.problem }
    const password = userinfo?.[2]
    const passwordAt = start + (userinfo?.[1].length ?? 0) + 1
    return {
      ...base,
      ...sqlalchemys,
      username: userinfo === null ? undefined : pythonUnquote(userinfo[1]),
      password: password === undefined ? undefined : pythonUnquote(password),
      passwordSpan: password === undefined ? undefined : [passwordAt, passwordAt + password.length],
    }
  }
  for (let at = text.indexOf('@', hostAt); at >= 0; at = text.indexOf('@', at + 1)) {
    const part = readHostPart(text, at + 1)
    if (spilledAt(part) !== undefined) continue
    const info = text.slice(start, at)
    const colon = info.indexOf(':')
    return {
      ...base,
      ...part,
      username: pythonUnquote(colon < 0 ? info : info.slice(0, colon)),
      password: colon < 0 ? undefined : pythonUnquote(info.slice(colon + 1)),
      passwordSpan: colon < 0 ? undefined : [start + colon + 1, at],
    }
  }
  return { problem: text.includes('@', hostAt) ? `${spilled}; percent-encode an '@' in the password as %40` : spilled }
}

// Query parameters whose value is a secret.
const SECRET_PARAMETERS = new Set(['password', 'sslpassword', 'ssl_key_password'])

function maskSecretParameters (text: string, queryAt: number): string {
  if (queryAt >= text.length) return text
  const query = text.slice(queryAt).split('&').map((item) => {
    const eq = item.indexOf('=')
    return eq >= 0 && SECRET_PARAMETERS.has(pythonUnquote(item.slice(0, eq).replaceAll('+', ' '))) ? `${item.slice(0, eq)}=***` : item
  })
  return text.slice(0, queryAt) + query.join('&')
}

/**
 * Where in `text` the password may be written, and whether that is its
 * exact extent. The reading's password is exact unless a parameter value
 * after it holds an `@`: an unencoded password cannot then be told from the
 * host, database and parameters up to the last `@` (SQLAlchemy would read
 * them as such, and try to connect with them). A URL that cannot be read
 * may hold one from the first `:` after `//` to the last `@`.
 */
function passwordSpan (text: string, reading: Reading | { problem: string }): { span: [number, number] | undefined, isExact: boolean } {
  const last = text.lastIndexOf('@')
  if (!('text' in reading)) {
    const from = text.indexOf('://') < 0 ? 0 : text.indexOf('://') + 3
    const colon = text.indexOf(':', from)
    return { span: colon >= 0 && last > colon ? [colon + 1, last] : undefined, isExact: false }
  }
  if (reading.passwordSpan === undefined) return { span: undefined, isExact: true }
  const [from, to] = reading.passwordSpan
  if (reading.rawQuery?.includes('@') !== true) return { span: [from, to], isExact: true }
  return { span: [from, Math.max(to, last)], isExact: false }
}

/**
 * The URL with its password (and any `password`/`sslpassword` parameter)
 * replaced by `***`, for logs and messages. The password is masked however
 * it is written: up to the last `@` when a parameter value holds an `@` too
 * (an unencoded password cannot then be told from the parameter for sure),
 * and from the first `:` after `//` to the last `@` when the URL cannot be
 * read at all.
 */
export function redactUrl (text: string): string {
  const reading = readUrl(text)
  const { span, isExact } = passwordSpan(text, reading)
  if (!('text' in reading)) return span === undefined ? text : `${text.slice(0, span[0])}***${text.slice(span[1])}`
  // The parameters come after the password: masking them first moves nothing before it.
  const masked = maskSecretParameters(text, reading.queryAt)
  if (span === undefined) return masked
  const end = isExact ? span[1] : Math.max(reading.passwordSpan![1], masked.lastIndexOf('@'))
  return `${masked.slice(0, span[0])}***${masked.slice(end)}`
}

// Shorter runs are everywhere in prose; a message is checked for runs this
// long of whatever could be the password.
const SHORTEST_MASKED_RUN = 3

/** Replaces every run of at least SHORTEST_MASKED_RUN characters of `message` found in one of `secrets` by `***`. */
function maskRuns (message: string, secrets: string[]): string {
  let out = ''
  for (let i = 0; i < message.length;) {
    let length = 0
    while (i + length < message.length && secrets.some((secret) => secret.includes(message.slice(i, i + length + 1)))) length++
    if (length >= SHORTEST_MASKED_RUN) {
      out += '***'
      i += length
    } else {
      out += message[i]
      i++
    }
  }
  return out
}

/**
 * `message` (a driver's error, a reason about the URL `text`) with whatever
 * could be the URL's password masked: the password and secret parameters
 * wherever they appear, as written or decoded; where the password's end is
 * not sure (see {@link redactUrl}), every run of three characters or more
 * of the text that could be it, since SQLAlchemy's reading makes host,
 * database and parameters of its parts, and messages quote them.
 */
export function maskUrlSecrets (text: string, message: string): string {
  const reading = readUrl(text)
  const { span, isExact } = passwordSpan(text, reading)
  const written = span === undefined ? '' : text.slice(...span)
  const forms = [written, pythonUnquote(written), pythonUnquote(written.replaceAll('+', ' '))].filter((form) => form.length >= SHORTEST_MASKED_RUN)
  let masked = isExact ? forms.reduce((m, form) => m.split(form).join('***'), message) : maskRuns(message, forms)
  if ('text' in reading) {
    for (const name of SECRET_PARAMETERS) {
      const value = reading.query[name]
      for (const v of value === undefined ? [] : [value].flat()) if (v.length >= SHORTEST_MASKED_RUN) masked = masked.split(v).join('***')
    }
  }
  return masked
}

/** A ConfigError about the database URL: names the setting, shows the URL masked, says why in one line. */
export function databaseUrlError (text: string, reason: string): ConfigError {
  return new ConfigError(`${DATABASE_URL_SETTING} '${redactUrl(text)}': ${maskUrlSecrets(text, reason).replace(/\s+/g, ' ').trim()}`)
}

/**
 * Reads a database URL as SQLAlchemy does (see {@link DatabaseUrl}), also
 * when a password holds an unencoded `@`. Throws a ConfigError naming
 * `[database] connection` when it cannot be read.
 */
export function parseDatabaseUrl (text: string): DatabaseUrl {
  const reading = readUrl(text)
  if (!('text' in reading)) {
    throw databaseUrlError(text, `cannot be read as dialect[+driver]://user:password@host:port/database?query: ${reading.problem}`)
  }
  const { text: t, dialect, driver, username, password, host, port, database, query } = reading
  return { text: t, dialect, driver, username, password, host, port, database, query }
}

// ---------------------------------------------------------------------------
// Query parameters. Each is honoured, knowingly ignored (it has no meaning
// for a Node.js driver and changes neither what is stored nor whom we
// trust), or refused: CloudKitty's DBAPI refuses an unknown one too
// (PyMySQL's connect() takes no unknown keyword, libpq answers "invalid
// connection option"), and a misspelt TLS parameter must not mean "no TLS".

/** Parameters every dialect accepts and ignores: SQLAlchemy's own `plugin`. */
const IGNORED_EVERYWHERE = ['plugin']

class Parameters {
  private readonly used = new Set<string>()

  constructor (private readonly url: DatabaseUrl, private readonly ignored: readonly string[]) {}

  /** The parameter's value, once; undefined when absent. */
  text (name: string): string | undefined {
    this.used.add(name)
    const value = this.url.query[name]
    if (Array.isArray(value)) throw databaseUrlError(this.url.text, `the parameter ${name} is given ${value.length} times`)
    return value
  }

  /** SQLAlchemy's util.asbool, as coerce_kw_type applies it. */
  boolean (name: string): boolean | undefined {
    const value = this.text(name)?.trim().toLowerCase()
    if (value === undefined) return undefined
    if (['true', 'yes', 'on', 'y', 't', '1'].includes(value)) return true
    if (['false', 'no', 'off', 'n', 'f', '0'].includes(value)) return false
    throw databaseUrlError(this.url.text, `${name}=${value} is neither true nor false`)
  }

  /** A number of seconds, in milliseconds. */
  seconds (name: string): number | undefined {
    const value = this.text(name)
    if (value === undefined) return undefined
    const n = Number(value)
    if (!(n > 0 && n <= 31_536_000)) throw databaseUrlError(this.url.text, `${name}=${value} is not a positive number of seconds`)
    return n * 1000
  }

  oneOf<T extends string> (name: string, allowed: readonly T[], why: string): T | undefined {
    const value = this.text(name)
    if (value === undefined) return undefined
    if (!(allowed as readonly string[]).includes(value)) throw databaseUrlError(this.url.text, `${name}=${value} ${why}`)
    return value as T
  }

  /** The contents of the file a parameter names, read now. */
  file (name: string, ...given: [path: string | undefined] | []): Buffer | undefined {
    const path = given.length === 0 ? this.text(name) : given[0]
    if (path === undefined) return undefined
    try {
      return readFileSync(path)
    } catch (error) {
      const { code, message } = error as NodeJS.ErrnoException
      throw databaseUrlError(this.url.text, `cannot read ${name} ${path}: ${code === 'ENOENT' ? 'no such file' : message}`)
    }
  }

  /** Refuses a parameter that was neither read nor knowingly ignored. */
  finish (honoured: readonly string[]): void {
    const ignored = new Set([...IGNORED_EVERYWHERE, ...this.ignored])
    const unknown = Object.keys(this.url.query).filter((name) => !this.used.has(name) && !ignored.has(name))
    if (unknown.length > 0) {
      throw databaseUrlError(this.url.text, `unsupported parameter ${unknown.join(', ')} (honoured: ${honoured.join(', ')}; ignored: ${[...ignored].join(', ')})`)
    }
  }
}

/**
 * Reads the TLS files as the TLS context will, once, so a file that is not
 * PEM fails at open rather than at the first connection. Node skips a CA
 * file that holds no certificate: each one is parsed here.
 */
function checkTlsFiles (url: DatabaseUrl, files: { ca?: Buffer, cert?: Buffer, key?: Buffer, crl?: Buffer, passphrase?: string }, names: { ca: string, others: string }): void {
  if (files.ca !== undefined) {
    const blocks = files.ca.toString('latin1').match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? []
    if (blocks.length === 0) throw databaseUrlError(url.text, `${names.ca} holds no PEM certificate`)
    for (const block of blocks) {
      try {
        void new X509Certificate(block)
      } catch (error) {
        throw databaseUrlError(url.text, `${names.ca}: ${(error as Error).message}`)
      }
    }
  }
  try {
    createSecureContext(files)
  } catch (error) {
    throw databaseUrlError(url.text, `${names.others}: ${(error as Error).message}`)
  }
}

// ---------------------------------------------------------------------------
// MySQL / MariaDB, as SQLAlchemy's mysql dialect (dialects/mysql/mysqldb.py,
// create_connect_args) hands the query to PyMySQL (pymysql/connections.py).

/** TLS for mysql2's `ssl` option. */
export interface MysqlTls {
  ca?: Buffer
  cert?: Buffer
  key?: Buffer
  ciphers?: string
  /** Verify the server's certificate (against `ca`, or Node's CA store). */
  rejectUnauthorized: boolean
  /** Check the certificate names the host. */
  verifyIdentity: boolean
}

/** What a MySQL URL asks for, in mysql2's terms. */
export interface MysqlUrlOptions {
  host: string
  port: number
  socketPath: string | undefined
  user: string
  password: string
  database: string | undefined
  /** Always utf8mb4; see {@link mysqlOptionsFromUrl}. */
  charset: 'utf8mb4'
  /** `connect_timeout`, which overrides `[database] connect_timeout`. */
  connectTimeoutMs: number | undefined
  ssl: MysqlTls | undefined
}

const MYSQL_HONOURED = ['charset', 'ssl_ca', 'ssl_cert', 'ssl_key', 'ssl_cipher', 'ssl_check_hostname', 'ssl_verify_cert', 'ssl_verify_identity', 'ssl_disabled', 'unix_socket', 'connect_timeout']
// PyMySQL keywords with no meaning for mysql2 and no bearing on what is
// stored or trusted (local_infile is off here whatever it says).
const MYSQL_IGNORED = ['use_unicode', 'binary_prefix', 'client_flag', 'compress', 'autocommit', 'read_timeout', 'write_timeout', 'local_infile', 'max_allowed_packet', 'defer_connect', 'program_name']

// PyMySQL's character sets (pymysql/charset.py), plus utf8mb3 (PyMySQL ≥ 1.1).
const MYSQL_CHARSETS = new Set(['armscii8', 'ascii', 'big5', 'binary', 'cp1250', 'cp1251', 'cp1256', 'cp1257', 'cp850', 'cp852', 'cp866', 'cp932', 'dec8', 'eucjpms', 'euckr', 'gb18030', 'gb2312', 'gbk', 'geostd8', 'greek', 'hebrew', 'hp8', 'keybcs2', 'koi8r', 'koi8u', 'latin1', 'latin2', 'latin5', 'latin7', 'macce', 'macroman', 'sjis', 'swe7', 'tis620', 'ujis', 'utf8', 'utf8mb3', 'utf8mb4'])

// PyMySQL's _create_ssl_ctx reading of ssl_verify_cert ("optional" is
// CERT_OPTIONAL, which a TLS client treats as CERT_REQUIRED).
function verifyCertValue (url: DatabaseUrl, value: string | undefined): boolean | undefined {
  if (value === undefined) return undefined
  const v = value.toLowerCase()
  if (['none', '0', 'false', 'no'].includes(v)) return false
  if (['required', 'optional', '1', 'true', 'yes'].includes(v)) return true
  throw databaseUrlError(url.text, `ssl_verify_cert=${value} is none of true, false, required, optional`)
}

/**
 * Reads a MySQL/MariaDB URL's parts and parameters into mysql2 options;
 * the TLS files are read now. Throws a ConfigError for a parameter it does
 * not honour or ignore.
 *
 * - `charset`: any of PyMySQL's character sets is accepted, and the
 *   connection uses utf8mb4 whatever it says. The connection character set
 *   only says how text travels: the server converts to each column's own
 *   character set either way, so utf8mb4 reads and writes the very
 *   characters `utf8` (what cloudkitty.conf and oslo.db's default say) or
 *   `latin1` would, and also 4-byte ones (an emoji in a scope id), which a
 *   `utf8` (3-byte) connection would refuse even for a utf8mb4 column.
 * - TLS as SQLAlchemy + PyMySQL mean it: any `ssl_*` parameter but
 *   `ssl_disabled=true` turns it on. The server's certificate is verified
 *   when `ssl_ca` is given (against that CA only), or when
 *   `ssl_verify_cert=true` (against Node's CA store if no `ssl_ca`); its
 *   name is checked when a CA is given, unless `ssl_check_hostname=false`
 *   (SQLAlchemy) or `ssl_verify_identity=false` (PyMySQL).
 *   `ssl_verify_identity=true` or `ssl_check_hostname=true` also verifies
 *   the certificate, which a name check needs. Where PyMySQL differs, we
 *   take the stricter side: PyMySQL continues in plain text when the server
 *   offers no TLS (scopekeeper refuses), replaces `ssl_ca` with the system
 *   store when `ssl_verify_cert` is also given (scopekeeper keeps `ssl_ca`),
 *   and reads any `ssl_disabled` value, even `false`, as true.
 *   `ssl_capath` is refused: use `ssl_ca`.
 */
export function mysqlOptionsFromUrl (url: DatabaseUrl): MysqlUrlOptions {
  const p = new Parameters(url, MYSQL_IGNORED)
  const charset = p.text('charset')
  if (charset !== undefined && !MYSQL_CHARSETS.has(charset.toLowerCase())) {
    throw databaseUrlError(url.text, `charset=${charset} is not a MySQL character set`)
  }
  const disabled = p.boolean('ssl_disabled') === true
  const ca = p.file('ssl_ca')
  const cert = p.file('ssl_cert')
  const key = p.file('ssl_key')
  const ciphers = p.text('ssl_cipher')
  const checkHostname = p.boolean('ssl_check_hostname')
  const verifyIdentity = p.boolean('ssl_verify_identity')
  const verifyCert = verifyCertValue(url, p.text('ssl_verify_cert'))
  const anyTls = Object.keys(url.query).some((name) => name.startsWith('ssl_') && name !== 'ssl_disabled')
  let ssl: MysqlTls | undefined
  if (anyTls && !disabled) {
    const namesChecked = checkHostname ?? verifyIdentity ?? ca !== undefined
    const rejectUnauthorized = verifyCert ?? (ca !== undefined || checkHostname === true || verifyIdentity === true)
    if (verifyCert === false && (checkHostname === true || verifyIdentity === true)) {
      throw databaseUrlError(url.text, 'ssl_verify_cert=false cannot go with a host name check (ssl_check_hostname or ssl_verify_identity)')
    }
    if (cert === undefined && key !== undefined) throw databaseUrlError(url.text, 'ssl_key needs ssl_cert')
    checkTlsFiles(url, { ca, cert, key }, { ca: 'ssl_ca', others: 'ssl_cert or ssl_key' })
    ssl = { ca, cert, key, ciphers, rejectUnauthorized, verifyIdentity: rejectUnauthorized && namesChecked }
  }
  const socketPath = p.text('unix_socket')
  const connectTimeoutMs = p.seconds('connect_timeout')
  p.finish(MYSQL_HONOURED)
  return {
    // PyMySQL's default is "localhost"; 127.0.0.1 is the same server
    // without Node resolving localhost to ::1 first.
    host: url.host ?? '127.0.0.1',
    port: url.port ?? 3306,
    socketPath,
    user: url.username === undefined || url.username === '' ? 'root' : url.username,
    password: url.password ?? '',
    database: url.database === '' ? undefined : url.database,
    charset: 'utf8mb4',
    connectTimeoutMs,
    ssl,
  }
}

// ---------------------------------------------------------------------------
// PostgreSQL: SQLAlchemy's psycopg2 dialect (dialects/postgresql/psycopg2.py,
// create_connect_args) passes the query to libpq as connection keywords.

/** libpq's sslmode values. */
export type SslMode = 'disable' | 'allow' | 'prefer' | 'require' | 'verify-ca' | 'verify-full'
const SSL_MODES: readonly SslMode[] = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full']

/** TLS for pg's `ssl` option (node:tls connect options). */
export interface PostgresTls {
  ca?: Buffer
  cert?: Buffer
  key?: Buffer
  passphrase?: string
  crl?: Buffer
  minVersion?: 'TLSv1' | 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3'
  maxVersion?: 'TLSv1' | 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3'
  rejectUnauthorized: boolean
  /** Set for verify-ca and below: the chain is checked, not the host name. */
  checkServerIdentity?: () => undefined
}

/** What a PostgreSQL URL asks for, in pg's terms. */
export interface PostgresUrlOptions {
  host: string | undefined
  port: number | undefined
  user: string | undefined
  password: string | undefined
  database: string | undefined
  sslMode: SslMode
  /**
   * TLS options for the first try: none for `disable` and `allow` (whose
   * TLS try comes second), else what `sslMode` asks for.
   */
  tls: PostgresTls
  applicationName: string | undefined
  fallbackApplicationName: string | undefined
  /** libpq's `options` (e.g. `-c search_path=…`), to run before our own. */
  options: string | undefined
  /** `connect_timeout`, which overrides `[database] connect_timeout`. */
  connectTimeoutMs: number | undefined
}

const POSTGRES_HONOURED = ['sslmode', 'sslrootcert', 'sslcert', 'sslkey', 'sslpassword', 'sslcrl', 'ssl_min_protocol_version', 'ssl_max_protocol_version',
  'host', 'port', 'application_name', 'fallback_application_name', 'options', 'connect_timeout', 'client_encoding', 'target_session_attrs', 'gssencmode', 'channel_binding']
// libpq keywords with no bearing on what is stored or whom we trust here:
// TCP keepalives, SNI (pg sends it for host names), compression (gone from
// OpenSSL), Kerberos names (we never use GSSAPI).
const POSTGRES_IGNORED = ['keepalives', 'keepalives_idle', 'keepalives_interval', 'keepalives_count', 'tcp_user_timeout', 'sslsni', 'sslcompression', 'krbsrvname', 'gsslib']
const TLS_VERSIONS = ['TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'] as const

/**
 * Reads a PostgreSQL URL's parts and parameters into pg options, with
 * libpq's meanings (pg's own reading of `sslmode` in a connection string
 * differs: it verifies the certificate for `prefer` and `require`); the
 * TLS files are read now. Throws a ConfigError for a parameter it does not
 * honour or ignore.
 *
 * - `sslmode` defaults to `prefer`, as libpq's does: TLS when the server
 *   offers it, plain otherwise, nothing verified. `allow` tries plain first,
 *   then TLS; `require` insists on TLS without verifying, unless
 *   `sslrootcert` is given (then as `verify-ca`); `verify-ca` checks the
 *   chain against `sslrootcert` (default `~/.postgresql/root.crt`, which
 *   must then exist); `verify-full` also checks the host name.
 *   `sslrootcert=system` uses Node's CA store and, as in libpq 16, implies
 *   `verify-full`.
 * - `sslcert`/`sslkey` (and `sslpassword`) present a client certificate;
 *   libpq's default `~/.postgresql/postgresql.crt` is not read.
 * - `host` (a socket directory or a single host) and `port` override the
 *   URL's, as libpq's keywords do; several hosts are refused.
 */
export function postgresOptionsFromUrl (url: DatabaseUrl): PostgresUrlOptions {
  const p = new Parameters(url, POSTGRES_IGNORED)
  const rootCert = p.text('sslrootcert')
  const system = rootCert === 'system'
  const sslMode = p.oneOf('sslmode', SSL_MODES, `is not one of libpq's sslmode values (${SSL_MODES.join(', ')})`) ?? (system ? 'verify-full' : 'prefer')
  if (system && sslMode !== 'verify-full') throw databaseUrlError(url.text, `sslmode=${sslMode} cannot go with sslrootcert=system, which needs verify-full`)
  const verifyChain = sslMode === 'verify-ca' || sslMode === 'verify-full' || (sslMode === 'require' && rootCert !== undefined)
  let caPath = system ? undefined : rootCert
  if (verifyChain && caPath === undefined && !system) {
    caPath = join(homedir(), '.postgresql', 'root.crt')
    try {
      readFileSync(caPath)
    } catch {
      throw databaseUrlError(url.text, `sslmode=${sslMode} verifies the server with the root certificate file ${caPath}, which does not exist: give sslrootcert=<file>, or sslrootcert=system for the system's CAs`)
    }
  }
  const ca = verifyChain ? p.file('sslrootcert', caPath) : undefined
  const cert = p.file('sslcert')
  const key = p.file('sslkey')
  const passphrase = p.text('sslpassword')
  const crl = p.file('sslcrl')
  const minVersion = p.oneOf('ssl_min_protocol_version', TLS_VERSIONS, `is not one of ${TLS_VERSIONS.join(', ')}`) ?? 'TLSv1.2'
  const maxVersion = p.oneOf('ssl_max_protocol_version', TLS_VERSIONS, `is not one of ${TLS_VERSIONS.join(', ')}`)
  if (cert !== undefined && key === undefined) throw databaseUrlError(url.text, 'sslcert needs sslkey')
  if (ca !== undefined || cert !== undefined || crl !== undefined) checkTlsFiles(url, { ca, cert, key, crl, passphrase }, { ca: 'sslrootcert', others: 'sslcert, sslkey, sslpassword or sslcrl' })
  const tls: PostgresTls = {
    ca, cert, key, passphrase, crl, minVersion, maxVersion,
    rejectUnauthorized: verifyChain,
    ...(sslMode === 'verify-full' ? {} : { checkServerIdentity: () => undefined }),
  }
  const encoding = p.text('client_encoding')
  if (encoding !== undefined && !/^(utf-?8|unicode)$/i.test(encoding)) {
    throw databaseUrlError(url.text, `client_encoding=${encoding}: only UTF8 is supported (oslo.db's default)`)
  }
  p.oneOf('target_session_attrs', ['any'], 'is not supported: only one host is used, and it is not checked')
  p.oneOf('gssencmode', ['disable', 'prefer'], 'is not supported: GSSAPI encryption is never used')
  p.oneOf('channel_binding', ['disable', 'prefer'], 'is not supported: SCRAM channel binding is not required')
  const host = p.text('host')
  if (host?.includes(',') === true) throw databaseUrlError(url.text, 'several hosts are not supported')
  const port = p.text('port')
  if (port !== undefined && !/^\d{1,5}$/.test(port)) throw databaseUrlError(url.text, `port=${port} is not a port number`)
  const options = {
    host: host ?? url.host,
    port: port === undefined ? url.port : Number(port),
    user: url.username === '' ? undefined : url.username,
    password: url.password,
    database: url.database === '' ? undefined : url.database,
    sslMode,
    tls,
    applicationName: p.text('application_name'),
    fallbackApplicationName: p.text('fallback_application_name'),
    options: p.text('options'),
    connectTimeoutMs: p.seconds('connect_timeout'),
  }
  p.finish(POSTGRES_HONOURED)
  return options
}
