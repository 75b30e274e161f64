import { randomUUID } from 'node:crypto'
import { hostname } from 'node:os'
import type { Logger } from 'pino'
import { afterFailedAttempt, discardStart, type ClaimedResetJob, type ResetCursor, type RetryPolicy } from '../domain/reset-job.ts'
import type { ScopeState } from '../domain/scope-state.ts'
import {
  addJobWaits, claimNextJob, failJobAttempt, finishJob, nextJobScopes, nextJobWaits, prepareJobScopes, releaseJob, removeJobWaits,
  saveJobProgress, type JobProgress, type WaitCursor,
} from '../storage/reset-job-repository.ts'
import { purgeEvents, recordResetBatch } from '../storage/event-repository.ts'
import { moveLastProcessed } from '../storage/scope-state-repository.ts'
import { inBatchTransaction, inTransaction, type Store } from '../storage/store.ts'
import { processingLockName, type Coordinator, type LockNameSettings } from '../storage/coordination/coordinator.ts'
import { NO_RATED_DATA, type RatedDataStore } from './rated-data-hook.ts'

/** How the worker behaves; every duration in milliseconds. */
export interface ResetWorkerOptions extends RetryPolicy {
  /** The rating period in seconds: a reset to T discards rated data from T + period on. */
  periodSeconds: number
  /** Scope states applied per transaction; progress is saved after each. */
  batchSize: number
  pollIntervalMs: number
  /** A claim not renewed for this long is taken over by another worker. */
  leaseMs: number
  /** Jobs worked on at once by this process (each loop has its own lease identity). */
  concurrency: number
  /** Longest pause between looks at scopes waiting on their processing lock (it doubles from pollIntervalMs). */
  lockRetryMaxMs: number
  /** Days audit events are kept ([audit] retention_days); 0 keeps them all. */
  auditRetentionDays: number
}

export const DEFAULT_WORKER_OPTIONS: ResetWorkerOptions = {
  periodSeconds: 3600,
  batchSize: 500,
  pollIntervalMs: 500,
  leaseMs: 30_000,
  retryBaseMs: 1000,
  retryMaxMs: 300_000,
  concurrency: 1,
  lockRetryMaxMs: 5000,
  auditRetentionDays: 0,
}

/** Events deleted per statement by the audit purge: short transactions, whatever the backlog. */
const PURGE_BATCH = 1000
/** The purge runs at most this often, between jobs. */
const PURGE_INTERVAL_MS = 60_000

/**
 * Applies one batch of a job somewhere else than in this database: a
 * CloudKitty processor reached over RabbitMQ. Resolves once the batch is
 * durably handed over; must tolerate being called again for the same batch.
 */
export interface BatchDispatcher {
  dispatch: (job: ClaimedResetJob, scopes: ScopeState[]) => Promise<void>
}

/** CloudKitty's processing locks: where they are taken, and the settings their names are made of. */
export interface ProcessingLocks {
  coordinator: Coordinator
  names: LockNameSettings
}

export interface ResetWorkerDeps {
  store: Store
  logger: Logger
  ratedData?: RatedDataStore
  /** Required to apply resets here: each scope is touched only under its processing lock. */
  locks?: ProcessingLocks
  /** When set, batches are handed to it instead of being applied here (the processor takes the locks). */
  dispatcher?: BatchDispatcher
  clock?: () => Date
}

/** The worker's lease was taken over by another worker: stop, roll back, do not count a failure. */
class LeaseLost extends Error {}

/** How a job's attempt ended here: applied in full, handed back (stopping), or cancelled after a batch. */
type Outcome = 'done' | 'stopped' | 'cancelled'

/**
 * Applies recorded resets: claim a job → for each batch of its scopes, take
 * CloudKitty's processing lock of each (without waiting), and in one
 * transaction discard rated data from T + period on, set the timestamp to T
 * for the scopes whose lock was taken, list the others as waiting and save
 * the resume point → come back to the waiting scopes until none is left →
 * mark it done. Any number of workers, in any number of processes, share
 * the queue.
 *
 * Every step is idempotent, so a job resumed after a crash repeats at most
 * one batch. A job sharing a scope with an older unfinished job waits for
 * it, so the last accepted reset of a scope wins. A job whose cancellation
 * was asked for ends `cancelled` in the transaction of the batch that
 * learns of it, and the worker goes on with the next job.
 */
export class ResetWorker {
  readonly workerId = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`
  private readonly options: ResetWorkerOptions
  private readonly ratedData: RatedDataStore
  private readonly now: () => Date
  private loops: Promise<void> | undefined
  private lastPurge = 0
  private readonly stopping = new AbortController()
  /** The claims whose job a batch ended `cancelled` (see saveJobProgress): stop at the next batch boundary. */
  private readonly cancelled = new WeakSet<ClaimedResetJob>()

  constructor (private readonly deps: ResetWorkerDeps, options: Partial<ResetWorkerOptions> = {}) {
    this.options = { ...DEFAULT_WORKER_OPTIONS, ...options }
    this.ratedData = deps.ratedData ?? NO_RATED_DATA
    if (deps.locks === undefined && deps.dispatcher === undefined) throw new Error('A reset worker applies resets under processing locks, or hands them to a dispatcher: give it one')
    this.now = deps.clock ?? (() => new Date())
  }

  /**
   * Claims and works on at most one job as `identity` (default: this
   * worker). Returns true when a job was worked on (done, failed and
   * rescheduled, or lost to another worker), false when none was claimable.
   */
  async runOnce (identity = this.workerId): Promise<boolean> {
    const { store, logger } = this.deps
    const now = this.now()
    const job = await claimNextJob(store, identity, now, new Date(now.getTime() - this.options.leaseMs))
    if (job === undefined) return false
    try {
      const outcome = await this.apply(job)
      if (outcome === 'stopped') {
        await releaseJob(store, job)
        logger.info({ jobId: job.id, worker: identity }, 'reset job handed back: the next worker resumes it at its saved progress')
        return false
      }
      if (outcome === 'cancelled') {
        logger.info({ jobId: job.id, worker: identity }, 'reset job cancelled after its current batch, as asked')
        return true
      }
      await finishJob(store, job, this.now())
      logger.info({ jobId: job.id, scopes: job.scopesTotal, worker: identity }, 'reset job done')
    } catch (error) {
      if (error instanceof LeaseLost) {
        logger.warn({ jobId: job.id, worker: identity }, 'reset job taken over by another worker')
        return true
      }
      const failedAt = this.now()
      await failJobAttempt(store, job, { error: String((error as Error)?.message ?? error), failedAt, ...afterFailedAttempt(job, failedAt, this.options) })
      logger.error({ jobId: job.id, attempt: job.attempts, err: error }, 'reset job attempt failed')
    }
    return true
  }

  /** Runs jobs until none is claimable (all done, or waiting for a retry) or {@link stop}; for tests and `--once`. */
  async drain (): Promise<void> {
    while (!this.stopping.signal.aborted && await this.runOnce());
  }

  /** Starts `concurrency` polling loops; {@link stop} ends them after their current batch. */
  start (): void {
    if (this.loops !== undefined) return
    const signal = this.stopping.signal
    const loop = async (identity: string) => {
      while (!signal.aborted) {
        let worked = false
        try {
          worked = await this.runOnce(identity)
        } catch (error) {
          this.deps.logger.error({ err: error }, 'reset worker could not claim a job')
        }
        if (!worked && identity === this.workerId && Date.now() - this.lastPurge >= PURGE_INTERVAL_MS) {
          this.lastPurge = Date.now()
          await this.purgeAudit().catch((error: unknown) => { this.deps.logger.error({ err: error }, 'audit events could not be purged') })
        }
        if (!worked && !signal.aborted) await sleep(this.options.pollIntervalMs, signal)
      }
    }
    const identities = Array.from({ length: this.options.concurrency }, (_, i) => i === 0 ? this.workerId : `${this.workerId}#${i}`)
    this.loops = Promise.all(identities.map(loop)).then(() => {})
  }

  /**
   * Deletes the audit events older than `auditRetentionDays`, in batches of
   * {@link PURGE_BATCH}, until none is left or the worker stops; returns how
   * many. Nothing when the retention is 0 (keep forever).
   */
  async purgeAudit (): Promise<number> {
    if (this.options.auditRetentionDays === 0) return 0
    const before = new Date(this.now().getTime() - this.options.auditRetentionDays * 86_400_000)
    let total = 0
    for (let purged = PURGE_BATCH; purged === PURGE_BATCH && !this.stopping.signal.aborted; total += purged) {
      purged = await purgeEvents(this.deps.store, before, PURGE_BATCH)
    }
    if (total > 0) this.deps.logger.info({ events: total, before }, 'audit events past their retention purged')
    return total
  }

  /** Stops the loops after their current batch and waits for them. */
  async stop (): Promise<void> {
    this.stopping.abort()
    await this.loops
  }

  private async apply (job: ClaimedResetJob): Promise<Outcome> {
    const { store } = this.deps
    const discardFrom = discardStart(job.lastProcessedTimestamp, this.options.periodSeconds)
    // The next batch is read while the current one is applied (on another
    // connection): the read is half of a batch's time on PostgreSQL, and
    // the two batches' scopes are disjoint.
    await prepareJobScopes(store, job)
    const read = (after: ResetCursor) => {
      const batch = nextJobScopes(store, after, this.options.batchSize)
      // Handled where it is awaited; until then a failed read must not count as unhandled.
      batch.catch(() => {})
      return batch
    }
    let next = read(job.cursor)
    let cursor = job.cursor
    try {
      for (;;) {
        // Stopping between batches hands the job back; the next claim resumes
        // at the saved cursor.
        if (this.cancelled.has(job)) return 'cancelled'
        if (this.stopping.signal.aborted) return 'stopped'
        const batch = await next
        if (batch.scopes.length === 0) break
        cursor = batch.cursor
        next = read(cursor)
        const dispatcher = this.deps.dispatcher
        if (dispatcher !== undefined) {
          await dispatcher.dispatch(job, batch.scopes)
          await inTransaction(store, async (trx) => {
            // Handed over, not applied here: the timestamps as read are the old ones.
            await recordResetBatch(trx, job, batch.scopes.map((s) => ({ id: s.id, scopeId: s.scopeId, old: s.lastProcessedTimestamp })), this.now())
            await this.saveProgress(trx, job, { cursor, applied: batch.scopes.length, waiting: 0 })
          })
        } else {
          await this.applyUnderLocks(job, batch.scopes, { discardFrom, cursor, waited: false })
        }
      }
    } finally {
      // A read still in flight when the job stops or fails: let it end first.
      await next.catch(() => {})
    }
    if (this.cancelled.has(job)) return 'cancelled'
    return await this.applyWaiting(job, { discardFrom, cursor })
  }

  /**
   * Applies a batch to the scopes whose processing lock it takes, in one
   * transaction, and releases the locks after the commit, as CloudKitty's
   * own `ScopeEndpoint.reset_state` does (cloudkitty/orchestrator.py). A
   * scope whose lock CloudKitty's processor holds is left as it is and
   * listed as waiting (or stays listed). Returns how many were left.
   */
  private async applyUnderLocks (
    job: ClaimedResetJob, scopes: ScopeState[], at: { discardFrom: Date, cursor: ResetCursor, waited: boolean },
  ): Promise<number> {
    const { coordinator, names } = this.deps.locks!
    const nameOf = new Map(scopes.map((s) => [s.scopeId, processingLockName(s.scopeId, names)]))
    const locks = await coordinator.tryLock([...new Set(nameOf.values())])
    try {
      const ready = scopes.filter((s) => locks.held.has(nameOf.get(s.scopeId)!))
      const left = scopes.filter((s) => !locks.held.has(nameOf.get(s.scopeId)!))
      // A batch lost to a database crash is lost with its saved cursor, so
      // it is simply applied again.
      await inBatchTransaction(this.deps.store, async (trx) => {
        for (const scope of ready) await this.ratedData.discardFrom(scope, at.discardFrom)
        const moved = await moveLastProcessed(trx, ready.map((s) => s.id), job.lastProcessedTimestamp)
        await recordResetBatch(trx, job, moved, this.now())
        if (at.waited) await removeJobWaits(trx, job, ready.map((s) => s.id))
        else await addJobWaits(trx, job, left.map((s) => s.id))
        const waiting = at.waited ? -ready.length : left.length
        await this.saveProgress(trx, job, { cursor: at.cursor, applied: ready.length, waiting })
      })
      if (left.length > 0 && !at.waited) {
        this.deps.logger.info({ jobId: job.id, waiting: left.length, coordination: coordinator.description }, 'scopes left for later: CloudKitty holds their processing lock')
      }
      return left.length
    } finally {
      await locks.release().catch((error: unknown) => {
        this.deps.logger.warn({ err: error, coordination: coordinator.description }, 'could not release processing locks')
      })
    }
  }

  /**
   * Comes back to the job's waiting scopes until none is left, pausing
   * longer (up to lockRetryMaxMs) while no lock comes free, and renewing the
   * lease meanwhile.
   */
  private async applyWaiting (job: ClaimedResetJob, at: { discardFrom: Date, cursor: ResetCursor }): Promise<Outcome> {
    if (this.deps.dispatcher !== undefined) return 'done'
    const { store } = this.deps
    let pause = this.options.pollIntervalMs
    for (;;) {
      if (this.stopping.signal.aborted) return 'stopped'
      let position: WaitCursor | undefined
      let left = 0
      let applied = 0
      for (;;) {
        if (this.cancelled.has(job)) return 'cancelled'
        const { scopes, gone, cursor } = await nextJobWaits(store, job, position, this.options.batchSize)
        if (scopes.length === 0 && gone.length === 0) break
        position = cursor
        if (gone.length > 0) {
          // A waiting scope state deleted meanwhile has nothing left to reset.
          await inTransaction(store, async (trx) => {
            await removeJobWaits(trx, job, gone)
            await this.saveProgress(trx, job, { cursor: at.cursor, applied: 0, waiting: -gone.length })
          })
          if (this.cancelled.has(job)) return 'cancelled'
        }
        if (scopes.length > 0) {
          const stillWaiting = await this.applyUnderLocks(job, scopes, { ...at, waited: true })
          left += stillWaiting
          applied += scopes.length - stillWaiting
        }
      }
      if (left === 0) return 'done'
      pause = applied > 0 ? this.options.pollIntervalMs : Math.min(pause * 2, this.options.lockRetryMaxMs)
      await inTransaction(store, async (trx) => { await this.saveProgress(trx, job, { cursor: at.cursor, applied: 0, waiting: 0 }) })
      if (this.cancelled.has(job)) return 'cancelled'
      await sleep(pause, this.stopping.signal)
    }
  }

  // Inside the batch's transaction: a lost lease rolls the batch back; a
  // cancellation commits it (the job ends with it) and stops the job at the
  // next boundary. If that transaction fails after all, the attempt fails
  // and its end is rolled back; the recorded request stays, and the next
  // claim ends the job instead of running it.
  private async saveProgress (trx: Store, job: ClaimedResetJob, progress: JobProgress): Promise<void> {
    const saved = await saveJobProgress(trx, job, progress, this.now())
    if (saved === 'lost') throw new LeaseLost()
    if (saved === 'cancelled') this.cancelled.add(job)
  }
}

async function sleep (ms: number, signal: AbortSignal): Promise<void> {
  await new Promise<void>((resolve) => {
    const onAbort = () => { clearTimeout(timer); resolve() }
    const timer = setTimeout(() => { signal.removeEventListener('abort', onAbort); resolve() }, ms)
    signal.addEventListener('abort', onAbort, { once: true })
  })
}
