import type { Kysely, Migration } from 'kysely'
import type { EngineTraits } from '../engine-traits.ts'
import { idColumn, withTableOptions } from './column-types.ts'

/**
 * The audit history: one row per change made through scopekeeper, written
 * in the change's own transaction. A reset's batch is one row covering a
 * range of scope states, expanded per scope on read. Indexed for each filter
 * of GET /v2/scope/events, newest first. Reset jobs keep who requested them
 * and why.
 */
export function createEvents (traits: EngineTraits): Migration {
  const dt = traits.dateTimeType
  return {
    async up (db: Kysely<any>) {
      await db.schema.createTable('scopekeeper_events')
        .addColumn('id', traits.idType, idColumn(traits))
        .addColumn('kind', 'varchar(32)', (c) => c.notNull())
        .addColumn('scope_id', 'varchar(256)')
        .addColumn('job_id', 'integer')
        .addColumn('first_state_id', 'integer')
        .addColumn('last_state_id', 'integer')
        .addColumn('created_at', dt, (c) => c.notNull())
        .addColumn('auth', 'varchar(16)', (c) => c.notNull())
        .addColumn('user_id', 'varchar(64)')
        .addColumn('user_name', 'varchar(255)')
        .addColumn('project_id', 'varchar(64)')
        .addColumn('roles', 'text', (c) => c.notNull())
        .addColumn('request_id', 'varchar(64)')
        .addColumn('reason', 'text')
        .addColumn('details', 'text', (c) => c.notNull())
        .$call(withTableOptions(traits))
        .execute()
      const index = (name: string, columns: string[]) => db.schema.createIndex(name).on('scopekeeper_events').columns(columns).execute()
      await index('ix_scopekeeper_events_scope_id', ['scope_id', 'id'])
      await index('ix_scopekeeper_events_kind', ['kind', 'id'])
      await index('ix_scopekeeper_events_user_id', ['user_id', 'id'])
      await index('ix_scopekeeper_events_created_at', ['created_at'])
      // A reset batch's range, for a scope's history.
      await index('ix_scopekeeper_events_first_state_id', ['first_state_id'])
      await db.schema.alterTable('scopekeeper_reset_jobs').addColumn('requested_by', 'text').execute()
      await db.schema.alterTable('scopekeeper_reset_jobs').addColumn('reason', 'text').execute()
    },
    async down (db: Kysely<any>) {
      await db.schema.alterTable('scopekeeper_reset_jobs').dropColumn('reason').execute()
      await db.schema.alterTable('scopekeeper_reset_jobs').dropColumn('requested_by').execute()
      await db.schema.dropTable('scopekeeper_events').execute()
    },
  }
}
