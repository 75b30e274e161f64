import { ScopeKeeperError } from '../domain/errors.ts'

// SQLite (better-sqlite3), PostgreSQL (pg: SQLSTATE 23505) and MySQL/MariaDB
// (mysql2: ER_DUP_ENTRY) report a unique violation each in its own way.
export function isUniqueViolation (error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false
  const code = (error as { code?: unknown }).code
  return code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY' ||
    code === '23505' || code === 'ER_DUP_ENTRY'
}

/**
 * Runs `write`, turning a unique-constraint violation from any engine into
 * SCOPE_CONFLICT with `message`, so no engine error code leaves `storage/`.
 */
export async function translateUniqueViolation<T> (write: () => Promise<T>, message: string): Promise<T> {
  try {
    return await write()
  } catch (error) {
    if (isUniqueViolation(error)) throw new ScopeKeeperError('SCOPE_CONFLICT', message, { cause: error })
    throw error
  }
}
