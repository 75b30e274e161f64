import { createHash } from 'node:crypto'
import { Readable } from 'node:stream'
import { invalidInput } from '../../../domain/errors.ts'
import { parseActive, parseBooleanWord, wordList } from '../../../domain/scope-fields.ts'
import type { NewScope, Page, ScopeChanges, ScopeFilter, ScopeState } from '../../../domain/scope-state.ts'
import { DEFAULT_PAGE_SIZE } from '../../../domain/scope-state.ts'
import type { ActivationPreview, ActivationResult, PatchOptions, ResetPreview, ResetRequest, ScopeListing } from '../../../domain/scope-state-service.ts'
import { formatTimestamp, parseTimestamp } from '../../../domain/timestamps.ts'
import { lastProcessedFor, type ScopeSummary } from '../../../domain/scope-lag.ts'
import {
  ActivationBody, type bodyFilterFields, type CreateScopeBody, type DryRunQuery, type ListScopesQuery, type PatchScopeBody, type ResetScopesBody,
  type ScopeFilterQuery, type ScopeSummaryQuery, type ScopeSummaryReply,
} from './scope-schemas.ts'

// What JSON.stringify escapes in a string: quotes, backslashes, control
// characters and lone surrogates (any surrogate here; pairs then take the
// slow path, which is still exact).
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/

function jsonString (value: string): string {
  return NEEDS_ESCAPE.test(value) ? JSON.stringify(value) : `"${value}"`
}

function jsonNullable (value: string | null): string {
  return value === null ? 'null' : jsonString(value)
}

/**
 * A scope state as the API returns it (`ScopeStateReply`), as JSON text:
 * the only serializer of scopes, for list pages and single replies alike.
 * Written out rather than stringified: a list page writes a hundred scopes
 * per request, and building a wire object per scope to stringify it
 * generically took twice as long.
 */
export function scopeJson (scope: Omit<ScopeState, 'id'>): string {
  // formatTimestamp's output (digits, '-', ':', 'T', '+') needs no escaping.
  const lastProcessed = formatTimestamp(scope.lastProcessedTimestamp)
  return `{"scope_id":${jsonString(scope.scopeId)},"scope_key":${jsonNullable(scope.scopeKey)},` +
    `"fetcher":${jsonNullable(scope.fetcher)},"collector":${jsonNullable(scope.collector)},` +
    `"state":"${lastProcessed}","last_processed_timestamp":"${lastProcessed}","active":${scope.active ? 'true' : 'false'},` +
    `"scope_activation_toggle_date":"${formatTimestamp(scope.activationToggleDate)}"}`
}

/**
 * The ETag of a scope state: a strong validator (RFC 9110 §8.8.3) of its
 * wire representation, {@link scopeJson}, so it changes exactly when what a
 * GET shows of the row changes. The one function computing it: GET's,
 * PATCH's and POST's headers, and If-Match's comparison, all use it.
 * 27 base64url characters of SHA-256 (162 bits), quoted.
 */
export function scopeEtag (scope: Omit<ScopeState, 'id'>): string {
  return `"${createHash('sha256').update(scopeJson(scope)).digest('base64url').slice(0, 27)}"`
}

/**
 * The ETag of a list answer, when it proves that exactly one row matched a
 * query naming scope_id: a first page (offset 0, no marker) of one row that
 * is not full (so no other row follows). Undefined otherwise.
 */
export function listEtag (filter: ScopeFilter, page: Page, listing: ScopeListing): string | undefined {
  const single = filter.scopeIds !== undefined && page.offset === 0 && page.marker === undefined &&
    listing.first.length === 1 && listing.rest === undefined && listing.nextMarker === undefined
  return single ? scopeEtag(listing.first[0]) : undefined
}

// An entity-tag (RFC 9110 §8.8.3): [W/] DQUOTE *etagc DQUOTE, where etagc is
// %x21 / %x23-7E / obs-text; a comma may be inside the quotes, so the list
// is read tag by tag rather than split at commas.
const ENTITY_TAG = /^(W\/)?("[\x21\x23-\x7e\x80-\xff]*")/
const LIST_SEPARATOR = /^[ \t]*(?:,[ \t]*)*/

const INVALID_IF_MATCH = 'Invalid If-Match header: must be * or a comma-separated list of quoted entity tags, such as the ETag of a GET.'

/**
 * PATCH's If-Match header → the precondition the service checks on the
 * locked row (RFC 9110 §13.1.1): `*` matches any existing row; a list
 * matches when any of its tags is the row's ETag by the strong comparison
 * (§8.8.3.2), so a weak tag (`W/"…"`) never matches. No header: no
 * precondition. A header that is not this syntax is a 400.
 */
export function patchOptionsFromWire (header: string | string[] | undefined): PatchOptions {
  if (header === undefined) return {}
  const text = (Array.isArray(header) ? header.join(', ') : header).trim()
  if (text === '*') return { precondition: () => true }
  const strong: string[] = []
  let rest = text.replace(LIST_SEPARATOR, '')
  let tags = 0
  while (rest !== '') {
    const m = ENTITY_TAG.exec(rest)
    if (m === null) throw invalidInput(INVALID_IF_MATCH)
    tags++
    if (m[1] === undefined) strong.push(m[2])
    rest = rest.slice(m[0].length)
    const separator = LIST_SEPARATOR.exec(rest)?.[0] ?? ''
    if (rest !== '' && !separator.includes(',')) throw invalidInput(INVALID_IF_MATCH)
    rest = rest.slice(separator.length)
  }
  if (tags === 0) throw invalidInput(INVALID_IF_MATCH)
  return { precondition: (current) => strong.includes(scopeEtag(current)) }
}

/** Whether a PUT, PATCH or POST is a dry run (`?dry_run=true`, or 1, in any case). */
export function dryRunFromWire (query: DryRunQuery): boolean {
  return query.dry_run !== undefined && parseBooleanWord(query.dry_run, 'dry_run')
}

/** A PUT dry run's reply (`ResetDryRunReply`), as JSON text; its scopes written by {@link scopeJson}. */
export function resetPreviewJson (preview: ResetPreview): string {
  return `{"dry_run":true,"scopes_total":${preview.scopesTotal},"scopes_inactive":${preview.scopesInactive},` +
    `"last_processed_timestamp":"${formatTimestamp(preview.lastProcessedTimestamp)}","discard_from":"${formatTimestamp(preview.discardFrom)}",` +
    `"results":[${preview.first.map(scopeJson).join(',')}]}`
}

/**
 * A list page as `{"results": […]}`: one string when the page is one chunk,
 * a stream when the service reads several, so a huge `limit` is never held
 * in memory whole. The second chunk is read before the answer starts, so
 * that a page whose rest cannot be read still gets an error status.
 */
export async function listJson ({ first, rest }: ScopeListing): Promise<string | Readable> {
  const rows = (chunk: ScopeState[]) => chunk.map(scopeJson).join(',')
  const whole = `{"results":[${rows(first)}`
  if (rest === undefined) return `${whole}]}`
  const iterator = rest[Symbol.asyncIterator]()
  const second = await iterator.next()
  if (second.done === true) return `${whole}]}`
  return Readable.from((async function * () {
    yield whole
    yield `,${rows(second.value)}`
    for (let next = await iterator.next(); next.done !== true; next = await iterator.next()) yield `,${rows(next.value)}`
    yield ']}'
  })())
}

/**
 * The `Link: <…>; rel="next"` value of a page that may continue: `url` (the
 * list's absolute URL) with the same query, `marker` set to the page's last
 * row (the next page's marker) and `offset` dropped.
 */
export function nextLink (url: string, query: object, marker: number, limit: number): string {
  const params = new URLSearchParams()
  for (const [key, value] of Object.entries(query)) {
    if (key === 'offset' || key === 'marker' || key === 'limit' || value === undefined) continue
    for (const v of [value].flat()) params.append(key, String(v))
  }
  params.set('marker', String(marker))
  params.set('limit', String(limit))
  return `<${url}?${params.toString()}>; rel="next"`
}

/**
 * The values a filter lists: its items split at commas (CloudKitty's client
 * joins multi-values with commas; CONTRACT.md "GET /v2/scope"), empty
 * pieces dropped, repeats kept. The validator counts these against
 * MAX_FILTER_VALUES.
 */
export function splitFilterValues (input: string | readonly string[]): string[] {
  return (typeof input === 'string' ? [input] : input).flatMap((v) => v.split(',')).filter((v) => v !== '')
}

/** Where a filter was sent, as validation messages name it. */
export type FilterLocation = 'query string' | 'request body'

/** A validated filter's distinct values; a filter of nothing but commas is a 400. */
export function filterFromWire (field: string, where: FilterLocation, input: string | string[] | undefined): string[] | undefined {
  if (input === undefined) return undefined
  const values = splitFilterValues(input)
  if (values.length === 0) throw invalidInput(`Invalid ${field} in the ${where}: no value given.`)
  return [...new Set(values)]
}

/** The query-string filters shared by GET /v2/scope and the requests taking the same filters. */
type FilterQuery = { [K in keyof typeof ScopeFilterQuery]?: ListScopesQuery[K] }

/**
 * The GET filters → the domain's filter, and `stuck` (which the service
 * resolves, since it depends on the median). The rated-through bounds
 * become last processed bounds one period (`periodSeconds`) earlier:
 * rated through before T is last processed before T − period.
 */
export function scopeFilterFromWire (query: FilterQuery, periodSeconds: number): { filter: ScopeFilter, stuck?: boolean } {
  const active = query.active === undefined ? undefined : [...new Set(query.active.flatMap((v) => v.split(',')).map(parseActive))]
  const bound = (value: string | undefined, field: string) => value === undefined ? undefined : lastProcessedFor(parseTimestamp(value, field), periodSeconds)
  return {
    filter: {
      scopeIds: filterFromWire('scope_id', 'query string', query.scope_id),
      scopeKeys: filterFromWire('scope_key', 'query string', query.scope_key),
      fetchers: filterFromWire('fetcher', 'query string', query.fetcher),
      collectors: filterFromWire('collector', 'query string', query.collector),
      active,
      lastProcessedBefore: bound(query.rated_before, 'rated_before'),
      lastProcessedAtOrAfter: bound(query.rated_after, 'rated_after'),
    },
    stuck: query.stuck === undefined ? undefined : parseBooleanWord(query.stuck, 'stuck'),
  }
}

/** GET query → filter, stuck and page. */
export function listQueryFromWire (query: ListScopesQuery, periodSeconds: number): { filter: ScopeFilter, stuck?: boolean, page: Page } {
  if (query.marker !== undefined && query.offset !== undefined) throw invalidInput('Use either marker or offset, not both.')
  return {
    ...scopeFilterFromWire(query, periodSeconds),
    page: { limit: query.limit ?? DEFAULT_PAGE_SIZE, offset: query.offset ?? 0, marker: query.marker },
  }
}

/** GET /v2/scope/summary query → filter, stuck and cut-off. */
export function summaryQueryFromWire (query: ScopeSummaryQuery, periodSeconds: number): { filter: ScopeFilter, stuck?: boolean, cutoff?: Date } {
  return { ...scopeFilterFromWire(query, periodSeconds), cutoff: query.cutoff === undefined ? undefined : parseTimestamp(query.cutoff, 'cutoff') }
}

/** A summary as the API answers it (`ScopeSummaryReply`). */
export function summaryToWire (summary: ScopeSummary): ScopeSummaryReply {
  const time = (at: Date | null) => at === null ? null : formatTimestamp(at)
  return {
    period: summary.periodSeconds,
    now: formatTimestamp(summary.now),
    active: summary.active,
    inactive: summary.inactive,
    oldest_rated_through: time(summary.oldestRatedThrough),
    median_rated_through: time(summary.medianRatedThrough),
    lag_periods: summary.lagBuckets,
    stuck: summary.stuck,
    stuck_after_periods: summary.stuckAfterPeriods,
    stuck_rated_through_before: time(summary.stuckRatedThroughBefore),
    cutoff: summary.cutoff === undefined
      ? null
      : { at: formatTimestamp(summary.cutoff.at), rated_through: summary.cutoff.ratedThrough, not_rated_through: summary.cutoff.notRatedThrough },
  }
}

// One of last_processed_timestamp and its deprecated alias `state` (the
// CloudKitty client still sends `state`).
function timestampFromWire (body: { last_processed_timestamp?: string, state?: string }): Date | undefined {
  const { last_processed_timestamp: lpt, state } = body
  if (lpt !== undefined && state !== undefined && parseTimestamp(lpt, 'last_processed_timestamp').getTime() !== parseTimestamp(state, 'state').getTime()) {
    throw invalidInput('last_processed_timestamp and its alias state disagree; send only one of them.')
  }
  if (lpt !== undefined) return parseTimestamp(lpt, 'last_processed_timestamp')
  if (state !== undefined) return parseTimestamp(state, 'state')
  return undefined
}

/** The filter fields of a body that changes many scopes (PUT, POST /v2/scope/activation). */
export type BodyFilters = Pick<ResetScopesBody, keyof typeof bodyFilterFields>

/**
 * A body's filters (PUT, POST /v2/scope/activation) → the scope filter:
 * the one mapping of those fields, so that the routes sharing them match
 * alike. An absent field does not filter.
 */
export function bodyFilterFromWire (body: BodyFilters): ScopeFilter {
  return {
    scopeIds: filterFromWire('scope_id', 'request body', body.scope_id),
    scopeKeys: filterFromWire('scope_key', 'request body', body.scope_key),
    fetchers: filterFromWire('fetcher', 'request body', body.fetcher),
    collectors: filterFromWire('collector', 'request body', body.collector),
  }
}

/** PUT body → reset request. */
export function resetFromWire (body: ResetScopesBody): ResetRequest {
  const allScopes = body.all_scopes === true
  if (allScopes && body.scope_id !== undefined) {
    throw invalidInput('Either all_scopes or a scope_id should be specified, not both.')
  }
  if (!allScopes && body.scope_id === undefined) throw invalidInput('Either all_scopes or a scope_id should be specified.')
  const at = timestampFromWire(body)
  if (at === undefined) throw invalidInput('last_processed_timestamp (or its alias state) is required.')
  return { filter: bodyFilterFromWire(body), lastProcessedTimestamp: at }
}

// The activation body's fields that are not filters; every other one is.
const ACTIVATION_CONTROLS: readonly string[] = ['active', 'all_scopes', 'dry_run', 'reason']
const ACTIVATION_FILTERS = wordList(Object.keys(ActivationBody.properties).filter((field) => !ACTIVATION_CONTROLS.includes(field)))

/**
 * POST /v2/scope/activation body and query → which scopes, the flag to
 * set, and whether it is a dry run (`dry_run` in the body, or
 * `?dry_run=true` as on PUT, PATCH and POST: either makes it one). The
 * body must name its scopes: at least one filter, or `all_scopes: true`
 * alone, so that `{"active": false}` cannot switch off every scope by
 * accident.
 */
export function activationFromWire (body: ActivationBody, query: DryRunQuery, periodSeconds: number): { filter: ScopeFilter, stuck?: boolean, active: boolean, dryRun: boolean } {
  const bound = (value: string | undefined, field: string) => value === undefined ? undefined : lastProcessedFor(parseTimestamp(value, field), periodSeconds)
  const filter: ScopeFilter = {
    ...bodyFilterFromWire(body),
    lastProcessedBefore: bound(body.rated_before, 'rated_before'),
    lastProcessedAtOrAfter: bound(body.rated_after, 'rated_after'),
  }
  const filtered = body.stuck !== undefined || Object.values(filter).some((values) => values !== undefined)
  const allScopes = body.all_scopes === true
  if (allScopes && filtered) throw invalidInput(`Either all_scopes or filters (${ACTIVATION_FILTERS}) should be specified in the request body, not both.`)
  if (!allScopes && !filtered) {
    throw invalidInput(`Name the scopes to switch in the request body: at least one filter (${ACTIVATION_FILTERS}), or all_scopes: true for every scope.`)
  }
  return { filter, stuck: body.stuck, active: parseActive(body.active), dryRun: body.dry_run === true || dryRunFromWire(query) }
}

/** POST /v2/scope/activation's reply (`ActivationReply`), as JSON text; a dry run's scopes written by {@link scopeJson}. */
export function activationJson (active: boolean, result: ActivationResult | ActivationPreview): string {
  const toggled = result.activationToggleDate === null ? 'null' : `"${formatTimestamp(result.activationToggleDate)}"`
  const preview = 'first' in result ? `,"results":[${result.first.map(scopeJson).join(',')}]` : ''
  return `{"dry_run":${'first' in result ? 'true' : 'false'},"active":${active ? 'true' : 'false'},"scopes_total":${result.scopesTotal},` +
    `"scopes_flipped":${result.scopesFlipped},"scope_activation_toggle_date":${toggled}${preview}}`
}

/** PATCH body → which scope and what changes. */
export function patchFromWire (body: PatchScopeBody): { scopeId: string, changes: ScopeChanges } {
  return {
    scopeId: body.scope_id,
    changes: {
      scopeKey: body.scope_key,
      fetcher: body.fetcher,
      collector: body.collector,
      active: body.active === undefined ? undefined : parseActive(body.active),
    },
  }
}

/** POST body → new scope. */
export function createFromWire (body: CreateScopeBody): NewScope {
  return {
    scopeId: body.scope_id,
    scopeKey: body.scope_key,
    fetcher: body.fetcher,
    collector: body.collector,
    active: body.active === undefined ? undefined : parseActive(body.active),
    lastProcessedTimestamp: timestampFromWire(body),
  }
}
