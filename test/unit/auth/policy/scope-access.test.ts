import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import type { Credentials } from '../../../../src/auth/credentials.ts'
import { BASE_RULES } from '../../../../src/auth/policy/default-rules.ts'
import { policyValues } from '../../../../src/auth/policy/policy-enforcer.ts'
import { check } from '../../../../src/auth/policy/rule-check.ts'
import { parseRule, type Rule } from '../../../../src/auth/policy/rule-parser.ts'
import { scopeAccess, scopeTarget } from '../../../../src/auth/policy/scope-access.ts'

const MEMBER: Credentials = {
  userId: 'u-alice', projectId: 'p-demo', roles: ['member', 'reader'], isAdmin: false,
  userDomainId: 'default', projectDomainId: 'default',
  service: { userId: 'u-svc', userDomainId: 'default', projectId: 'p-svc', projectDomainId: 'default', roles: ['service'] },
}
const ADMIN: Credentials = { ...MEMBER, roles: ['admin', 'member'], isAdmin: true }
const BASE = new Map<string, Rule>(BASE_RULES.map((r) => [r.name, parseRule(r.check)]))

function access (text: string, credentials: Credentials = MEMBER) {
  const rules = new Map(BASE)
  return scopeAccess(parseRule(text), policyValues(credentials), rules)
}

describe('scopeAccess', () => {
  const table: Array<[string, Credentials, ReturnType<typeof access>]> = [
    ['role:admin', ADMIN, { all: true }],
    ['role:admin', MEMBER, { all: false, scopeIds: [] }],
    ['@', MEMBER, { all: true }],
    ['!', ADMIN, { all: false, scopeIds: [] }],
    ['', MEMBER, { all: true }],
    ['project_id:%(project_id)s', MEMBER, { all: false, scopeIds: ['p-demo'] }],
    ['role:admin or project_id:%(project_id)s', MEMBER, { all: false, scopeIds: ['p-demo'] }],
    ['role:admin or project_id:%(project_id)s', ADMIN, { all: true }],
    ['rule:admin_or_owner', MEMBER, { all: false, scopeIds: ['p-demo'] }],
    ['rule:admin_or_owner', ADMIN, { all: true }],
    // CloudKitty's PATCH and POST target key.
    ['project_id:%(tenant_id)s', MEMBER, { all: false, scopeIds: ['p-demo'] }],
    ['project_id:%(project_id)s or service_project_id:%(project_id)s', MEMBER, { all: false, scopeIds: ['p-demo', 'p-svc'] }],
    ['project_id:%(project_id)s and role:member', MEMBER, { all: false, scopeIds: ['p-demo'] }],
    ['project_id:%(project_id)s and role:auditor', MEMBER, { all: false, scopeIds: [] }],
    ["'shared':%(project_id)s or project_id:%(project_id)s", MEMBER, { all: false, scopeIds: ['shared', 'p-demo'] }],
    ['project_id:p-%(project_id)s', MEMBER, { all: false, scopeIds: ['demo'] }],

    ['role:member or not project_id:%(project_id)s', MEMBER, { all: true }],
    // A target key the target lacks fails whatever the scope.
    ['user_id:%(user_id)s or project_id:%(project_id)s', MEMBER, { all: false, scopeIds: ['p-demo'] }],
    // Roles compare without case: scopes nobody listed could match, so only the candidates count.
    ['role:%(project_id)s', MEMBER, { all: false, scopeIds: ['member', 'reader'] }],
    ['role:admin or not role:%(project_id)s', ADMIN, { all: true }],
  ]
  for (const [rule, credentials, expected] of table) {
    it(`derives ${JSON.stringify(expected)} from ${JSON.stringify(rule)} for ${credentials === ADMIN ? 'an admin' : 'a member'}`, () => {
      const got = access(rule, credentials)
      if (!got.all && !expected.all) assert.deepEqual([...got.scopeIds].sort(), [...expected.scopeIds].sort())
      else assert.deepEqual(got, expected)
    })
  }

  it('narrows a rule that passes for every scope but some to the compared values it passes for', () => {
    for (const rule of ['role:member and not project_id:%(project_id)s', 'not role:%(project_id)s']) {
      const got = access(rule)
      assert.equal(got.all, false, rule)
      if (got.all) continue
      assert.ok(!got.scopeIds.includes(rule.startsWith('not') ? 'member' : 'p-demo'), rule)
      for (const id of got.scopeIds) assert.ok(check(parseRule(rule), scopeTarget(id), policyValues(MEMBER), BASE), `${rule}: ${id}`)
    }
  })

  it('never lets a listing show a scope the rule refuses, and shows every scope a rule without not allows', () => {
    const leaf = fc.constantFrom(
      'project_id:%(project_id)s', 'project_id:%(tenant_id)s', 'service_project_id:%(project_id)s', "'shared':%(project_id)s",
      'role:admin', 'role:member', 'user_id:%(user_id)s', 'is_admin:True', '@', '!', 'project_id:x-%(project_id)s-x',
    )
    const ruleText: fc.Arbitrary<string> = fc.letrec<{ rule: string }>((tie) => ({
      rule: fc.oneof({ depthSize: 'small', withCrossShrink: true },
        leaf,
        fc.tuple(tie('rule'), tie('rule')).map(([a, b]) => `(${a} and ${b})`),
        fc.tuple(tie('rule'), tie('rule')).map(([a, b]) => `(${a} or ${b})`),
        tie('rule').map((a) => `(not ${a})`)),
    })).rule
    const scope = fc.constantFrom('p-demo', 'p-svc', 'shared', 'x-p-demo-x', 'p-other', 'member', 'True', 'u-alice', '')
    fc.assert(fc.property(ruleText, fc.constantFrom(MEMBER, ADMIN), fc.array(scope, { maxLength: 5 }), (text, credentials, scopes) => {
      const rule = parseRule(text)
      const values = policyValues(credentials)
      const got = scopeAccess(rule, values, BASE)
      for (const id of scopes) {
        const allowed = check(rule, scopeTarget(id), values, BASE)
        const listed = got.all || got.scopeIds.includes(id)
        // Listed implies allowed. Without `not` (so no "everyone but…" rule
        // to narrow), allowed implies listed too.
        if (listed) assert.ok(allowed, `${text}: ${id} listed but refused`)
        else if (!text.includes('not')) assert.ok(!allowed, `${text}: ${id} allowed but not listed`)
      }
    }), { numRuns: 2000 })
  })
})
