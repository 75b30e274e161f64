import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import type { Readable } from 'node:stream'
import { Value } from 'typebox/value'
import { ResetDryRunReply, ScopeStateReply } from '../../../../../src/api/v2/scope/scope-schemas.ts'
import {
  dryRunFromWire, listEtag, listJson, patchOptionsFromWire, resetPreviewJson, scopeEtag, scopeJson,
} from '../../../../../src/api/v2/scope/scope-wire.ts'
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

  it('tags a scope by its wire representation: the same JSON, the same strong tag; any other, another', () => {
    fc.assert(fc.property(scopeState, scopeState, (a, b) => {
      assert.match(scopeEtag(a), /^"[A-Za-z0-9_-]{27}"$/)
      // The id is not on the wire, so it is not in the tag.
      const renumbered: ScopeState = { ...a, id: a.id + 1 }
      assert.equal(scopeEtag(a), scopeEtag(renumbered))
      assert.equal(scopeEtag(a) === scopeEtag(b), scopeJson(a) === scopeJson(b))
      assert.notEqual(scopeEtag(a), scopeEtag({ ...a, active: !a.active }))
    }), { numRuns: 1000 })
  })

  it('reads If-Match as RFC 9110 §13.1.1 writes it: *, or a list of which any strong tag must be the row\'s', () => {
    fc.assert(fc.property(scopeState, fc.array(fc.stringMatching(/^"[!#-~]*"$/), { maxLength: 4 }), fc.nat(4), (scope, others, at) => {
      const tag = scopeEtag(scope)
      const strong = [...others.slice(0, at), tag, ...others.slice(at)]
      assert.equal(patchOptionsFromWire(strong.join(', ')).precondition?.(scope), true)
      assert.equal(patchOptionsFromWire(strong.join(',')).precondition?.(scope), true)
      assert.equal(patchOptionsFromWire(strong).precondition?.(scope), true)
      const weak = [...others.filter((o) => o !== tag), `W/${tag}`]
      assert.equal(patchOptionsFromWire(weak.join(' , ')).precondition?.(scope), false)
      assert.equal(patchOptionsFromWire('*').precondition?.(scope), true)
    }))
    assert.deepEqual(patchOptionsFromWire(undefined), {})
    for (const bad of ['', ' ', ',', 'x', '"a', '"a" "b"', '*,*', '*, "a"', 'W/ "a"', 'w/"a"', '"a"x', '"\u0001"', '"a"b"']) {
      assert.throws(() => patchOptionsFromWire(bad), /Invalid If-Match header/, JSON.stringify(bad))
    }
  })

  it('sends a list ETag only for a first, not full page of one row of a scope_id query', () => {
    const scope = { id: 7, scopeId: 'a', scopeKey: 'k', fetcher: 'f', collector: 'c', lastProcessedTimestamp: new Date(0), active: true, activationToggleDate: new Date(0) }
    const page = { limit: 100, offset: 0 }
    assert.equal(listEtag({ scopeIds: ['a'] }, page, { first: [scope] }), scopeEtag(scope))
    assert.equal(listEtag({}, page, { first: [scope] }), undefined)
    assert.equal(listEtag({ scopeIds: ['a'] }, { ...page, offset: 1 }, { first: [scope] }), undefined)
    assert.equal(listEtag({ scopeIds: ['a'] }, { ...page, marker: 1 }, { first: [scope] }), undefined)
    assert.equal(listEtag({ scopeIds: ['a'] }, { limit: 1, offset: 0 }, { first: [scope], nextMarker: 7 }), undefined)
    assert.equal(listEtag({ scopeIds: ['a'] }, page, { first: [scope, { ...scope, id: 8 }] }), undefined)
  })

  it('reads dry_run in the words of active, and writes a PUT dry run as its reply schema says', () => {
    for (const [word, expected] of [['true', true], ['TRUE', true], ['1', true], ['false', false], ['0', false], [undefined, false]] as const) {
      assert.equal(dryRunFromWire({ dry_run: word }), expected, String(word))
    }
    fc.assert(fc.property(fc.array(scopeState, { maxLength: 3 }), fc.nat(), fc.nat(), instant, instant, (first, total, inactive, at, from) => {
      const json = resetPreviewJson({ scopesTotal: total, scopesInactive: inactive, lastProcessedTimestamp: at, discardFrom: from, first })
      const reply = JSON.parse(json)
      assert.ok(Value.Check(ResetDryRunReply, reply))
      assert.deepEqual(reply.results, first.map(expectedReply))
      assert.equal(reply.scopes_total, total)
    }))
  })
})
