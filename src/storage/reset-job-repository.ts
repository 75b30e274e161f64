import { sql, type Kysely } from 'kysely'
import type { ScopeFilter, ScopeState } from '../domain/scope-state.ts'
import { fromStored, toStoredText } from '../domain/timestamps.ts'
import type { Database, ResetJobRow } from './database.ts'
import type { EngineTraits } from './engine-traits.ts'
import { insertReturningId } from './insert-returning-id.ts'
import { matchesFilter, toScopeState } from './scope-state-repository.ts'

const JOBS = 'scopekeeper_reset_jobs'
const JOB_SCOPES = 'scopekeeper_reset_job_scopes'

/**
 * Records a pending reset of every scope state matching `filter` to `target`,
 * listing the matched rows in one INSERT … SELECT (nothing per scope is held
 * in memory). Uses the caller's transaction. Returns the job id and how many
 * scope states it matched (zero leaves an empty job for the caller to roll back).
 */
export async function insertResetJob (
  db: Kysely<Database>, traits: EngineTraits, filter: ScopeFilter,
  job: { target: Date, now: Date, maxAttempts: number, requestId: string | null },
): Promise<{ jobId: number, scopesTotal: number }> {
  const now = toStoredText(job.now)
  const jobId = await insertReturningId(db, traits, JOBS, {
    status: 'pending',
    target_timestamp: toStoredText(job.target),
    scopes_total: 0,
    max_attempts: job.maxAttempts,
    run_at: now,
    created_at: now,
    request_id: job.requestId,
  })
  const inserted = await db.insertInto(JOB_SCOPES).columns(['job_id', 'state_id']).expression(
    db.selectFrom('cloudkitty_storage_states')
      .select([sql.lit(jobId).as('job_id'), 'id as state_id'])
      .where(matchesFilter(traits, filter)),
  ).executeTakeFirst()
  const scopesTotal = Number(inserted.numInsertedOrUpdatedRows ?? 0n)
  await db.updateTable(JOBS).set({ scopes_total: scopesTotal }).where('id', '=', jobId).execute()
  return { jobId, scopesTotal }
}

/**
 * Takes the oldest unfinished job for `workerId`, unless another worker holds
 * a lease on it younger than `leaseExpiredBefore`: jobs are applied strictly
 * in acceptance order, so the last accepted reset of a scope wins. Marks it
 * running and counts the attempt. Must run in a write transaction.
 */
export async function claimOldestJob (
  db: Kysely<Database>, traits: EngineTraits, workerId: string, now: Date, leaseExpiredBefore: Date,
): Promise<ResetJobRow | undefined> {
  // Two workers claiming at once: the row lock makes the second wait and then
  // see the first one's lease (SQLite's write transaction is exclusive already).
  const job = await db.selectFrom(JOBS).selectAll()
    .where('status', 'in', ['pending', 'running'])
    .orderBy('id').limit(1)
    .$if(traits.supportsRowLocks, (q) => q.forUpdate())
    .executeTakeFirst()
  if (job === undefined) return undefined
  if (fromStored(job.run_at) > now) return undefined
  const heldByOther = job.locked_by !== null && job.locked_by !== workerId &&
    job.locked_at !== null && fromStored(job.locked_at) > leaseExpiredBefore
  if (heldByOther) return undefined
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

/** The next `size` scope states of a job after the resume point, in id order. */
export async function nextJobScopes (db: Kysely<Database>, jobId: number, afterStateId: number, size: number): Promise<ScopeState[]> {
  const rows = await db.selectFrom(JOB_SCOPES)
    .innerJoin('cloudkitty_storage_states as s', 's.id', `${JOB_SCOPES}.state_id`)
    .selectAll('s')
    .where(`${JOB_SCOPES}.job_id`, '=', jobId)
    .where(`${JOB_SCOPES}.state_id`, '>', afterStateId)
    .orderBy(`${JOB_SCOPES}.state_id`).limit(size).execute()
  return rows.map(toScopeState)
}

/** Saves a job's resume point after a batch, renewing the worker's lease. */
export async function saveJobProgress (db: Kysely<Database>, jobId: number, cursorStateId: number, applied: number, now: Date): Promise<void> {
  await db.updateTable(JOBS).set((eb) => ({
    cursor_state_id: cursorStateId,
    scopes_applied: eb('scopes_applied', '+', applied),
    locked_at: toStoredText(now),
  })).where('id', '=', jobId).execute()
}

/** Hands a running job back to the queue (its worker is stopping); the attempt does not count. */
export async function releaseJob (db: Kysely<Database>, jobId: number): Promise<void> {
  await db.updateTable(JOBS).set((eb) => ({ status: 'pending', locked_by: null, locked_at: null, attempts: eb('attempts', '-', 1) }))
    .where('id', '=', jobId).execute()
}

/** Marks a job done and releases it. */
export async function finishJob (db: Kysely<Database>, jobId: number, now: Date): Promise<void> {
  await db.updateTable(JOBS).set({ status: 'done', finished_at: toStoredText(now), locked_by: null, locked_at: null, last_error: null })
    .where('id', '=', jobId).execute()
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
  }).where('id', '=', job.id).execute()
}

/** Reads one job, or undefined. */
export async function findJob (db: Kysely<Database>, jobId: number): Promise<ResetJobRow | undefined> {
  return await db.selectFrom(JOBS).selectAll().where('id', '=', jobId).executeTakeFirst()
}
