import type { DatabaseConnection, Driver } from 'kysely'
import { ScopeKeeperError } from '../domain/errors.ts'

// Errors that mean "the database is not reachable right now", per driver:
// network errors, PostgreSQL's SQLSTATE classes 08 (connection) and 57
// (operator intervention: pg_terminate_backend, shutdown, statement
// timeout), MariaDB's killed connections and statement time limit, and
// SQLite's busy or closed handle.
const UNAVAILABLE_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN',
  '57P01', '57P02', '57P03', '57014', '53300', '08000', '08001', '08003', '08004', '08006',
  'PROTOCOL_CONNECTION_LOST', 'PROTOCOL_SEQUENCE_TIMEOUT', 'ER_CON_COUNT_ERROR', 'ER_CONNECTION_KILLED',
  'ER_SERVER_SHUTDOWN', 'ER_QUERY_INTERRUPTED', 'ER_STATEMENT_TIMEOUT', 'ER_SERVER_GONE_ERROR', 'ER_SERVER_LOST',
  'SQLITE_BUSY', 'SQLITE_CANTOPEN', 'SQLITE_IOERR',
])
const UNAVAILABLE_MESSAGES = [
  /Connection terminated/i, /timeout exceeded when trying to connect/i, /not queryable/i,
  /connection is in closed state/i, /Pool is closed/i, /database connection is not open/i, /driver has already been destroyed/i,
  /max_statement_time exceeded/i, /Connection lost/i,
]
// MySQL error numbers: 1927 connection killed, 1969 statement time limit, 2006/2013 server gone.
const UNAVAILABLE_ERRNOS = new Set([1927, 1969, 2006, 2013, 1053, 1317])

function isUnavailable (error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false
  const { code, errno, message } = error as { code?: unknown, errno?: unknown, message?: unknown }
  if (typeof code === 'string' && UNAVAILABLE_CODES.has(code)) return true
  if (typeof errno === 'number' && UNAVAILABLE_ERRNOS.has(errno)) return true
  if (error instanceof AggregateError) return error.errors.some(isUnavailable)
  return typeof message === 'string' && UNAVAILABLE_MESSAGES.some((re) => re.test(message))
}

// MySQL refuses a character its column charset cannot hold (a 4-byte UTF-8
// character in a utf8mb3 table CloudKitty created): the input's fault.
function isUnstorableText (error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code
  return code === 'ER_TRUNCATED_WRONG_VALUE_FOR_FIELD' || code === 'ER_CANT_AGGREGATE_2COLLATIONS' || code === 'ER_CANT_AGGREGATE_NCOLLATIONS'
}

/**
 * A transaction chosen as a deadlock's victim and rolled back whole
 * (InnoDB 1213 ER_LOCK_DEADLOCK, PostgreSQL 40P01): running it again is
 * the remedy, as oslo.db's `wrap_db_retry(retry_on_deadlock=True)` does
 * (oslo_db/api.py; exc_filters.py maps MySQL's 1213 to DBDeadlock).
 */
export function isDeadlock (error: unknown): boolean {
  const { code, errno } = (error ?? {}) as { code?: unknown, errno?: unknown }
  return code === 'ER_LOCK_DEADLOCK' || errno === 1213 || code === '40P01'
}

/** Maps a driver error to a {@link ScopeKeeperError} when it is one we can name; else returns it unchanged. */
export function translateDriverError (error: unknown): unknown {
  if (error instanceof ScopeKeeperError) return error
  if (isUnavailable(error)) return new ScopeKeeperError('DATABASE_UNAVAILABLE', 'The database is unavailable; retry later.', { cause: error })
  if (isUnstorableText(error)) return new ScopeKeeperError('INVALID_INPUT', "A value contains characters this database's character set cannot store.", { cause: error })
  return error
}

const GUARDED = Symbol('scopekeeper.guarded')

function guardConnection (connection: DatabaseConnection): DatabaseConnection {
  const c = connection as DatabaseConnection & { [GUARDED]?: true }
  if (c[GUARDED] === true) return c
  const execute = c.executeQuery.bind(c)
  c.executeQuery = async (query) => {
    try {
      return await execute(query)
    } catch (error) {
      throw translateDriverError(error)
    }
  }
  const stream = c.streamQuery.bind(c)
  c.streamQuery = async function * (query, chunkSize) {
    try {
      yield * stream(query, chunkSize)
    } catch (error) {
      throw translateDriverError(error)
    }
  }
  c[GUARDED] = true
  return c
}

/**
 * Wraps a Kysely driver so that no request waits forever for a connection
 * (`acquireTimeoutMs`) and an unreachable database surfaces as
 * DATABASE_UNAVAILABLE (a 503) rather than a driver error (a 500).
 */
export function guardDriver (driver: Driver, acquireTimeoutMs: number): Driver {
  const acquire = driver.acquireConnection.bind(driver)
  driver.acquireConnection = async () => {
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new ScopeKeeperError('DATABASE_UNAVAILABLE', 'No database connection became free in time; retry later.')), acquireTimeoutMs)
    })
    const acquiring = acquire()
    try {
      return guardConnection(await Promise.race([acquiring, timeout]))
    } catch (error) {
      // A connection that arrives after the timeout goes back to the pool.
      acquiring.then(async (late) => { await driver.releaseConnection(late) }, () => {})
      throw translateDriverError(error)
    } finally {
      clearTimeout(timer)
    }
  }
  return driver
}
