import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { nextMarkerOf } from '../../../src/cli/link-header.ts'

describe('Link rel="next" marker', () => {
  it("reads the marker of scopekeeper's Link header", () => {
    assert.equal(nextMarkerOf('<http://127.0.0.1:8889/v2/scope?collector=gnocchi&marker=42&limit=10>; rel="next"'), 42)
    assert.equal(nextMarkerOf('<https://rating.example/prefix/v2/scope/events?scope_id=a&marker=7>;rel=next'), 7)
    assert.equal(nextMarkerOf('</v2/scope?marker=0&limit=1>; rel="next"'), 0)
  })

  it('picks the next link among several, in one header or several', () => {
    assert.equal(nextMarkerOf('<http://x/v2/scope?marker=1>; rel="prev", <http://x/v2/scope?marker=9>; rel="next"'), 9)
    assert.equal(nextMarkerOf(['<http://x/v2/scope?marker=1>; rel="first"', '<http://x/v2/scope?marker=5>; title="more"; rel="next"']), 5)
    assert.equal(nextMarkerOf('<http://x/v2/scope?marker=3>; rel="next last"'), 3)
  })

  it('finds none without a next link, or without an integer marker', () => {
    assert.equal(nextMarkerOf(undefined), undefined)
    assert.equal(nextMarkerOf(''), undefined)
    assert.equal(nextMarkerOf('<http://x/v2/scope?marker=1>; rel="prev"'), undefined)
    assert.equal(nextMarkerOf('<http://x/v2/scope?offset=100>; rel="next"'), undefined)
    assert.equal(nextMarkerOf('<http://x/v2/scope?marker=abc>; rel="next"'), undefined)
    assert.equal(nextMarkerOf('<http://x/v2/scope?marker=-1>; rel="next"'), undefined)
  })
})
