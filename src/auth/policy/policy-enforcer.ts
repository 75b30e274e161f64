import { ConfigError } from '../../config/load-config.ts'
import { ScopeKeeperError } from '../../domain/errors.ts'
import type { Credentials } from '../credentials.ts'
import { DEFAULT_RULES, isServiceRule, type RuleName } from './default-rules.ts'
import { readPolicyFile } from './policy-file.ts'
import { check, type PolicyCredentialValues } from './rule-check.ts'
import { parseRule, referencedRules, RuleSyntaxError, type Rule, type RuleSource } from './rule-parser.ts'
import { scopeAccess, scopeTarget, type ScopeAccess } from './scope-access.ts'

/**
 * The target every rule is checked against, the same keys for every verb:
 * the scope id as `project_id` and as `tenant_id` (see `SCOPE_TARGET_KEYS`
 * in scope-access.ts).
 */
export interface PolicyTarget {
  project_id: string | null
  tenant_id?: string | null
}

/**
 * The scopes a request names, as the policy sees them: `scopeIds` is
 * undefined when it names none (a listing without `scope_id`, a PUT with
 * `all_scopes`, a reset job by id); `reads` is true for GET, and for the
 * DELETE of a reset job: both are narrowed to the scopes the caller may
 * see rather than refused when they name none.
 */
export interface RequestedScopes {
  scopeIds: string[] | undefined
  reads: boolean
}

/**
 * The caller as oslo.policy rules see it: oslo.context's
 * `to_policy_values()` keys, plus `is_admin`.
 */
export function policyValues (credentials: Credentials): PolicyCredentialValues {
  const service = credentials.service ?? null
  return {
    user_id: credentials.userId,
    user_domain_id: credentials.userDomainId ?? null,
    project_id: credentials.projectId,
    project_domain_id: credentials.projectDomainId ?? null,
    domain_id: credentials.domainId ?? null,
    system_scope: credentials.systemScope ?? null,
    roles: credentials.roles,
    is_admin: credentials.isAdmin,
    is_admin_project: credentials.isAdminProject ?? true,
    service_user_id: service?.userId ?? null,
    service_user_domain_id: service?.userDomainId ?? null,
    service_project_id: service?.projectId ?? null,
    service_project_domain_id: service?.projectDomainId ?? null,
    service_roles: service?.roles ?? [],
  }
}

/** A chain of `rule:` references that comes back to where it started, or undefined. */
function findCycle (rules: ReadonlyMap<string, Rule>): string[] | undefined {
  const done = new Set<string>()
  const visit = (name: string, path: string[]): string[] | undefined => {
    if (path.includes(name)) return [...path.slice(path.indexOf(name)), name]
    if (done.has(name)) return undefined
    const rule = rules.get(name)
    if (rule !== undefined) {
      for (const next of referencedRules(rule)) {
        const cycle = visit(next, [...path, name])
        if (cycle !== undefined) return cycle
      }
    }
    done.add(name)
    return undefined
  }
  for (const name of rules.keys()) {
    const cycle = visit(name, [])
    if (cycle !== undefined) return cycle
  }
  return undefined
}

/**
 * Decides whether a caller may do what a route's rule guards.
 *
 * Holds the default rules ({@link DEFAULT_RULES}) overridden by name by a
 * policy file's, all parsed once at construction: a rule that does not parse,
 * a `rule:` reference to an unknown rule, or a cycle of references throws a
 * {@link ConfigError} naming the rule, so a bad policy stops the start.
 */
export class PolicyEnforcer {
  private readonly rules: ReadonlyMap<string, Rule>

  /** `overrides` come from the policy file named `source` (for messages). */
  constructor (overrides: Readonly<Record<string, RuleSource>> = {}, source = 'the default rules') {
    const texts = new Map<string, RuleSource>(DEFAULT_RULES.map((r) => [r.name, r.check]))
    for (const [name, rule] of Object.entries(overrides)) texts.set(name, rule)
    const rules = new Map<string, Rule>()
    for (const [name, text] of texts) {
      try {
        rules.set(name, parseRule(text))
      } catch (error) {
        if (!(error instanceof RuleSyntaxError)) throw error
        throw new ConfigError(`Invalid policy rule "${name}" in ${source}: ${error.message} (rule: ${JSON.stringify(text)})`)
      }
    }
    for (const [name, rule] of rules) {
      const unknown = referencedRules(rule).find((ref) => !rules.has(ref))
      if (unknown !== undefined) throw new ConfigError(`Policy rule "${name}" in ${source} refers to unknown rule "${unknown}"`)
    }
    const cycle = findCycle(rules)
    if (cycle !== undefined) throw new ConfigError(`Policy rules in ${source} refer to each other in a cycle: ${cycle.join(' -> ')}`)
    this.rules = rules
  }

  /** Throws FORBIDDEN unless `credentials` pass `rule` for `target`. */
  authorize (rule: RuleName, target: PolicyTarget, credentials: Credentials): void {
    if (!this.allows(rule, target, credentials)) throw forbidden()
  }

  /**
   * Authorizes a request on the scopes it names, and says which scopes its
   * answer may show. Throws FORBIDDEN:
   * - when it names scopes and `rule` does not pass for each of them (its
   *   own target each, never their joined list);
   * - when it names none and writes (PUT `all_scopes`), unless `rule`
   *   passes for every scope: a reset of all scopes by someone allowed
   *   only their own would reset everyone's;
   * - when it names none, reads, and `rule` passes for no scope at all (the
   *   default `role:admin` for a member), as CloudKitty answers.
   *
   * Otherwise returns the scopes the answer may show: all, or those
   * {@link scopeAccess} derives from the rule plus the named ones, which
   * passed. CloudKitty instead checks a request that names no scope against
   * the caller's own project and then lists every project's scopes; see
   * the README's "Policy".
   *
   * A rule of SERVICE_RULES (default-rules.ts; `scopekeeper:get_metrics`) guards no
   * scope: it is checked once against a target naming none (`project_id`
   * None), whatever the request names, so an owner rule such as
   * `rule:admin_or_owner` lets only admins through; the answer shows no scope.
   */
  authorizeScopes (rule: RuleName, requested: RequestedScopes, credentials: Credentials): ScopeAccess {
    if (isServiceRule(rule)) {
      this.authorize(rule, scopeTarget(null), credentials)
      return { all: false, scopeIds: [] }
    }
    const compiled = this.rules.get(rule)
    if (compiled === undefined) throw forbidden()
    const access = scopeAccess(compiled, policyValues(credentials), this.rules)
    const named = requested.scopeIds
    if (named !== undefined && named.length > 0) {
      if (access.all) return access
      if (!named.every((id) => this.allows(rule, scopeTarget(id), credentials))) throw forbidden()
      return { all: false, scopeIds: [...new Set([...access.scopeIds, ...named])] }
    }
    if (!requested.reads && !access.all) throw forbidden()
    if (!access.all && access.scopeIds.length === 0) throw forbidden()
    return access
  }

  /** Whether `credentials` pass the rule `name` for `target`; an unknown name denies. */
  allows (name: string, target: PolicyTarget, credentials: Credentials): boolean {
    const rule = this.rules.get(name)
    if (rule === undefined) return false
    return check(rule, { ...target }, policyValues(credentials), this.rules)
  }

  /**
   * The caller's `is_admin`, as OpenStack services derive it: whether they
   * pass `context_is_admin`, checked against their own credentials.
   */
  isAdmin (credentials: Omit<Credentials, 'isAdmin'>): boolean {
    const values = policyValues({ ...credentials, isAdmin: false })
    const rule = this.rules.get('context_is_admin')
    return rule !== undefined && check(rule, values, values, this.rules)
  }
}

/**
 * The enforcer for `[oslo_policy] policy_file`: the defaults alone when
 * `file` is empty, else overridden by the file's rules. Read once, at start;
 * throws a {@link ConfigError} on anything wrong with the file.
 */
export function loadPolicy (file: string): PolicyEnforcer {
  if (file === '') return new PolicyEnforcer()
  return new PolicyEnforcer(readPolicyFile(file), `policy file ${file}`)
}

function forbidden (): ScopeKeeperError {
  return new ScopeKeeperError('FORBIDDEN', 'You are not authorized to perform this action')
}

/**
 * The scopes a request names, from its validated `scope_id`: GET and PUT
 * take filters, a list of strings each possibly comma-separated (as
 * `scope-wire.ts` splits them), while PATCH and POST name exactly one scope,
 * whose id is taken whole (`a,b` is one id there), unless the route says
 * its `scope_id` is a filter (`scopeFilter`: POST /v2/scope/activation).
 */
export function requestedScopes (method: string, scopeId: unknown, scopeFilter = false): RequestedScopes {
  // DELETE (a reset job by id) acts on one job, which the service finds
  // among those the caller may see, as GET does: narrowed, never refused
  // outright.
  const reads = method === 'GET' || method === 'HEAD' || method === 'DELETE'
  const isFilter = reads || method === 'PUT' || scopeFilter
  let scopeIds: string[] | undefined
  if (typeof scopeId === 'string') scopeIds = isFilter ? scopeId.split(',') : [scopeId]
  else if (Array.isArray(scopeId)) scopeIds = scopeId.map(String).flatMap((v) => isFilter ? v.split(',') : [v])
  scopeIds = scopeIds?.filter((v) => v !== '')
  return { scopeIds, reads }
}
