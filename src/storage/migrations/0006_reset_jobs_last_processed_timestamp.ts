import type { Kysely, Migration } from 'kysely'

/**
 * The timestamp a reset job moves its scopes to takes the name it has
 * everywhere else, on the wire, in the domain and in CloudKitty's
 * `cloudkitty_storage_states`: one name from the route to the table.
 */
export const resetJobsLastProcessedTimestamp: Migration = {
  async up (db: Kysely<any>) {
    await db.schema.alterTable('scopekeeper_reset_jobs').renameColumn('target_timestamp', 'last_processed_timestamp').execute()
  },
  async down (db: Kysely<any>) {
    await db.schema.alterTable('scopekeeper_reset_jobs').renameColumn('last_processed_timestamp', 'target_timestamp').execute()
  },
}
