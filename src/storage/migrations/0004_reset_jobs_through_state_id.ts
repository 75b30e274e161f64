import type { Kysely, Migration } from 'kysely'

/**
 * A reset of every scope is recorded as the highest scope state id at
 * acceptance instead of one job scope row per state: its 202 no longer
 * grows with the table (listing 1 000 000 rows took 1.6 s on PostgreSQL and
 * 2.4 s on MariaDB), and the list table no longer gains a million rows per
 * such reset.
 */
export const resetJobsThroughStateId: Migration = {
  async up (db: Kysely<any>) {
    await db.schema.alterTable('scopekeeper_reset_jobs').addColumn('through_state_id', 'integer').execute()
  },
  async down (db: Kysely<any>) {
    await db.schema.alterTable('scopekeeper_reset_jobs').dropColumn('through_state_id').execute()
  },
}
