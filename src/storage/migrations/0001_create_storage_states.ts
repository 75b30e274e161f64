import type { Kysely, Migration } from 'kysely'
import type { EngineTraits } from '../engine-traits.ts'
import { COLUMN_WIDTHS } from '../../domain/scope-fields.ts'
import { idColumn, withTableOptions } from './column-types.ts'

const TABLE = 'cloudkitty_storage_states'
// One index per served filter; `identifier` is served by the unique
// constraint, whose first column it is.
const INDEXES = [
  ['ix_scopekeeper_states_scope_key', 'scope_key'],
  ['ix_scopekeeper_states_fetcher', 'fetcher'],
  ['ix_scopekeeper_states_collector', 'collector'],
  ['ix_scopekeeper_states_active', 'active'],
] as const

/**
 * Creates CloudKitty's states table when it is absent, exactly as CloudKitty's
 * migrations leave it, and adds our filter indexes. An existing table (a live
 * CloudKitty database) is never altered: it only gains indexes.
 */
export function createStorageStates (traits: EngineTraits): Migration {
  return {
    async up (db: Kysely<any>) {
      await db.schema.createTable(TABLE).ifNotExists()
        .addColumn('id', traits.idType, idColumn(traits))
        .addColumn('identifier', `varchar(${COLUMN_WIDTHS.identifier})`, (c) => c.notNull())
        .addColumn('scope_key', `varchar(${COLUMN_WIDTHS.scope_key})`)
        .addColumn('fetcher', `varchar(${COLUMN_WIDTHS.fetcher})`)
        .addColumn('collector', `varchar(${COLUMN_WIDTHS.collector})`)
        .addColumn('last_processed_timestamp', traits.dateTimeType, (c) => c.notNull())
        .addColumn('scope_activation_toggle_date', traits.dateTimeType, (c) => c.notNull().defaultTo(traits.utcNowDefault))
        .addColumn('active', 'boolean', (c) => c.notNull().defaultTo(true))
        .addUniqueConstraint('uq_cloudkitty_storage_states_identifier', ['identifier', 'scope_key', 'collector', 'fetcher'])
        .$call(withTableOptions(traits))
        .execute()
      for (const [name, column] of INDEXES) {
        await db.schema.createIndex(name).ifNotExists().on(TABLE).column(column).execute()
      }
    },
    async down (db: Kysely<any>) {
      // CloudKitty's table stays: it may hold a live deployment's state.
      for (const [name] of INDEXES) {
        const drop = db.schema.dropIndex(name).ifExists()
        await (traits.dropIndexNamesTable ? drop.on(TABLE) : drop).execute()
      }
    },
  }
}
