import { findJob, findJobs } from '../storage/reset-job-repository.ts'
import type { Store } from '../storage/store.ts'
import { ScopeKeeperError } from './errors.ts'
import type { ResetJob, ResetJobFilter } from './reset-job.ts'
import type { Page } from './scope-state.ts'

/**
 * Progress of accepted resets, for operators watching them (an extension
 * beside CloudKitty's API).
 *
 * `visibleScopeIds` is what the caller may see (undefined: everything). A
 * job is visible only when every scope state it covers has one of those ids:
 * its count, progress and error are about those scopes alone. A reset of
 * every scope is visible only to callers who see everything.
 */
export class ResetJobService {
  constructor (private readonly store: Store) {}

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
    if (job === undefined) throw new ScopeKeeperError('RESET_NOT_FOUND', `No reset found with id ${id}.`)
    return job
  }
}
