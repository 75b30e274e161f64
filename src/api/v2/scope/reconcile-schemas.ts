import { Type, type Static } from 'typebox'
import { Nullable, reasonField, rule, ScopeStateReply } from './scope-schemas.ts'

const flag = (description: string) => Type.Optional(Type.Boolean({ description, ...rule('a boolean') }))

/**
 * POST /v2/scope/reconcile body (an extension): what to do besides the
 * report. Without `dry_run: false` it only reports, whatever else it asks.
 */
export const ReconcileBody = Type.Object({
  dry_run: flag('true (the default): only report, write nothing; false: also do what deactivate_missing and register_new ask'),
  deactivate_missing: flag('deactivate the active scope states of deleted and disabled projects'),
  register_new: flag('create a scope state, with the configured scope_key, fetcher and collector, for each enabled project the fetcher rates that has none'),
  inactive: flag('with register_new: create them inactive'),
  ...reasonField,
}, { additionalProperties: false })
export type ReconcileBody = Static<typeof ReconcileBody>

/** A Keystone project as the report names it. */
export const ProjectReply = Type.Object({
  project_id: Type.String(),
  project_name: Type.String(),
  domain_id: Type.String(),
})

/** A scope state of a disabled project: the state, and its project's name and domain. */
export const DisabledScopeReply = Type.Object({
  ...ScopeStateReply.properties,
  project_name: Type.String(),
  domain_id: Nullable(Type.String()),
})

const listOf = <T extends ReturnType<typeof Type.Object>>(item: T, description: string) => Type.Object({
  count: Type.Integer(),
  results: Type.Array(item),
}, { description })

/** POST /v2/scope/reconcile reply: the three lists, with their counts, and what was done. */
export const ReconcileReply = Type.Object({
  dry_run: Type.Boolean(),
  projects_total: Type.Integer({ description: 'projects Keystone lists, in every domain' }),
  projects_rated: Type.Integer({ description: 'of those, the projects CloudKitty\'s keystone fetcher rates (its user has the rating role there, or [fetcher_keystone] ignore_rating_role)' }),
  scopes_compared: Type.Integer({ description: 'scope states whose scope_key is project_id, compared with the projects' }),
  scopes_skipped: Type.Integer({ description: 'scope states with another scope_key (or none), not compared' }),
  deleted: listOf(ScopeStateReply, 'active scope states whose scope_id is no Keystone project'),
  disabled: listOf(DisabledScopeReply, 'active scope states whose project is disabled'),
  new: listOf(ProjectReply, 'enabled projects the fetcher rates that no scope state names'),
  deactivated: Type.Integer({ description: 'scope states deactivated (0 on a dry run)' }),
  registered: listOf(ScopeStateReply, 'scope states created for new projects (none on a dry run)'),
}, { description: 'what reconciliation found, and what it did' })
export type ReconcileReply = Static<typeof ReconcileReply>
