import type { ResetJob, ResetJobFilter, ResetJobStatus } from '../../../domain/reset-job.ts'
import { DEFAULT_PAGE_SIZE, type Page } from '../../../domain/scope-state.ts'
import { formatTimestamp } from '../../../domain/timestamps.ts'
import { absoluteUrl, type RequestOrigin } from '../../proxy-headers.ts'
import type { ListResetJobsQuery, ResetJobReply } from './reset-job-schemas.ts'
import { filterFromWire, splitFilterValues } from './scope-wire.ts'

/** A reset job as the API returns it; the only serializer of jobs. */
export function resetJobToWire (job: ResetJob): ResetJobReply {
  const time = (at: Date | null) => at === null ? null : formatTimestamp(at)
  return {
    id: job.id,
    status: job.status,
    last_processed_timestamp: formatTimestamp(job.lastProcessedTimestamp),
    scopes_total: job.scopesTotal,
    scopes_applied: job.scopesApplied,
    scopes_waiting: job.scopesWaiting,
    attempts: job.attempts,
    max_attempts: job.maxAttempts,
    last_error: job.lastError,
    request_id: job.requestId,
    created_by: job.requestedBy === null
      ? null
      : { auth: job.requestedBy.auth, user_id: job.requestedBy.userId, user_name: job.requestedBy.userName, project_id: job.requestedBy.projectId },
    reason: job.reason,
    created_at: formatTimestamp(job.createdAt),
    started_at: time(job.startedAt),
    finished_at: time(job.finishedAt),
    cancel_requested_at: time(job.cancelRequestedAt),
  }
}

/** Where a job's progress can be read, as the caller reaches us: PUT's Location header. */
export function resetJobLocation (origin: RequestOrigin, id: number): string {
  return absoluteUrl(origin, `/v2/scope/resets/${id}`)
}

/** GET /v2/scope/resets query → filter and page. */
export function resetJobQueryFromWire (query: ListResetJobsQuery): { filter: ResetJobFilter, page: Pick<Page, 'limit' | 'offset'> } {
  // The schema admits only status words, so a split status list is never empty.
  const statuses = query.status === undefined ? undefined : [...new Set(splitFilterValues(query.status))] as ResetJobStatus[]
  return {
    filter: { statuses, scopeIds: filterFromWire('scope_id', 'query string', query.scope_id) },
    page: { limit: query.limit ?? DEFAULT_PAGE_SIZE, offset: query.offset ?? 0 },
  }
}
