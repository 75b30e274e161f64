import type { Actor } from '../domain/change-context.ts'
import type { ClaimedResetJob } from '../domain/reset-job.ts'
import type { ChangeContext } from '../domain/change-context.ts'
import type { EventFilter, FlippedScope, MovedScope, NewEvent, ScopeEvent } from '../domain/scope-event.ts'
import type { Page } from '../domain/scope-state.ts'
import { formatTimestamp, fromStored, toStoredText } from '../domain/timestamps.ts'
import type { Selectable } from 'kysely'
import type { EventsTable } from './database.ts'
import { matchesFilter } from './scope-state-repository.ts'
import type { Store } from './store.ts'

const EVENTS = 'scopekeeper_events'

/** Who made a change, in the columns every event has. */
function actorColumns (actor: Actor) {
  return { auth: actor.auth, user_id: actor.userId, user_name: actor.userName, project_id: actor.projectId, roles: JSON.stringify(actor.roles) }
}

/** Records changes in the caller's transaction: one INSERT, whatever their number. */
export async function recordEvents (store: Store, events: readonly NewEvent[]): Promise<void> {
  if (events.length === 0) return
  await store.db.insertInto(EVENTS).values(events.map((event) => ({
    kind: event.kind,
    scope_id: event.scopeId,
    job_id: event.jobId ?? null,
    created_at: toStoredText(event.at),
    ...actorColumns(event.context.actor),
    request_id: event.context.requestId,
    reason: event.context.reason,
    details: JSON.stringify(event.details),
  }))).execute()
}

/**
 * Records a reset batch in the batch's transaction as one event covering
 * its range of scope states, each with its old timestamp: a job of a
 * million scopes writes a few thousand rows, not a million, and a scope's
 * history expands its entry on read.
 */
export async function recordResetBatch (store: Store, job: ClaimedResetJob, moved: readonly MovedScope[], at: Date): Promise<void> {
  if (moved.length === 0) return
  await store.db.insertInto(EVENTS).values({
    kind: 'reset_applied',
    scope_id: null,
    job_id: job.id,
    first_state_id: Math.min(...moved.map((m) => m.id)),
    last_state_id: Math.max(...moved.map((m) => m.id)),
    created_at: toStoredText(at),
    ...actorColumns(job.requestedBy),
    request_id: job.requestId,
    reason: job.reason,
    details: JSON.stringify({
      last_processed_timestamp: formatTimestamp(job.lastProcessedTimestamp),
      scopes: moved.map((m) => [m.id, m.scopeId, formatTimestamp(m.old)]),
    }),
  }).execute()
}

/**
 * Records one chunk of a bulk activation in its transaction as one event
 * (`activated` or `deactivated`) covering its range of scope states, as a
 * reset batch is: 100 000 flips write 100 rows, not 100 000, and a scope's
 * history expands its entry on read into the same entry a PATCH's flip
 * records.
 */
export async function recordActivationBatch (
  store: Store, flipped: readonly FlippedScope[], active: boolean, context: ChangeContext, at: Date,
): Promise<void> {
  if (flipped.length === 0) return
  await store.db.insertInto(EVENTS).values({
    kind: active ? 'activated' : 'deactivated',
    scope_id: null,
    job_id: null,
    first_state_id: Math.min(...flipped.map((f) => f.id)),
    last_state_id: Math.max(...flipped.map((f) => f.id)),
    created_at: toStoredText(at),
    ...actorColumns(context.actor),
    request_id: context.requestId,
    reason: context.reason,
    details: JSON.stringify({ active: { old: !active, new: active }, scopes: flipped.map((f) => [f.id, f.scopeId]) }),
  }).execute()
}

/** The kinds whose rows may be batches covering a range of scope states (`first_state_id` set). */
const BATCH_KINDS: ReadonlyArray<ScopeEvent['kind']> = ['reset_applied', 'activated', 'deactivated']

type EventRow = Selectable<EventsTable>

function toEvent (row: EventRow, overrides: Partial<ScopeEvent> = {}): ScopeEvent {
  return {
    id: row.id,
    kind: row.kind,
    scopeId: row.scope_id,
    jobId: row.job_id,
    createdAt: fromStored(row.created_at),
    actor: { auth: row.auth, userId: row.user_id, userName: row.user_name, projectId: row.project_id, roles: JSON.parse(row.roles) as string[] },
    requestId: row.request_id,
    reason: row.reason,
    details: JSON.parse(row.details) as Record<string, unknown>,
    ...overrides,
  }
}

/**
 * A batch event as a scope's history shows it: one entry per state of those
 * scopes it covers, in the shape of the single-scope event of its kind
 * (a reset's old and new timestamps; an activation's `{active: {old, new}}`,
 * as a PATCH records it). Listed without a scope filter, one entry with
 * the batch's count and range.
 */
function expandBatch (row: EventRow, stateIds: ReadonlySet<number> | undefined): ScopeEvent[] {
  if (row.kind !== 'reset_applied') {
    const details = JSON.parse(row.details) as { active: { old: boolean, new: boolean }, scopes: Array<[number, string]> }
    if (stateIds === undefined) {
      return [toEvent(row, {
        details: { active: details.active, scopes_flipped: details.scopes.length, first_state_id: row.first_state_id, last_state_id: row.last_state_id },
      })]
    }
    return details.scopes.filter(([id]) => stateIds.has(id)).map(([, scopeId]) => toEvent(row, { scopeId, details: { active: details.active } }))
  }
  const details = JSON.parse(row.details) as { last_processed_timestamp: string, scopes: Array<[number, string, string]> }
  if (stateIds === undefined) {
    return [toEvent(row, {
      details: { last_processed_timestamp: details.last_processed_timestamp, scopes_applied: details.scopes.length, first_state_id: row.first_state_id, last_state_id: row.last_state_id },
    })]
  }
  return details.scopes.filter(([id]) => stateIds.has(id)).map(([, scopeId, old]) => toEvent(row, {
    scopeId,
    details: { old_last_processed_timestamp: old, last_processed_timestamp: details.last_processed_timestamp },
  }))
}

/**
 * Lists events newest first, at most `page.limit` changes after `page.marker`
 * (an event id), and the marker of the next page when this one is full. A
 * scope filter expands batches (resets, activations) into that scope's entries (a batch that
 * moved two states of one scope gives two entries of one id, kept on one
 * page); without one, a batch is one entry with its count. The scopes of
 * `visibleScopeIds` (undefined: all) bound what is listed, in SQL.
 */
export async function findEvents (
  store: Store, filter: EventFilter, page: Pick<Page, 'limit' | 'marker'>,
): Promise<{ events: ScopeEvent[], nextMarker?: number }> {
  const { db } = store
  let query = db.selectFrom(EVENTS).selectAll()
  if (page.marker !== undefined) query = query.where('id', '<', page.marker)
  if (filter.kinds !== undefined) query = query.where('kind', 'in', filter.kinds)
  if (filter.userIds !== undefined) query = query.where('user_id', 'in', filter.userIds)
  if (filter.since !== undefined) query = query.where('created_at', '>=', toStoredText(filter.since))
  if (filter.until !== undefined) query = query.where('created_at', '<=', toStoredText(filter.until))

  const plain = await (filter.scopeIds === undefined ? query : query.where('scope_id', 'in', filter.scopeIds))
    .where('first_state_id', 'is', null).orderBy('id', 'desc').limit(page.limit).execute()
  let batches: EventRow[] = []
  let stateIds: Set<number> | undefined
  if (filter.kinds === undefined || filter.kinds.some((kind) => BATCH_KINDS.includes(kind))) {
    let batchQuery = query.where('first_state_id', 'is not', null)
    if (filter.scopeIds !== undefined) {
      // The scope's states now: a batch is found by the range it covers.
      const states = await db.selectFrom('cloudkitty_storage_states').select('id').where(matchesFilter(store.traits, { scopeIds: filter.scopeIds })).execute()
      const ids = new Set(states.map((s) => s.id))
      stateIds = ids
      batchQuery = batchQuery.where((eb) => eb.or([...ids].map((id) => eb.and([eb('first_state_id', '<=', id), eb('last_state_id', '>=', id)]))))
    }
    if (stateIds === undefined || stateIds.size > 0) batches = await batchQuery.orderBy('id', 'desc').limit(page.limit).execute()
  }
  const rows = [...plain, ...batches].sort((a, b) => b.id - a.id).slice(0, page.limit)
  const events = rows.flatMap((row) => row.first_state_id === null ? [toEvent(row)] : expandBatch(row, stateIds))
  return { events, nextMarker: rows.length === page.limit ? rows[rows.length - 1].id : undefined }
}

/**
 * Deletes up to `max` events made before `before`, oldest first; returns
 * how many. Two statements, since neither PostgreSQL nor MariaDB take a
 * LIMIT on a DELETE of a subquery's rows.
 */
export async function purgeEvents (store: Store, before: Date, max: number): Promise<number> {
  const ids = (await store.db.selectFrom(EVENTS).select('id').where('created_at', '<', toStoredText(before)).orderBy('id').limit(max).execute()).map((r) => r.id)
  if (ids.length === 0) return 0
  await store.db.deleteFrom(EVENTS).where('id', 'in', ids).execute()
  return ids.length
}
