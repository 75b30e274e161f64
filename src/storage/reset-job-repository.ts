import { sql, type ExpressionBuilder, type Kysely } from 'kysely'
import type { ScopeFilter, ScopeState } from '../domain/scope-state.ts'
import type { ResetJob, ResetJobFilter } from '../domain/reset-job.ts'
import { fromStored, toStoredText } from '../domain/timestamps.ts'
import type { Database, ResetJobRow } from './database.ts'
import type { EngineTraits } from './engine-traits.ts'
import { insertReturningId } from './insert-returning-id.ts'
import { matchesFilter, toScopeState } from './scope-state-repository.ts'

const JOBS = 'scopekeeper_reset_jobs'
const JOB_SCOPES = 'scopekeeper_reset_job_scopes'
const JOB_WAITS = 'scopekeeper_reset_job_waits'

/** True when a filter names no field: it matches every scope state. */
function matchesEveryScope (filter: ScopeFilter): boolean {
  return Object.values(filter).every((values) => values === undefined)
}

/**
 * Records a pending reset of every scope state matching `filter` to `target`.
 * A reset of every scope records only the highest state id (nothing per
 * scope is written, so its cost does not grow with the table); any other
 * lists the matched rows in one INSERT … SELECT. Uses the caller's
 * transaction. Returns the job id and how many scope states it matched (zero
 * leaves an empty job for the caller to roll back).
 */
export async function insertResetJob (
  db: Kysely<Database>, traits: EngineTraits, filter: ScopeFilter,
  job: { target: Date, now: Date, maxAttempts: number, requestId: string | null },
): Promise<{ jobId: number, scopesTotal: number }> {
  const now = toStoredText(job.now)
  const row = {
    status: 'pending' as const,
    target_timestamp: toStoredText(job.target),
    max_attempts: job.maxAttempts,
    run_at: now,
    created_at: now,
    request_id: job.requestId,
  }
  if (matchesEveryScope(filter)) {
    // One statement, so the bound and the count come from the same snapshot.
    const every = await db.selectFrom('cloudkitty_storage_states')
      .select((eb) => [eb.fn.max('id').as('through'), eb.fn.countAll().as('total')]).executeTakeFirstOrThrow()
    const scopesTotal = Number(every.total)
    const jobId = await insertReturningId(db, traits, JOBS, { ...row, scopes_total: scopesTotal, through_state_id: every.through ?? 0 })
    return { jobId, scopesTotal }
  }
  const jobId = await insertReturningId(db, traits, JOBS, { ...row, scopes_total: 0 })
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
const UNFINISHED = ['pending', 'running'] as const

// True when an older unfinished job shares a scope state with `job`: then
// `job` must wait, so resets of one scope take effect in acceptance order.
// A reset of every scope is taken to share one with any job. Otherwise walks
// the smaller of the two jobs' scope lists and probes the other's primary
// key, so a large job costs one scan only against small ones.
async function waitsForOlderJob (db: Kysely<Database>, job: ResetJobRow): Promise<boolean> {
  const older = await db.selectFrom(JOBS).select(['id', 'scopes_total', 'through_state_id'])
    .where('id', '<', job.id).where('status', 'in', UNFINISHED).orderBy('id').execute()
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

/**
 * Claims the oldest job `workerId` may run now: due, not leased by a live
 * worker (a lease older than `leaseExpiredBefore` is taken over), and not
 * sharing a scope with an older unfinished job. Marks it running under the
 * worker's lease and counts the attempt. Must run in a write transaction;
 * concurrent claimers skip each other's rows where the engine has SKIP
 * LOCKED, and wait for them otherwise (SQLite's write transaction is
 * exclusive already).
 */
export async function claimNextJob (
  db: Kysely<Database>, traits: EngineTraits, workerId: string, now: Date, leaseExpiredBefore: Date,
): Promise<ResetJobRow | undefined> {
  const candidates = await db.selectFrom(JOBS).selectAll()
    .where('status', 'in', UNFINISHED)
    .where('run_at', '<=', toStoredText(now))
    .where((eb) => eb.or([
      eb('locked_by', 'is', null),
      eb('locked_by', '=', workerId),
      eb('locked_at', '<', toStoredText(leaseExpiredBefore)),
    ]))
    .orderBy('id').limit(CLAIM_CANDIDATES)
    .$if(traits.supportsSkipLocked, (q) => q.forUpdate().skipLocked())
    .$if(traits.supportsRowLocks && !traits.supportsSkipLocked, (q) => q.forUpdate())
    .execute()
  for (const job of candidates) {
    if (await waitsForOlderJob(db, job)) continue
    const stamp = toStoredText(now)
    await db.updateTable(JOBS).set({
      status: 'running',
      locked_by: workerId,
      locked_at: stamp,
      ...(job.started_at === null ? { started_at: stamp } : {}),
      attempts: job.attempts + 1,
    }).where('id', '=', job.id).execute()
    return { ...job, status: 'running', locked_by: workerId, locked_at: stamp, attempts: job.attempts + 1 }
  }
  return undefined
}

/** Jobs at least this large get their scope list's statistics gathered before their first batch. */
const LARGE_JOB_SCOPES = 10_000

/**
 * Before a large listed job's batches: gathers the statistics of the job
 * scope table, which lag far behind a job listed a moment ago. Without them
 * PostgreSQL read each batch's ids as a bitmap scan and sort of every
 * remaining scope of the job, quadratic over the job.
 */
export async function prepareJobScopes (db: Kysely<Database>, traits: EngineTraits, job: ResetJobRow): Promise<void> {
  if (traits.analyzeTable === undefined || job.through_state_id !== null || job.scopes_total < LARGE_JOB_SCOPES) return
  await traits.analyzeTable(JOB_SCOPES).execute(db)
}

/** The next `size` scope states of a job after the resume point, in id order. */
export async function nextJobScopes (db: Kysely<Database>, job: ResetJobRow, afterStateId: number, size: number): Promise<ScopeState[]> {
  const states = db.selectFrom('cloudkitty_storage_states').selectAll()
  if (job.through_state_id !== null) {
    const rows = await states.where('id', '>', afterStateId).where('id', '<=', job.through_state_id).orderBy('id').limit(size).execute()
    return rows.map(toScopeState)
  }
  // Two statements: with a join, a states table whose statistics lag behind
  // (a freshly loaded one) made PostgreSQL hash-join against a scan of every
  // state for each batch. The ids come from the job's primary key (see
  // prepareJobScopes), the rows from the states' primary key.
  const ids = await db.selectFrom(JOB_SCOPES).select('state_id')
    .where('job_id', '=', job.id).where('state_id', '>', afterStateId)
    .orderBy('state_id').limit(size).execute()
  if (ids.length === 0) return []
  const rows = await states.where('id', 'in', ids.map((row) => row.state_id)).orderBy('id').execute()
  return rows.map(toScopeState)
}

/** What one batch did to a job: where it stopped, and how many of its scopes were applied or left waiting. */
export interface JobProgress {
  /** The highest scope state id the batch went through: the resume point. */
  cursorStateId: number
  applied: number
  /** Change in the number of scopes waiting on their processing lock. */
  waiting: number
}

/**
 * Saves a job's resume point and counts after a batch, and renews the
 * worker's lease. Returns false when `workerId` no longer holds the job (its
 * lease expired and another worker took it over): the caller must then roll
 * back.
 */
export async function saveJobProgress (
  db: Kysely<Database>, jobId: number, workerId: string, progress: JobProgress, now: Date,
): Promise<boolean> {
  const result = await db.updateTable(JOBS).set((eb) => ({
    cursor_state_id: progress.cursorStateId,
    scopes_applied: eb('scopes_applied', '+', progress.applied),
    scopes_waiting: eb('scopes_waiting', '+', progress.waiting),
    locked_at: toStoredText(now),
  })).where('id', '=', jobId).where('locked_by', '=', workerId).executeTakeFirst()
  return Number(result.numUpdatedRows) === 1
}

/** Lists scope states of a job whose processing lock was held elsewhere, to come back to. Uses the caller's transaction. */
export async function addJobWaits (db: Kysely<Database>, jobId: number, stateIds: number[]): Promise<void> {
  if (stateIds.length === 0) return
  await db.insertInto(JOB_WAITS).values(stateIds.map((stateId) => ({ job_id: jobId, state_id: stateId }))).execute()
}

/** Takes applied scope states off a job's waiting list. Uses the caller's transaction. */
export async function removeJobWaits (db: Kysely<Database>, jobId: number, stateIds: number[]): Promise<void> {
  if (stateIds.length === 0) return
  await db.deleteFrom(JOB_WAITS).where('job_id', '=', jobId).where('state_id', 'in', stateIds).execute()
}

/**
 * The next `size` waiting scope states of a job after `afterStateId`, in id
 * order, with the ids of listed states that no longer exist (to be dropped).
 */
export async function nextJobWaits (
  db: Kysely<Database>, jobId: number, afterStateId: number, size: number,
): Promise<{ scopes: ScopeState[], gone: number[] }> {
  const ids = (await db.selectFrom(JOB_WAITS).select('state_id')
    .where('job_id', '=', jobId).where('state_id', '>', afterStateId)
    .orderBy('state_id').limit(size).execute()).map((row) => row.state_id)
  if (ids.length === 0) return { scopes: [], gone: [] }
  const rows = await db.selectFrom('cloudkitty_storage_states').selectAll().where('id', 'in', ids).orderBy('id').execute()
  const found = new Set(rows.map((row) => row.id))
  return { scopes: rows.map(toScopeState), gone: ids.filter((id) => !found.has(id)) }
}

/** Hands a running job back to the queue (its worker is stopping); the attempt does not count. */
export async function releaseJob (db: Kysely<Database>, jobId: number, workerId: string): Promise<void> {
  await db.updateTable(JOBS).set((eb) => ({ status: 'pending', locked_by: null, locked_at: null, attempts: eb('attempts', '-', 1) }))
    .where('id', '=', jobId).where('locked_by', '=', workerId).execute()
}

/** Marks a job done and releases it, if `workerId` still holds it. */
export async function finishJob (db: Kysely<Database>, jobId: number, workerId: string, now: Date): Promise<void> {
  await db.updateTable(JOBS).set({ status: 'done', finished_at: toStoredText(now), locked_by: null, locked_at: null, last_error: null })
    .where('id', '=', jobId).where('locked_by', '=', workerId).execute()
}

/**
 * Records a failed attempt: the job is retried at `retryAt`, or failed for
 * good when it has used its attempts.
 */
export async function failJobAttempt (db: Kysely<Database>, job: ResetJobRow, error: string, now: Date, retryAt: Date): Promise<void> {
  const exhausted = job.attempts >= job.max_attempts
  await db.updateTable(JOBS).set({
    status: exhausted ? 'failed' : 'pending',
    last_error: error.slice(0, 4000),
    run_at: toStoredText(retryAt),
    finished_at: exhausted ? toStoredText(now) : null,
    locked_by: null,
    locked_at: null,
  }).where('id', '=', job.id).where('locked_by', '=', job.locked_by).execute()
}

function toResetJob (row: ResetJobRow): ResetJob {
  const maybe = (value: ResetJobRow['started_at']) => value === null ? null : fromStored(value)
  return {
    id: row.id,
    status: row.status,
    lastProcessedTimestamp: fromStored(row.target_timestamp),
    scopesTotal: row.scopes_total,
    scopesApplied: row.scopes_applied,
    scopesWaiting: row.scopes_waiting,
    attempts: row.attempts,
    maxAttempts: row.max_attempts,
    lastError: row.last_error,
    requestId: row.request_id,
    createdAt: fromStored(row.created_at),
    startedAt: maybe(row.started_at),
    finishedAt: maybe(row.finished_at),
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
export async function findJob (db: Kysely<Database>, traits: EngineTraits, jobId: number, visibleScopeIds?: readonly string[]): Promise<ResetJob | undefined> {
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
  db: Kysely<Database>, traits: EngineTraits, filter: ResetJobFilter, page: { limit: number, offset: number },
  visibleScopeIds?: readonly string[],
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
