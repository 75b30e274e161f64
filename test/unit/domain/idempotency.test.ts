import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { callerOf, canonicalJson, requestHash } from '../../../src/domain/idempotency.ts'

describe('canonicalJson', () => {
  it('sorts object keys at every depth and keeps array order', () => {
    assert.equal(canonicalJson({ b: 1, a: { d: [2, 1], c: null } }), '{"a":{"c":null,"d":[2,1]},"b":1}')
    assert.equal(canonicalJson({ a: { c: null, d: [2, 1] }, b: 1 }), canonicalJson({ b: 1, a: { d: [2, 1], c: null } }))
  })

  it('tells apart bodies that differ in a value, a type or an array order', () => {
    assert.notEqual(requestHash({ active: 0 }), requestHash({ active: false }))
    assert.notEqual(requestHash({ scope_id: ['a', 'b'] }), requestHash({ scope_id: ['b', 'a'] }))
    assert.notEqual(requestHash({ scope_id: 'a' }), requestHash({ scope_id: 'a', active: true }))
    assert.match(requestHash({}), /^[0-9a-f]{64}$/)
  })
})

describe('callerOf', () => {
  const keystone = { auth: 'keystone' as const, userName: 'u', roles: ['member'] }

  it('scopes a key to the Keystone user and project, and to nobody under noauth', () => {
    assert.equal(callerOf({ auth: 'noauth', userId: null, userName: null, projectId: null, roles: [] }), 'noauth')
    const alice = callerOf({ ...keystone, userId: 'alice', projectId: 'p1' })
    assert.equal(alice, 'keystone:alice:p1')
    assert.notEqual(callerOf({ ...keystone, userId: 'alice', projectId: 'p2' }), alice)
    assert.notEqual(callerOf({ ...keystone, userId: 'bob', projectId: 'p1' }), alice)
  })

  it('fits the 255 characters of its column whatever the ids', () => {
    const long = callerOf({ ...keystone, userId: 'u'.repeat(300), projectId: 'p' })
    assert.ok(long.length <= 255)
    assert.notEqual(long, callerOf({ ...keystone, userId: 'u'.repeat(301), projectId: 'p' }))
  })
})
