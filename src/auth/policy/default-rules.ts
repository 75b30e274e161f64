/** A policy rule as data: its name, default check string, and what it guards. */
export interface DefaultRule {
  name: string
  check: string
  description: string
  operations: Array<{ method: string, path: string }>
}

/** CloudKitty's scope rules, names verbatim (CONTRACT.md "Authorization"). */
export const DEFAULT_RULES: DefaultRule[] = [
  { name: 'scope:get_state', check: 'role:admin', description: 'Get the state of one or several scopes', operations: [{ method: 'GET', path: '/v2/scope' }] },
  { name: 'scope:reset_state', check: 'role:admin', description: 'Reset the state of one or several scopes', operations: [{ method: 'PUT', path: '/v2/scope' }] },
  { name: 'scope:patch_state', check: 'role:admin', description: 'Update the state of one scope', operations: [{ method: 'PATCH', path: '/v2/scope' }] },
  { name: 'scope:post_state', check: 'role:admin', description: 'Create a scope state ahead of discovery', operations: [{ method: 'POST', path: '/v2/scope' }] },
]

export type RuleName = 'scope:get_state' | 'scope:reset_state' | 'scope:patch_state' | 'scope:post_state'
