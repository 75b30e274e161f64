/**
 * Where a reset job stands: pending → running → done, or failed after its
 * last attempt. The one list of them: the schemas, the metrics and the
 * storage types derive theirs from it.
 */
export const RESET_JOB_STATUSES = ['pending', 'running', 'done', 'failed'] as const
export type ResetJobStatus = typeof RESET_JOB_STATUSES[number]

/** The statuses of a job that has yet to take effect: it still holds back later jobs of its scopes. */
export const UNFINISHED_STATUSES = ['pending', 'running'] as const satisfies readonly ResetJobStatus[]

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
  createdAt: Date
  startedAt: Date | null
  finishedAt: Date | null
}

/** Which jobs a progress listing is about; absent fields do not filter. */
export interface ResetJobFilter {
  statuses?: ResetJobStatus[]
  /** Jobs that matched a scope state of any of these scope ids. */
  scopeIds?: string[]
}
