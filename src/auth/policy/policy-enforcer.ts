import { ScopeKeeperError } from '../../domain/errors.ts'
import type { Credentials } from '../credentials.ts'
import { DEFAULT_RULES, type RuleName } from './default-rules.ts'

/** The target every rule is checked against: the same keys for every verb. */
export interface PolicyTarget {
  project_id: string | null
}

/**
 * Checks rules against credentials. Knows the `role:X` checks of the
 * default rules; a policy file and oslo.policy's full language come with
 * Keystone authentication.
 */
export class PolicyEnforcer {
  private readonly rules = new Map(DEFAULT_RULES.map((r) => [r.name, r.check]))

  /** Throws FORBIDDEN unless `credentials` pass `rule`. */
  authorize (rule: RuleName, _target: PolicyTarget, credentials: Credentials): void {
    const check = this.rules.get(rule)
    const role = check?.startsWith('role:') === true ? check.slice('role:'.length) : undefined
    if (role === undefined || !credentials.roles.includes(role)) {
      throw new ScopeKeeperError('FORBIDDEN', 'You are not authorized to perform this action')
    }
  }
}

/**
 * The one policy target, for every verb: the scope id(s) the request names
 * (joined with commas when several), else the caller's own project.
 */
export function buildTarget (scopeIds: unknown, credentials: Credentials): PolicyTarget {
  const ids = Array.isArray(scopeIds) ? scopeIds.map(String).join(',') : typeof scopeIds === 'string' ? scopeIds : undefined
  return { project_id: ids ?? credentials.projectId }
}
