import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { check } from '../../../../src/auth/policy/rule-check.ts'
import { parseRule, type Rule } from '../../../../src/auth/policy/rule-parser.ts'

const ADMIN = { user_id: 'u-admin', project_id: 'p-admin', roles: ['admin', 'member'], is_admin: true, is_admin_project: true }
const MEMBER = { user_id: 'u-alice', project_id: 'p-demo', roles: ['Member', 'reader'], is_admin: false, is_admin_project: true }
const NOBODY = { user_id: 'u-bob', project_id: null, roles: [], is_admin: false, is_admin_project: false }

type Creds = Record<string, unknown>
type Case = [rule: string, target: Record<string, unknown>, creds: Creds, expected: boolean]

function table (title: string, cases: Case[], rules = new Map<string, Rule>()): void {
  describe(title, () => {
    for (const [rule, target, creds, expected] of cases) {
      it(`${expected ? 'allows' : 'denies'} ${JSON.stringify(rule)} for ${JSON.stringify(creds.user_id ?? creds)} on ${JSON.stringify(target)}`, () => {
        assert.equal(check(parseRule(rule), target, creds, rules), expected)
      })
    }
  })
}

table('check: @, ! and the empty rule', [
  ['@', {}, NOBODY, true],
  ['', {}, NOBODY, true],
  ['!', {}, ADMIN, false],
])

table('check: role:X', [
  ['role:admin', {}, ADMIN, true],
  ['role:admin', {}, MEMBER, false],
  ['role:member', {}, MEMBER, true], // case-insensitive both ways
  ['role:MEMBER', {}, MEMBER, true],
  ['role:Reader', {}, MEMBER, true],
  ['role:adm', {}, ADMIN, false], // whole names only
  ['role:', {}, ADMIN, false],
  ['role:%(wanted)s', { wanted: 'admin' }, ADMIN, true],
  ['role:%(wanted)s', { wanted: 'admin' }, MEMBER, false],
  ['role:%(wanted)s', {}, ADMIN, false], // missing target key
  ['role:admin', {}, { user_id: 'no-roles' }, false],
])

table('check: key:%(target)s against the credentials', [
  ['project_id:%(project_id)s', { project_id: 'p-demo' }, MEMBER, true],
  ['project_id:%(project_id)s', { project_id: 'p-other' }, MEMBER, false],
  ['project_id:%(project_id)s', { project_id: 'p-demo,p-other' }, MEMBER, false], // several scopes: not an owner
  ['project_id:%(project_id)s', {}, MEMBER, false], // missing target key
  ['project_id:%(project_id)s', { project_id: null }, NOBODY, false], // null never matches null
  ['project_id:%(project_id)s', { project_id: 'p-demo' }, NOBODY, false],
  ['user_id:%(user_id)s', { user_id: 'u-alice' }, MEMBER, true],
  ['project_id:p-demo', {}, MEMBER, true], // a constant on the right
  ['project_id:p-dem', {}, MEMBER, false],
  ['unknown_key:%(project_id)s', { project_id: 'p-demo' }, MEMBER, false],
  ['tenant:%(tenant)s-%(suffix)s', { tenant: 'a', suffix: 'b' }, { user_id: 'x', tenant: 'a-b' }, true],
  ['tenant:%(tenant)s-%(suffix)s', { tenant: 'a' }, { user_id: 'x', tenant: 'a-b' }, false],
  ['name:100%%', {}, { user_id: 'x', name: '100%' }, true],
  // booleans compare as Python prints them
  ['is_admin:True', {}, ADMIN, true],
  ['is_admin:True', {}, MEMBER, false],
  ['is_admin:true', {}, ADMIN, false],
  ['is_admin:False', {}, MEMBER, true],
  ['is_admin_project:True', {}, NOBODY, false],
  ['count:3', {}, { user_id: 'x', count: 3 }, true],
  // dotted paths, and lists on the way
  ['user.domain.id:%(domain_id)s', { domain_id: 'default' }, { user_id: 'x', user: { domain: { id: 'default' } } }, true],
  ['user.domain.id:%(domain_id)s', { domain_id: 'other' }, { user_id: 'x', user: { domain: { id: 'default' } } }, false],
  ['user.domain.id:default', {}, { user_id: 'x', user: {} }, false],
  ['user.domain.id:default', {}, { user_id: 'x', user: 'flat' }, false],
  ['roles:admin', {}, ADMIN, true], // a list matches when any element does
  ['roles:admin', {}, MEMBER, false],
  ['groups.name:ops', {}, { user_id: 'x', groups: [{ name: 'dev' }, { name: 'ops' }] }, true],
  ['groups.name:qa', {}, { user_id: 'x', groups: [{ name: 'dev' }, { name: 'ops' }] }, false],
  ['service_roles:service', {}, { user_id: 'x', service_roles: ['service'] }, true],
  ['service_roles:service', {}, { user_id: 'x', service_roles: [] }, false],
])

table("check: literal comparisons ('admin':%(role)s)", [
  ["'admin':%(role)s", { role: 'admin' }, NOBODY, true],
  ["'admin':%(role)s", { role: 'member' }, NOBODY, false],
  ['"admin":%(role)s', { role: 'admin' }, NOBODY, true],
  ["'admin':%(role)s", {}, NOBODY, false],
  ['True:%(enabled)s', { enabled: true }, NOBODY, true],
  ['True:%(enabled)s', { enabled: false }, NOBODY, false],
  ['True:%(enabled)s', { enabled: 'True' }, NOBODY, true],
  ['False:%(enabled)s', { enabled: false }, NOBODY, true],
  ['42:%(n)s', { n: 42 }, NOBODY, true],
  ['42:%(n)s', { n: '42' }, NOBODY, true],
  ['-7:%(n)s', { n: -7 }, NOBODY, true],
  ['None:%(x)s', { x: null }, NOBODY, false], // null never matches
  ["'p-demo':%(project_id)s", { project_id: 'p-demo' }, NOBODY, true],
])

table('check: not, and, or, parentheses', [
  ['not role:admin', {}, MEMBER, true],
  ['not role:admin', {}, ADMIN, false],
  ['not not role:admin', {}, ADMIN, true],
  ['role:admin and role:member', {}, ADMIN, true],
  ['role:admin and role:member', {}, MEMBER, false],
  ['role:admin or role:member', {}, MEMBER, true],
  ['role:admin or role:member', {}, NOBODY, false],
  ['role:x or role:member and project_id:%(project_id)s', { project_id: 'p-other' }, MEMBER, false], // and binds tighter
  ['(role:x or role:member) and project_id:%(project_id)s', { project_id: 'p-other' }, MEMBER, false],
  ['role:admin or role:member and project_id:%(project_id)s', { project_id: 'p-other' }, ADMIN, true],
  ['(role:admin or role:member) and project_id:%(project_id)s', { project_id: 'p-other' }, ADMIN, false],
  ['role:member and not project_id:%(project_id)s', { project_id: 'p-other' }, MEMBER, true],
  ['not (role:admin or role:member)', {}, NOBODY, true],
  ['not (role:admin or role:member)', {}, MEMBER, false],
  ['@ and !', {}, ADMIN, false],
  ['@ or !', {}, NOBODY, true],
])

const NAMED = new Map<string, Rule>([
  ['context_is_admin', parseRule('role:admin')],
  ['admin_or_owner', parseRule('is_admin:True or (role:admin and is_admin_project:True) or project_id:%(project_id)s')],
  ['owner', parseRule('project_id:%(project_id)s')],
  ['default', parseRule('')],
  ['deny', parseRule('!')],
  ['loop_a', parseRule('rule:loop_b or role:admin')],
  ['loop_b', parseRule('rule:loop_a')],
  ['self', parseRule('rule:self')],
])

table('check: rule:name references', [
  ['rule:context_is_admin', {}, ADMIN, true],
  ['rule:context_is_admin', {}, MEMBER, false],
  ['rule:admin_or_owner', { project_id: 'p-demo' }, MEMBER, true],
  ['rule:admin_or_owner', { project_id: 'p-other' }, MEMBER, false],
  ['rule:admin_or_owner', { project_id: 'p-other' }, ADMIN, true],
  ['rule:admin_or_owner', { project_id: 'p-other' }, { ...ADMIN, is_admin: false, is_admin_project: false }, false],
  ['rule:owner and role:member', { project_id: 'p-demo' }, MEMBER, true],
  ['rule:default', {}, NOBODY, true],
  ['not rule:deny', {}, NOBODY, true],
  ['rule:missing', {}, ADMIN, false], // unknown rule: fail closed
  ['rule:loop_a', {}, ADMIN, true], // a cycle denies only the branch that loops
  ['rule:loop_a', {}, MEMBER, false],
  ['rule:self', {}, ADMIN, false],
], NAMED)

describe('check: purity', () => {
  it('leaves target and credentials untouched', () => {
    const target = Object.freeze({ project_id: 'p-demo' })
    const creds = Object.freeze({ ...MEMBER, roles: Object.freeze([...MEMBER.roles]) })
    assert.equal(check(parseRule('rule:admin_or_owner'), target, creds, NAMED), true)
  })
})
