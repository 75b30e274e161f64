import { sql, type ExpressionBuilder, type Kysely } from 'kysely'
import type { Page, ScopeFilter, ScopeState } from '../domain/scope-state.ts'
import {
  UNFINISHED_STATUSES, type ClaimedResetJob, type ResetCursor, type ResetJob, type ResetJobFilter, type ResetJobStatus,
} from '../domain/reset-job.ts'
import { fromStored, toStoredText } from '../domain/timestamps.ts'
import type { Actor, ChangeContext } from '../domain/change-context.ts'
import type { Database, ResetJobRow } from './database.ts'
import type { EngineTraits } from './engine-traits.ts'
import { recordEvents } from './event-repository.ts'
import { insertReturningId } from './insert-returning-id.ts'
import { matchesFilter, toScopeState } from './scope-state-repository.ts'
import { inTransaction, type Store } from './store.ts'

const JOBS = 'scopekeeper_reset_jobs'
const JOB_SCOPES = 'scopekeeper_reset_job_scopes'
const JOB_WAITS = 'scopekeeper_reset_job_waits'

/** True when a filter names no field: it matches every scope state. */
function matchesEveryScope (filter: ScopeFilter): boolean {
  return Object.values(filter).every((values) => values === undefined)
}

/** A new job: the reset of the matched scope states to `lastProcessedTimestamp`. */
export interface NewResetJob {
  lastProcessedTimestamp: Date
  now: Date
  maxAttempts: number
  context: ChangeContext
}

/**
 * Records a pending reset of every scope state matching `filter`.
 * A reset of every scope records only the highest state id (nothing per
 * scope is written, so its cost does not grow with the table); any other
 * lists the matched rows in one INSERT … SELECT. Uses the caller's
 * transaction. Returns the job id and how many scope states it matched (zero
 * leaves an empty job for the caller to roll back).
 */
export async function insertResetJob (store: Store, filter: ScopeFilter, job: NewResetJob): Promise<{ jobId: number, scopesTotal: number }> {
  const { db, traits } = store
  const now = toStoredText(job.now)
  const row = {
    status: 'pending' as const,
    last_processed_timestamp: toStoredText(job.lastProcessedTimestamp),
    max_attempts: job.maxAttempts,
    run_at: now,
    created_at: now,
    request_id: job.context.requestId,
    requested_by: JSON.stringify(job.context.actor),
    reason: job.context.reason,
  }
  if (matchesEveryScope(filter)) {
    // One statement, so the bound and the count come from the same snapshot.
    const every = await db.selectFrom('cloudkitty_storage_states')
      .select((eb) => [eb.fn.max('id').as('through'), eb.fn.countAll().as('total')]).executeTakeFirstOrThrow()
    const scopesTotal = Number(every.total)
    const jobId = await insertReturningId(store, JOBS, { ...row, scopes_total: scopesTotal, through_state_id: every.through ?? 0 })
    return { jobId, scopesTotal }
  }
  const jobId = await insertReturningId(store, JOBS, { ...row, scopes_total: 0 })
  const inserted = await db.insertInto(JOB_SCOPES).columns(['job_id', 'state_id']).expression(
    db.selectFrom('cloudkitty_storage_states')
      .select([sql.lit(jobId).as('job_id'), 'id as state_id'])
      .where(matchesFilter(traits, filter)),
  ).executeTakeFirst()
  const scopesTotal = Number(inserted.numInsertedOrUpdatedRows ?? 0n)
  await db.updateTable(JOBS).set({ scopes_total: scopesTotal }).where('id', '=', jobId).execute()
  return { jobId, scopesTotal }
}

/** How many claimable jobs one claim looks at before giving up until the next poll. */
const CLAIM_CANDIDATES = 20

// True when an older unfinished job shares a scope state with `job`: then
// `job` must wait, so resets of one scope take effect in acceptance order.
// A reset of every scope is taken to share one with any job. Otherwise walks
// the smaller of the two jobs' scope lists and probes the other's primary
// key, so a large job costs one scan only against small ones.
async function waitsForOlderJob (db: Kysely<Database>, job: ResetJobRow): Promise<boolean> {
  const older = await db.selectFrom(JOBS).select(['id', 'scopes_total', 'through_state_id'])
    .where('id', '<', job.id).where('status', 'in', UNFINISHED_STATUSES).orderBy('id').execute()
  for (const other of older) {
    if (job.through_state_id !== null || other.through_state_id !== null) return true
    const [small, big] = other.scopes_total < job.scopes_total ? [other.id, job.id] : [job.id, other.id]
    const overlap = await db.selectFrom(`${JOB_SCOPES} as s`)
      .innerJoin(`${JOB_SCOPES} as b`, (join) => join.onRef('b.state_id', '=', 's.state_id').on('b.job_id', '=', big))
      .select('s.state_id').where('s.job_id', '=', small).limit(1).executeTakeFirst()
    if (overlap !== undefined) return true
  }
  return false
}

/** Where a job's batches stand, as storage reads it: what {@link ResetCursor} holds. */
interface JobPosition {
  jobId: number
  /** Set for a reset of every scope: the highest state id it covers. */
  throughStateId: number | null
  /** The highest scope state id already applied. */
  afterStateId: number
}

function toCursor (position: JobPosition): ResetCursor {
  return position as unknown as ResetCursor
}

function fromCursor (cursor: ResetCursor): JobPosition {
  return cursor as unknown as JobPosition
}

/** Who requested a job, as its row keeps it (null on a job older than the audit history). */
function requesterOf (row: ResetJobRow): Actor | null {
  return row.requested_by === null ? null : JSON.parse(row.requested_by) as Actor
}

// A job accepted before the audit history existed: its requester is unknown.
const UNKNOWN_REQUESTER: Actor = { auth: 'keystone', userId: null, userName: null, projectId: null, roles: [] }

function toClaimedJob (row: ResetJobRow, holder: string): ClaimedResetJob {
  return {
    id: row.id,
    lastProcessedTimestamp: fromStored(row.last_processed_timestamp),
    scopesTotal: row.scopes_total,
    attempts: row.attempts,
    maxAttempts: row.max_attempts,
    requestId: row.request_id,
    requestedBy: requesterOf(row) ?? UNKNOWN_REQUESTER,
    reason: row.reason,
    holder,
    cursor: toCursor({ jobId: row.id, throughStateId: row.through_state_id, afterStateId: row.cursor_state_id }),
  }
}

/**
 * Claims the oldest job `holder` may run now, in one write transaction:
 * due, not leased by a live worker (a lease older than `leaseExpiredBefore`
 * is taken over), and not sharing a scope with an older unfinished job.
 * Marks it running under the holder's lease and counts the attempt.
 * Concurrent claimers skip each other's rows where the engine has SKIP
 * LOCKED, and wait for them otherwise (SQLite's write transaction is
 * exclusive already).
 */
export async function claimNextJob (store: Store, holder: string, now: Date, leaseExpiredBefore: Date): Promise<ClaimedResetJob | undefined> {
  return await inTransaction(store, async ({ db, traits }) => {
    const candidates = await db.selectFrom(JOBS).selectAll()
      .where('status', 'in', UNFINISHED_STATUSES)
      // A job whose cancellation was asked for is due at once: to be ended.
      .where((eb) => eb.or([eb('run_at', '<=', toStoredText(now)), eb('cancel_requested_at', 'is not', null)]))
      .where((eb) => eb.or([
        eb('locked_by', 'is', null),
        eb('locked_by', '=', holder),
        eb('locked_at', '<', toStoredText(leaseExpiredBefore)),
      ]))
      .orderBy('id').limit(CLAIM_CANDIDATES)
      .$if(traits.supportsSkipLocked, (q) => q.forUpdate().skipLocked())
      .$if(traits.supportsRowLocks && !traits.supportsSkipLocked, (q) => q.forUpdate())
      .execute()
    for (const job of candidates) {
      // Asked to stop while its worker was handing it back, failing an
      // attempt or dying: ended here instead of being run.
      if (job.cancel_requested_at !== null) {
        await endCancelled(db, job.id, now)
        continue
      }
      if (await waitsForOlderJob(db, job)) continue
      const stamp = toStoredText(now)
      await db.updateTable(JOBS).set({
        status: 'running',
        locked_by: holder,
        locked_at: stamp,
        ...(job.started_at === null ? { started_at: stamp } : {}),
        attempts: job.attempts + 1,
      }).where('id', '=', job.id).execute()
      return toClaimedJob({ ...job, attempts: job.attempts + 1 }, holder)
    }
    return undefined
  })
}

/** Jobs at least this large get their scope list's statistics gathered before their first batch. */
const LARGE_JOB_SCOPES = 10_000

/**
 * Before a large listed job's batches: gathers the statistics of the job
 * scope table, which lag far behind a job listed a moment ago. Without them
 * PostgreSQL read each batch's ids as a bitmap scan and sort of every
 * remaining scope of the job, quadratic over the job.
 */
export async function prepareJobScopes ({ db, traits }: Store, job: ClaimedResetJob): Promise<void> {
  if (traits.analyzeTable === undefined || fromCursor(job.cursor).throughStateId !== null || job.scopesTotal < LARGE_JOB_SCOPES) return
  await traits.analyzeTable(JOB_SCOPES).execute(db)
}

/**
 * The next `size` scope states of a job after `cursor`, in id order, and the
 * cursor after them (the same one when none is left).
 */
export async function nextJobScopes ({ db }: Store, cursor: ResetCursor, size: number): Promise<{ scopes: ScopeState[], cursor: ResetCursor }> {
  const position = fromCursor(cursor)
  const scopes = await readJobScopes(db, position, size)
  const last = scopes.at(-1)
  return { scopes, cursor: last === undefined ? cursor : toCursor({ ...position, afterStateId: last.id }) }
}

async function readJobScopes (db: Kysely<Database>, { jobId, throughStateId, afterStateId }: JobPosition, size: number): Promise<ScopeState[]> {
  const states = db.selectFrom('cloudkitty_storage_states').selectAll()
  if (throughStateId !== null) {
    const rows = await states.where('id', '>', afterStateId).where('id', '<=', throughStateId).orderBy('id').limit(size).execute()
    return rows.map(toScopeState)
  }
  // Two statements: with a join, a states table whose statistics lag behind
  // (a freshly loaded one) made PostgreSQL hash-join against a scan of every
  // state for each batch. The ids come from the job's primary key (see
  // prepareJobScopes), the rows from the states' primary key.
  const ids = await db.selectFrom(JOB_SCOPES).select('state_id')
    .where('job_id', '=', jobId).where('state_id', '>', afterStateId)
    .orderBy('state_id').limit(size).execute()
  if (ids.length === 0) return []
  const rows = await states.where('id', 'in', ids.map((row) => row.state_id)).orderBy('id').execute()
  return rows.map(toScopeState)
}

/** What one batch did to a job: where it stopped, and how many of its scopes were applied or left waiting. */
export interface JobProgress {
  /** The cursor after the batch: the resume point. */
  cursor: ResetCursor
  applied: number
  /** Change in the number of scopes waiting on their processing lock. */
  waiting: number
}

/**
 * What became of a job when a batch saved its progress: `saved`, go on;
 * `cancelled`, its cancellation had been asked for, so the batch's
 * transaction also ended it (commit, then stop); `lost`, the holder no
 * longer holds it (its lease expired and another worker took it over), so
 * the caller must roll back.
 */
export type SavedProgress = 'saved' | 'cancelled' | 'lost'

/**
 * Saves a job's resume point and counts after a batch, and renews its
 * holder's lease; in the batch's transaction, so that the counts always
 * match what the batch applied. Then reads whether the job's cancellation
 * was asked for: the row is locked by the update from here to the commit,
 * so a request either came before (and is seen) or waits for the commit
 * (and is seen by the next batch, or finds the job over). If it was, the
 * job ends `cancelled` in the same transaction: its batches up to this
 * one stay applied and counted, and the rest is never touched.
 */
export async function saveJobProgress ({ db }: Store, job: ClaimedResetJob, progress: JobProgress, now: Date): Promise<SavedProgress> {
  const result = await db.updateTable(JOBS).set((eb) => ({
    cursor_state_id: fromCursor(progress.cursor).afterStateId,
    scopes_applied: eb('scopes_applied', '+', progress.applied),
    scopes_waiting: eb('scopes_waiting', '+', progress.waiting),
    locked_at: toStoredText(now),
  })).where('id', '=', job.id).where('locked_by', '=', job.holder).executeTakeFirst()
  if (Number(result.numUpdatedRows) !== 1) return 'lost'
  const row = await db.selectFrom(JOBS).select('cancel_requested_at').where('id', '=', job.id).executeTakeFirstOrThrow()
  if (row.cancel_requested_at === null) return 'saved'
  await endCancelled(db, job.id, now)
  return 'cancelled'
}

/**
 * Ends a job `cancelled`: over, released, holding back no later job, its
 * waiting list dropped (those scopes are left as they are). Its applied
 * count stays what its committed batches applied. Uses the caller's
 * transaction, whose lock or claim already makes the job the caller's to
 * end, or, with `onlyIf`, ends it only while it has that status. Returns
 * whether it ended it.
 */
async function endCancelled (db: Kysely<Database>, jobId: number, now: Date, onlyIf?: Extract<ResetJobStatus, 'pending'>): Promise<boolean> {
  const stamp = toStoredText(now)
  const result = await db.updateTable(JOBS).set((eb) => ({
    status: 'cancelled',
    finished_at: stamp,
    cancel_requested_at: eb.fn.coalesce('cancel_requested_at', eb.val(stamp)).$castTo<string>(),
    scopes_waiting: 0,
    locked_by: null,
    locked_at: null,
  })).where('id', '=', jobId).$if(onlyIf !== undefined, (q) => q.where('status', '=', onlyIf!)).executeTakeFirst()
  if (Number(result.numUpdatedRows) !== 1) return false
  await db.deleteFrom(JOB_WAITS).where('job_id', '=', jobId).execute()
  return true
}

/** How many times a cancellation follows a job between pending and running before it leaves the request recorded. */
const CANCEL_ROUNDS = 5

/**
 * Cancels a job: a pending one at once (one update guarded by its status,
 * so a claim and a cancellation never both win); a running one by recording
 * the request, which its worker reads in its next batch's transaction (see
 * {@link saveJobProgress}). A repeated request keeps the first one's time.
 * Returns the job as it stands after, or undefined when there is none; a
 * job already over is returned unchanged, for the caller to refuse.
 */
export async function cancelJob (store: Store, jobId: number, now: Date, context: ChangeContext): Promise<ResetJob | undefined> {
  const stamp = toStoredText(now)
  // The audit event of whoever asked, in the transaction of the change it records.
  const recordCancel = async (trx: Store, status: 'pending' | 'running') => {
    const job = await trx.db.selectFrom(JOBS).select('scopes_applied').where('id', '=', jobId).executeTakeFirstOrThrow()
    await recordEvents(trx, [{ kind: 'reset_cancelled', scopeId: null, jobId, details: { status, scopes_applied: job.scopes_applied }, context, at: now }])
  }
  for (let round = 0; ; round++) {
    // Guarded by the status alone: a pending job has no holder.
    const cancelled = await inTransaction(store, async (trx) => {
      if (!await endCancelled(trx.db, jobId, now, 'pending')) return false
      await recordCancel(trx, 'pending')
      return true
    })
    if (!cancelled) {
      await inTransaction(store, async (trx) => {
        const requested = await trx.db.updateTable(JOBS).set({ cancel_requested_at: stamp })
          .where('id', '=', jobId).where('status', '=', 'running').where('cancel_requested_at', 'is', null).executeTakeFirst()
        if (Number(requested.numUpdatedRows) === 1) await recordCancel(trx, 'running')
      })
    }
    const job = await findJob(store, jobId)
    // Pending again: handed back or retried between the two updates. Round
    // again; past the last round the recorded request ends it at its next
    // claim.
    if (job?.status !== 'pending' || round + 1 >= CANCEL_ROUNDS) return job
  }
}

/** Lists scope states of a job whose processing lock was held elsewhere, to come back to. */
export async function addJobWaits ({ db }: Store, job: ClaimedResetJob, stateIds: number[]): Promise<void> {
  if (stateIds.length === 0) return
  await db.insertInto(JOB_WAITS).values(stateIds.map((stateId) => ({ job_id: job.id, state_id: stateId }))).execute()
}

/** Takes applied scope states off a job's waiting list. */
export async function removeJobWaits ({ db }: Store, job: ClaimedResetJob, stateIds: number[]): Promise<void> {
  if (stateIds.length === 0) return
  await db.deleteFrom(JOB_WAITS).where('job_id', '=', job.id).where('state_id', 'in', stateIds).execute()
}

declare const waitCursor: unique symbol

/** Where a pass over a job's waiting list stands; opaque outside storage. Undefined starts a pass. */
export interface WaitCursor { readonly [waitCursor]: true }

/**
 * The next `size` waiting scope states of a job after `cursor`, in id
 * order, with the ids of listed states that no longer exist (to be dropped),
 * and the cursor after both.
 */
export async function nextJobWaits (
  { db }: Store, job: ClaimedResetJob, cursor: WaitCursor | undefined, size: number,
): Promise<{ scopes: ScopeState[], gone: number[], cursor: WaitCursor }> {
  const after = (cursor as unknown as number | undefined) ?? 0
  const ids = (await db.selectFrom(JOB_WAITS).select('state_id')
    .where('job_id', '=', job.id).where('state_id', '>', after)
    .orderBy('state_id').limit(size).execute()).map((row) => row.state_id)
  const next = (ids.at(-1) ?? after) as unknown as WaitCursor
  if (ids.length === 0) return { scopes: [], gone: [], cursor: next }
  const rows = await db.selectFrom('cloudkitty_storage_states').selectAll().where('id', 'in', ids).orderBy('id').execute()
  const found = new Set(rows.map((row) => row.id))
  return { scopes: rows.map(toScopeState), gone: ids.filter((id) => !found.has(id)), cursor: next }
}

/** Hands a running job back to the queue (its worker is stopping); the attempt does not count. */
export async function releaseJob ({ db }: Store, job: ClaimedResetJob): Promise<void> {
  await db.updateTable(JOBS).set((eb) => ({ status: 'pending', locked_by: null, locked_at: null, attempts: eb('attempts', '-', 1) }))
    .where('id', '=', job.id).where('locked_by', '=', job.holder).execute()
}

/** Marks a job done and releases it, if its holder still holds it. */
export async function finishJob ({ db }: Store, job: ClaimedResetJob, now: Date): Promise<void> {
  await db.updateTable(JOBS).set({ status: 'done', finished_at: toStoredText(now), locked_by: null, locked_at: null, last_error: null })
    .where('id', '=', job.id).where('locked_by', '=', job.holder).execute()
}

/** A failed attempt, and what the retry policy made of it (`afterFailedAttempt`). */
export interface FailedAttempt {
  error: string
  failedAt: Date
  status: Extract<ResetJobStatus, 'pending' | 'failed'>
  runAt: Date
}

/** Writes a failed attempt's outcome and releases the job, if its holder still holds it. */
export async function failJobAttempt ({ db }: Store, job: ClaimedResetJob, attempt: FailedAttempt): Promise<void> {
  await db.updateTable(JOBS).set({
    status: attempt.status,
    last_error: attempt.error.slice(0, 4000),
    run_at: toStoredText(attempt.runAt),
    finished_at: attempt.status === 'failed' ? toStoredText(attempt.failedAt) : null,
    locked_by: null,
    locked_at: null,
  }).where('id', '=', job.id).where('locked_by', '=', job.holder).execute()
}

function toResetJob (row: ResetJobRow): ResetJob {
  const maybe = (value: ResetJobRow['started_at'] | ResetJobRow['cancel_requested_at']) => value === null ? null : fromStored(value)
  return {
    id: row.id,
    status: row.status,
    lastProcessedTimestamp: fromStored(row.last_processed_timestamp),
    scopesTotal: row.scopes_total,
    scopesApplied: row.scopes_applied,
    scopesWaiting: row.scopes_waiting,
    attempts: row.attempts,
    maxAttempts: row.max_attempts,
    lastError: row.last_error,
    requestId: row.request_id,
    requestedBy: requesterOf(row),
    reason: row.reason,
    createdAt: fromStored(row.created_at),
    startedAt: maybe(row.started_at),
    finishedAt: maybe(row.finished_at),
    cancelRequestedAt: maybe(row.cancel_requested_at),
  }
}

/**
 * Jobs every scope state of which has one of `scopeIds`: a job listing
 * states, all of them still there and of those ids. A reset of every scope
 * (which lists none) and a job with a listed state since deleted never
 * qualify. The NOT EXISTS walks the job's scope list by its primary key and
 * stops at the first other scope, so a large job of other projects costs one
 * probe.
 */
function coversOnly (traits: EngineTraits, scopeIds: readonly string[]) {
  return (eb: ExpressionBuilder<Database, typeof JOBS>) => eb.and([
    eb(`${JOBS}.through_state_id`, 'is', null),
    eb.exists(eb.selectFrom(`${JOB_SCOPES} as js`).select('js.job_id').whereRef('js.job_id', '=', `${JOBS}.id`)),
    eb.not(eb.exists(eb.selectFrom(`${JOB_SCOPES} as js`)
      .leftJoin('cloudkitty_storage_states', 'cloudkitty_storage_states.id', 'js.state_id')
      .select('js.job_id')
      .whereRef('js.job_id', '=', `${JOBS}.id`)
      .where((inner) => inner.or([
        inner('cloudkitty_storage_states.id', 'is', null),
        inner.not(matchesFilter(traits, { scopeIds: [...scopeIds] })(inner)),
      ])))),
  ])
}

/**
 * Reads one job, or undefined. With `visibleScopeIds`, only a job that
 * covers nothing but those scopes (see {@link findJobs}).
 */
export async function findJob ({ db, traits }: Store, jobId: number, visibleScopeIds?: readonly string[]): Promise<ResetJob | undefined> {
  const row = await db.selectFrom(JOBS).selectAll().where('id', '=', jobId)
    .$if(visibleScopeIds !== undefined, (q) => q.where(coversOnly(traits, visibleScopeIds!)))
    .executeTakeFirst()
  return row === undefined ? undefined : toResetJob(row)
}

/**
 * Lists jobs newest first. A scope id filter matches jobs that cover a
 * scope state of that id (listed among the job's scopes, or under the bound
 * of a reset of every scope). With `visibleScopeIds`, only jobs every scope
 * state of which has one of those ids are listed, in SQL, so pages stay
 * full and offsets count visible jobs only.
 */
export async function findJobs (
  { db, traits }: Store, filter: ResetJobFilter, page: Pick<Page, 'limit' | 'offset'>, visibleScopeIds?: readonly string[],
): Promise<ResetJob[]> {
  let query = db.selectFrom(JOBS).selectAll()
  if (visibleScopeIds !== undefined) query = query.where(coversOnly(traits, visibleScopeIds))
  if (filter.statuses !== undefined) query = query.where('status', 'in', filter.statuses)
  const scopeIds = filter.scopeIds
  if (scopeIds !== undefined) {
    query = query.where(({ exists, or, selectFrom }) => or([
      exists(selectFrom(`${JOB_SCOPES} as js`)
        .innerJoin('cloudkitty_storage_states', 'cloudkitty_storage_states.id', 'js.state_id')
        .select('js.job_id')
        .whereRef('js.job_id', '=', `${JOBS}.id`)
        .where(matchesFilter(traits, { scopeIds }))),
      // A reset of every scope covers each state up to its bound.
      exists(selectFrom('cloudkitty_storage_states')
        .select('cloudkitty_storage_states.id')
        .whereRef('cloudkitty_storage_states.id', '<=', `${JOBS}.through_state_id`)
        .where(matchesFilter(traits, { scopeIds }))),
    ]))
  }
  const rows = await query.orderBy('id', 'desc').limit(page.limit).$if(page.offset > 0, (q) => q.offset(page.offset)).execute()
  return rows.map(toResetJob)
}
