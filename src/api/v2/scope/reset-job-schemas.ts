import { Type, type Static } from 'typebox'
import { MAX_INTEGER, MAX_RESET_JOB_PAGE } from './input-limits.ts'
import { QueryFilter } from './scope-schemas.ts'

const STATUS = '(pending|running|done|failed)'

/** GET /v2/scope/resets query string (array coercion: filters are lists). */
export const ListResetJobsQuery = Type.Object({
  status: Type.Optional(Type.Array(Type.String({ pattern: `^${STATUS}(,${STATUS})*$` }), { description: 'pending, running, done or failed; repeatable and comma-separated' })),
  // The same filter as GET /v2/scope's: jobs that matched a scope of these ids.
  scope_id: Type.Optional(QueryFilter('scope_id')),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_RESET_JOB_PAGE, default: 100 })),
  offset: Type.Optional(Type.Integer({ minimum: 0, maximum: MAX_INTEGER, default: 0 })),
}, { additionalProperties: false })
export type ListResetJobsQuery = Static<typeof ListResetJobsQuery>

/** GET /v2/scope/resets/{id} path. */
export const ResetJobParams = Type.Object({ id: Type.Integer({ minimum: 1, maximum: MAX_INTEGER }) })

const Time = Type.Union([Type.String(), Type.Null()])

/** One reset job and its progress. */
export const ResetJobReply = Type.Object({
  id: Type.Integer(),
  status: Type.String(),
  last_processed_timestamp: Type.String(),
  scopes_total: Type.Integer(),
  scopes_applied: Type.Integer(),
  scopes_waiting: Type.Integer({ description: "Scopes waiting for CloudKitty's processor to release their processing lock." }),
  attempts: Type.Integer(),
  max_attempts: Type.Integer(),
  last_error: Type.Union([Type.String(), Type.Null()]),
  request_id: Type.Union([Type.String(), Type.Null()]),
  created_at: Type.String(),
  started_at: Time,
  finished_at: Time,
})
export type ResetJobReply = Static<typeof ResetJobReply>

export const ResetJobListReply = Type.Object({ results: Type.Array(ResetJobReply) })
