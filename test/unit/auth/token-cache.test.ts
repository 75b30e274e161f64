import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { ExpiringLru } from '../../../src/auth/token-cache.ts'

describe('ExpiringLru', () => {
  it('returns a value until its expiry, then forgets it', () => {
    let now = 1000
    const cache = new ExpiringLru<string>(10, () => now)
    cache.set('a', 'A', 1500)
    assert.equal(cache.get('a'), 'A')
    now = 1499
    assert.equal(cache.get('a'), 'A')
    now = 1500
    assert.equal(cache.get('a'), undefined)
    assert.equal(cache.size, 0)
  })

  it('does not store an entry that is already expired', () => {
    const cache = new ExpiringLru<string>(10, () => 1000)
    cache.set('a', 'A', 1000)
    cache.set('b', 'B', 999)
    assert.equal(cache.size, 0)
  })

  it('pushes out the least recently used entry when full', () => {
    const cache = new ExpiringLru<number>(3, () => 0)
    cache.set('a', 1, 100)
    cache.set('b', 2, 100)
    cache.set('c', 3, 100)
    assert.equal(cache.get('a'), 1) // a is now the most recent
    cache.set('d', 4, 100)
    assert.equal(cache.get('b'), undefined)
    assert.deepEqual(['a', 'c', 'd'].map((k) => cache.get(k)), [1, 3, 4])
    assert.equal(cache.size, 3)
  })

  it('replaces an entry and its expiry on set', () => {
    let now = 0
    const cache = new ExpiringLru<number>(3, () => now)
    cache.set('a', 1, 100)
    cache.set('a', 2, 50)
    now = 60
    assert.equal(cache.get('a'), undefined)
    cache.set('b', 1, 100)
    cache.delete('b')
    assert.equal(cache.get('b'), undefined)
  })

  it('refuses a size below one', () => {
    assert.throws(() => new ExpiringLru(0), RangeError)
  })

  it('never holds more than its size, and never returns an expired value', () => {
    fc.assert(fc.property(
      fc.integer({ min: 1, max: 8 }),
      fc.array(fc.tuple(fc.constantFrom('get', 'set', 'tick'), fc.integer({ min: 0, max: 12 }), fc.integer({ min: 0, max: 20 })), { maxLength: 200 }),
      (size, ops) => {
        let now = 0
        const cache = new ExpiringLru<number>(size, () => now)
        const expiries = new Map<string, number>()
        for (const [op, k, n] of ops) {
          const key = `k${k}`
          if (op === 'tick') now += n
          else if (op === 'set') { cache.set(key, now + n, now + n); expiries.set(key, now + n) } else {
            const value = cache.get(key)
            if (value !== undefined) assert.ok(value > now && value === expiries.get(key))
          }
          assert.ok(cache.size <= size)
        }
      }))
  })
})
