import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { ACTIVE_FORMS, ACTIVE_NUMBERS, ACTIVE_RULE, ACTIVE_WORDS, parseActive, parseBooleanWord, wordList } from '../../../src/domain/scope-fields.ts'

describe('wordList', () => {
  it('lists words with commas and a last "or"', () => {
    assert.equal(wordList([]), '')
    assert.equal(wordList(['a']), 'a')
    assert.equal(wordList(['a', 'b']), 'a or b')
    assert.equal(wordList(['a', 'b', 'c', 'd']), 'a, b, c or d')
  })
})

describe('the forms of active', () => {
  it('are the words true/false and 1/0, and the JSON numbers 1 and 0', () => {
    assert.deepEqual(ACTIVE_WORDS, ['true', 'false', '1', '0'])
    assert.deepEqual(ACTIVE_NUMBERS, [1, 0])
  })

  it('are said in the words the 400s have always used', () => {
    assert.equal(ACTIVE_RULE, 'true or false (also 1/0, or the strings "true", "false", "1", "0")')
  })

  it('parse to the value they name, words in any case', () => {
    for (const [value, words] of [[true, ACTIVE_FORMS.true], [false, ACTIVE_FORMS.false]] as const) {
      assert.equal(parseActive(value), value)
      for (const word of words) {
        assert.equal(parseActive(word), value, word)
        assert.equal(parseActive(word.toUpperCase()), value, word)
      }
    }
    assert.equal(parseActive('tRuE'), true)
    assert.equal(parseActive(1), true)
    assert.equal(parseActive(0), false)
  })

  it('refuse anything else, naming the value (lowercased) and the words', () => {
    for (const [value, text] of [['maybe', 'maybe'], ['YES', 'yes'], ['', ''], [' true', ' true'], [2, '2'], [0.5, '0.5']] as const) {
      assert.throws(() => parseActive(value), { code: 'INVALID_INPUT', message: `Invalid active: '${text}' is not true, false, 1 or 0.` })
    }
  })

  it('read the same for any boolean word field (dry_run), naming that field', () => {
    for (const word of ACTIVE_WORDS) assert.equal(parseBooleanWord(word.toUpperCase(), 'dry_run'), parseActive(word), word)
    assert.throws(() => parseBooleanWord('On', 'dry_run'), { code: 'INVALID_INPUT', message: "Invalid dry_run: 'on' is not true, false, 1 or 0." })
  })
})
