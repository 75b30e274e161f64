import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { ConnectionError } from '../../../src/cli/http-transport.ts'
import { idempotencyKeyOf, shouldRetry } from '../../../src/cli/idempotency.ts'
import { ApiError } from '../../../src/cli/scope-client.ts'

describe('Idempotency-Key and the one retry', () => {
  it('makes a new random key per invocation, or keeps the one given', () => {
    const [a, b] = [idempotencyKeyOf(undefined), idempotencyKeyOf(undefined)]
    assert.match(a, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
    assert.notEqual(a, b)
    assert.equal(idempotencyKeyOf('my-key-1'), 'my-key-1')
  })

  it('retries a keyed PUT, PATCH or POST once after a connection failure a retry can cure', () => {
    const keyed = (method: string) => ({ method, idempotencyKey: 'k' })
    for (const method of ['PUT', 'PATCH', 'POST']) {
      for (const kind of ['refused', 'reset', 'unreachable', 'timeout'] as const) {
        assert.equal(shouldRetry(keyed(method), new ConnectionError('x', kind), 1), true, `${method} ${kind}`)
        assert.equal(shouldRetry(keyed(method), new ConnectionError('x', kind), 2), false, `${method} ${kind}, second try`)
      }
    }
  })

  it('never retries without a key, a GET or DELETE, an answer (even 5xx), or a TLS or DNS failure', () => {
    assert.equal(shouldRetry({ method: 'PUT' }, new ConnectionError('x', 'reset'), 1), false)
    assert.equal(shouldRetry({ method: 'PUT', idempotencyKey: '' }, new ConnectionError('x', 'reset'), 1), false)
    assert.equal(shouldRetry({ method: 'GET', idempotencyKey: 'k' }, new ConnectionError('x', 'reset'), 1), false)
    assert.equal(shouldRetry({ method: 'DELETE', idempotencyKey: 'k' }, new ConnectionError('x', 'reset'), 1), false)
    assert.equal(shouldRetry({ method: 'PUT', idempotencyKey: 'k' }, new ApiError(503, 'Service Unavailable'), 1), false)
    assert.equal(shouldRetry({ method: 'PUT', idempotencyKey: 'k' }, new ConnectionError('x', 'tls'), 1), false)
    assert.equal(shouldRetry({ method: 'PUT', idempotencyKey: 'k' }, new ConnectionError('x', 'dns'), 1), false)
    assert.equal(shouldRetry({ method: 'PUT', idempotencyKey: 'k' }, new Error('boom'), 1), false)
  })
})
