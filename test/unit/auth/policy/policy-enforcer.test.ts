import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it, type TestContext } from 'node:test'
import type { Credentials } from '../../../../src/auth/credentials.ts'
import { SCOPE_RULES, type RuleName } from '../../../../src/auth/policy/default-rules.ts'
import { loadPolicy, PolicyEnforcer, policyValues, requestedScopes } from '../../../../src/auth/policy/policy-enforcer.ts'
import { ConfigError } from '../../../../src/config/load-config.ts'
import { ScopeKeeperError } from '../../../../src/domain/errors.ts'

const ADMIN: Credentials = { userId: 'u1', projectId: 'p-admin', roles: ['admin', 'member', 'reader'], isAdmin: true }
const MEMBER: Credentials = { userId: 'u2', projectId: 'p-demo', roles: ['member', 'reader'], isAdmin: false }
const SCOPE_RULE_NAMES = SCOPE_RULES.map((r) => r.name as RuleName)

function policyFile (t: TestContext, name: string, text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'scopekeeper-policy-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, name)
  writeFileSync(file, text)
  return file
}

function isForbidden (error: unknown): boolean {
  return error instanceof ScopeKeeperError && error.code === 'FORBIDDEN' && error.message === 'You are not authorized to perform this action'
}

describe('PolicyEnforcer with the default rules', () => {
  const enforcer = new PolicyEnforcer()

  for (const rule of SCOPE_RULE_NAMES) {
    it(`lets an admin through ${rule} and forbids a member`, () => {
      assert.doesNotThrow(() => enforcer.authorize(rule, { project_id: 'p-demo' }, ADMIN))
      assert.throws(() => enforcer.authorize(rule, { project_id: 'p-demo' }, MEMBER), isForbidden)
    })
  }

  it('decides is_admin with context_is_admin', () => {
    assert.equal(enforcer.isAdmin({ ...ADMIN }), true)
    assert.equal(enforcer.isAdmin({ ...MEMBER }), false)
  })

  it('knows the base rules: admin_or_owner lets an owner through', () => {
    assert.equal(enforcer.allows('admin_or_owner', { project_id: 'p-demo' }, MEMBER), true)
    assert.equal(enforcer.allows('admin_or_owner', { project_id: 'p-other' }, MEMBER), false)
    assert.equal(enforcer.allows('default', { project_id: null }, MEMBER), true)
    assert.equal(enforcer.allows('no_such_rule', { project_id: null }, ADMIN), false)
  })
})

describe('scope:cancel_reset', () => {
  it('admits only admins by default; a member is refused before any job is looked at', () => {
    const enforcer = new PolicyEnforcer()
    assert.equal(SCOPE_RULES.find((r) => r.name === 'scope:cancel_reset')?.check, 'role:admin')
    assert.deepEqual(enforcer.authorizeScopes('scope:cancel_reset', requestedScopes('DELETE', undefined), ADMIN).all, true)
    assert.throws(() => enforcer.authorizeScopes('scope:cancel_reset', requestedScopes('DELETE', undefined), MEMBER), isForbidden)
  })

  it('under an owner rule, narrows a member to their own project, as GET of a job does', (t) => {
    const enforcer = loadPolicy(policyFile(t, 'policy.yaml', '"scope:cancel_reset": "role:admin or project_id:%(project_id)s"\n'))
    assert.deepEqual(enforcer.authorizeScopes('scope:cancel_reset', requestedScopes('DELETE', undefined), MEMBER), { all: false, scopeIds: ['p-demo'] })
    assert.equal(enforcer.authorizeScopes('scope:cancel_reset', requestedScopes('DELETE', undefined), ADMIN).all, true)
  })
})

describe('loadPolicy', () => {
  it('uses the defaults when no policy file is set', () => {
    assert.throws(() => loadPolicy('').authorize('scope:get_state', { project_id: null }, MEMBER), isForbidden)
  })

  it('overrides rules by name from a YAML file, leaving the others alone', (t) => {
    const file = policyFile(t, 'policy.yaml', [
      '# operators tune the scope rules',
      '"scope:get_state": "role:admin or role:member"',
      'scope:patch_state: rule:admin_or_owner',
    ].join('\n'))
    const enforcer = loadPolicy(file)
    assert.doesNotThrow(() => enforcer.authorize('scope:get_state', { project_id: 'p-other' }, MEMBER))
    assert.throws(() => enforcer.authorize('scope:reset_state', { project_id: 'p-demo' }, MEMBER), isForbidden)
    assert.doesNotThrow(() => enforcer.authorize('scope:patch_state', { project_id: 'p-demo' }, MEMBER))
    assert.throws(() => enforcer.authorize('scope:patch_state', { project_id: 'p-other' }, MEMBER), isForbidden)
  })

  it('reads JSON files, list-of-lists rules and helper rules of its own', (t) => {
    const file = policyFile(t, 'policy.json', JSON.stringify({
      billing_team: 'role:billing',
      'scope:get_state': 'rule:billing_team or rule:context_is_admin',
      'scope:reset_state': [['role:billing', 'project_id:%(project_id)s'], ['role:admin']],
      'scope:post_state': [],
    }))
    const enforcer = loadPolicy(file)
    const billing: Credentials = { ...MEMBER, roles: ['billing'] }
    assert.doesNotThrow(() => enforcer.authorize('scope:get_state', { project_id: 'x' }, billing))
    assert.doesNotThrow(() => enforcer.authorize('scope:reset_state', { project_id: 'p-demo' }, billing))
    assert.throws(() => enforcer.authorize('scope:reset_state', { project_id: 'x' }, billing), isForbidden)
    assert.doesNotThrow(() => enforcer.authorize('scope:reset_state', { project_id: 'x' }, ADMIN))
    assert.doesNotThrow(() => enforcer.authorize('scope:post_state', { project_id: 'x' }, MEMBER), '[] allows everyone')
  })

  it('lets a policy file redefine context_is_admin, which decides is_admin', (t) => {
    const enforcer = loadPolicy(policyFile(t, 'policy.yaml', '"context_is_admin": "role:cloud_admin"\n'))
    assert.equal(enforcer.isAdmin({ ...ADMIN }), false)
    assert.equal(enforcer.isAdmin({ ...MEMBER, roles: ['cloud_admin'] }), true)
  })

  it('treats an empty file as no overrides', (t) => {
    const enforcer = loadPolicy(policyFile(t, 'policy.yaml', '# nothing yet\n'))
    assert.doesNotThrow(() => enforcer.authorize('scope:get_state', { project_id: null }, ADMIN))
  })

  const broken: Array<[string, string, RegExp]> = [
    ['a rule that does not parse', '"scope:get_state": "role:admin or"\n', /Invalid policy rule "scope:get_state" in policy file .*policy\.yaml: cannot parse/],
    ['a check without a colon', '"scope:get_state": "admin"\n', /Invalid policy rule "scope:get_state" .*'admin' is not a check/],
    ['a reference to an unknown rule', '"scope:reset_state": "rule:admins_only"\n', /Policy rule "scope:reset_state" in policy file .* refers to unknown rule "admins_only"/],
    ['a reference cycle', '"a": "rule:b"\n"b": "rule:a or role:x"\n"scope:get_state": "rule:a"\n', /cycle: a -> b -> a/],
    ['a rule that is not a string', '"scope:get_state": 42\n', /rule "scope:get_state" must be a string/],
    ['a file that is not a mapping', '- role:admin\n', /must be a mapping of rule names to rules/],
    ['a file that is neither YAML nor JSON', '"scope:get_state": "role:admin\n', /is neither valid YAML nor JSON/],
    ['duplicate rule names', '"scope:get_state": "role:a"\n"scope:get_state": "role:b"\n', /is neither valid YAML nor JSON/],
    ['a remote check', '"scope:get_state": "http://authz.example/check"\n', /remote http: checks are not supported/],
  ]
  for (const [what, text, message] of broken) {
    it(`stops the start on ${what}, naming it`, (t) => {
      const file = policyFile(t, 'policy.yaml', text)
      assert.throws(() => loadPolicy(file), (e: Error) => e instanceof ConfigError && message.test(e.message) && e.message.includes(file))
    })
  }

  it('stops the start on a missing policy file, naming it', () => {
    assert.throws(() => loadPolicy('/nonexistent/policy.yaml'), (e: Error) => e instanceof ConfigError && /Cannot read policy file \/nonexistent\/policy\.yaml/.test(e.message))
  })
})

describe('requestedScopes', () => {
  it('splits the filters of GET and PUT on commas, and takes the one scope of PATCH and POST whole', () => {
    assert.deepEqual(requestedScopes('GET', ['p1', 'p2,p3']), { scopeIds: ['p1', 'p2', 'p3'], reads: true })
    assert.deepEqual(requestedScopes('PUT', 'p1,p2'), { scopeIds: ['p1', 'p2'], reads: false })
    assert.deepEqual(requestedScopes('PUT', ['p1', 'p2']), { scopeIds: ['p1', 'p2'], reads: false })
    assert.deepEqual(requestedScopes('PATCH', 'p1,p2'), { scopeIds: ['p1,p2'], reads: false })
    assert.deepEqual(requestedScopes('POST', 'p1'), { scopeIds: ['p1'], reads: false })
    assert.deepEqual(requestedScopes('GET', undefined), { scopeIds: undefined, reads: true })
    assert.deepEqual(requestedScopes('PUT', undefined), { scopeIds: undefined, reads: false })
    assert.deepEqual(requestedScopes('GET', [',']), { scopeIds: [], reads: true })
    // A reset job's DELETE names no scope, and is narrowed to the caller's as a read is.
    assert.deepEqual(requestedScopes('DELETE', undefined), { scopeIds: undefined, reads: true })
  })
})

describe('authorizeScopes', () => {
  const owner = new PolicyEnforcer({
    'scope:get_state': 'role:admin or project_id:%(project_id)s',
    'scope:reset_state': 'role:admin or project_id:%(project_id)s',
    'scope:patch_state': 'role:admin or project_id:%(tenant_id)s',
  })
  const reads = (scopeIds?: string[]) => ({ scopeIds, reads: true })
  const writes = (scopeIds?: string[]) => ({ scopeIds, reads: false })

  it('gives an admin every scope, whether the request names scopes or not', () => {
    for (const requested of [reads(), reads(['p-other']), writes(), writes(['p-other'])]) {
      assert.deepEqual(owner.authorizeScopes('scope:get_state', requested, ADMIN), { all: true })
    }
  })

  it("narrows an owner's listing without scope_id to their project, instead of CloudKitty's every scope", () => {
    assert.deepEqual(owner.authorizeScopes('scope:get_state', reads(), MEMBER), { all: false, scopeIds: ['p-demo'] })
    assert.deepEqual(owner.authorizeScopes('scope:get_state', reads(['p-demo']), MEMBER), { all: false, scopeIds: ['p-demo'] })
  })

  it('forbids an owner any named scope that is not theirs, even among theirs', () => {
    assert.throws(() => owner.authorizeScopes('scope:get_state', reads(['p-other']), MEMBER), isForbidden)
    assert.throws(() => owner.authorizeScopes('scope:get_state', reads(['p-demo', 'p-other']), MEMBER), isForbidden)
    assert.throws(() => owner.authorizeScopes('scope:reset_state', writes(['p-other']), MEMBER), isForbidden)
    assert.throws(() => owner.authorizeScopes('scope:patch_state', writes(['p-demo,p-demo']), MEMBER), isForbidden)
    assert.deepEqual(owner.authorizeScopes('scope:patch_state', writes(['p-demo']), MEMBER), { all: false, scopeIds: ['p-demo'] })
  })

  it('forbids a write that names no scope (PUT all_scopes) unless the rule passes for every scope', () => {
    assert.throws(() => owner.authorizeScopes('scope:reset_state', writes(), MEMBER), isForbidden)
    assert.throws(() => owner.authorizeScopes('scope:reset_state', writes([]), MEMBER), isForbidden)
    assert.deepEqual(new PolicyEnforcer({ 'scope:reset_state': '@' }).authorizeScopes('scope:reset_state', writes(), MEMBER), { all: true })
  })

  it('forbids, as before, a read under a rule that passes for no scope (the default role:admin for a member)', () => {
    assert.throws(() => new PolicyEnforcer().authorizeScopes('scope:get_state', reads(), MEMBER), isForbidden)
    assert.throws(() => owner.authorizeScopes('scope:get_state', reads(), { ...MEMBER, projectId: null }), isForbidden)
  })

  it('keeps the named scopes that passed visible when the derived set is narrower than the rule', () => {
    const allButOwn = new PolicyEnforcer({ 'scope:get_state': 'not project_id:%(project_id)s' })
    const unnamed = allButOwn.authorizeScopes('scope:get_state', reads(), MEMBER)
    assert.ok(!unnamed.all && !unnamed.scopeIds.includes('p-demo') && !unnamed.scopeIds.includes('p-x'))
    const named = allButOwn.authorizeScopes('scope:get_state', reads(['p-x', 'p-y']), MEMBER)
    assert.ok(!named.all && named.scopeIds.includes('p-x') && named.scopeIds.includes('p-y') && !named.scopeIds.includes('p-demo'))
    assert.throws(() => allButOwn.authorizeScopes('scope:get_state', reads(['p-demo']), MEMBER), isForbidden)
  })

  it('checks scopekeeper:get_metrics once against no scope, whatever the request names', () => {
    const defaults = new PolicyEnforcer()
    assert.deepEqual(defaults.authorizeScopes('scopekeeper:get_metrics', reads(), ADMIN), { all: false, scopeIds: [] })
    assert.throws(() => defaults.authorizeScopes('scopekeeper:get_metrics', reads(), MEMBER), isForbidden)
    const ownerMetrics = new PolicyEnforcer({ 'scopekeeper:get_metrics': 'role:admin or project_id:%(project_id)s' })
    assert.throws(() => ownerMetrics.authorizeScopes('scopekeeper:get_metrics', reads(), MEMBER), isForbidden)
    assert.throws(() => ownerMetrics.authorizeScopes('scopekeeper:get_metrics', reads(['p-demo']), MEMBER), isForbidden)
    const monitoring = new PolicyEnforcer({ 'scopekeeper:get_metrics': 'role:admin or role:monitoring' })
    assert.doesNotThrow(() => monitoring.authorizeScopes('scopekeeper:get_metrics', reads(), { ...MEMBER, roles: ['monitoring'] }))
    assert.throws(() => monitoring.authorizeScopes('scopekeeper:get_metrics', reads(), MEMBER), isForbidden)
  })
})

describe('policyValues', () => {
  it("exposes the caller under oslo.context's policy keys", () => {
    const values = policyValues({
      ...MEMBER, userDomainId: 'default', projectDomainId: 'default', isAdminProject: false,
      service: { userId: 'svc', userDomainId: 'default', projectId: 'p-svc', projectDomainId: 'default', roles: ['service'] },
    })
    assert.deepEqual(values, {
      user_id: 'u2', user_domain_id: 'default', project_id: 'p-demo', project_domain_id: 'default', domain_id: null, system_scope: null,
      roles: ['member', 'reader'], is_admin: false, is_admin_project: false,
      service_user_id: 'svc', service_user_domain_id: 'default', service_project_id: 'p-svc', service_project_domain_id: 'default', service_roles: ['service'],
    })
    assert.equal(policyValues(MEMBER).is_admin_project, true, "keystonemiddleware's default")
  })
})
