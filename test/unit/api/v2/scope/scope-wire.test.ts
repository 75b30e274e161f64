import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import type { Readable } from 'node:stream'
import { Value } from 'typebox/value'
import { ScopeStateReply } from '../../../../../src/api/v2/scope/scope-schemas.ts'
import { listJson, scopeJson } from '../../../../../src/api/v2/scope/scope-wire.ts'
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

// The reply CONTRACT.md gives a scope state, field by field and in order.
function expectedReply (scope: ScopeState) {
  const at = (d: Date) => d.toISOString().slice(0, 19) + '+00:00'
  return {
    scope_id: scope.scopeId,
    scope_key: scope.scopeKey,
    fetcher: scope.fetcher,
    collector: scope.collector,
    state: at(scope.lastProcessedTimestamp),
    last_processed_timestamp: at(scope.lastProcessedTimestamp),
    active: scope.active,
    scope_activation_toggle_date: at(scope.activationToggleDate),
  }
}

async function bodyText (body: string | Readable): Promise<string> {
  if (typeof body === 'string') return body
  let all = ''
  for await (const chunk of body) all += String(chunk)
  return all
}

describe('scope-wire', () => {
  it('writes a scope exactly as JSON.stringify writes its reply, which the reply schema accepts', () => {
    fc.assert(fc.property(scopeState, (scope) => {
      const json = scopeJson(scope)
      assert.equal(json, JSON.stringify(expectedReply(scope)))
      assert.ok(Value.Check(ScopeStateReply, JSON.parse(json)))
    }), { numRuns: 2000 })
  })

  it('writes a list page exactly as JSON.stringify writes its results, in one piece or streamed in chunks', async () => {
    const chunks = fc.array(fc.array(scopeState, { minLength: 1, maxLength: 5 }), { minLength: 1, maxLength: 4 })
    await fc.assert(fc.asyncProperty(chunks, async ([first, ...rest]) => {
      const body = await listJson({ first, rest: rest.length === 0 ? undefined : (async function * () { yield * rest })() })
      assert.equal(typeof body === 'string', rest.length === 0)
      assert.equal(await bodyText(body), JSON.stringify({ results: [first, ...rest].flat().map(expectedReply) }))
    }))
  })
})
