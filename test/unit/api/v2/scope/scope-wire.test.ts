import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { listToJson, toWire, toWireJson } from '../../../../../src/api/v2/scope/scope-wire.ts'
import type { ScopeState } from '../../../../../src/domain/scope-state.ts'

// Whatever a CloudKitty-written row may hold: any code unit, lone surrogates,
// quotes, backslashes and control characters included.
const text = fc.oneof(
  fc.string(),
  fc.string({ unit: 'binary' }),
  fc.string({ unit: fc.constantFrom('"', '\\', '/', '\u0000', '\u001f', '\u007f', '\u2028', '\ud800', '\udfff', '\ud83d\ude00', 'é', 'a') }),
)
const instant = fc.date({ min: new Date('1000-01-01T00:00:00Z'), max: new Date('9999-12-31T23:59:59Z'), noInvalidDate: true })
  .map((d) => new Date(Math.floor(d.getTime() / 1000) * 1000))
const scopeState: fc.Arbitrary<ScopeState> = fc.record({
  id: fc.integer({ min: 1, max: 2_147_483_647 }),
  scopeId: text,
  scopeKey: fc.option(text, { nil: null }),
  fetcher: fc.option(text, { nil: null }),
  collector: fc.option(text, { nil: null }),
  lastProcessedTimestamp: instant,
  active: fc.boolean(),
  activationToggleDate: instant,
})

describe('scope-wire', () => {
  it('writes a scope exactly as JSON.stringify writes its toWire object', () => {
    fc.assert(fc.property(scopeState, (scope) => {
      assert.equal(toWireJson(scope), JSON.stringify(toWire(scope)))
    }), { numRuns: 2000 })
  })

  it('writes a list page exactly as JSON.stringify writes its results', async () => {
    await fc.assert(fc.asyncProperty(fc.array(scopeState, { minLength: 1, maxLength: 20 }), async (scopes) => {
      const list = await listToJson({ first: scopes })
      assert.equal(list.body, JSON.stringify({ results: scopes.map(toWire) }))
      assert.equal(list.count, scopes.length)
      assert.equal(list.lastId, scopes[scopes.length - 1].id)
    }))
  })
})
