import { Type, type Static } from 'typebox'
import { FIELD_MAX_LENGTH, MAX_FILTER_VALUES, MAX_INTEGER, TIMESTAMP_MAX_LENGTH, type ScopeField } from './input-limits.ts'

/** The ajv format of a timestamp field; `api/validation.ts` registers it. */
export const TIMESTAMP_FORMAT = 'scopekeeper-timestamp'

/**
 * The ajv keyword bounding a filter's count of values, list items and
 * comma-separated pieces together; `api/validation.ts` registers it. An
 * OpenAPI extension name, so the API document may carry it as is.
 */
export const MAX_VALUES_KEYWORD = 'x-max-values'

const Timestamp = Type.String({ format: TIMESTAMP_FORMAT, maxLength: TIMESTAMP_MAX_LENGTH, description: 'ISO 8601 timestamp; no offset means UTC' })
const ACTIVE_WORD = '([01]|[Tt][Rr][Uu][Ee]|[Ff][Aa][Ll][Ss][Ee])'
// CloudKitty's client sends `"active": 0`; CONTRACT.md "PATCH" lists the forms.
const ActiveInput = Type.Union([
  Type.Boolean(),
  Type.Union([Type.Literal(0), Type.Literal(1)]),
  Type.String({ pattern: `^${ACTIVE_WORD}$` }),
], { description: 'true/false, 0/1, or the strings "true"/"false"/"1"/"0" in any case' })
// No NUL (PostgreSQL refuses it in text) and no lone UTF-16 surrogate (it
// cannot be stored as UTF-8 and would come back as another string). Ajv
// matches with the `u` flag, so valid surrogate pairs (emoji) pass and
// `{0,n}` counts code points, as maxLength and the databases do.
const UNSTORABLE = '\\u0000\\uD800-\\uDFFF'

/** One value of `field`, taken whole (PATCH, POST: `a,b` is one scope_id there). */
const FieldValue = (field: ScopeField) => Type.String({ minLength: 1, maxLength: FIELD_MAX_LENGTH[field], pattern: `^[^${UNSTORABLE}]*$` })

// One parameter or list item of a filter on `field`: comma-separated pieces
// (CloudKitty's client joins multi-values with commas), each of which must
// fit the column; empty pieces pass here and scope-wire.ts drops them.
const filterPiece = (field: ScopeField) => `[^,${UNSTORABLE}]{0,${FIELD_MAX_LENGTH[field]}}`
const FilterValue = (field: ScopeField) => Type.String({ minLength: 1, pattern: `^${filterPiece(field)}(?:,${filterPiece(field)})*$` })
const filterDescription = (field: ScopeField) =>
  `any value matches; comma-separated and/or repeated, each value at most ${FIELD_MAX_LENGTH[field]} characters, at most ${MAX_FILTER_VALUES} values`

/** A filter in a JSON body (PUT): a string, possibly comma-separated, or a list of them. */
const BodyFilter = (field: ScopeField) => Type.Union([FilterValue(field), Type.Array(FilterValue(field), { minItems: 1 })], {
  description: filterDescription(field), [MAX_VALUES_KEYWORD]: MAX_FILTER_VALUES,
})

/** A filter in a query string (GET /v2/scope, /v2/scope/resets); array coercion makes a single parameter a list. */
export const QueryFilter = (field: ScopeField) => Type.Array(FilterValue(field), {
  description: filterDescription(field), [MAX_VALUES_KEYWORD]: MAX_FILTER_VALUES,
})

/** GET /v2/scope query string (parsed with array coercion: every filter is a list). */
export const ListScopesQuery = Type.Object({
  scope_id: Type.Optional(QueryFilter('scope_id')),
  scope_key: Type.Optional(QueryFilter('scope_key')),
  fetcher: Type.Optional(QueryFilter('fetcher')),
  collector: Type.Optional(QueryFilter('collector')),
  active: Type.Optional(Type.Array(Type.String({ pattern: `^${ACTIVE_WORD}(,${ACTIVE_WORD})*$` }), { description: '1/0 or true/false; repeatable and comma-separated' })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_INTEGER, default: 100 })),
  offset: Type.Optional(Type.Integer({ minimum: 0, maximum: MAX_INTEGER })),
  marker: Type.Optional(Type.Integer({ minimum: 0, maximum: MAX_INTEGER, description: "continue after this row: the marker of the previous page's Link rel=\"next\"" })),
}, { additionalProperties: false })
export type ListScopesQuery = Static<typeof ListScopesQuery>

/** PUT /v2/scope body: which scopes to reset, and to when. */
export const ResetScopesBody = Type.Object({
  all_scopes: Type.Optional(Type.Boolean()),
  scope_id: Type.Optional(BodyFilter('scope_id')),
  scope_key: Type.Optional(BodyFilter('scope_key')),
  fetcher: Type.Optional(BodyFilter('fetcher')),
  collector: Type.Optional(BodyFilter('collector')),
  last_processed_timestamp: Type.Optional(Timestamp),
  state: Type.Optional(Timestamp),
}, { additionalProperties: false })
export type ResetScopesBody = Static<typeof ResetScopesBody>

/** PATCH /v2/scope body: the scope to change and its new values. */
export const PatchScopeBody = Type.Object({
  scope_id: FieldValue('scope_id'),
  scope_key: Type.Optional(FieldValue('scope_key')),
  fetcher: Type.Optional(FieldValue('fetcher')),
  collector: Type.Optional(FieldValue('collector')),
  active: Type.Optional(ActiveInput),
}, { additionalProperties: false })
export type PatchScopeBody = Static<typeof PatchScopeBody>

/** POST /v2/scope body: a scope registered ahead of discovery. */
export const CreateScopeBody = Type.Object({
  scope_id: FieldValue('scope_id'),
  scope_key: Type.Optional(FieldValue('scope_key')),
  fetcher: Type.Optional(FieldValue('fetcher')),
  collector: Type.Optional(FieldValue('collector')),
  active: Type.Optional(ActiveInput),
  last_processed_timestamp: Type.Optional(Timestamp),
  state: Type.Optional(Timestamp),
}, { additionalProperties: false })
export type CreateScopeBody = Static<typeof CreateScopeBody>

const Nullable = (s: ReturnType<typeof Type.String>) => Type.Union([s, Type.Null()])

/** One scope state on the wire; `state` is the deprecated alias of `last_processed_timestamp`. */
export const ScopeStateReply = Type.Object({
  scope_id: Type.String(),
  scope_key: Nullable(Type.String()),
  fetcher: Nullable(Type.String()),
  collector: Nullable(Type.String()),
  state: Type.String(),
  last_processed_timestamp: Type.String(),
  active: Type.Boolean(),
  scope_activation_toggle_date: Type.String(),
})
export type ScopeStateReply = Static<typeof ScopeStateReply>

/** GET /v2/scope reply. */
export const ScopeStateListReply = Type.Object({ results: Type.Array(ScopeStateReply) })

/** Every error: one human sentence. */
export const ErrorReply = Type.Object({ message: Type.String() })

/** PUT's 202 body: CloudKitty's `{}`. */
export const AcceptedReply = Type.Object({})

/** What a scope field accepts, in words: the same on every route. */
const fieldRule = (field: ScopeField) =>
  `a non-empty string of at most ${FIELD_MAX_LENGTH[field]} characters (as a filter: such strings, comma-separated and/or in a list)`
const TIMESTAMP_RULE = 'an ISO 8601 timestamp such as 2019-07-16T08:55:01Z, between the years 1000 and 9999'

/**
 * What each field accepts, in words, for validation errors; the schemas
 * above say the same to the validator. Integer fields have none: their
 * words come from their route's bounds (`limit` differs between routes).
 */
export const FIELD_RULES: Record<string, string> = {
  scope_id: fieldRule('scope_id'),
  scope_key: fieldRule('scope_key'),
  fetcher: fieldRule('fetcher'),
  collector: fieldRule('collector'),
  active: 'true or false (also 1/0, or the strings "true", "false", "1", "0")',
  all_scopes: 'a boolean',
  last_processed_timestamp: TIMESTAMP_RULE,
  state: TIMESTAMP_RULE,
  status: 'pending, running, done or failed (comma-separated and/or repeated)',
}
