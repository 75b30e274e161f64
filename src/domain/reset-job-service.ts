import { cancelJob, findJob, findJobs } from '../storage/reset-job-repository.ts'
import type { Store } from '../storage/store.ts'
import type { ChangeContext } from './change-context.ts'
import { ScopeKeeperError } from './errors.ts'
import type { CancelOutcome, ResetJob, ResetJobFilter } from './reset-job.ts'
import type { Page } from './scope-state.ts'

/**
 * Progress of accepted resets, for operators watching them (an extension
 * beside CloudKitty's API), and their cancellation.
 *
 * `visibleScopeIds` is what the caller may see (undefined: everything). A
 * job is visible only when every scope state it covers has one of those ids:
 * its count, progress and error are about those scopes alone. A reset of
 * every scope is visible only to callers who see everything. A caller
 * cancels only a job it may see.
 */
export class ResetJobService {
  private readonly now: () => Date

  constructor (private readonly store: Store, clock?: () => Date) {
    this.now = clock ?? (() => new Date())
  }

  /** Lists visible jobs newest first; an empty page is an empty list, not an error. */
  async list (filter: ResetJobFilter, page: Pick<Page, 'limit' | 'offset'>, visibleScopeIds?: readonly string[]): Promise<ResetJob[]> {
    return await findJobs(this.store, filter, page, visibleScopeIds)
  }

  /**
   * One job; throws RESET_NOT_FOUND, also for a job the caller may not see,
   * so that its existence is not told either.
   */
  async get (id: number, visibleScopeIds?: readonly string[]): Promise<ResetJob> {
    const job = await findJob(this.store, id, visibleScopeIds)
    if (job === undefined) throw notFound(id)
    return job
  }

  /**
   * Cancels a job: a pending one is `cancelled` at once and never applied;
   * a running one is asked to stop, and ends `cancelled` after its current
   * batch (or `done`, if that batch was its last), its applied batches
   * counted in `scopesApplied`. Cancelling a cancelled job again answers it
   * as it is: the caller's wish already holds, so a retried request is
   * harmless. A job that is done or failed is over: RESET_NOT_CANCELLABLE.
   * A job the caller may not see is RESET_NOT_FOUND, as for {@link get}.
   */
  async cancel (id: number, context: ChangeContext, visibleScopeIds?: readonly string[]): Promise<{ job: ResetJob, outcome: CancelOutcome }> {
    await this.get(id, visibleScopeIds)
    const job = await cancelJob(this.store, id, this.now(), context)
    if (job === undefined) throw notFound(id)
    switch (job.status) {
      case 'cancelled':
        return { job, outcome: 'cancelled' }
      case 'running':
      case 'pending': // handed back meanwhile, its request recorded: its next claim ends it
        return { job, outcome: 'requested' }
      case 'done':
        throw new ScopeKeeperError('RESET_NOT_CANCELLABLE', `Reset ${id} is done: it can no longer be cancelled.`)
      case 'failed':
        throw new ScopeKeeperError('RESET_NOT_CANCELLABLE', `Reset ${id} has failed: it no longer runs, so it cannot be cancelled.`)
    }
  }
}

function notFound (id: number): ScopeKeeperError {
  return new ScopeKeeperError('RESET_NOT_FOUND', `No reset found with id ${id}.`)
}
