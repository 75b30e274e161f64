import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { parseRule, referencedRules, RuleSyntaxError, type MatchTemplate, type Rule } from '../../../../src/auth/policy/rule-parser.ts'

function template (match: MatchTemplate): string {
  return match.map((p) => typeof p === 'string' ? p.replaceAll('%', '%%') : `%(${p.key})s`).join('')
}

/** The tree as oslo.policy's `str()` prints it: and/or in parentheses. */
function show (rule: Rule): string {
  switch (rule.kind) {
    case 'true': return '@'
    case 'false': return '!'
    case 'not': return `not ${show(rule.rule)}`
    case 'and': return `(${rule.rules.map(show).join(' and ')})`
    case 'or': return `(${rule.rules.map(show).join(' or ')})`
    case 'rule': return `rule:${rule.name}`
    case 'role': return `role:${template(rule.match)}`
    case 'generic': return `${rule.literal === undefined ? rule.path.join('.') : `<${rule.literal}>`}:${template(rule.match)}`
  }
}

describe('parseRule', () => {
  const groups: Array<[string, string]> = [
    // the special checks and the empty rule
    ['', '@'],
    ['@', '@'],
    ['!', '!'],
    // single checks of each kind
    ['role:admin', 'role:admin'],
    ['rule:admin_or_owner', 'rule:admin_or_owner'],
    ['project_id:%(project_id)s', 'project_id:%(project_id)s'],
    ['is_admin:True', 'is_admin:True'],
    ['user.domain.id:%(domain_id)s', 'user.domain.id:%(domain_id)s'],
    ["'admin':%(role)s", '<admin>:%(role)s'],
    ['"member":%(role)s', '<member>:%(role)s'],
    ['True:%(enabled)s', '<True>:%(enabled)s'],
    ['False:%(enabled)s', '<False>:%(enabled)s'],
    ['None:%(x)s', '<None>:%(x)s'],
    ['42:%(count)s', '<42>:%(count)s'],
    ['-7:%(count)s', '<-7>:%(count)s'],
    ["'it\\'s':%(x)s", "<it's>:%(x)s"],
    ['role:compute:admin', 'role:compute:admin'],
    ['role:%(role)s', 'role:%(role)s'],
    ['role:', 'role:'],
    ['tenant:%(tenant_id)s-%(user_id)s', 'tenant:%(tenant_id)s-%(user_id)s'],
    ['name:100%%', 'name:100%%'],
    // operators, with oslo.policy's grouping
    ['role:a and role:b', '(role:a and role:b)'],
    ['role:a or role:b', '(role:a or role:b)'],
    ['not role:a', 'not role:a'],
    ['role:a and role:b and role:c', '(role:a and role:b and role:c)'],
    ['role:a or role:b or role:c', '(role:a or role:b or role:c)'],
    ['role:a or role:b and role:c', '(role:a or (role:b and role:c))'],
    ['role:a and role:b or role:c', '((role:a and role:b) or role:c)'],
    ['role:a or role:b and role:c and role:d', '(role:a or (role:b and role:c and role:d))'],
    ['role:a or role:b and role:c or role:d', '(role:a or (role:b and role:c) or role:d)'],
    ['not role:a and role:b', '(not role:a and role:b)'],
    ['not role:a or role:b', '(not role:a or role:b)'],
    ['role:a and not role:b', '(role:a and not role:b)'],
    ['not not role:a', 'not not role:a'],
    ['not (role:a or role:b)', 'not (role:a or role:b)'],
    // parentheses, glued to checks or apart, nested
    ['(role:a)', 'role:a'],
    ['( role:a )', 'role:a'],
    ['((role:a))', 'role:a'],
    ['(role:a or role:b) and role:c', '((role:a or role:b) and role:c)'],
    ['role:a and (role:b or role:c)', '(role:a and (role:b or role:c))'],
    ['((role:a or role:b) and (role:c or not role:d))', '((role:a or role:b) and (role:c or not role:d))'],
    ['(project_id:%(project_id)s)', 'project_id:%(project_id)s'],
    // case-insensitive operators, any whitespace
    ['role:a AND role:b OR Not role:c', '((role:a and role:b) or not role:c)'],
    ['  role:a\tand\n role:b  ', '(role:a and role:b)'],
    // the defaults
    ['is_admin:True or (role:admin and is_admin_project:True) or project_id:%(project_id)s',
      '(is_admin:True or (role:admin and is_admin_project:True) or project_id:%(project_id)s)'],
    ['@ and !', '(@ and !)'],
  ]
  for (const [text, expected] of groups) {
    it(`parses ${JSON.stringify(text)} as ${expected}`, () => {
      assert.equal(show(parseRule(text)), expected)
    })
  }

  it('reads %(key)s substitutions into a template', () => {
    const rule = parseRule('tenant:a%(project_id)sb%%c')
    assert.deepEqual(rule, { kind: 'generic', path: ['tenant'], match: ['a', { key: 'project_id' }, 'b%c'] })
    assert.deepEqual(parseRule('x:%(target.user.id)s'), { kind: 'generic', path: ['x'], match: [{ key: 'target.user.id' }] })
    assert.deepEqual(parseRule('role:admin'), { kind: 'role', match: ['admin'] })
  })

  const lists: Array<[unknown, string]> = [
    [[], '@'],
    [[[]], '!'],
    [['role:a'], 'role:a'],
    [[['role:a']], 'role:a'],
    [[['role:a', 'role:b']], '(role:a and role:b)'],
    [[['role:a'], ['role:b', 'project_id:%(project_id)s']], '(role:a or (role:b and project_id:%(project_id)s))'],
    [[[], ['role:b']], 'role:b'],
  ]
  for (const [list, expected] of lists) {
    it(`parses the list rule ${JSON.stringify(list)} as ${expected}`, () => {
      assert.equal(show(parseRule(list as string[])), expected)
    })
  }

  const broken: Array<[string, RegExp]> = [
    ['admin', /'admin' is not a check/],
    ['role:a and', /cannot parse/],
    ['and role:a', /cannot parse/],
    ['role:a or or role:b', /cannot parse/],
    ['role:a role:b', /cannot parse/],
    ['(role:a', /cannot parse/],
    ['role:a)', /cannot parse/],
    ['()', /cannot parse/],
    ['not', /cannot parse/],
    ['   ', /blank/],
    ["'admin'", /quoted string cannot stand alone/],
    [':admin', /nothing before ':'/],
    ['rule:', /names no rule/],
    ['http://policy.example/check', /remote http: checks are not supported/],
    ['https:x', /remote https: checks/],
    ['x:%(y)d', /only %\(name\)s and %% are allowed/],
    ['x:50%', /only %\(name\)s and %% are allowed/],
    ["'unterminated:%(x)s", /unterminated string literal/],
    ['1.5:%(x)s', /unsupported literal/],
    ['007:%(x)s', /unsupported literal/],
    ["'a\\q':%(x)s", /unsupported escape/],
  ]
  for (const [text, message] of broken) {
    it(`refuses ${JSON.stringify(text)}, saying why`, () => {
      assert.throws(() => parseRule(text), (e: Error) => e instanceof RuleSyntaxError && message.test(e.message))
    })
  }

  it('lists the rules a rule refers to', () => {
    assert.deepEqual(referencedRules(parseRule('rule:a or (role:x and not rule:b) or rule:a')), ['a', 'b', 'a'])
    assert.deepEqual(referencedRules(parseRule('role:x')), [])
  })

  it('either parses or throws a RuleSyntaxError, for any text', () => {
    const piece = fc.oneof(
      fc.constantFrom('and', 'or', 'not', '(', ')', '@', '!', 'role:admin', 'rule:default', 'project_id:%(project_id)s', "'a':%(b)s", ':', '%', '"'),
      fc.string({ maxLength: 8 }),
    )
    fc.assert(fc.property(fc.array(piece, { maxLength: 12 }), fc.constantFrom(' ', '', '\t'), (pieces, sep) => {
      try {
        parseRule(pieces.join(sep))
      } catch (error) {
        assert.ok(error instanceof RuleSyntaxError, String(error))
      }
    }), { numRuns: 2000 })
  })
})
