import type { Actor } from './change-context.ts'

/**
 * Where a reset job stands: pending → running → done, or failed after its
 * last attempt, or cancelled (DELETE /v2/scope/resets/{id}: at once while
 * pending, after its current batch while running). The one list of them:
 * the schemas, the metrics and the storage types derive theirs from it.
 */
export const RESET_JOB_STATUSES = ['pending', 'running', 'done', 'failed', 'cancelled'] as const
export type ResetJobStatus = typeof RESET_JOB_STATUSES[number]

/**
 * The statuses of a job that has yet to take effect: it still holds back
 * later jobs of its scopes. A cancelled job holds back nothing: what it
 * applied stays applied, and the rest is left to later jobs.
 */
export const UNFINISHED_STATUSES = ['pending', 'running'] as const satisfies readonly ResetJobStatus[]

/**
 * Where a reset to `lastProcessedTimestamp` starts discarding rated data:
 * one rating period (`[collect] period`, seconds) later, since the period
 * that starts at the timestamp stays rated (CONTRACT.md "PUT", Boundary).
 */
export function discardStart (lastProcessedTimestamp: Date, periodSeconds: number): Date {
  return new Date(lastProcessedTimestamp.getTime() + periodSeconds * 1000)
}

/** A reset accepted by PUT /v2/scope and its progress, as operators watch it. */
export interface ResetJob {
  id: number
  status: ResetJobStatus
  /** The timestamp the matched scopes are reset to. */
  lastProcessedTimestamp: Date
  scopesTotal: number
  scopesApplied: number
  /** Scopes skipped for now because CloudKitty's processor holds their processing lock; the job comes back to them. */
  scopesWaiting: number
  attempts: number
  maxAttempts: number
  lastError: string | null
  /** The x-openstack-request-id of the PUT that created the job. */
  requestId: string | null
  /** Who requested it; null for a job older than the audit history. */
  requestedBy: Actor | null
  reason: string | null
  createdAt: Date
  startedAt: Date | null
  finishedAt: Date | null
  /**
   * When its cancellation was asked for; null if never. A running job with
   * one ends `cancelled` after its current batch, or `done` if that batch was
   * its last.
   */
  cancelRequestedAt: Date | null
}

/**
 * What a cancellation did: `cancelled`, the job is over, cancelled (it was
 * pending, its worker ended it at once, or it was cancelled before);
 * `requested`, the job is still running and ends `cancelled` after its
 * current batch (or `done`, if that batch was its last).
 */
export type CancelOutcome = 'cancelled' | 'requested'

/** Which jobs a progress listing is about; absent fields do not filter. */
export interface ResetJobFilter {
  statuses?: ResetJobStatus[]
  /** Jobs that matched a scope state of any of these scope ids. */
  scopeIds?: string[]
}

declare const resetCursor: unique symbol

/**
 * Where a claimed job's next batch starts. Opaque outside `storage/`: the
 * worker gets one with each batch and hands it back to save its progress.
 */
export interface ResetCursor { readonly [resetCursor]: true }

/** A job a worker has claimed: what it needs to apply it, and where it resumes. */
export interface ClaimedResetJob {
  id: number
  /** The timestamp the matched scopes are reset to. */
  lastProcessedTimestamp: Date
  scopesTotal: number
  /** Attempts so far, this one included. */
  attempts: number
  maxAttempts: number
  requestId: string | null
  /** Who requested it, and why: what its batches record in the audit history. */
  requestedBy: Actor
  reason: string | null
  /** Who holds the job's lease: progress is saved only while it does. */
  holder: string
  /** The saved resume point: a resumed job starts after what it applied. */
  cursor: ResetCursor
}

/** How failed attempts are retried; durations in milliseconds. */
export interface RetryPolicy {
  /** Backoff after a failed attempt: base × 2^(attempt-1), capped at `retryMaxMs`. */
  retryBaseMs: number
  retryMaxMs: number
}

/**
 * What becomes of a job whose attempt failed at `failedAt`: pending again
 * after its backoff, or failed for good once it has used its attempts. The
 * one place that decides; storage writes the result.
 */
export function afterFailedAttempt (
  job: Pick<ClaimedResetJob, 'attempts' | 'maxAttempts'>, failedAt: Date, policy: RetryPolicy,
): { status: 'pending' | 'failed', runAt: Date } {
  const backoff = Math.min(policy.retryMaxMs, policy.retryBaseMs * 2 ** (job.attempts - 1))
  return { status: job.attempts >= job.maxAttempts ? 'failed' : 'pending', runAt: new Date(failedAt.getTime() + backoff) }
}
