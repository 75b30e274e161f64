/** Where a reset job stands: pending → running → done, or failed after its last attempt. */
export type ResetJobStatus = 'pending' | 'running' | 'done' | 'failed'

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
