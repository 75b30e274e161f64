/** The database engines scopekeeper speaks. */
export type Engine = 'sqlite' | 'postgres' | 'mysql'

/**
 * What an engine can do, asked by capability rather than by name so that
 * engine differences stay in `storage/`.
 */
export interface EngineTraits {
  engine: Engine
  /** `FOR UPDATE SKIP LOCKED` exists (PostgreSQL, MariaDB ≥ 10.6). */
  supportsSkipLocked: boolean
  /** `INSERT … RETURNING` exists. */
  supportsReturning: boolean
  /** The driver binds JS booleans; SQLite's does not, it stores 0/1. */
  bindsBooleans: boolean
  /** The column type of a naive-UTC datetime (`timestamp` on PostgreSQL). */
  dateTimeType: 'datetime' | 'timestamp'
}

/** Traits of the embedded SQLite engine. */
export const SQLITE_TRAITS: EngineTraits = {
  engine: 'sqlite',
  supportsSkipLocked: false,
  supportsReturning: true,
  bindsBooleans: false,
  dateTimeType: 'datetime',
}

/** A boolean as the engine stores it (CloudKitty's SQLAlchemy writes 0/1 on SQLite). */
export function booleanToDb (traits: EngineTraits, value: boolean): number | boolean {
  return traits.bindsBooleans ? value : (value ? 1 : 0)
}

/** Reads a boolean column back from any engine's form (0/1, true/false, '0'/'1'). */
export function booleanFromDb (value: unknown): boolean {
  return value === true || value === 1 || value === '1' || value === 1n
}
