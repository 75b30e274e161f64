import { Migrator, type Migration, type MigrationResultSet } from 'kysely'
import type { EngineTraits } from './engine-traits.ts'
import type { OpenDatabase } from './open-database.ts'
import { createStorageStates } from './migrations/0001_create_storage_states.ts'
import { createResetJobs } from './migrations/0002_create_reset_jobs.ts'
import { hotTimestampUpdates } from './migrations/0003_hot_timestamp_updates.ts'
import { resetJobsThroughStateId } from './migrations/0004_reset_jobs_through_state_id.ts'
import { createResetJobWaits } from './migrations/0005_create_reset_job_waits.ts'
import { resetJobsLastProcessedTimestamp } from './migrations/0006_reset_jobs_last_processed_timestamp.ts'
import { createEvents } from './migrations/0007_create_events.ts'
import { resetJobCancellation } from './migrations/0008_reset_job_cancellation.ts'
import { createIdempotencyKeys } from './migrations/0009_create_idempotency_keys.ts'
import { indexStatesActiveLastProcessed } from './migrations/0010_index_states_active_last_processed.ts'

function migrations (traits: EngineTraits): Record<string, Migration> {
  // Listed explicitly, in order; names are never changed once merged.
  return {
    '0001_create_storage_states': createStorageStates(traits),
    '0002_create_reset_jobs': createResetJobs(traits),
    '0003_hot_timestamp_updates': hotTimestampUpdates(traits),
    '0004_reset_jobs_through_state_id': resetJobsThroughStateId,
    '0005_create_reset_job_waits': createResetJobWaits(traits),
    '0006_reset_jobs_last_processed_timestamp': resetJobsLastProcessedTimestamp,
    '0007_create_events': createEvents(traits),
    '0008_reset_job_cancellation': resetJobCancellation(traits),
    '0009_create_idempotency_keys': createIdempotencyKeys(traits),
    '0010_index_states_active_last_processed': indexStatesActiveLastProcessed(traits),
  }
}

function migrator ({ db, traits }: OpenDatabase): Migrator {
  return new Migrator({
    db,
    provider: { getMigrations: async () => migrations(traits) },
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
  // Every process migrates before it serves or works: the one place to learn what the server can do.
  await database.probe()
  const result = await migrator(database).migrateToLatest()
  if (result.error !== undefined) throw result.error
  // Again once the tables exist (SQLite gathers planner statistics here).
  await database.probe()
  return result
}

/** Undoes every migration; for tests of the `down` steps. */
export async function migrateDownAll (database: OpenDatabase): Promise<void> {
  const { NO_MIGRATIONS } = await import('kysely')
  const result = await migrator(database).migrateTo(NO_MIGRATIONS)
  if (result.error !== undefined) throw result.error
}

/** One pending migration and the statements it would run. */
export interface PlannedMigration {
  name: string
  statements: string[]
}

/**
 * The SQL that {@link migrateToLatest} would run now, without running it:
 * reads which migrations are applied, then compiles the pending ones against
 * an engine-faithful builder that executes nothing.
 */
export async function planMigrations (database: OpenDatabase): Promise<PlannedMigration[]> {
  const pending = (await migrator(database).getMigrations()).filter((m) => m.executedAt === undefined)
  const plans: PlannedMigration[] = []
  for (const { name, migration } of pending) {
    const statements: string[] = []
    const recorder = database.compileOnly((query) => {
      const params = query.parameters.length === 0 ? '' : ` -- parameters: ${JSON.stringify(query.parameters)}`
      statements.push(`${query.sql};${params}`)
    })
    await migration.up(recorder)
    await recorder.destroy()
    plans.push({ name, statements })
  }
  return plans
}
