/**
 * The `/v2/scope` wire as this client sends and reads it, written from the
 * client's side. The client talks to scopekeeper and to CloudKitty's own
 * API alike, so it keeps its own description of the requests and replies,
 * as python-cloudkittyclient does (`cloudkittyclient/v2/scope_cli.py`
 * lists its own columns and filters), and imports nothing of the server.
 * The field lists give the columns' order and the commands' flags.
 * test/unit/cli/scope-commands.test.ts holds them to the server's schemas:
 * the columns must be the reply schemas' fields, in their order, and each
 * request schema's field must have its flag, so a field the server adds
 * or renames fails a test rather than going unseen by the client.
 */

/**
 * Every key of `T`, in the order the list gives: a key missing from the
 * list, or one that `T` lacks, fails to compile, so a type and its
 * runtime list cannot drift apart.
 */
function fieldsOf<T> () {
  return <const L extends ReadonlyArray<keyof T>>(
    fields: L & ([Exclude<keyof T, L[number]>] extends [never] ? unknown : { missing: Exclude<keyof T, L[number]> }),
  ): L => fields
}

/** One scope state, as GET, PATCH and POST /v2/scope answer it (`results` items for GET). */
export type ScopeStateReply = {
  scope_id: string
  scope_key: string | null
  fetcher: string | null
  collector: string | null
  /** The deprecated alias of `last_processed_timestamp`, still sent for older clients. */
  state: string
  last_processed_timestamp: string
  active: boolean
  scope_activation_toggle_date: string
}

/** The fields of a scope state, in the order the server sends them and the CLI shows them. */
export const SCOPE_STATE_FIELDS = fieldsOf<ScopeStateReply>()([
  'scope_id', 'scope_key', 'fetcher', 'collector', 'state', 'last_processed_timestamp', 'active', 'scope_activation_toggle_date',
])

/** Who made a change, as the server recorded it: `auth` is `keystone`, or `noauth` (the ids then null). */
export type ChangeAuthor = {
  auth?: string
  user_id: string | null
  user_name: string | null
  project_id: string | null
}

/**
 * One reset job and its progress (GET /v2/scope/resets/{id}, a scopekeeper
 * extension; CloudKitty has no such route). `status` is `pending`,
 * `running`, `done`, `failed` or `cancelled`; read as any string, so that a
 * status a newer server adds is shown rather than refused.
 */
export type ResetJobReply = {
  id: number
  status: string
  last_processed_timestamp: string
  scopes_total: number
  scopes_applied: number
  /** Scopes waiting for CloudKitty's processor to release their processing lock. */
  scopes_waiting: number
  attempts: number
  max_attempts: number
  last_error: string | null
  request_id: string | null
  /** Who asked for the reset: null for a job older than the audit history, absent on a server without one. */
  created_by?: ChangeAuthor | null
  /** Why, as the PUT said it; absent on a server without an audit history. */
  reason?: string | null
  created_at: string
  started_at: string | null
  finished_at: string | null
  /** When its cancellation was asked for (DELETE /v2/scope/resets/{id}); absent from servers older than cancellation. */
  cancel_requested_at?: string | null
}

/** The fields of a reset job, in the order the server sends them and the CLI shows them. */
export const RESET_JOB_FIELDS = fieldsOf<ResetJobReply>()([
  'id', 'status', 'last_processed_timestamp', 'scopes_total', 'scopes_applied', 'scopes_waiting',
  'attempts', 'max_attempts', 'last_error', 'request_id', 'created_by', 'reason', 'created_at', 'started_at', 'finished_at', 'cancel_requested_at',
])

/**
 * GET /v2/scope's query string. A filter's values may be repeated or
 * comma-joined (CloudKitty's client joins them); any of them matches.
 * `marker` is scopekeeper's cursor (the row after which a page starts, as
 * its `Link: rel="next"` gives it); CloudKitty ignores it.
 */
export type ListScopesQuery = {
  scope_id?: string[]
  scope_key?: string[]
  fetcher?: string[]
  collector?: string[]
  /** `1`/`0` or `true`/`false`. */
  active?: string[]
  /** scopekeeper: only scopes rated through (last_processed_timestamp + period) an instant before this one. */
  rated_before?: string
  /** scopekeeper: only scopes rated through this instant or later. */
  rated_after?: string
  /** scopekeeper: `true`, only stuck scopes; `false`, every other one. */
  stuck?: string
  limit?: number
  offset?: number
  marker?: number
}

/** The parameters of GET /v2/scope, in the order `scope state list` offers them as flags. */
export const LIST_SCOPES_PARAMETERS = fieldsOf<ListScopesQuery>()([
  'scope_id', 'scope_key', 'fetcher', 'collector', 'active', 'rated_before', 'rated_after', 'stuck', 'limit', 'offset', 'marker',
])

/** GET /v2/scope/summary's query string (scopekeeper): the list's filters, no paging, and a cut-off. */
export type ScopeSummaryQuery = Omit<ListScopesQuery, 'limit' | 'offset' | 'marker'> & { cutoff?: string }

/**
 * What GET /v2/scope/summary answers (scopekeeper): how far behind the
 * matched scopes are rated. Lags are in periods; `cutoff` is null unless
 * one was asked.
 */
export type ScopeSummaryReply = {
  period: number
  now: string
  active: number
  inactive: number
  oldest_rated_through: string | null
  median_rated_through: string | null
  lag_periods: { '0-1': number, '1-2': number, '2-6': number, '6-24': number, '24+': number }
  stuck: number
  stuck_after_periods: number
  stuck_rated_through_before: string | null
  cutoff: { at: string, rated_through: number, not_rated_through: number } | null
}

/** The fields of a summary, in the order the server sends them. */
export const SCOPE_SUMMARY_FIELDS = fieldsOf<ScopeSummaryReply>()([
  'period', 'now', 'active', 'inactive', 'oldest_rated_through', 'median_rated_through', 'lag_periods', 'stuck', 'stuck_after_periods',
  'stuck_rated_through_before', 'cutoff',
])

/** PUT /v2/scope's body: which scopes to reset (all, or those matching the filters), and to when. */
export type ResetScopesBody = {
  all_scopes?: boolean
  scope_id?: string | string[]
  scope_key?: string | string[]
  fetcher?: string | string[]
  collector?: string | string[]
  last_processed_timestamp?: string
  /** The timestamp under its old name, which every CloudKitty version reads. */
  state?: string
  /** Why, recorded in the scope's history (scopekeeper; CloudKitty ignores it). */
  reason?: string
}

/** The fields of PUT /v2/scope's body, in the order `scope state reset` offers them as flags. */
export const RESET_SCOPES_FIELDS = fieldsOf<ResetScopesBody>()([
  'all_scopes', 'scope_id', 'scope_key', 'fetcher', 'collector', 'last_processed_timestamp', 'state', 'reason',
])

/** PATCH /v2/scope's body: the scope to change and the fields that change. */
export type PatchScopeBody = {
  scope_id: string
  scope_key?: string
  fetcher?: string
  collector?: string
  active?: boolean
  /** Why, recorded in the scope's history (scopekeeper; CloudKitty ignores it). */
  reason?: string
}

/** The fields of PATCH /v2/scope's body, in the order `scope patch` offers them as flags. */
export const PATCH_SCOPE_FIELDS = fieldsOf<PatchScopeBody>()(['scope_id', 'scope_key', 'fetcher', 'collector', 'active', 'reason'])

/** POST /v2/scope's body: a scope registered ahead of discovery, with PATCH's fields and where it starts. */
export type CreateScopeBody = PatchScopeBody & {
  last_processed_timestamp?: string
  /** The start under its old name. */
  state?: string
}

/** The fields of POST /v2/scope's body, in the order `scope create` offers them as flags. */
export const CREATE_SCOPE_FIELDS = fieldsOf<CreateScopeBody>()([
  'scope_id', 'scope_key', 'fetcher', 'collector', 'active', 'last_processed_timestamp', 'state', 'reason',
])

/**
 * POST /v2/scope/reconcile's body (scopekeeper): a dry run unless `dry_run`
 * is false; `inactive` only with `register_new`.
 */
export type ReconcileBody = {
  dry_run?: boolean
  deactivate_missing?: boolean
  register_new?: boolean
  inactive?: boolean
  reason?: string
}

/** The fields of POST /v2/scope/reconcile's body, in the order `scope reconcile` offers them as flags. */
export const RECONCILE_FIELDS = fieldsOf<ReconcileBody>()(['dry_run', 'deactivate_missing', 'register_new', 'inactive', 'reason'])

/** A Keystone project that no scope state names, as the reconciliation reports it. */
export type ReconcileProjectReply = {
  project_id: string
  project_name: string
  domain_id: string
}

/** The fields of a new project, in the order the server sends them and the CLI shows them. */
export const RECONCILE_PROJECT_FIELDS = fieldsOf<ReconcileProjectReply>()(['project_id', 'project_name', 'domain_id'])

/** An active scope state of a disabled project, with the project's name and domain. */
export type ReconcileDisabledReply = ScopeStateReply & {
  project_name: string
  domain_id: string | null
}

/** The fields of a disabled project's scope state, in the server's order. */
export const RECONCILE_DISABLED_FIELDS = fieldsOf<ReconcileDisabledReply>()([...SCOPE_STATE_FIELDS, 'project_name', 'domain_id'])

/** One list of the report, and its length. */
export type ReconcileList<T> = { count: number, results: T[] }

/** What POST /v2/scope/reconcile answers (scopekeeper; CloudKitty has no such route). */
export type ReconcileReply = {
  dry_run: boolean
  projects_total: number
  projects_rated: number
  scopes_compared: number
  scopes_skipped: number
  /** Active scope states whose project Keystone no longer has. */
  deleted: ReconcileList<ScopeStateReply>
  /** Active scope states whose project is disabled. */
  disabled: ReconcileList<ReconcileDisabledReply>
  /** Enabled projects CloudKitty's fetcher rates that have no scope state. */
  new: ReconcileList<ReconcileProjectReply>
  deactivated: number
  registered: ReconcileList<ScopeStateReply>
}

/** The fields of the report, in the order the server sends them. */
export const RECONCILE_REPLY_FIELDS = fieldsOf<ReconcileReply>()([
  'dry_run', 'projects_total', 'projects_rated', 'scopes_compared', 'scopes_skipped', 'deleted', 'disabled', 'new', 'deactivated', 'registered',
])

/** GET /v2/scope/resets' query string (a scopekeeper extension): jobs newest first. */
export type ListResetJobsQuery = {
  /** `pending`, `running`, `done`, `failed` or `cancelled`; repeated or comma-joined. */
  status?: string[]
  /** Jobs that matched a scope of these ids. */
  scope_id?: string[]
  limit?: number
  offset?: number
}

/**
 * What PUT /v2/scope?dry_run=true answers (scopekeeper): the reset it would
 * record, and the first page of the scopes it would move. CloudKitty has no
 * dry run: it ignores the parameter and resets (202 `{}`).
 */
export type ResetPreviewReply = {
  dry_run: true
  scopes_total: number
  /** Of `scopes_total`, the inactive ones (moved too, but never rated). */
  scopes_inactive: number
  last_processed_timestamp: string
  /** Rated data from this instant on would be discarded. */
  discard_from: string
  results: ScopeStateReply[]
}

/** The fields of a reset preview, in the order the server sends them and the CLI shows them. */
export const RESET_PREVIEW_FIELDS = fieldsOf<ResetPreviewReply>()([
  'dry_run', 'scopes_total', 'scopes_inactive', 'last_processed_timestamp', 'discard_from', 'results',
])

/**
 * One audit event of a scope (GET /v2/scope/events, scopekeeper). `kind` is
 * `created`, `patched`, `activated`, `deactivated`, `reset_requested`,
 * `reset_applied` or `reset_cancelled`; read as any string, so that a kind a
 * newer server adds is shown rather than refused. `details` depends on the
 * kind (`{"changes": {"collector": {"old": …, "new": …}}}` for `patched`).
 */
export type ScopeEventReply = {
  id: number
  kind: string
  scope_id: string | null
  /** The reset job of a `reset_*` event. */
  job_id: number | null
  created_at: string
  /** `keystone`, or `noauth` when the API ran without authentication. */
  auth: string
  user_id: string | null
  user_name: string | null
  project_id: string | null
  roles: string[]
  request_id: string | null
  reason: string | null
  details: Record<string, unknown>
}

/** The fields of an event, in the order the server sends them. */
export const SCOPE_EVENT_FIELDS = fieldsOf<ScopeEventReply>()([
  'id', 'kind', 'scope_id', 'job_id', 'created_at', 'auth', 'user_id', 'user_name', 'project_id', 'roles', 'request_id', 'reason', 'details',
])

/**
 * GET /v2/scope/events' query string: newest first; `marker` is the
 * `Link: rel="next"` cursor. `scope_id`, `kind` and `user_id` may be
 * repeated or comma-joined; any of them matches.
 */
export type ListScopeEventsQuery = {
  scope_id?: string[]
  kind?: string[]
  user_id?: string[]
  /** ISO 8601; events at or after it. */
  since?: string
  /** ISO 8601; events at or before it. */
  until?: string
  limit?: number
  marker?: number
}

/** The parameters of GET /v2/scope/events, in the order `scope history` offers them as flags. */
export const LIST_SCOPE_EVENTS_PARAMETERS = fieldsOf<ListScopeEventsQuery>()([
  'scope_id', 'kind', 'user_id', 'since', 'until', 'limit', 'marker',
])

/**
 * POST /v2/scope/activation's body (scopekeeper; CloudKitty has no such
 * route): the flag to set on every scope the filters match (any value of a
 * filter matches, filters are ANDed), or on every scope with `all_scopes`.
 */
export type ActivationBody = {
  active: boolean
  all_scopes?: boolean
  scope_id?: string | string[]
  scope_key?: string | string[]
  fetcher?: string | string[]
  collector?: string | string[]
  /** The lag filters, as GET /v2/scope takes them (stuck as a boolean here). */
  rated_before?: string
  rated_after?: string
  stuck?: boolean
  /** true: answer what would switch, and switch nothing. */
  dry_run?: boolean
  /** Why, recorded in each switched scope's history. */
  reason?: string
}

/** The fields of POST /v2/scope/activation's body, in the order `scope activate|deactivate` offers them as flags. */
export const ACTIVATION_FIELDS = fieldsOf<ActivationBody>()([
  'active', 'all_scopes', 'scope_id', 'scope_key', 'fetcher', 'collector', 'rated_before', 'rated_after', 'stuck', 'dry_run', 'reason',
])

/** What POST /v2/scope/activation answers: how many scopes matched and how many switched (or, on a dry run, would). */
export type ActivationReply = {
  dry_run: boolean
  active: boolean
  scopes_total: number
  /** Of `scopes_total`, those that had the other flag: the others are left as they are. */
  scopes_flipped: number
  /** The toggle date written on the switched scopes; null when none switched. */
  scope_activation_toggle_date: string | null
  /** A dry run's first page of the scopes that would switch. */
  results?: ScopeStateReply[]
}

/** The fields of an activation's answer, in the order the server sends them and the CLI shows them. */
export const ACTIVATION_REPLY_FIELDS = fieldsOf<ActivationReply>()([
  'dry_run', 'active', 'scopes_total', 'scopes_flipped', 'scope_activation_toggle_date', 'results',
])

/** The page size GET /v2/scope uses when no limit is sent (CONTRACT.md "GET /v2/scope"). */
export const DEFAULT_PAGE_SIZE = 100
