import { Type, type Static } from 'typebox'

/** The ajv format of a timestamp field; `api/validation.ts` registers it. */
export const TIMESTAMP_FORMAT = 'scopekeeper-timestamp'

const Timestamp = Type.String({ format: TIMESTAMP_FORMAT, maxLength: 64, description: 'ISO 8601 timestamp; no offset means UTC' })
const ACTIVE_WORD = '([01]|[Tt][Rr][Uu][Ee]|[Ff][Aa][Ll][Ss][Ee])'
// CloudKitty's client sends `"active": 0`; CONTRACT.md "PATCH" lists the forms.
const ActiveInput = Type.Union([
  Type.Boolean(),
  Type.Union([Type.Literal(0), Type.Literal(1)]),
  Type.String({ pattern: `^${ACTIVE_WORD}$` }),
], { description: 'true/false, 0/1, or the strings "true"/"false"/"1"/"0" in any case' })
// No NUL (PostgreSQL refuses it in text) and no lone UTF-16 surrogate (it
// cannot be stored as UTF-8 and would come back as another string). Ajv
// matches with the `u` flag, so valid surrogate pairs (emoji) pass.
const STORABLE = '^[^\\u0000\\uD800-\\uDFFF]*$'
const Text = (options: { minLength?: number, maxLength?: number } = {}) => Type.String({ minLength: 1, pattern: STORABLE, ...options })
// Filters: a string, possibly comma-separated, or a list of them.
const FilterInput = Type.Union([Text(), Type.Array(Text(), { minItems: 1 })])
const QueryFilter = Type.Array(Text(), { description: 'repeatable and comma-separated; any value matches' })

/** GET /v2/scope query string (parsed with array coercion: every filter is a list). */
export const ListScopesQuery = Type.Object({
  scope_id: Type.Optional(QueryFilter),
  scope_key: Type.Optional(QueryFilter),
  fetcher: Type.Optional(QueryFilter),
  collector: Type.Optional(QueryFilter),
  active: Type.Optional(Type.Array(Type.String({ pattern: `^${ACTIVE_WORD}(,${ACTIVE_WORD})*$` }), { description: '1/0 or true/false; repeatable and comma-separated' })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 2_147_483_647, default: 100 })),
  offset: Type.Optional(Type.Integer({ minimum: 0, maximum: 2_147_483_647 })),
  marker: Type.Optional(Type.Integer({ minimum: 0, maximum: 2_147_483_647, description: "continue after this row: the marker of the previous page's Link rel=\"next\"" })),
}, { additionalProperties: false })
export type ListScopesQuery = Static<typeof ListScopesQuery>

/** PUT /v2/scope body: which scopes to reset, and to when. */
export const ResetScopesBody = Type.Object({
  all_scopes: Type.Optional(Type.Boolean()),
  scope_id: Type.Optional(FilterInput),
  scope_key: Type.Optional(FilterInput),
  fetcher: Type.Optional(FilterInput),
  collector: Type.Optional(FilterInput),
  last_processed_timestamp: Type.Optional(Timestamp),
  state: Type.Optional(Timestamp),
}, { additionalProperties: false })
export type ResetScopesBody = Static<typeof ResetScopesBody>

const ScopeId = Text({ maxLength: 256 })
const ShortField = Text({ maxLength: 40 })

/** PATCH /v2/scope body: the scope to change and its new values. */
export const PatchScopeBody = Type.Object({
  scope_id: ScopeId,
  scope_key: Type.Optional(ShortField),
  fetcher: Type.Optional(ShortField),
  collector: Type.Optional(ShortField),
  active: Type.Optional(ActiveInput),
}, { additionalProperties: false })
export type PatchScopeBody = Static<typeof PatchScopeBody>

/** POST /v2/scope body: a scope registered ahead of discovery. */
export const CreateScopeBody = Type.Object({
  scope_id: ScopeId,
  scope_key: Type.Optional(ShortField),
  fetcher: Type.Optional(ShortField),
  collector: Type.Optional(ShortField),
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

/**
 * What each field accepts, in words, for validation errors; the schemas
 * above say the same to the validator.
 */
export const FIELD_RULES: Record<string, string> = {
  scope_id: 'a non-empty string of at most 256 characters (filters: a string, comma-separated string or list)',
  scope_key: 'a non-empty string of at most 40 characters (filters: a string, comma-separated string or list)',
  fetcher: 'a non-empty string of at most 40 characters (filters: a string, comma-separated string or list)',
  collector: 'a non-empty string of at most 40 characters (filters: a string, comma-separated string or list)',
  active: 'true or false (also 1/0, or the strings "true", "false", "1", "0")',
  all_scopes: 'a boolean',
  last_processed_timestamp: 'an ISO 8601 timestamp such as 2019-07-16T08:55:01Z, between the years 1000 and 9999',
  state: 'an ISO 8601 timestamp such as 2019-07-16T08:55:01Z, between the years 1000 and 9999',
  limit: 'an integer of at least 1',
  marker: 'an integer of at least 0 (from the previous page\'s Link header)',
  offset: 'an integer of at least 0',
}
