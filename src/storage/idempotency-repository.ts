import type { IdempotencyKeys, IdempotencyRecord, StoredResponse } from '../domain/idempotency.ts'
import { fromStored, toStoredText } from '../domain/timestamps.ts'
import type { Store } from './store.ts'
import { isUniqueViolation } from './unique-violation.ts'

const KEYS = 'scopekeeper_idempotency_keys'

/**
 * The idempotency keys in `scopekeeper_idempotency_keys`. Each call is one
 * autocommitted statement (two for a purge), so a claim is visible to every
 * other process as soon as its insert returns.
 */
export function idempotencyKeys ({ db }: Store): IdempotencyKeys {
  return {
    async claim (request, token, now) {
      try {
        await db.insertInto(KEYS).values({
          caller: request.caller,
          idempotency_key: request.key,
          method: request.method,
          path: request.path,
          request_hash: request.requestHash,
          claim_token: token,
          status: null,
          created_at: toStoredText(now),
        }).execute()
        return true
      } catch (error) {
        // The primary key (caller, key): someone else's claim came first.
        if (isUniqueViolation(error)) return false
        throw error
      }
    },

    async find (caller, key): Promise<IdempotencyRecord | undefined> {
      const row = await db.selectFrom(KEYS).selectAll()
        .where('caller', '=', caller).where('idempotency_key', '=', key).executeTakeFirst()
      if (row === undefined) return undefined
      const response: StoredResponse | undefined = row.status === null
        ? undefined
        : { status: Number(row.status), headers: JSON.parse(row.response_headers ?? '{}') as Record<string, string>, body: row.response_body ?? '' }
      return {
        caller: row.caller,
        key: row.idempotency_key,
        method: row.method,
        path: row.path,
        requestHash: row.request_hash,
        claimToken: row.claim_token,
        createdAt: fromStored(row.created_at),
        response,
      }
    },

    async complete (claim, response, now) {
      await db.updateTable(KEYS).set({
        status: response.status,
        response_headers: JSON.stringify(response.headers),
        response_body: response.body,
        completed_at: toStoredText(now),
      }).where('caller', '=', claim.caller).where('idempotency_key', '=', claim.key).where('claim_token', '=', claim.token).execute()
    },

    async remove (caller, key, token) {
      await db.deleteFrom(KEYS).where('caller', '=', caller).where('idempotency_key', '=', key).where('claim_token', '=', token).execute()
    },

    async purgeExpired (createdBefore, limit) {
      // DELETE … LIMIT is not portable (PostgreSQL has none): find the
      // created_at of the limit-th oldest expired row on the index, and
      // delete up to it (rows sharing that second go too).
      const cutoff = toStoredText(createdBefore)
      const bound = await db.selectFrom(KEYS).select('created_at').where('created_at', '<', cutoff)
        .orderBy('created_at').offset(limit - 1).limit(1).executeTakeFirst()
      const result = await db.deleteFrom(KEYS)
        .where('created_at', bound === undefined ? '<' : '<=', bound === undefined ? cutoff : toStoredText(fromStored(bound.created_at)))
        .executeTakeFirst()
      return Number(result.numDeletedRows)
    },
  }
}
