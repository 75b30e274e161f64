import { check, pythonText, type PolicyCredentialValues } from './rule-check.ts'
import type { MatchTemplate, Rule } from './rule-parser.ts'

/**
 * The target keys that carry the scope a request is about. CloudKitty 17
 * checks GET and PUT against `{'project_id': scope_id}` and PATCH and POST
 * against `{'tenant_id': scope_id}` (`cloudkitty/api/v2/scope/state.py`);
 * every verb here gets both, so a rule written for either works for all.
 */
export const SCOPE_TARGET_KEYS = ['project_id', 'tenant_id'] as const

/** The target of a check about scope `scopeId`: every key of {@link SCOPE_TARGET_KEYS} set to it. */
export function scopeTarget (scopeId: string | null): Record<(typeof SCOPE_TARGET_KEYS)[number], string | null> {
  return { project_id: scopeId, tenant_id: scopeId }
}

/**
 * Which scopes a rule lets a caller see: all of them, or only those listed
 * (possibly none).
 */
export type ScopeAccess = { all: true } | { all: false, scopeIds: string[] }

/** The scope ids an answer is limited to, or undefined when it may show every scope. */
export function visibleScopeIds (access: ScopeAccess): readonly string[] | undefined {
  return access.all ? undefined : access.scopeIds
}

const isScopeKey = (key: string) => (SCOPE_TARGET_KEYS as readonly string[]).includes(key)

/** Whether a template reads the scope, and whether it reads only the scope (another target key makes the check fail whatever the scope). */
function readsScope (match: MatchTemplate): { scope: boolean, other: boolean } {
  let scope = false
  let other = false
  for (const part of match) {
    if (typeof part === 'string') continue
    if (isScopeKey(part.key)) scope = true
    else other = true
  }
  return { scope, other }
}

/**
 * The scope ids `x` for which `match % {scope: x}` is `value`: at most one,
 * since every occurrence of the scope is the same `x` (its length follows
 * from the value's and the literal parts' lengths).
 */
function solve (match: MatchTemplate, value: string): string | undefined {
  let literalLength = 0
  let slots = 0
  let before = 0
  for (const part of match) {
    if (typeof part === 'string') {
      literalLength += part.length
      if (slots === 0) before += part.length
    } else {
      slots++
    }
  }
  const length = (value.length - literalLength) / slots
  if (!Number.isInteger(length) || length < 0) return undefined
  const x = value.slice(before, before + length)
  const rendered = match.map((part) => typeof part === 'string' ? part : x).join('')
  return rendered === value ? x : undefined
}

/** Every value a check can compare with: the text of each credential leaf, and the rule's literals. */
function comparableValues (credentials: unknown, out: Set<string>): Set<string> {
  if (Array.isArray(credentials)) {
    for (const v of credentials) comparableValues(v, out)
  } else if (typeof credentials === 'object' && credentials !== null) {
    for (const v of Object.values(credentials)) comparableValues(v, out)
  } else {
    const text = pythonText(credentials)
    if (text !== undefined) out.add(text)
  }
  return out
}

/** Each check of `rule` and of the rules it refers to, once. */
function * leaves (rule: Rule, rules: ReadonlyMap<string, Rule>, seen = new Set<string>()): Generator<Rule> {
  switch (rule.kind) {
    case 'not': yield * leaves(rule.rule, rules, seen); return
    case 'and': case 'or': for (const r of rule.rules) yield * leaves(r, rules, seen); return
    case 'rule': {
      const named = rules.get(rule.name)
      if (named === undefined || seen.has(rule.name)) return
      seen.add(rule.name)
      yield * leaves(named, rules, seen)
      return
    }
    default: yield rule
  }
}

/**
 * `rule` for a scope that no check of the rule names, in Kleene's
 * three-valued logic: undefined where the answer could depend on which such
 * scope it is. Only a `role:` check that reads the scope can: roles compare
 * without case, so some scopes nobody listed may still match it.
 */
function forAnyOtherScope (rule: Rule, target: Record<string, unknown>, credentials: PolicyCredentialValues, rules: ReadonlyMap<string, Rule>, visiting: string[]): boolean | undefined {
  switch (rule.kind) {
    case 'not': {
      const v = forAnyOtherScope(rule.rule, target, credentials, rules, visiting)
      return v === undefined ? undefined : !v
    }
    case 'and':
    case 'or': {
      // Three-valued: one decisive answer (false for and, true for or) settles it.
      const decisive = rule.kind === 'or'
      let unknown = false
      for (const r of rule.rules) {
        const v = forAnyOtherScope(r, target, credentials, rules, visiting)
        if (v === decisive) return decisive
        if (v === undefined) unknown = true
      }
      return unknown ? undefined : !decisive
    }
    case 'rule': {
      const named = rules.get(rule.name)
      if (named === undefined || visiting.includes(rule.name)) return false
      return forAnyOtherScope(named, target, credentials, rules, [...visiting, rule.name])
    }
    case 'role': {
      const reads = readsScope(rule.match)
      if (reads.scope && !reads.other) return undefined
      return check(rule, target, credentials, rules)
    }
    default: return check(rule, target, credentials, rules)
  }
}

/**
 * Which scopes `rule` lets a caller see, derived from the rule rather than
 * assumed from its shape: `role:admin` gives all, an owner rule
 * (`project_id:%(project_id)s`) only the caller's project, a rule that
 * compares the scope with a literal only that literal.
 *
 * How: a check compares the scope (through a `%(project_id)s` or
 * `%(tenant_id)s` template) with a credential or a literal, so it can hold
 * only for the scopes that make the template equal one of those values; these
 * candidates are computed exactly. Every other scope behaves like a
 * sentinel that no value equals, so the rule checked for the sentinel
 * answers for all of them at once. Then:
 * - it passes for the sentinel and for every candidate: all scopes;
 * - otherwise: the candidates it passes for. A rule that passes for every
 *   scope but a few ("everyone but the owner") is thus narrowed to the
 *   candidates it allows: a listing under it shows less than the rule would
 *   allow, never more. So is a `role:` check that reads the scope, whose
 *   case-insensitive match the candidates cannot cover.
 *
 * Pure, and cheap: the candidates are the rule's templates solved against
 * the caller's few credential values.
 */
export function scopeAccess (rule: Rule, credentials: PolicyCredentialValues, rules: ReadonlyMap<string, Rule>): ScopeAccess {
  const values = comparableValues(credentials, new Set())
  const templates: MatchTemplate[] = []
  for (const leaf of leaves(rule, rules)) {
    if (leaf.kind !== 'role' && leaf.kind !== 'generic') continue
    if (leaf.kind === 'generic' && leaf.literal !== undefined) values.add(leaf.literal)
    const reads = readsScope(leaf.match)
    // A template that reads another target key fails whatever the scope.
    if (reads.scope && !reads.other) templates.push(leaf.match)
  }
  const candidates = new Set<string>()
  for (const match of templates) {
    for (const value of values) {
      const x = solve(match, value)
      if (x !== undefined) candidates.add(x)
    }
  }
  // Longer than every value: no template it fills can equal one.
  const sentinel = '\u0000'.repeat(Math.max(0, ...[...values].map((v) => v.length)) + 1)
  const allowed = [...candidates].filter((id) => check(rule, scopeTarget(id), credentials, rules))
  const others = forAnyOtherScope(rule, scopeTarget(sentinel), credentials, rules, [])
  if (others === true && allowed.length === candidates.size) return { all: true }
  return { all: false, scopeIds: allowed }
}
