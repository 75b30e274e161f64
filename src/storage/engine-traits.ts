import { sql, type RawBuilder } from 'kysely'

/** The database engines scopekeeper speaks. */
export type Engine = 'sqlite' | 'postgres' | 'mysql'

/**
 * What an engine can do, asked by capability rather than by name so that
 * engine differences stay in `storage/`. Built in `open-database.ts`.
 */
export interface EngineTraits {
  engine: Engine
  /** `FOR UPDATE SKIP LOCKED` exists (PostgreSQL, MariaDB ≥ 10.6). */
  supportsSkipLocked: boolean
  /** `SELECT … FOR UPDATE` exists (not on SQLite, whose write transactions are exclusive). */
  supportsRowLocks: boolean
  /** `INSERT … RETURNING` exists; otherwise the driver reports the insert id. */
  supportsReturning: boolean
  /** The driver binds JS booleans; SQLite's does not, and MySQL stores TINYINT 0/1. */
  bindsBooleans: boolean
  /**
   * Text comparisons may ignore case: MySQL/MariaDB columns of a table
   * CloudKitty created carry a `_ci` collation. Filters then add a binary
   * comparison, since `AAAA` must not match `aaaa`.
   */
  mayCompareCaseInsensitively: boolean
  /** The column type of a naive-UTC datetime (`timestamp` on PostgreSQL). */
  dateTimeType: 'datetime' | 'timestamp'
  /** The type of an auto-numbered primary key. */
  idType: 'integer' | 'serial'
  /** The primary key needs AUTO_INCREMENT (MySQL). */
  idAutoIncrement: boolean
  /** The current UTC time as a column default. */
  utcNowDefault: RawBuilder<unknown>
  /** Appended to CREATE TABLE (MySQL: InnoDB, utf8mb4, binary collation). */
  tableOptions?: string
  /** DROP INDEX must name the table (MySQL). */
  dropIndexNamesTable: boolean
  /**
   * How a creation of a scope_id holds off every other creation of it, from
   * its existence check until its row is committed. CloudKitty's unique
   * constraint spans scope_key, collector and fetcher too, so it stops only
   * identical creations. This lock is scopekeeper's own, between API
   * processes; CloudKitty's processor never takes it.
   * - `transaction-advisory`: `pg_advisory_xact_lock(bigint)`, released by
   *   the commit (PostgreSQL).
   * - `named`: `GET_LOCK` on one connection, released once the insert has
   *   committed; MySQL/MariaDB have no transaction-scoped named lock.
   * - `write-transaction`: nothing to take, since write transactions
   *   already exclude each other (SQLite's BEGIN IMMEDIATE).
   */
  creationLock: 'transaction-advisory' | 'named' | 'write-transaction'
  /**
   * Free space to leave on the states table's pages, where an update that
   * touches no indexed column can then skip every index (PostgreSQL's
   * heap-only tuples). The others update such a row in place already.
   */
  hotUpdateFillFactor?: number
  /**
   * Gathers a table's planner statistics. For PostgreSQL, whose plans for a
   * table that just grew by a large INSERT … SELECT come from statistics that
   * have not seen it (autovacuum gets there later). InnoDB reads in
   * primary-key order anyway; SQLite's statistics come from `probe()`.
   */
  analyzeTable?: (table: string) => RawBuilder<unknown>
  /**
   * Lets the current transaction commit without waiting for its log to reach
   * the disk (PostgreSQL). Only for work a crash may safely lose and redo: any
   * later ordinary commit flushes it too.
   */
  asyncCommit?: RawBuilder<unknown>
}

/** Traits of the embedded SQLite engine. */
export const SQLITE_TRAITS: EngineTraits = {
  engine: 'sqlite',
  supportsSkipLocked: false,
  supportsRowLocks: false,
  supportsReturning: true,
  bindsBooleans: false,
  mayCompareCaseInsensitively: false,
  dateTimeType: 'datetime',
  idType: 'integer',
  idAutoIncrement: false,
  // SQLite's CURRENT_TIMESTAMP is UTC: 'YYYY-MM-DD HH:MM:SS', as CloudKitty's server default writes it.
  utcNowDefault: sql`CURRENT_TIMESTAMP`,
  dropIndexNamesTable: false,
  creationLock: 'write-transaction',
}

/** Traits of PostgreSQL. */
export const POSTGRES_TRAITS: EngineTraits = {
  engine: 'postgres',
  supportsSkipLocked: true,
  supportsRowLocks: true,
  supportsReturning: true,
  bindsBooleans: true,
  mayCompareCaseInsensitively: false,
  dateTimeType: 'timestamp',
  idType: 'serial',
  idAutoIncrement: false,
  utcNowDefault: sql`(now() at time zone 'utc')`,
  dropIndexNamesTable: false,
  creationLock: 'transaction-advisory',
  hotUpdateFillFactor: 50,
  analyzeTable: (table) => sql`ANALYZE ${sql.table(table)}`,
  asyncCommit: sql`SET LOCAL synchronous_commit = off`,
}

/** Traits of MySQL/MariaDB; `supportsSkipLocked` depends on the server version. */
export function mysqlTraits (supportsSkipLocked: boolean): EngineTraits {
  return {
    engine: 'mysql',
    supportsSkipLocked,
    supportsRowLocks: true,
    supportsReturning: false,
    bindsBooleans: false,
    mayCompareCaseInsensitively: true,
    dateTimeType: 'datetime',
    idType: 'integer',
    idAutoIncrement: true,
    utcNowDefault: sql`(UTC_TIMESTAMP())`,
    tableOptions: 'ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin',
    dropIndexNamesTable: true,
    creationLock: 'named',
  }
}

/** A boolean as the engine stores it (CloudKitty's SQLAlchemy writes 0/1 on SQLite and MySQL). */
export function booleanToDb (traits: EngineTraits, value: boolean): number | boolean {
  return traits.bindsBooleans ? value : (value ? 1 : 0)
}

/** Reads a boolean column back from any engine's form (0/1, true/false, '0'/'1'). */
export function booleanFromDb (value: unknown): boolean {
  return value === true || value === 1 || value === '1' || value === 1n
}
