import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { firstForwardedElement } from '../../../src/api/proxy-headers.ts'

const read = (header: string) => Object.fromEntries(firstForwardedElement(header))

describe('firstForwardedElement', () => {
  it("splits as oslo's _parse_rfc7239_header: the first element, names lowercased, names and values trimmed", () => {
    assert.deepEqual(read('for=192.0.2.60;proto=http;by=203.0.113.43, for=198.51.100.17'), { for: '192.0.2.60', proto: 'http', by: '203.0.113.43' })
    assert.deepEqual(read(' For = 192.0.2.60 ; PROTO=https '), { for: '192.0.2.60', proto: 'https' })
    assert.deepEqual(read('proto=http;proto=https'), { proto: 'https' })
    assert.deepEqual(read('for=;bare;;=x'), { for: '', bare: '' })
    assert.deepEqual(read(''), {})
  })

  it('unquotes quoted values, and does not split inside them', () => {
    assert.deepEqual(read('for="[2001:db8:cafe::17]:4711";host="a.example"'), { for: '[2001:db8:cafe::17]:4711', host: 'a.example' })
    assert.deepEqual(read('for="_a,b;c";proto=https, for=x'), { for: '_a,b;c', proto: 'https' })
    assert.deepEqual(read('host="a\\"b\\\\c";proto=http'), { host: 'a"b\\c', proto: 'http' })
  })

  it('keeps what it can of an unterminated quote or a trailing backslash', () => {
    assert.deepEqual(read('proto=https;host="a.example'), { proto: 'https', host: '"a.example' })
    assert.deepEqual(read('proto=https;host="a\\'), { proto: 'https', host: '"a\\' })
  })
})
