import type { Insertable } from 'kysely'
import type { Database } from './database.ts'
import type { Store } from './store.ts'

type TableWithId = 'cloudkitty_storage_states' | 'scopekeeper_reset_jobs'

/**
 * Inserts one row and returns its new id: through RETURNING where the engine
 * has it, else from the driver's insert id (MySQL).
 */
export async function insertReturningId<T extends TableWithId> (
  { db, traits }: Store, table: T, values: Insertable<Database[T]>,
): Promise<number> {
  const insert = db.insertInto(table).values(values as never)
  if (traits.supportsReturning) return Number((await insert.returning('id').executeTakeFirstOrThrow()).id)
  return Number((await insert.executeTakeFirstOrThrow()).insertId)
}
