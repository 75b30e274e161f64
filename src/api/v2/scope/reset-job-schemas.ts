import { Type, type Static } from 'typebox'
import { RESET_JOB_STATUSES } from '../../../domain/reset-job.ts'
import { wordList } from '../../../domain/scope-fields.ts'
import { MAX_INTEGER, MAX_RESET_JOB_PAGE } from './input-limits.ts'
import { BoundedInteger, commaSeparated, PageLimit, QueryFilter, rule } from './scope-schemas.ts'

const STATUS = `(?:${RESET_JOB_STATUSES.join('|')})`
const STATUS_WORDS = wordList(RESET_JOB_STATUSES)

/** GET /v2/scope/resets query string (array coercion: filters are lists). */
export const ListResetJobsQuery = Type.Object({
  status: Type.Optional(Type.Array(Type.String({ pattern: commaSeparated(STATUS) }), {
    description: `${STATUS_WORDS}; repeatable and comma-separated`,
    ...rule(`${STATUS_WORDS} (comma-separated and/or repeated)`),
  })),
  // The same filter as GET /v2/scope's: jobs that matched a scope of these ids.
  scope_id: Type.Optional(QueryFilter('scope_id')),
  limit: Type.Optional(PageLimit(MAX_RESET_JOB_PAGE)),
  offset: Type.Optional(BoundedInteger(0, MAX_INTEGER, { default: 0 })),
}, { additionalProperties: false })
export type ListResetJobsQuery = Static<typeof ListResetJobsQuery>

/** GET and DELETE /v2/scope/resets/{id} path. */
export const ResetJobParams = Type.Object({ id: BoundedInteger(1, MAX_INTEGER) })

/** DELETE /v2/scope/resets/{id} takes no query parameter. */
export const CancelResetJobQuery = Type.Object({}, { additionalProperties: false })

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
  created_by: Type.Union([Type.Object({
    auth: Type.String({ description: 'keystone, or noauth when the API ran without authentication' }),
    user_id: Type.Union([Type.String(), Type.Null()]),
    user_name: Type.Union([Type.String(), Type.Null()]),
    project_id: Type.Union([Type.String(), Type.Null()]),
  }), Type.Null()], { description: 'who requested the reset; null for a job accepted before the audit history existed' }),
  reason: Type.Union([Type.String(), Type.Null()], { description: 'why, as the request said it (reason or X-Reason)' }),
  created_at: Type.String(),
  started_at: Time,
  finished_at: Time,
  cancel_requested_at: Type.Union([Type.String(), Type.Null()], {
    description: 'When DELETE /v2/scope/resets/{id} asked for its cancellation; null if never. A running job with one ends cancelled after its current batch, or done if that batch was its last.',
  }),
})
export type ResetJobReply = Static<typeof ResetJobReply>

/**
 * DELETE /v2/scope/resets/{id}: the job as it stands after the request.
 * 200: it is `cancelled` already (it was pending, its worker ended it
 * between two statements of the request, or it was cancelled before), and
 * `scopes_applied` is final. 202: it is `running` (rarely `pending`,
 * handed back meanwhile) with `cancel_requested_at` set, and ends
 * `cancelled` after its current batch, or `done` if that batch was its
 * last; GET it to see the end.
 */
export const CancelResetJobReply = ResetJobReply

export const ResetJobListReply = Type.Object({ results: Type.Array(ResetJobReply) })
