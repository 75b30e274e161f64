import { randomUUID } from 'node:crypto'
import { hostname } from 'node:os'
import type { Kysely } from 'kysely'
import type { Logger } from 'pino'
import { fromStored } from '../domain/timestamps.ts'
import type { Database, ResetJobRow } from '../storage/database.ts'
import type { EngineTraits } from '../storage/engine-traits.ts'
import { claimOldestJob, failJobAttempt, finishJob, nextJobScopes, releaseJob, saveJobProgress } from '../storage/reset-job-repository.ts'
import { setLastProcessed } from '../storage/scope-state-repository.ts'
import { NO_RATED_DATA, type RatedDataStore } from './rated-data-hook.ts'
import { InProcessScopeLock, type ScopeLock } from './scope-lock.ts'

/** How the worker behaves; every duration in milliseconds. */
export interface ResetWorkerOptions {
  /** The rating period in seconds: a reset to T discards rated data from T + period on. */
  periodSeconds: number
  /** Scope states applied per transaction; progress is saved after each. */
  batchSize: number
  pollIntervalMs: number
  /** A claim not renewed for this long is taken over by another worker. */
  leaseMs: number
  /** Backoff after a failed attempt: base × 2^(attempt-1), capped. */
  retryBaseMs: number
  retryMaxMs: number
}

export const DEFAULT_WORKER_OPTIONS: ResetWorkerOptions = {
  periodSeconds: 3600,
  batchSize: 1000,
  pollIntervalMs: 500,
  leaseMs: 30_000,
  retryBaseMs: 1000,
  retryMaxMs: 300_000,
}

export interface ResetWorkerDeps {
  db: Kysely<Database>
  traits: EngineTraits
  logger: Logger
  store?: RatedDataStore
  lock?: ScopeLock
  clock?: () => Date
}

/**
 * Applies recorded resets: claim the oldest unfinished job → for each batch of
 * its scopes, under their processing lock, discard rated data from T + period
 * on and set the timestamp to T → save the resume point → mark it done.
 *
 * Every step is idempotent, so a job resumed after a crash repeats at most
 * one batch. Jobs are applied one at a time in acceptance order, so the last
 * accepted reset of a scope wins.
 */
export class ResetWorker {
  readonly workerId = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`
  private readonly options: ResetWorkerOptions
  private readonly store: RatedDataStore
  private readonly lock: ScopeLock
  private readonly now: () => Date
  private loop: Promise<void> | undefined
  private readonly stopping = new AbortController()

  constructor (private readonly deps: ResetWorkerDeps, options: Partial<ResetWorkerOptions> = {}) {
    this.options = { ...DEFAULT_WORKER_OPTIONS, ...options }
    this.store = deps.store ?? NO_RATED_DATA
    this.lock = deps.lock ?? new InProcessScopeLock()
    this.now = deps.clock ?? (() => new Date())
  }

  /**
   * Claims and applies at most one job. Returns true when a job was worked on
   * (done, or failed and rescheduled), false when there was nothing to do.
   */
  async runOnce (): Promise<boolean> {
    const { db } = this.deps
    const now = this.now()
    const job = await db.transaction().execute(async (trx) =>
      await claimOldestJob(trx, this.deps.traits, this.workerId, now, new Date(now.getTime() - this.options.leaseMs)))
    if (job === undefined) return false
    try {
      if (await this.apply(job) === 'stopped') {
        await releaseJob(db, job.id)
        return false
      }
      await finishJob(db, job.id, this.now())
      this.deps.logger.info({ jobId: job.id, scopes: job.scopes_total }, 'reset job done')
    } catch (error) {
      const backoff = Math.min(this.options.retryMaxMs, this.options.retryBaseMs * 2 ** (job.attempts - 1))
      const failedAt = this.now()
      await failJobAttempt(db, job, String((error as Error)?.message ?? error), failedAt, new Date(failedAt.getTime() + backoff))
      this.deps.logger.error({ jobId: job.id, attempt: job.attempts, err: error }, 'reset job attempt failed')
    }
    return true
  }

  /** Runs jobs until every pending one is done (or waiting for a retry); for tests and `--once`. */
  async drain (): Promise<void> {
    while (await this.runOnce());
  }

  /** Starts polling in the background; {@link stop} ends it after the current batch. */
  start (): void {
    if (this.loop !== undefined) return
    const signal = this.stopping.signal
    this.loop = (async () => {
      while (!signal.aborted) {
        let worked = false
        try {
          worked = await this.runOnce()
        } catch (error) {
          this.deps.logger.error({ err: error }, 'reset worker could not claim a job')
        }
        if (!worked && !signal.aborted) await sleep(this.options.pollIntervalMs, signal)
      }
    })()
  }

  /** Stops the loop after the current batch and waits for it. */
  async stop (): Promise<void> {
    this.stopping.abort()
    await this.loop
  }

  private async apply (job: ResetJobRow): Promise<'done' | 'stopped'> {
    const { db } = this.deps
    const target = fromStored(job.target_timestamp)
    const discardFrom = new Date(target.getTime() + this.options.periodSeconds * 1000)
    let cursor = job.cursor_state_id
    for (;;) {
      // Stopping between batches hands the job back; the next start resumes
      // at the saved cursor.
      if (this.stopping.signal.aborted) return 'stopped'
      const scopes = await nextJobScopes(db, job.id, cursor, this.options.batchSize)
      if (scopes.length === 0) return 'done'
      await this.lock.withScopes(scopes.map((s) => s.scopeId), async () => {
        for (const scope of scopes) await this.store.discardFrom(scope, discardFrom)
        cursor = scopes[scopes.length - 1].id
        await db.transaction().execute(async (trx) => {
          await setLastProcessed(trx, scopes.map((s) => s.id), target)
          await saveJobProgress(trx, job.id, cursor, scopes.length, this.now())
        })
      })
    }
  }
}

async function sleep (ms: number, signal: AbortSignal): Promise<void> {
  await new Promise<void>((resolve) => {
    const onAbort = () => { clearTimeout(timer); resolve() }
    const timer = setTimeout(() => { signal.removeEventListener('abort', onAbort); resolve() }, ms)
    signal.addEventListener('abort', onAbort, { once: true })
  })
}
