import type { Kysely, Migration } from 'kysely'
import type { EngineTraits } from '../engine-traits.ts'
import { withTableOptions } from './column-types.ts'

/**
 * The scope states of a job that were skipped because CloudKitty's processor
 * held their processing lock: the batch goes on with the others, and the job
 * comes back to these before it is done. Kept in the database, in the
 * batch's transaction, so a worker that dies forgets none of them.
 */
export function createResetJobWaits (traits: EngineTraits): Migration {
  return {
    async up (db: Kysely<any>) {
      await db.schema.alterTable('scopekeeper_reset_jobs')
        .addColumn('scopes_waiting', 'integer', (c) => c.notNull().defaultTo(0)).execute()
      await db.schema.createTable('scopekeeper_reset_job_waits')
        .addColumn('job_id', 'integer', (c) => c.notNull())
        .addColumn('state_id', 'integer', (c) => c.notNull())
        .addPrimaryKeyConstraint('pk_scopekeeper_reset_job_waits', ['job_id', 'state_id'])
        .$call(withTableOptions(traits))
        .execute()
    },
    async down (db: Kysely<any>) {
      await db.schema.dropTable('scopekeeper_reset_job_waits').execute()
      await db.schema.alterTable('scopekeeper_reset_jobs').dropColumn('scopes_waiting').execute()
    },
  }
}
