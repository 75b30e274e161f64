import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { PolicyEnforcer, requestedScopes } from '../../../../src/auth/policy/policy-enforcer.ts'
import type { Credentials } from '../../../../src/auth/credentials.ts'

const MEMBER: Credentials = { userId: 'u', projectId: 'p1', roles: ['member'], isAdmin: false }
const ADMIN: Credentials = { userId: 'a', projectId: 'admin', roles: ['admin'], isAdmin: true }
const isForbidden = (error: unknown) => (error as { code?: string }).code === 'FORBIDDEN'

describe('scope:post_activation', () => {
  it("reads a route's scope_id filter as PUT's: comma-separated values are several scopes", () => {
    assert.deepEqual(requestedScopes('POST', 'p1,p2', true), { scopeIds: ['p1', 'p2'], reads: false })
    assert.deepEqual(requestedScopes('POST', ['p1', 'p2,p3'], true), { scopeIds: ['p1', 'p2', 'p3'], reads: false })
    // POST /v2/scope names one scope, taken whole.
    assert.deepEqual(requestedScopes('POST', 'p1,p2'), { scopeIds: ['p1,p2'], reads: false })
  })

  it('is admin-only by default, and under an owner rule allows only the caller\'s own scopes, never every scope', () => {
    assert.equal(new PolicyEnforcer().authorizeScopes('scope:post_activation', requestedScopes('POST', undefined, true), ADMIN).all, true)
    assert.throws(() => new PolicyEnforcer().authorizeScopes('scope:post_activation', requestedScopes('POST', 'p1', true), MEMBER), isForbidden)
    const owner = new PolicyEnforcer({ 'scope:post_activation': 'role:admin or project_id:%(project_id)s' })
    assert.deepEqual(owner.authorizeScopes('scope:post_activation', requestedScopes('POST', 'p1', true), MEMBER), { all: false, scopeIds: ['p1'] })
    assert.throws(() => owner.authorizeScopes('scope:post_activation', requestedScopes('POST', 'p1,p2', true), MEMBER), isForbidden)
    assert.throws(() => owner.authorizeScopes('scope:post_activation', requestedScopes('POST', undefined, true), MEMBER), isForbidden)
  })
})
