import type { Kysely, Migration } from 'kysely'
import type { EngineTraits } from '../engine-traits.ts'

/**
 * DELETE /v2/scope/resets/{id} cancels a running job after its current
 * batch: the request is recorded here, and the worker reads it in each
 * batch's transaction. Null when no cancellation was asked for.
 */
export function resetJobCancellation (traits: EngineTraits): Migration {
  return {
    async up (db: Kysely<any>) {
      await db.schema.alterTable('scopekeeper_reset_jobs').addColumn('cancel_requested_at', traits.dateTimeType).execute()
    },
    async down (db: Kysely<any>) {
      await db.schema.alterTable('scopekeeper_reset_jobs').dropColumn('cancel_requested_at').execute()
    },
  }
}
