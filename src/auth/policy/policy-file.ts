import { readFileSync } from 'node:fs'
import { parse as parseYaml } from 'yaml'
import { ConfigError } from '../../config/load-config.ts'
import type { RuleSource } from './rule-parser.ts'

/**
 * Reads an oslo.policy policy file (`[oslo_policy] policy_file`): a YAML or
 * JSON mapping of rule name to rule, where a rule is a string of the rule
 * language or oslo.policy's old list of lists. An empty file holds no rules.
 *
 * Throws a {@link ConfigError} naming the file, and the rule when one is the
 * problem: the start stops rather than running with a policy the operator
 * did not write.
 */
export function readPolicyFile (file: string): Record<string, RuleSource> {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (error) {
    throw new ConfigError(`Cannot read policy file ${file}: ${(error as Error).message}`)
  }
  let parsed: unknown
  try {
    // YAML 1.2 reads JSON too, as oslo.policy's loader does.
    parsed = parseYaml(text)
  } catch (error) {
    throw new ConfigError(`Policy file ${file} is neither valid YAML nor JSON: ${(error as Error).message.split('\n')[0]}`)
  }
  if (parsed === null || parsed === undefined) return {}
  if (typeof parsed !== 'object' || Array.isArray(parsed)) throw new ConfigError(`Policy file ${file} must be a mapping of rule names to rules`)
  const rules: Record<string, RuleSource> = {}
  for (const [name, rule] of Object.entries(parsed as Record<string, unknown>)) {
    const isList = Array.isArray(rule) && rule.every((r) => typeof r === 'string' || (Array.isArray(r) && r.every((c) => typeof c === 'string')))
    if (typeof rule !== 'string' && !isList) {
      throw new ConfigError(`Policy file ${file}: rule "${name}" must be a string (or a list of lists of strings), not ${JSON.stringify(rule)}`)
    }
    rules[name] = rule as RuleSource
  }
  return rules
}
