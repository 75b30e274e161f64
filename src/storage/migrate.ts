import { Migrator, type Migration, type MigrationResultSet } from 'kysely'
import type { OpenDatabase } from './open-database.ts'
import { createStorageStates } from './migrations/0001_create_storage_states.ts'
import { createResetJobs } from './migrations/0002_create_reset_jobs.ts'

function migrator ({ db, traits }: OpenDatabase): Migrator {
  // Listed explicitly, in order; names are never changed once merged.
  const migrations: Record<string, Migration> = {
    '0001_create_storage_states': createStorageStates(traits),
    '0002_create_reset_jobs': createResetJobs(traits),
  }
  return new Migrator({
    db,
    provider: { getMigrations: async () => migrations },
    // Our own bookkeeping; CloudKitty's alembic table is never touched.
    migrationTableName: 'scopekeeper_migration',
    migrationLockTableName: 'scopekeeper_migration_lock',
  })
}

/**
 * Brings the schema up to date; idempotent. Kysely's migrator holds a lock
 * while it runs, so two instances starting at once do not both migrate.
 * Throws the first failing migration's error.
 */
export async function migrateToLatest (database: OpenDatabase): Promise<MigrationResultSet> {
  const result = await migrator(database).migrateToLatest()
  if (result.error !== undefined) throw result.error
  return result
}

/** Undoes every migration; for tests of the `down` steps. */
export async function migrateDownAll (database: OpenDatabase): Promise<void> {
  const { NO_MIGRATIONS } = await import('kysely')
  const result = await migrator(database).migrateTo(NO_MIGRATIONS)
  if (result.error !== undefined) throw result.error
}
