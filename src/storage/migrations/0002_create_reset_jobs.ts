import type { Kysely, Migration } from 'kysely'
import type { EngineTraits } from '../engine-traits.ts'
import { idColumn, withTableOptions } from './column-types.ts'

/** The durable reset queue: one job per accepted PUT, and the scopes it matched. */
export function createResetJobs (traits: EngineTraits): Migration {
  const dt = traits.dateTimeType
  return {
    async up (db: Kysely<any>) {
      await db.schema.createTable('scopekeeper_reset_jobs')
        .addColumn('id', traits.idType, idColumn(traits))
        .addColumn('status', 'varchar(16)', (c) => c.notNull())
        .addColumn('target_timestamp', dt, (c) => c.notNull())
        .addColumn('scopes_total', 'integer', (c) => c.notNull())
        .addColumn('scopes_applied', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('cursor_state_id', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('max_attempts', 'integer', (c) => c.notNull())
        .addColumn('run_at', dt, (c) => c.notNull())
        .addColumn('locked_by', 'varchar(128)')
        .addColumn('locked_at', dt)
        .addColumn('last_error', 'text')
        .addColumn('request_id', 'varchar(64)')
        .addColumn('created_at', dt, (c) => c.notNull())
        .addColumn('started_at', dt)
        .addColumn('finished_at', dt)
        .$call(withTableOptions(traits))
        .execute()
      // The worker's claim: the oldest unfinished job.
      await db.schema.createIndex('ix_scopekeeper_reset_jobs_status_id').on('scopekeeper_reset_jobs').columns(['status', 'id']).execute()
      await db.schema.createTable('scopekeeper_reset_job_scopes')
        .addColumn('job_id', 'integer', (c) => c.notNull())
        .addColumn('state_id', 'integer', (c) => c.notNull())
        .addPrimaryKeyConstraint('pk_scopekeeper_reset_job_scopes', ['job_id', 'state_id'])
        .$call(withTableOptions(traits))
        .execute()
    },
    async down (db: Kysely<any>) {
      await db.schema.dropTable('scopekeeper_reset_job_scopes').execute()
      await db.schema.dropTable('scopekeeper_reset_jobs').execute()
    },
  }
}
