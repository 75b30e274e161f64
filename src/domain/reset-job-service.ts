import type { Kysely } from 'kysely'
import type { Database } from '../storage/database.ts'
import type { EngineTraits } from '../storage/engine-traits.ts'
import { findJob, findJobs } from '../storage/reset-job-repository.ts'
import { ScopeKeeperError } from './errors.ts'
import type { ResetJob, ResetJobFilter } from './reset-job.ts'
import type { Page } from './scope-state.ts'

/** Progress of accepted resets, for operators watching them (an extension beside CloudKitty's API). */
export class ResetJobService {
  constructor (private readonly deps: { db: Kysely<Database>, traits: EngineTraits }) {}

  /** Lists jobs newest first; an empty page is an empty list, not an error. */
  async list (filter: ResetJobFilter, page: Page): Promise<ResetJob[]> {
    return await findJobs(this.deps.db, this.deps.traits, filter, page)
  }

  /** One job; throws RESET_NOT_FOUND. */
  async get (id: number): Promise<ResetJob> {
    const job = await findJob(this.deps.db, id)
    if (job === undefined) throw new ScopeKeeperError('RESET_NOT_FOUND', `No reset found with id ${id}.`)
    return job
  }
}
