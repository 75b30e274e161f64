/** A policy rule as data: its name, default check string, and what it guards. */
export interface DefaultRule {
  name: string
  check: string
  description: string
  /** The API operations it guards; empty for a base rule that others refer to. */
  operations: ReadonlyArray<{ method: string, path: string }>
}

/**
 * CloudKitty's base rules (`cloudkitty/common/policies/base.py`), which the
 * scope rules and operators' policy files refer to with `rule:name`.
 * `context_is_admin` also decides the caller's `is_admin` under Keystone.
 */
export const BASE_RULES: readonly DefaultRule[] = [
  { name: 'context_is_admin', check: 'role:admin', description: "Decides what is required for the 'is_admin:True' check to succeed.", operations: [] },
  { name: 'admin_or_owner', check: 'is_admin:True or (role:admin and is_admin_project:True) or project_id:%(project_id)s', description: 'Default rule for most non-Admin APIs.', operations: [] },
  { name: 'default', check: '', description: 'Default rule for most APIs.', operations: [] },
]

/**
 * CloudKitty's scope rules, names verbatim (CONTRACT.md "Authorization"),
 * and scopekeeper's own: `scope:cancel_reset` (CloudKitty cannot cancel a
 * reset), which guards the scopes of the job it cancels as GET does, and
 * `scope:post_activation` (bulk activation), which guards the scopes it
 * names as PUT does.
 */
export const SCOPE_RULES = [
  { name: 'scope:get_state', check: 'role:admin', description: 'Get the state of one or several scopes', operations: [{ method: 'GET', path: '/v2/scope' }, { method: 'GET', path: '/v2/scope/resets' }, { method: 'GET', path: '/v2/scope/resets/{id}' }] },
  // scopekeeper's own: how far behind rating is, per lag bucket, stuck scopes, a cut-off.
  { name: 'scope:get_summary', check: 'role:admin', description: 'Summarize how far behind the scopes are rated (lag buckets, stuck scopes, a cut-off)', operations: [{ method: 'GET', path: '/v2/scope/summary' }] },
  { name: 'scope:reset_state', check: 'role:admin', description: 'Reset the state of one or several scopes', operations: [{ method: 'PUT', path: '/v2/scope' }] },
  { name: 'scope:patch_state', check: 'role:admin', description: 'Update the state of one scope', operations: [{ method: 'PATCH', path: '/v2/scope' }] },
  { name: 'scope:post_state', check: 'role:admin', description: 'Create a scope state ahead of discovery', operations: [{ method: 'POST', path: '/v2/scope' }] },
  // scopekeeper's own: the audit history of changes made through it.
  { name: 'scope:get_events', check: 'role:admin', description: 'List the audit history of changes made to scope states through scopekeeper', operations: [{ method: 'GET', path: '/v2/scope/events' }] },
  { name: 'scope:cancel_reset', check: 'role:admin', description: 'Cancel a reset job: at once while pending, after its current batch while running', operations: [{ method: 'DELETE', path: '/v2/scope/resets/{id}' }] },
  // scopekeeper's own: a bulk switch of `active`, checked as PUT's reset is (each named scope; every scope when it names none).
  { name: 'scope:post_activation', check: 'role:admin', description: 'Activate or deactivate every scope matching a filter, in one audited step', operations: [{ method: 'POST', path: '/v2/scope/activation' }] },
] as const satisfies readonly DefaultRule[]

/**
 * scopekeeper's own rules, for what CloudKitty does not serve. They guard
 * no scope: each is checked once, against a target naming none.
 */
export const SERVICE_RULES = [
  {
    name: 'scopekeeper:get_metrics',
    check: 'role:admin',
    description: 'Read the Prometheus metrics on the API port (every project\'s counts). The [metrics] port, when set, serves them without a token.',
    operations: [{ method: 'GET', path: '/metrics' }],
  },
  // A service rule although its name is a scope rule's: it reads every
  // Keystone project and every scope state, and writes across projects, so
  // no one project can be its target; an owner rule admits only admins.
  {
    name: 'scope:reconcile',
    check: 'role:admin',
    description: 'Compare every scope state with Keystone\'s projects (deleted, disabled, not yet registered) and, on request, deactivate or register scopes',
    operations: [{ method: 'POST', path: '/v2/scope/reconcile' }],
  },
] as const satisfies readonly DefaultRule[]

/** Every default rule, base rules first: what `scopekeeper policy sample` prints. */
export const DEFAULT_RULES: readonly DefaultRule[] = [...BASE_RULES, ...SCOPE_RULES, ...SERVICE_RULES]

/** A rule guarding scopes: checked against each scope a request names. */
export type ScopeRuleName = (typeof SCOPE_RULES)[number]['name']

/** A rule of {@link SERVICE_RULES}: guards no scope. */
export type ServiceRuleName = (typeof SERVICE_RULES)[number]['name']

/**
 * The rules a route can declare (`config: { rule }`). Derived from the
 * lists above, so a route cannot name a rule that has no default.
 */
export type RuleName = ScopeRuleName | ServiceRuleName

/** Whether `name` is one of {@link SERVICE_RULES}. */
export function isServiceRule (name: string): name is ServiceRuleName {
  return SERVICE_RULES.some((rule) => rule.name === name)
}
