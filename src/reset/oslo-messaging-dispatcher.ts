import type { OsloMessagingCaster } from './oslo-messaging-caster.ts'
import { uniqueIdFor } from './oslo-messaging-caster.ts'
import type { BatchDispatcher } from './reset-worker.ts'

/**
 * Hands each batch of a reset job to CloudKitty's processors as one
 * `reset_state` cast, as CloudKitty's API does; the processor discards rated
 * data and moves the timestamps itself. A batch counts as handed over once
 * the broker confirms it. Its `_unique_id` is derived from the job and the
 * batch's first scope state, so a retry after an unconfirmed publish (which
 * may have reached the broker) is dropped by the processor as a duplicate.
 */
export function osloMessagingDispatcher (caster: OsloMessagingCaster): BatchDispatcher {
  return {
    async dispatch (job, scopes) {
      await caster.castResetState(
        scopes.map(({ scopeId, scopeKey, fetcher, collector }) => ({ scopeId, scopeKey, fetcher, collector })),
        job.lastProcessedTimestamp,
        uniqueIdFor(job.id, scopes[0].id),
        { requestId: job.requestId, roles: ['admin'], isAdmin: true },
      )
    },
  }
}
