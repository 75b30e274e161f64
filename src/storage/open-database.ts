import { mkdirSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, resolve } from 'node:path'
import type BetterSqlite3 from 'better-sqlite3'
import {
  sql, CompiledQuery, DummyDriver, Kysely, MysqlDialect, PostgresDialect, SqliteAdapter, SqliteDialect,
  type DatabaseConnection, type Dialect, type DialectAdapter, type Driver,
} from 'kysely'
import type * as mysql2 from 'mysql2'
import type { Pool as MysqlPool, PoolConnection } from 'mysql2'
import type pg from 'pg'
import { ScopeKeeperError } from '../domain/errors.ts'
import type { Database } from './database.ts'
import {
  databaseUrlError, maskUrlSecrets, mysqlOptionsFromUrl, parseDatabaseUrl, postgresOptionsFromUrl, redactUrl,
  type DatabaseUrl, type PostgresTls,
} from './database-url.ts'
import { guardDriver } from './driver-errors.ts'
import { mysqlTraits, POSTGRES_TRAITS, SQLITE_TRAITS, type Engine, type EngineTraits } from './engine-traits.ts'

// Each engine's driver is loaded when a URL first names it: pg and mysql2
// each add 10–15 MB to a process that never uses them.
const require = createRequire(import.meta.url)

/** An open database: the query builder, what its engine can do, and how to close it. */
export interface OpenDatabase {
  db: Kysely<Database>
  traits: EngineTraits
  /** A printable form of the URL, without credentials. */
  description: string
  /**
   * A query builder for the same engine that executes nothing: each compiled
   * statement goes to `record` and reads return no rows (`migrate --dry-run`).
   */
  compileOnly: (record: (query: CompiledQuery) => void) => Kysely<any>
  /** Connections in use and idle, for metrics. */
  poolStats: () => { inUse: number, idle: number }
  /**
   * Asks the server what it can do and refines {@link traits} (MariaDB has
   * SKIP LOCKED from 10.6, MySQL from 8.0); on SQLite, refreshes the
   * planner's statistics. Call once connected.
   */
  probe: () => Promise<void>
  /**
   * Asks the server one trivial question (`SELECT 1`) through the pool;
   * rejects when it does not answer within the pool's and statement's
   * bounds. For health checks: it reads no table.
   */
  ping: () => Promise<void>
  close: () => Promise<void>
}

// Compiled once: a health check pings on every probe of a load balancer.
const SELECT_ONE = CompiledQuery.raw('select 1')

function opened (
  dialect: Dialect, traits: EngineTraits, description: string, poolStats: OpenDatabase['poolStats'],
  probe: (db: Kysely<Database>) => Promise<void> = async () => {},
): OpenDatabase {
  const db = new Kysely<Database>({ dialect })
  return {
    db,
    traits,
    description,
    compileOnly: (record) => new Kysely<any>({
      dialect: {
        createAdapter: () => dialect.createAdapter(),
        createDriver: () => new DummyDriver(),
        createIntrospector: (k) => dialect.createIntrospector(k),
        createQueryCompiler: () => dialect.createQueryCompiler(),
      },
      log: (event) => { record(event.query) },
    }),
    poolStats,
    probe: async () => { await probe(db) },
    ping: async () => { await db.executeQuery(SELECT_ONE) },
    close: async () => { await db.destroy() },
  }
}

/** Pool sizing and the bounds that keep a request from waiting forever. */
export interface PoolOptions {
  /** Connections per process (PostgreSQL, MySQL). Defaults to 10. */
  poolSize: number
  /** Bound on opening a connection; a URL's `connect_timeout` overrides it. Defaults to 5 s. */
  connectTimeoutMs: number
  /** Bound on waiting for a free pooled connection. Defaults to 10 s. */
  acquireTimeoutMs: number
  /** Bound on one statement, enforced by the server. Defaults to 30 s. */
  statementTimeoutMs: number
  /**
   * A pooled connection older than this is closed and replaced (oslo.db's
   * `connection_recycle_time`, SQLAlchemy's `pool_recycle`). Defaults to 3600 s.
   */
  connectionRecycleSeconds: number
  /**
   * How the process's first connection is tried, as oslo.db's
   * `_test_connection` does at start; unset, it is tried once and a failure
   * is DATABASE_UNAVAILABLE like any other.
   */
  firstConnection?: FirstConnectionOptions
}

/**
 * oslo.db's `max_retries` and `retry_interval`: the first connection is
 * tried `maxRetries` times in all (oslo_db/sqlalchemy/engines.py,
 * `_test_connection`: `range(max_retries)`), `retryIntervalMs` apart; -1
 * tries until it succeeds; 0 (where oslo.db skips the test) tries once.
 * Only a failure to reach the server is retried: a refused password, a
 * missing database or a TLS failure ends the start at once. The final
 * failure is a one-line ConfigError naming `[database] connection`.
 */
export interface FirstConnectionOptions {
  maxRetries: number
  retryIntervalMs: number
  /** Told of each failed attempt that will be retried: one line, the URL masked. */
  onRetry: (failure: FirstConnectionFailure) => void
}

/** One failed attempt at the first connection. */
export interface FirstConnectionFailure {
  /** The URL, its password masked. */
  database: string
  attempt: number
  /** Attempts in all; undefined for `max_retries = -1`. */
  attempts: number | undefined
  /** Why, in one line. */
  reason: string
  retryInSeconds: number
}

export const DEFAULT_POOL_OPTIONS: PoolOptions = { poolSize: 10, connectTimeoutMs: 5000, acquireTimeoutMs: 10_000, statementTimeoutMs: 30_000, connectionRecycleSeconds: 3600 }

/**
 * Which engine a URL names, accepting SQLAlchemy's `dialect+driver` forms
 * (`mysql+pymysql://`). Throws a ConfigError naming `[database] connection`.
 */
export function engineOfUrl (url: string): Engine {
  return engineOf(parseDatabaseUrl(url))
}

function engineOf (url: DatabaseUrl): Engine {
  if (url.dialect === 'sqlite') return 'sqlite'
  if (url.dialect === 'postgresql' || url.dialect === 'postgres') return 'postgres'
  if (url.dialect === 'mysql' || url.dialect === 'mariadb') return 'mysql'
  throw databaseUrlError(url.text, 'Unsupported database URL: use sqlite://, postgresql:// or mysql:// (SQLAlchemy forms such as mysql+pymysql:// are accepted)')
}

export { redactUrl }

/** What a SQLite URL names: a file path, or an in-memory database. */
export function sqlitePathFromUrl (url: string): string {
  // SQLAlchemy's forms, as cloudkitty.conf writes them: sqlite:///relative,
  // sqlite:////absolute, and sqlite:// (or sqlite:///:memory:) for memory.
  const m = /^sqlite(?:\+\w+)?:\/\/\/?(.*)$/.exec(url)
  if (m === null) throw new Error(`Not a SQLite URL: ${url}`)
  const rest = m[1].replace(/\?.*$/, '')
  return rest === '' || rest === ':memory:' ? ':memory:' : rest
}

// Kysely's SQLite driver opens transactions with a deferred BEGIN; a read
// followed by a write in WAL mode can then fail with SQLITE_BUSY when another
// process wrote meanwhile. BEGIN IMMEDIATE takes the write lock up front and
// waits for it under busy_timeout instead.
//
// The adapter also declares SQLite's DDL transactional (it is), so the
// migrator runs inside one BEGIN IMMEDIATE: Kysely has no migration lock on
// SQLite, and two processes starting at once would otherwise both migrate.
class TransactionalDdlSqliteAdapter extends SqliteAdapter {
  override get supportsTransactionalDdl (): boolean { return true }
}

type WrapDriver = (driver: Driver) => Driver

class ImmediateSqliteDialect extends SqliteDialect {
  constructor (config: ConstructorParameters<typeof SqliteDialect>[0], private readonly wrap: WrapDriver) { super(config) }

  override createAdapter (): DialectAdapter {
    return new TransactionalDdlSqliteAdapter()
  }

  override createDriver (): Driver {
    const driver = super.createDriver()
    driver.beginTransaction = async (connection: DatabaseConnection) => {
      await connection.executeQuery(CompiledQuery.raw('begin immediate'))
    }
    return this.wrap(driver)
  }
}

class GuardedPostgresDialect extends PostgresDialect {
  constructor (config: ConstructorParameters<typeof PostgresDialect>[0], private readonly wrap: WrapDriver) { super(config) }
  override createDriver (): Driver { return this.wrap(super.createDriver()) }
}

class GuardedMysqlDialect extends MysqlDialect {
  constructor (config: ConstructorParameters<typeof MysqlDialect>[0], private readonly wrap: WrapDriver) { super(config) }
  override createDriver (): Driver { return this.wrap(super.createDriver()) }
}

// better-sqlite3 (on Node 20) builds each row object one property at a time,
// over half of a 100-row list page's CPU. It hands rows back as arrays in
// half the time, and an object literal of a fixed shape, compiled once per
// statement from its column names, is nearly free. Same objects: a repeated
// column name keeps its last value, as in better-sqlite3's own rows.
function readRowsAsArrays (statement: BetterSqlite3.Statement): void {
  const fields = statement.columns().map((column, i) => `${JSON.stringify(column.name)}: row[${i}]`)
  // eslint-disable-next-line no-new-func -- the source is built from column names, each JSON-quoted
  const toObject = new Function('row', `return { ${fields.join(', ')} }`) as (row: unknown[]) => Record<string, unknown>
  statement.raw(true)
  const all = statement.all.bind(statement)
  const iterate = statement.iterate.bind(statement)
  statement.all = ((...parameters: unknown[]) => (all(...parameters) as unknown[][]).map(toObject)) as typeof statement.all
  statement.iterate = (function * (...parameters: unknown[]) {
    for (const row of iterate(...parameters) as IterableIterator<unknown[]>) yield toObject(row)
  }) as typeof statement.iterate
}

function openSqlite (url: string, options: PoolOptions): OpenDatabase {
  const path = sqlitePathFromUrl(url)
  const Sqlite = require('better-sqlite3') as typeof BetterSqlite3
  let sqlite: BetterSqlite3.Database
  try {
    if (path !== ':memory:') mkdirSync(dirname(resolve(path)), { recursive: true })
    sqlite = new Sqlite(path)
  } catch (error) {
    throw databaseUrlError(url, `cannot open ${path}: ${(error as Error).message}`)
  }
  // Kysely prepares every query anew; preparing is a large share of a small
  // query's cost, so keep the statements of recent SQL texts (bounded).
  const prepare = sqlite.prepare.bind(sqlite)
  const statements = new Map<string, ReturnType<typeof prepare>>()
  sqlite.prepare = ((source: string) => {
    let statement = statements.get(source)
    if (statement === undefined) {
      if (statements.size >= 256) statements.clear()
      statement = prepare(source)
      if (statement.reader) readRowsAsArrays(statement)
      statements.set(source, statement)
    }
    return statement
  }) as typeof sqlite.prepare
  sqlite.pragma('journal_mode = WAL')
  sqlite.pragma(`busy_timeout = ${Math.max(1000, Math.min(options.statementTimeoutMs, 5000))}`)
  // One connection, shared under Kysely's mutex.
  const database = opened(new ImmediateSqliteDialect({ database: sqlite }, (driver) => guardDriver(driver, options.acquireTimeoutMs)), SQLITE_TRAITS, `sqlite:${path}`, () => ({ inUse: 0, idle: 1 }))
  // Without statistics SQLite's planner picks the `active` index for a
  // five-filter list (13 ms at 100 000 scopes instead of 0.2 ms through the
  // unique index). PRAGMA optimize gathers them when the tables have changed
  // enough: at open and then periodically, as SQLite advises, through Kysely
  // so it never lands inside another caller's transaction.
  const optimize = async () => { await sql`PRAGMA optimize=0x10002`.execute(database.db).catch(() => {}) }
  const timer = setInterval(() => { void optimize() }, 10 * 60_000)
  timer.unref()
  const close = database.close
  return {
    ...database,
    probe: async () => { await optimize() },
    close: async () => { clearInterval(timer); await close() },
  }
}

// timestamp without time zone (OID 1114) is naive UTC: keep the text, never
// let the driver read it in the process's local zone.
const TIMESTAMP_OID = 1114

// pg's words for a server that answers "N" to its SSLRequest.
const NO_TLS_OFFERED = /The server does not support SSL connections/i

function messageOf (error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}

// libpq's sslmode=prefer and allow, which pg lacks: the first try is TLS
// (prefer) or plain (allow), the other one follows when the server will not
// have it. pg builds each new client from the pool's options, so the pool
// then keeps to what worked until the process restarts (libpq asks anew per
// connection).
function followSslMode (pool: pg.Pool, mode: string, tls: PostgresTls): void {
  if (mode !== 'prefer' && mode !== 'allow') return
  const options = (pool as unknown as { options: { ssl: PostgresTls | false } }).options
  const original = pool.connect.bind(pool) as (...args: unknown[]) => Promise<pg.PoolClient>
  const connect = async (): Promise<pg.PoolClient> => await original()
  pool.connect = (async (...args: unknown[]) => {
    // The callback form, which Kysely does not use, goes as it is.
    if (args.length > 0) return original(...args)
    try {
      return await connect()
    } catch (error) {
      const code = (error as { code?: unknown }).code
      if (mode === 'prefer' && options.ssl !== false && NO_TLS_OFFERED.test(messageOf(error))) {
        options.ssl = false
      } else if (mode === 'allow' && options.ssl === false && code === '28000' && /no encryption/i.test(messageOf(error))) {
        options.ssl = tls
      } else {
        throw error
      }
      return await connect()
    }
  }) as typeof pool.connect
}

function openPostgres (url: DatabaseUrl, options: PoolOptions, onPoolError: (error: Error) => void): OpenDatabase {
  const parsed = postgresOptionsFromUrl(url)
  const { Pool, types } = require('pg') as typeof pg
  const pool = new Pool({
    host: parsed.host,
    port: parsed.port,
    user: parsed.user,
    password: parsed.password,
    database: parsed.database,
    // libpq's sslmode (see followSslMode), never pg's reading of it.
    ssl: parsed.sslMode === 'disable' || parsed.sslMode === 'allow' ? false : parsed.tls,
    application_name: parsed.applicationName,
    fallback_application_name: parsed.fallbackApplicationName,
    max: options.poolSize,
    connectionTimeoutMillis: parsed.connectTimeoutMs ?? options.connectTimeoutMs,
    // pg-pool ends an idle client once this old, and a busy one when released.
    maxLifetimeSeconds: options.connectionRecycleSeconds,
    statement_timeout: options.statementTimeoutMs,
    query_timeout: options.statementTimeoutMs + 5000,
    idle_in_transaction_session_timeout: options.statementTimeoutMs,
    // Server defaults (CURRENT_TIMESTAMP) then read UTC whatever the server's
    // zone; the URL's own options (a search_path…) come first.
    options: [parsed.options, '-c TimeZone=UTC'].filter((o) => o !== undefined && o !== '').join(' '),
    types: { getTypeParser: ((oid: number, format?: string) => oid === TIMESTAMP_OID ? (v: string) => v : types.getTypeParser(oid, format as 'text')) as typeof types.getTypeParser },
  })
  followSslMode(pool, parsed.sslMode, parsed.tls)
  // A client whose server connection dies (pg_terminate_backend, a restart)
  // emits 'error': the pool's own event for idle clients, the client's for
  // checked-out ones. Unheard, either would crash the process. The failing
  // query rejects on its own; the pool drops the client and reconnects.
  pool.on('error', onPoolError)
  pool.on('connect', (client) => { client.on('error', onPoolError) })
  return opened(new GuardedPostgresDialect({ pool }, guardAndRetry(url, options)), POSTGRES_TRAITS, redactUrl(url.text),
    () => ({ inUse: pool.totalCount - pool.idleCount, idle: pool.idleCount }))
}

// SQLAlchemy's pool_recycle (oslo.db's connection_recycle_time): a
// connection older than the limit is closed when next checked out and a new
// one opened in its place (sqlalchemy/pool/base.py, _ConnectionRecord
// .get_connection); here also when it is released. mysql2's maxIdle and
// idleTimeout close idle connections whatever their age: not the same.
function recycleConnections (pool: MysqlPool, maxAgeMs: number): void {
  const bornAt = new WeakMap<object, number>()
  const isOld = (connection: object): boolean => Date.now() - (bornAt.get(connection) ?? Date.now()) > maxAgeMs
  // With the pool's gracefulEnd, end() leaves the pool and says COM_QUIT.
  const retire = (connection: PoolConnection): void => { try { connection.end() } catch { connection.destroy() } }
  pool.on('connection', (connection) => {
    bornAt.set(connection, Date.now())
    const release = connection.release.bind(connection)
    connection.release = () => { if (isOld(connection)) retire(connection); else release() }
  })
  const getConnection = pool.getConnection.bind(pool)
  pool.getConnection = ((callback: (error: NodeJS.ErrnoException | null, connection: PoolConnection) => void) => {
    getConnection((error, connection) => {
      if (error === null && connection !== undefined && isOld(connection)) {
        retire(connection)
        pool.getConnection(callback)
        return
      }
      callback(error, connection)
    })
  }) as typeof pool.getConnection
}

function openMysql (url: DatabaseUrl, options: PoolOptions, onPoolError: (error: Error) => void): OpenDatabase {
  const parsed = mysqlOptionsFromUrl(url)
  const { createPool } = require('mysql2') as typeof mysql2
  const pool: MysqlPool = createPool({
    host: parsed.host,
    port: parsed.port,
    socketPath: parsed.socketPath,
    user: parsed.user,
    password: parsed.password,
    database: parsed.database,
    // utf8mb4 whatever ?charset= says: see mysqlOptionsFromUrl.
    charset: parsed.charset,
    ssl: parsed.ssl,
    connectionLimit: options.poolSize,
    connectTimeout: parsed.connectTimeoutMs ?? options.connectTimeoutMs,
    // DATETIME is naive UTC: keep the text.
    dateStrings: true,
    supportBigNumbers: true,
    enableKeepAlive: true,
    gracefulEnd: true,
  })
  recycleConnections(pool, options.connectionRecycleSeconds * 1000)
  pool.on('connection', (connection) => { connection.on('error', onPoolError) })
  const statementSeconds = options.statementTimeoutMs / 1000
  const dialect = new GuardedMysqlDialect({
    pool,
    async onCreateConnection (connection) {
      await connection.executeQuery(CompiledQuery.raw("SET SESSION time_zone = '+00:00'"))
      // MariaDB's statement bound (MySQL 8 spells it max_execution_time).
      await connection.executeQuery(CompiledQuery.raw(`SET SESSION max_statement_time = ${statementSeconds}`))
    },
  }, guardAndRetry(url, options))
  // mysql2 keeps its counts in private fields; read them defensively.
  const internals = pool as unknown as { _allConnections?: { length: number }, _freeConnections?: { length: number } }
  const traits = mysqlTraits(false)
  return opened(dialect, traits, redactUrl(url.text), () => {
    const all = internals._allConnections?.length ?? 0
    const free = internals._freeConnections?.length ?? 0
    return { inUse: all - free, idle: free }
  }, async (db) => {
    const { rows } = await sql<{ version: string }>`SELECT VERSION() AS version`.execute(db)
    traits.supportsSkipLocked = supportsSkipLocked(String(rows[0]?.version ?? ''))
  })
}

// Galera's "WSREP has not yet prepared node" (1047), which oslo.db's
// exc_filters also count as a connection error to retry.
const NOT_READY_ERRNOS = new Set([1047])

function causeOf (error: unknown): unknown {
  return error instanceof ScopeKeeperError && error.cause !== undefined ? error.cause : error
}

function isRetryable (error: unknown): boolean {
  if (error instanceof ScopeKeeperError) return error.code === 'DATABASE_UNAVAILABLE'
  return NOT_READY_ERRNOS.has((error as { errno?: number } | null)?.errno ?? 0)
}

/** Why a connection failed, in one line, in the driver's words where they are clear. */
function connectFailure (error: unknown, url: DatabaseUrl): string {
  let cause = causeOf(error)
  if (cause instanceof AggregateError && cause.errors.length > 0) cause = cause.errors[0]
  const { code } = (cause ?? {}) as { code?: unknown }
  let reason = messageOf(cause)
  if (NO_TLS_OFFERED.test(reason)) reason = `the server does not offer TLS, which sslmode=${postgresSslMode(url)} asks for`
  else if (code === 'HANDSHAKE_NO_SSL_SUPPORT') reason = 'the server does not offer TLS, which the URL\'s ssl_* parameters ask for (PyMySQL would go on in plain text; scopekeeper does not)'
  else if (typeof code === 'string' && /CERT|SELF_SIGNED|ALTNAME|UNABLE_TO|HOSTNAME|ERR_TLS|ERR_SSL/.test(code)) reason = `TLS: ${reason} (${code})`
  else if (typeof code === 'string' && !reason.includes(code)) reason = `${reason} (${code})`
  // Driver messages do not quote passwords, but they name the host, which
  // may be part of one (see maskUrlSecrets).
  return maskUrlSecrets(url.text, reason).replace(/\s+/g, ' ').trim()
}

function postgresSslMode (url: DatabaseUrl): string {
  const mode = url.query.sslmode
  return typeof mode === 'string' ? mode : 'prefer'
}

// oslo_db/sqlalchemy/engines.py, _test_connection: at start, the first
// connection is tried max_retries times, retry_interval seconds apart, or
// forever for -1. Here every connection asked for before one has succeeded
// waits on that loop, which is how the first query of migrate, worker and
// serve gets it without each of them calling it.
function retryFirstConnection (driver: Driver, url: DatabaseUrl, retry: FirstConnectionOptions): Driver {
  const acquire = driver.acquireConnection.bind(driver)
  const attempts = retry.maxRetries === -1 ? undefined : Math.max(1, retry.maxRetries)
  const database = redactUrl(url.text)
  let connected = false
  let first: Promise<unknown> | undefined
  const tryUntilConnected = async (): Promise<DatabaseConnection> => {
    for (let attempt = 1; ; attempt++) {
      try {
        return await acquire()
      } catch (error) {
        const reason = connectFailure(error, url)
        if (!isRetryable(error)) throw databaseUrlError(url.text, `cannot connect: ${reason}`)
        if (attempts !== undefined && attempt >= attempts) {
          throw databaseUrlError(url.text, `cannot connect after ${attempt} attempt${attempt === 1 ? '' : 's'} ([database] max_retries = ${retry.maxRetries}): ${reason}`)
        }
        retry.onRetry({ database, attempt, attempts, reason, retryInSeconds: retry.retryIntervalMs / 1000 })
        await new Promise((resolve) => setTimeout(resolve, retry.retryIntervalMs))
      }
    }
  }
  driver.acquireConnection = async () => {
    if (connected) return await acquire()
    if (first !== undefined) {
      await first.catch(() => {})
      return await driver.acquireConnection()
    }
    const trying = tryUntilConnected()
    first = trying
    try {
      const connection = await trying
      connected = true
      return connection
    } finally {
      first = undefined
    }
  }
  return driver
}

function guardAndRetry (url: DatabaseUrl, options: PoolOptions): WrapDriver {
  return (driver) => {
    const guarded = guardDriver(driver, options.acquireTimeoutMs)
    return options.firstConnection === undefined ? guarded : retryFirstConnection(guarded, url, options.firstConnection)
  }
}

/** Whether a MySQL/MariaDB server version string has SKIP LOCKED. */
export function supportsSkipLocked (version: string): boolean {
  const [major = 0, minor = 0] = version.split(/[.-]/).map(Number)
  return /mariadb/i.test(version) ? major > 10 || (major === 10 && minor >= 6) : major >= 8
}

/**
 * Opens the database a URL names: SQLite (`sqlite:///relative/path`,
 * `sqlite:////absolute/path`; file and folder created when missing, WAL mode
 * on), PostgreSQL (`postgresql://`, `postgres://`, `postgresql+psycopg2://`) or
 * MySQL/MariaDB (`mysql://`, `mariadb://`, `mysql+pymysql://…?charset=utf8`).
 * The URL is read as SQLAlchemy reads it, with its query parameters (TLS…);
 * see database-url.ts. A URL that cannot be used, or a TLS file that cannot
 * be read, throws a ConfigError naming `[database] connection`.
 * Connections are opened lazily; an unreachable server shows up as
 * DATABASE_UNAVAILABLE on first use, unless `firstConnection` asks for the
 * start-time retries of {@link FirstConnectionOptions}.
 *
 * This is the only place that switches on the engine.
 */
export function openDatabase (url: string, options: Partial<PoolOptions> = {}, onPoolError: (error: Error) => void = () => {}): OpenDatabase {
  const full = { ...DEFAULT_POOL_OPTIONS, ...options }
  const parsed = parseDatabaseUrl(url)
  switch (engineOf(parsed)) {
    case 'sqlite': return openSqlite(url, full)
    case 'postgres': return openPostgres(parsed, full, onPoolError)
    case 'mysql': return openMysql(parsed, full, onPoolError)
  }
}

