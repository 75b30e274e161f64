import { Type, type Static } from 'typebox'
import { EVENT_KINDS } from '../../../domain/scope-event.ts'
import { wordList } from '../../../domain/scope-fields.ts'
import { MAX_FILTER_VALUES, MAX_INTEGER, MAX_RESET_JOB_PAGE } from './input-limits.ts'
import { BoundedInteger, commaSeparated, PageLimit, QueryFilter, rule, Timestamp, MAX_VALUES_KEYWORD } from './scope-schemas.ts'

const KIND = `(?:${EVENT_KINDS.join('|')})`
const KIND_WORDS = wordList(EVENT_KINDS)

/** GET /v2/scope/events query string (array coercion: filters are lists). */
export const ListEventsQuery = Type.Object({
  scope_id: Type.Optional(QueryFilter('scope_id')),
  kind: Type.Optional(Type.Array(Type.String({ pattern: commaSeparated(KIND) }), {
    description: `${KIND_WORDS}; repeatable and comma-separated`,
    ...rule(`${KIND_WORDS} (comma-separated and/or repeated)`),
  })),
  user_id: Type.Optional(Type.Array(Type.String({ pattern: commaSeparated('[^,\\u0000\\uD800-\\uDFFF]{1,64}') }), {
    description: 'the Keystone user id of whoever made the change; repeatable and comma-separated',
    [MAX_VALUES_KEYWORD]: MAX_FILTER_VALUES,
    ...rule('Keystone user ids of at most 64 characters (comma-separated and/or repeated)'),
  })),
  // Inclusive bounds on when the change was made.
  since: Type.Optional(Timestamp),
  until: Type.Optional(Timestamp),
  limit: Type.Optional(PageLimit(MAX_RESET_JOB_PAGE)),
  marker: Type.Optional(BoundedInteger(0, MAX_INTEGER, { description: "continue after this event: the marker of the previous page's Link rel=\"next\"" })),
}, { additionalProperties: false })
export type ListEventsQuery = Static<typeof ListEventsQuery>

const Text = Type.Union([Type.String(), Type.Null()])

/** One change, as the audit history lists it. */
export const EventReply = Type.Object({
  id: Type.Integer(),
  kind: Type.String({ description: KIND_WORDS }),
  scope_id: Text,
  job_id: Type.Union([Type.Integer(), Type.Null()]),
  created_at: Type.String(),
  auth: Type.String({ description: 'keystone, or noauth when the API ran without authentication' }),
  user_id: Text,
  user_name: Text,
  project_id: Text,
  roles: Type.Array(Type.String()),
  request_id: Text,
  reason: Text,
  details: Type.Record(Type.String(), Type.Unknown(), { description: 'what changed: see the README, "Audit history"' }),
})
export type EventReply = Static<typeof EventReply>

export const EventListReply = Type.Object({ results: Type.Array(EventReply) })
