import { Type, type Static } from 'typebox'
import { REASON_MAX_LENGTH } from '../../../domain/change-context.ts'
import { IDEMPOTENCY_KEY_MAX_LENGTH, IDEMPOTENCY_KEY_PATTERN, IDEMPOTENCY_KEY_RULE } from '../../../domain/idempotency.ts'
import { ACTIVE_NUMBERS, ACTIVE_RULE, ACTIVE_WORDS, wordList } from '../../../domain/scope-fields.ts'
import { DEFAULT_PAGE_SIZE } from '../../../domain/scope-state.ts'
import { FIELD_MAX_LENGTH, MAX_FILTER_VALUES, MAX_INTEGER, TIMESTAMP_MAX_LENGTH, type ScopeField } from './input-limits.ts'

/** The ajv format of a timestamp field; `api/validation.ts` registers it. */
export const TIMESTAMP_FORMAT = 'scopekeeper-timestamp'

/**
 * The ajv keyword bounding a filter's count of values, list items and
 * comma-separated pieces together; `api/validation.ts` registers it. An
 * OpenAPI extension name, so the API document may carry it as is.
 */
export const MAX_VALUES_KEYWORD = 'x-max-values'

/**
 * The annotation on each request property saying, in words, what it
 * accepts: a 400 for that property reads "must be <rule>" from its route's
 * schema (`api/error-handler.ts`), so the words stand beside the bounds
 * they describe. `api/validation.ts` registers it with ajv; an OpenAPI
 * extension name, so the API document may carry it as is.
 */
export const RULE_KEYWORD = 'x-rule'

/** A property's {@link RULE_KEYWORD} annotation, to spread into its schema options. */
export const rule = (words: string) => ({ [RULE_KEYWORD]: words })

/** An integer from `minimum` to `maximum`, whose rule says those same bounds. */
export const BoundedInteger = (minimum: number, maximum: number, options: { default?: number, description?: string } = {}) =>
  Type.Integer({ minimum, maximum, ...options, ...rule(`an integer from ${minimum} to ${maximum}`) })

/** The pattern of one or more `item`s (a regular expression) separated by commas. */
export const commaSeparated = (item: string) => `^${item}(?:,${item})*$`

export const Timestamp = Type.String({
  format: TIMESTAMP_FORMAT,
  maxLength: TIMESTAMP_MAX_LENGTH,
  description: 'ISO 8601 timestamp; no offset means UTC',
  ...rule('an ISO 8601 timestamp such as 2019-07-16T08:55:01Z, between the years 1000 and 9999'),
})

// A word of ACTIVE_WORDS in any case: each letter a class of its two cases
// (the words are letters and digits, nothing a pattern must escape).
const anyCase = (word: string) => [...word].map((c) => c.toLowerCase() === c.toUpperCase() ? c : `[${c.toUpperCase()}${c.toLowerCase()}]`).join('')
const ACTIVE_WORD = `(?:${ACTIVE_WORDS.map(anyCase).join('|')})`
// CloudKitty's client sends `"active": 0`; CONTRACT.md "PATCH" lists the forms.
const ActiveInput = Type.Union([
  Type.Boolean(),
  Type.Union(ACTIVE_NUMBERS.map((n) => Type.Literal(n))),
  Type.String({ pattern: `^${ACTIVE_WORD}$` }),
], { description: `a boolean, ${wordList(ACTIVE_NUMBERS.map(String))}, or the strings ${wordList(ACTIVE_WORDS)} in any case`, ...rule(ACTIVE_RULE) })
// No NUL (PostgreSQL refuses it in text) and no lone UTF-16 surrogate (it
// cannot be stored as UTF-8 and would come back as another string). Ajv
// matches with the `u` flag, so valid surrogate pairs (emoji) pass and
// `{0,n}` counts code points, as maxLength and the databases do.
const UNSTORABLE = '\\u0000\\uD800-\\uDFFF'

/** What a scope field accepts, in words: the same on every route, whole value or filter. */
const fieldRule = (field: ScopeField) =>
  rule(`a non-empty string of at most ${FIELD_MAX_LENGTH[field]} characters (as a filter: such strings, comma-separated and/or in a list)`)

/** One value of `field`, taken whole (PATCH, POST: `a,b` is one scope_id there). */
const FieldValue = (field: ScopeField) => Type.String({ minLength: 1, maxLength: FIELD_MAX_LENGTH[field], pattern: `^[^${UNSTORABLE}]*$`, ...fieldRule(field) })

// One parameter or list item of a filter on `field`: comma-separated pieces
// (CloudKitty's client joins multi-values with commas), each of which must
// fit the column; empty pieces pass here and scope-wire.ts drops them.
const FilterValue = (field: ScopeField) => Type.String({ minLength: 1, pattern: commaSeparated(`[^,${UNSTORABLE}]{0,${FIELD_MAX_LENGTH[field]}}`) })
const filterOptions = (field: ScopeField) => ({
  description: `any value matches; comma-separated and/or repeated, each value at most ${FIELD_MAX_LENGTH[field]} characters, at most ${MAX_FILTER_VALUES} values`,
  [MAX_VALUES_KEYWORD]: MAX_FILTER_VALUES,
  ...fieldRule(field),
})

/** A filter in a JSON body (PUT): a string, possibly comma-separated, or a list of them. */
const BodyFilter = (field: ScopeField) => Type.Union([FilterValue(field), Type.Array(FilterValue(field), { minItems: 1 })], filterOptions(field))

/** A filter in a query string (GET /v2/scope, /v2/scope/resets); array coercion makes a single parameter a list. */
export const QueryFilter = (field: ScopeField) => Type.Array(FilterValue(field), filterOptions(field))

/** A list's `limit`: a page of 1 to `maximum` rows, {@link DEFAULT_PAGE_SIZE} when not given. */
export const PageLimit = (maximum: number) => BoundedInteger(1, maximum, { default: DEFAULT_PAGE_SIZE })

/** A timestamp parameter described for its use; accepts what {@link Timestamp} accepts. */
const TimestampParameter = (description: string) => Type.String({ ...Timestamp, description: `${description}; ISO 8601, no offset means UTC` })

/**
 * The rated-through filters (extensions; CloudKitty's client never sends
 * them). A scope is rated through its last_processed_timestamp plus
 * `[collect] period`. For one T, `rated_before` and `rated_after` split the
 * scopes in two: each scope is in exactly one. Exported for every request
 * that takes the GET filters.
 */
export const RatedFilters = {
  rated_before: Type.Optional(TimestampParameter('only scopes rated through an instant before this one (not yet rated through it)')),
  rated_after: Type.Optional(TimestampParameter('only scopes rated through this instant or later')),
}

/** A true/false word (the words `active` takes in a query: true, false, 1, 0 in any case). */
const BooleanWord = (description: string) => Type.String({ pattern: `^${ACTIVE_WORD}$`, description, ...rule(`${wordList(ACTIVE_WORDS)} in any case`) })

/**
 * The stuck filter (an extension): true lists the stuck scopes (active,
 * lagging more than `[collect] stuck_after_periods` periods behind the
 * median of the active scopes the caller sees, whatever the other
 * filters); false every other scope, inactive ones included.
 */
export const StuckFilter = {
  stuck: Type.Optional(BooleanWord('true: only stuck scopes (active, more than [collect] stuck_after_periods periods behind the median active scope); false: only the others')),
}

/** The filters of GET /v2/scope, and of every request that takes the same filters in a query string. */
export const ScopeFilterQuery = {
  scope_id: Type.Optional(QueryFilter('scope_id')),
  scope_key: Type.Optional(QueryFilter('scope_key')),
  fetcher: Type.Optional(QueryFilter('fetcher')),
  collector: Type.Optional(QueryFilter('collector')),
  active: Type.Optional(Type.Array(Type.String({ pattern: commaSeparated(ACTIVE_WORD) }), {
    description: `${wordList(ACTIVE_WORDS)} in any case; repeatable and comma-separated`, ...rule(ACTIVE_RULE),
  })),
  ...RatedFilters,
  ...StuckFilter,
}

/** GET /v2/scope query string (parsed with array coercion: every filter is a list). */
export const ListScopesQuery = Type.Object({
  ...ScopeFilterQuery,
  limit: Type.Optional(PageLimit(MAX_INTEGER)),
  offset: Type.Optional(BoundedInteger(0, MAX_INTEGER)),
  marker: Type.Optional(BoundedInteger(0, MAX_INTEGER, { description: "continue after this row: the marker of the previous page's Link rel=\"next\"" })),
}, { additionalProperties: false })
export type ListScopesQuery = Static<typeof ListScopesQuery>

/** GET /v2/scope/summary query string: the list's filters, no paging, and the cut-off. */
export const ScopeSummaryQuery = Type.Object({
  ...ScopeFilterQuery,
  cutoff: Type.Optional(TimestampParameter('also count the active scopes rated through this instant, and those not yet')),
}, { additionalProperties: false })
export type ScopeSummaryQuery = Static<typeof ScopeSummaryQuery>

const NullableTimestamp = (description: string) => Type.Union([Type.String(), Type.Null()], { description })

/** GET /v2/scope/summary reply: how far behind the matched scopes are rated. */
export const ScopeSummaryReply = Type.Object({
  period: Type.Integer({ description: 'the rating period, [collect] period, in seconds' }),
  now: Type.String({ description: 'the instant each lag is measured at (now minus the rated-through time)' }),
  active: Type.Integer({ description: 'active scope states matched' }),
  inactive: Type.Integer({ description: 'inactive scope states matched' }),
  oldest_rated_through: NullableTimestamp('the earliest rated-through time (last_processed_timestamp + period) of the active ones; null when none'),
  median_rated_through: NullableTimestamp('their median rated-through time (the lower one of an even count); null when none'),
  lag_periods: Type.Object({
    '0-1': Type.Integer({ description: 'active scopes lagging at most 1 period (rated through now − 1 period or later; rated into the future too)' }),
    '1-2': Type.Integer({ description: 'more than 1, at most 2 periods' }),
    '2-6': Type.Integer({ description: 'more than 2, at most 6 periods' }),
    '6-24': Type.Integer({ description: 'more than 6, at most 24 periods' }),
    '24+': Type.Integer({ description: 'more than 24 periods' }),
  }, { description: 'active scopes by lag (now − rated-through time), in periods' }),
  stuck: Type.Integer({ description: 'active scopes matched that are stuck' }),
  stuck_after_periods: Type.Integer({ description: '[collect] stuck_after_periods' }),
  stuck_rated_through_before: NullableTimestamp(
    'stuck means rated through before this: the median rated-through time of every active scope the caller sees (whatever the filters), minus stuck_after_periods periods; null when none is active'),
  cutoff: Type.Union([
    Type.Object({
      at: Type.String({ description: 'the cut-off, normalised' }),
      rated_through: Type.Integer({ description: 'active scopes rated through the cut-off (rated through it or later)' }),
      not_rated_through: Type.Integer({ description: 'active scopes not yet rated through it: GET /v2/scope?active=true&rated_before=<cutoff> lists them' }),
    }),
    Type.Null(),
  ], { description: 'with ?cutoff: the active scopes rated through it and not; null without' }),
})
export type ScopeSummaryReply = Static<typeof ScopeSummaryReply>

/**
 * The query string of PUT, PATCH and POST /v2/scope: `dry_run`, an
 * extension. True (the words `active` takes in a query: true, false, 1, 0
 * in any case) validates the request and computes its effect, and writes
 * nothing; false or absent is the real request.
 */
export const DryRunQuery = Type.Object({
  dry_run: Type.Optional(Type.String({
    pattern: `^${ACTIVE_WORD}$`,
    description: 'true: validate the request and answer what it would do, writing nothing (the same 4xx as the real request); false or absent: do it',
    ...rule(`${wordList(ACTIVE_WORDS)} in any case`),
  })),
}, { additionalProperties: false })
export type DryRunQuery = Static<typeof DryRunQuery>

/** PATCH /v2/scope request headers: the precondition (RFC 9110 §13.1.1). */
export const IfMatchHeaders = Type.Object({
  'if-match': Type.Optional(Type.String({
    description: 'change the row only if its ETag (from GET or a previous PATCH) is one of these: * or a comma-separated list of strong entity tags; ' +
      'otherwise 412 and nothing changes. Weak tags (W/"…") never match',
  })),
})

/** The `ETag` response header: a strong validator of one scope state's wire representation (RFC 9110 §8.8.3). */
const etagHeader = (when: string) => ({
  etag: { type: 'string', description: `a strong entity tag of the scope state as this reply shows it, for If-Match on PATCH; ${when}` },
})

/** Why a change is made (an extension; the `X-Reason` header says the same): kept in the audit history. */
export const reasonField = {
  reason: Type.Optional(Type.String({
    minLength: 1, maxLength: REASON_MAX_LENGTH, pattern: `^[^${UNSTORABLE}]*$`,
    description: 'why the change is made; stored in the audit history, never required (X-Reason says the same)',
    ...rule(`a non-empty string of at most ${REASON_MAX_LENGTH} characters`),
  })),
}

// A reset's target (PUT), or a new scope's start (POST): the timestamp under
// its name and under its deprecated alias `state`, which CloudKitty's client still sends.
const timestampFields = {
  last_processed_timestamp: Type.Optional(Timestamp),
  state: Type.Optional(Timestamp),
}

/** `all_scopes`: a change of every scope, asked for explicitly (PUT, POST /v2/scope/activation). */
const allScopesField = {
  all_scopes: Type.Optional(Type.Boolean(rule('a boolean'))),
}

/**
 * The filters of a body that changes many scopes (PUT, POST
 * /v2/scope/activation): GET's text filters, in a body's forms. Each
 * present field is a set of accepted values; fields combine with AND.
 * `scope-wire.ts` `bodyFilterFromWire` maps them to a ScopeFilter.
 */
export const bodyFilterFields = {
  scope_id: Type.Optional(BodyFilter('scope_id')),
  scope_key: Type.Optional(BodyFilter('scope_key')),
  fetcher: Type.Optional(BodyFilter('fetcher')),
  collector: Type.Optional(BodyFilter('collector')),
}

/** PUT /v2/scope body: which scopes to reset, and to when. */
export const ResetScopesBody = Type.Object({
  ...allScopesField,
  ...bodyFilterFields,
  ...timestampFields,
  ...reasonField,
}, { additionalProperties: false })
export type ResetScopesBody = Static<typeof ResetScopesBody>

// One scope's fields, as PATCH changes them and POST first sets them.
const scopeFields = {
  scope_id: FieldValue('scope_id'),
  scope_key: Type.Optional(FieldValue('scope_key')),
  fetcher: Type.Optional(FieldValue('fetcher')),
  collector: Type.Optional(FieldValue('collector')),
  active: Type.Optional(ActiveInput),
}

/** PATCH /v2/scope body: the scope to change and its new values. */
export const PatchScopeBody = Type.Object({ ...scopeFields, ...reasonField }, { additionalProperties: false })
export type PatchScopeBody = Static<typeof PatchScopeBody>

/** POST /v2/scope body: a scope registered ahead of discovery, and where its processing starts. */
export const CreateScopeBody = Type.Object({ ...scopeFields, ...timestampFields, ...reasonField }, { additionalProperties: false })
export type CreateScopeBody = Static<typeof CreateScopeBody>

/**
 * POST /v2/scope/activation body (an extension): the flag to set, which
 * scopes (filters, or `all_scopes: true`; one of them is required), and
 * whether it is a dry run.
 */
export const ActivationBody = Type.Object({
  active: ActiveInput,
  ...allScopesField,
  ...bodyFilterFields,
  // The lag filters of GET /v2/scope; here, as JSON, stuck is a boolean.
  ...RatedFilters,
  stuck: Type.Optional(Type.Boolean({
    description: 'true: only stuck scopes (active, more than [collect] stuck_after_periods periods behind the median active scope); false: only the others',
    ...rule('a boolean'),
  })),
  dry_run: Type.Optional(Type.Boolean({
    description: 'true: answer what would be switched, and switch nothing (as ?dry_run=true does)',
    ...rule('a boolean'),
  })),
  ...reasonField,
}, { additionalProperties: false })
export type ActivationBody = Static<typeof ActivationBody>

export const Nullable = (s: ReturnType<typeof Type.String>) => Type.Union([s, Type.Null()])

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

/** GET /v2/scope's 200, as documented: the list, and an ETag when it proves exactly one row matched. */
export const ScopeStateListResponse = {
  ...ScopeStateListReply,
  description: 'the page of matching scope states',
  headers: etagHeader('sent only when scope_id was given and exactly one row matched (offset 0, no marker, and the page not full)'),
}

/** PATCH and POST /v2/scope's 200, as documented: the scope state, and its ETag unless a dry run. */
export const ScopeStateResponse = {
  ...ScopeStateReply,
  description: 'the scope state as stored (with dry_run: as it would be)',
  headers: etagHeader('not sent on a dry run, whose row is not stored'),
}

/**
 * PUT /v2/scope?dry_run=true reply: what the reset would cover, nothing
 * recorded. `results` is the first page of the matched scope states, in the
 * list's order and shape, without inactive ones left out.
 */
export const ResetDryRunReply = Type.Object({
  dry_run: Type.Literal(true),
  scopes_total: Type.Integer({ description: 'every scope state the reset would cover, active or not' }),
  scopes_inactive: Type.Integer({ description: 'how many of them are inactive' }),
  last_processed_timestamp: Type.String({ description: 'the timestamp they would be reset to, normalised (UTC, +00:00)' }),
  discard_from: Type.String({ description: 'rated data from this instant on would be discarded: the timestamp plus [collect] period' }),
  results: Type.Array(ScopeStateReply, { description: `the first ${DEFAULT_PAGE_SIZE} of them, in creation order` }),
}, { description: 'a dry run: what the reset would do' })
/**
 * POST /v2/scope/activation reply: how many scope states the filters
 * matched and how many of those flipped (the others had the flag already,
 * and keep their toggle date). A dry run adds the first page of the states
 * that would flip.
 */
export const ActivationReply = Type.Object({
  dry_run: Type.Boolean({ description: 'true: nothing was switched; the counts say what would be' }),
  active: Type.Boolean({ description: 'the flag set (or, on a dry run, that would be)' }),
  scopes_total: Type.Integer({ description: 'every scope state the filters matched, whatever its flag' }),
  scopes_flipped: Type.Integer({ description: 'how many of them had the other flag and were switched (would be, on a dry run)' }),
  scope_activation_toggle_date: Nullable(Type.String({ description: 'the toggle date written on the switched states; null when none flipped' })),
  results: Type.Optional(Type.Array(ScopeStateReply, { description: `dry run only: the first ${DEFAULT_PAGE_SIZE} states that would flip, in creation order, as they are now` })),
})
export type ActivationReply = Static<typeof ActivationReply>

/**
 * `X-Reason`, documented here and checked by `api/change-context.ts`
 * (which names the header in its 400): why a change is made, for the
 * audit history.
 */
export const ReasonHeader = Type.Object({
  'x-reason': Type.Optional(Type.String({
    description: `why the change is made, at most ${REASON_MAX_LENGTH} characters; kept in the audit history (a body's reason field wins)`,
  })),
})

/**
 * The headers of PUT, PATCH and POST /v2/scope: an optional Idempotency-Key
 * (`api/idempotency.ts`). Other headers are not ours to refuse.
 */
export const IdempotentHeaders = Type.Object({
  'idempotency-key': Type.Optional(Type.String({
    minLength: 1,
    maxLength: IDEMPOTENCY_KEY_MAX_LENGTH,
    pattern: IDEMPOTENCY_KEY_PATTERN.source,
    description: 'Makes the request safe to retry: a repeat with the same key and body, within `[api] idempotency_ttl` ' +
      '(24 h by default), gets the first answer back (with `Idempotent-Replayed: true`) and acts no more; ' +
      'a repeat sent while the first is in progress waits for it. The same key with another body is a 422. ' +
      `Keys are the caller's own (Keystone user and project). ${IDEMPOTENCY_KEY_RULE}.`,
    ...rule(IDEMPOTENCY_KEY_RULE),
  })),
  ...ReasonHeader.properties,
})

/** Every error: one human sentence. */
export const ErrorReply = Type.Object({ message: Type.String() })

/** PUT's 202 body: CloudKitty's `{}`. */
export const AcceptedReply = Type.Object({})
