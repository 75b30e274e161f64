import { mkdirSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, resolve } from 'node:path'
import type BetterSqlite3 from 'better-sqlite3'
import {
  sql, CompiledQuery, DummyDriver, Kysely, MysqlDialect, PostgresDialect, SqliteAdapter, SqliteDialect,
  type DatabaseConnection, type Dialect, type DialectAdapter, type Driver,
} from 'kysely'
import type { Pool as MysqlPool } from 'mysql2'
import type pg from 'pg'
import type { Database } from './database.ts'
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
  close: () => Promise<void>
}

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
    close: async () => { await db.destroy() },
  }
}

/** Pool sizing and the bounds that keep a request from waiting forever. */
export interface PoolOptions {
  /** Connections per process (PostgreSQL, MySQL). Defaults to 10. */
  poolSize: number
  /** Bound on opening a connection. Defaults to 5 s. */
  connectTimeoutMs: number
  /** Bound on waiting for a free pooled connection. Defaults to 10 s. */
  acquireTimeoutMs: number
  /** Bound on one statement, enforced by the server. Defaults to 30 s. */
  statementTimeoutMs: number
}

export const DEFAULT_POOL_OPTIONS: PoolOptions = { poolSize: 10, connectTimeoutMs: 5000, acquireTimeoutMs: 10_000, statementTimeoutMs: 30_000 }

/** Which engine a URL names, accepting SQLAlchemy's `driver+dialect` forms (`mysql+pymysql://`). */
export function engineOfUrl (url: string): Engine {
  const scheme = /^([a-z][a-z0-9]*)(\+[\w]+)?:/i.exec(url)?.[1]?.toLowerCase()
  if (scheme === 'sqlite') return 'sqlite'
  if (scheme === 'postgresql' || scheme === 'postgres') return 'postgres'
  if (scheme === 'mysql' || scheme === 'mariadb') return 'mysql'
  throw new Error(`Unsupported database URL '${redactUrl(url)}': use sqlite://, postgresql:// or mysql:// (SQLAlchemy forms such as mysql+pymysql:// are accepted)`)
}

/** The URL without its password, for logs and messages. */
export function redactUrl (url: string): string {
  return url.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@')
}

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

class ImmediateSqliteDialect extends SqliteDialect {
  constructor (config: ConstructorParameters<typeof SqliteDialect>[0], private readonly acquireTimeoutMs: number) { super(config) }

  override createAdapter (): DialectAdapter {
    return new TransactionalDdlSqliteAdapter()
  }

  override createDriver (): Driver {
    const driver = super.createDriver()
    driver.beginTransaction = async (connection: DatabaseConnection) => {
      await connection.executeQuery(CompiledQuery.raw('begin immediate'))
    }
    return guardDriver(driver, this.acquireTimeoutMs)
  }
}

class GuardedPostgresDialect extends PostgresDialect {
  constructor (config: ConstructorParameters<typeof PostgresDialect>[0], private readonly acquireTimeoutMs: number) { super(config) }
  override createDriver (): Driver { return guardDriver(super.createDriver(), this.acquireTimeoutMs) }
}

class GuardedMysqlDialect extends MysqlDialect {
  constructor (config: ConstructorParameters<typeof MysqlDialect>[0], private readonly acquireTimeoutMs: number) { super(config) }
  override createDriver (): Driver { return guardDriver(super.createDriver(), this.acquireTimeoutMs) }
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
  if (path !== ':memory:') mkdirSync(dirname(resolve(path)), { recursive: true })
  const Sqlite = require('better-sqlite3') as typeof BetterSqlite3
  const sqlite = new Sqlite(path)
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
  const database = opened(new ImmediateSqliteDialect({ database: sqlite }, options.acquireTimeoutMs), SQLITE_TRAITS, `sqlite:${path}`, () => ({ inUse: 0, idle: 1 }))
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

function openPostgres (url: string, options: PoolOptions, onPoolError: (error: Error) => void): OpenDatabase {
  const connectionString = url.replace(/^[a-z]+(\+\w+)?:/i, 'postgresql:')
  const { Pool, types } = require('pg') as typeof pg
  const pool = new Pool({
    connectionString,
    max: options.poolSize,
    connectionTimeoutMillis: options.connectTimeoutMs,
    statement_timeout: options.statementTimeoutMs,
    query_timeout: options.statementTimeoutMs + 5000,
    idle_in_transaction_session_timeout: options.statementTimeoutMs,
    // Server defaults (CURRENT_TIMESTAMP) then read UTC whatever the server's zone.
    options: '-c TimeZone=UTC',
    types: { getTypeParser: ((oid: number, format?: string) => oid === TIMESTAMP_OID ? (v: string) => v : types.getTypeParser(oid, format as 'text')) as typeof types.getTypeParser },
  })
  // A client whose server connection dies (pg_terminate_backend, a restart)
  // emits 'error': the pool's own event for idle clients, the client's for
  // checked-out ones. Unheard, either would crash the process. The failing
  // query rejects on its own; the pool drops the client and reconnects.
  pool.on('error', onPoolError)
  pool.on('connect', (client) => { client.on('error', onPoolError) })
  return opened(new GuardedPostgresDialect({ pool }, options.acquireTimeoutMs), POSTGRES_TRAITS, redactUrl(url),
    () => ({ inUse: pool.totalCount - pool.idleCount, idle: pool.idleCount }))
}

function openMysql (url: string, options: PoolOptions, onPoolError: (error: Error) => void): OpenDatabase {
  const parsed = new URL(url.replace(/^[a-z]+(\+\w+)?:/i, 'mysql:'))
  const { createPool } = require('mysql2') as typeof import('mysql2')
  const pool: MysqlPool = createPool({
    host: parsed.hostname || '127.0.0.1',
    port: parsed.port === '' ? 3306 : Number(parsed.port),
    user: decodeURIComponent(parsed.username) || 'root',
    password: decodeURIComponent(parsed.password),
    database: decodeURIComponent(parsed.pathname.slice(1)),
    // cloudkitty.conf says ?charset=utf8; 4-byte scope ids need utf8mb4.
    charset: 'utf8mb4',
    connectionLimit: options.poolSize,
    connectTimeout: options.connectTimeoutMs,
    // DATETIME is naive UTC: keep the text.
    dateStrings: true,
    supportBigNumbers: true,
    enableKeepAlive: true,
  })
  pool.on('connection', (connection) => { connection.on('error', onPoolError) })
  const statementSeconds = options.statementTimeoutMs / 1000
  const dialect = new GuardedMysqlDialect({
    pool,
    async onCreateConnection (connection) {
      await connection.executeQuery(CompiledQuery.raw("SET SESSION time_zone = '+00:00'"))
      // MariaDB's statement bound (MySQL 8 spells it max_execution_time).
      await connection.executeQuery(CompiledQuery.raw(`SET SESSION max_statement_time = ${statementSeconds}`))
    },
  }, options.acquireTimeoutMs)
  // mysql2 keeps its counts in private fields; read them defensively.
  const internals = pool as unknown as { _allConnections?: { length: number }, _freeConnections?: { length: number } }
  const traits = mysqlTraits(false)
  return opened(dialect, traits, redactUrl(url), () => {
    const all = internals._allConnections?.length ?? 0
    const free = internals._freeConnections?.length ?? 0
    return { inUse: all - free, idle: free }
  }, async (db) => {
    const { rows } = await sql<{ version: string }>`SELECT VERSION() AS version`.execute(db)
    traits.supportsSkipLocked = supportsSkipLocked(String(rows[0]?.version ?? ''))
  })
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
 * Connections are opened lazily; an unreachable server shows up as
 * DATABASE_UNAVAILABLE on first use.
 *
 * This is the only place that switches on the engine.
 */
export function openDatabase (url: string, options: Partial<PoolOptions> = {}, onPoolError: (error: Error) => void = () => {}): OpenDatabase {
  const full = { ...DEFAULT_POOL_OPTIONS, ...options }
  switch (engineOfUrl(url)) {
    case 'sqlite': return openSqlite(url, full)
    case 'postgres': return openPostgres(url, full, onPoolError)
    case 'mysql': return openMysql(url, full, onPoolError)
  }
}
