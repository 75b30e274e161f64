import type { Kysely, Migration } from 'kysely'
import type { EngineTraits } from '../engine-traits.ts'
import { withTableOptions } from './column-types.ts'

/**
 * The Idempotency-Key of each PUT, PATCH and POST /v2/scope that sent one,
 * with the answer it got. The primary key (caller, key) decides, across
 * every process sharing the database, which of several concurrent repeats
 * acts: the one whose insert succeeds. `status` is null while that request
 * is in progress. Rows expire by age (`[api] idempotency_ttl`), hence the
 * index on `created_at`.
 */
export function createIdempotencyKeys (traits: EngineTraits): Migration {
  const dt = traits.dateTimeType
  return {
    async up (db: Kysely<any>) {
      await db.schema.createTable('scopekeeper_idempotency_keys')
        // 'noauth', or 'keystone:<user id>:<project id>' (a key is the caller's own).
        .addColumn('caller', 'varchar(255)', (c) => c.notNull())
        .addColumn('idempotency_key', 'varchar(255)', (c) => c.notNull())
        .addColumn('method', 'varchar(8)', (c) => c.notNull())
        .addColumn('path', 'varchar(255)', (c) => c.notNull())
        // SHA-256 (hex) of the request body as canonical JSON.
        .addColumn('request_hash', 'varchar(64)', (c) => c.notNull())
        // Who holds the claim while in progress: only its holder completes or releases it.
        .addColumn('claim_token', 'varchar(36)', (c) => c.notNull())
        .addColumn('status', 'integer')
        // JSON object of the replayed headers (location, etag, content-type).
        .addColumn('response_headers', 'text')
        .addColumn('response_body', 'text')
        .addColumn('created_at', dt, (c) => c.notNull())
        .addColumn('completed_at', dt)
        .addPrimaryKeyConstraint('pk_scopekeeper_idempotency_keys', ['caller', 'idempotency_key'])
        .$call(withTableOptions(traits))
        .execute()
      // Expiry by age, in bounded batches.
      await db.schema.createIndex('ix_scopekeeper_idempotency_keys_created_at').on('scopekeeper_idempotency_keys').column('created_at').execute()
    },
    async down (db: Kysely<any>) {
      await db.schema.dropTable('scopekeeper_idempotency_keys').execute()
    },
  }
}
