import type { MatchTemplate, Rule } from './rule-parser.ts'

/** The target of a check: what the request is about (`%(key)s` reads it). */
export type PolicyTargetValues = Readonly<Record<string, unknown>>

/**
 * The caller as oslo.policy sees it (oslo.context's `to_policy_values()`):
 * `user_id`, `project_id`, `roles`, `is_admin`, `is_admin_project`, … A
 * `key:value` check reads these, with dotted paths into nested objects.
 */
export type PolicyCredentialValues = Readonly<Record<string, unknown>>

/**
 * Python's `str()` of a value, which oslo.policy compares as text, or
 * undefined for null, undefined and anything we would not print as Python
 * does: those never match (oslo.policy would compare the text 'None', so a
 * null project in the target would match a caller without a project).
 */
export function pythonText (value: unknown): string | undefined {
  if (typeof value === 'string') return value
  if (typeof value === 'boolean') return value ? 'True' : 'False'
  if (typeof value === 'bigint') return String(value)
  if (typeof value === 'number' && Number.isSafeInteger(value)) return String(value)
  return undefined
}

/** `match % target`, or undefined when a key is missing (the check then fails, as in oslo.policy). */
function substitute (match: MatchTemplate, target: PolicyTargetValues): string | undefined {
  let out = ''
  for (const part of match) {
    if (typeof part === 'string') { out += part; continue }
    if (!Object.hasOwn(target, part.key)) return undefined
    const text = pythonText(target[part.key])
    if (text === undefined) return undefined
    out += text
  }
  return out
}

/** oslo.policy's `_find_in_dict`: follows `path`; a list on the way matches when any element does. */
function findInCredentials (value: unknown, path: readonly string[], expected: string): boolean {
  if (path.length === 0) return pythonText(value) === expected
  if (typeof value !== 'object' || value === null || !Object.hasOwn(value, path[0])) return false
  const next = (value as Record<string, unknown>)[path[0]]
  if (Array.isArray(next)) return next.some((v) => findInCredentials(v, path.slice(1), expected))
  return findInCredentials(next, path.slice(1), expected)
}

function evaluate (rule: Rule, target: PolicyTargetValues, credentials: PolicyCredentialValues, rules: ReadonlyMap<string, Rule>, visiting: string[]): boolean {
  switch (rule.kind) {
    case 'true': return true
    case 'false': return false
    case 'not': return !evaluate(rule.rule, target, credentials, rules, visiting)
    case 'and': return rule.rules.every((r) => evaluate(r, target, credentials, rules, visiting))
    case 'or': return rule.rules.some((r) => evaluate(r, target, credentials, rules, visiting))
    case 'rule': {
      const named = rules.get(rule.name)
      // An unknown rule, or one that refers back to itself, denies (fail closed).
      if (named === undefined || visiting.includes(rule.name)) return false
      return evaluate(named, target, credentials, rules, [...visiting, rule.name])
    }
    case 'role': {
      const role = substitute(rule.match, target)
      const roles = credentials.roles
      if (role === undefined || !Array.isArray(roles)) return false
      return roles.some((r) => typeof r === 'string' && r.toLowerCase() === role.toLowerCase())
    }
    case 'generic': {
      const expected = substitute(rule.match, target)
      if (expected === undefined) return false
      if (rule.literal !== undefined) return rule.literal === expected
      return findInCredentials(credentials, rule.path, expected)
    }
  }
}

/**
 * Evaluates `rule` for a caller and a target, as oslo.policy does.
 *
 * Pure: no I/O, no state. `rules` resolves `rule:name` references; an
 * unknown name, or a reference cycle, denies. `role:X` compares roles
 * case-insensitively; `key:%(target_key)s` compares the credential at the
 * dotted path `key` with the target's value as text (`True`, `False` for
 * booleans); a literal left side (`'admin':%(role)s`) compares the literal.
 * A missing target key, or a null on either side, denies.
 */
export function check (rule: Rule, target: PolicyTargetValues, credentials: PolicyCredentialValues, rules: ReadonlyMap<string, Rule> = new Map()): boolean {
  return evaluate(rule, target, credentials, rules, [])
}
