import { invalidInput } from './errors.ts'

/**
 * The facts about a scope state's fields that every layer shares, once:
 * the API's schemas and messages, the storage's migration and the
 * configuration's defaults derive theirs from here.
 */

/**
 * The widths of CloudKitty's `cloudkitty_storage_states` columns, in
 * characters, as `cloudkitty/storage_state/models.py` declares them:
 * `identifier = sqlalchemy.Column(sqlalchemy.String(256), …)`, and
 * `scope_key`, `fetcher` and `collector` `sqlalchemy.String(40)`. Our
 * migration 0001 creates the same columns; the API refuses a longer value
 * (PostgreSQL and strict MariaDB would, and SQLite would keep it whole);
 * a configured default must fit too.
 */
export const COLUMN_WIDTHS = { identifier: 256, scope_key: 40, fetcher: 40, collector: 40 } as const

/**
 * The words `active` may be sent as, by the value they mean: in a query
 * string, or as a JSON string, in any case. The first of each is the
 * value's name, the others its alternatives. A body may also send a JSON
 * boolean, or a JSON number written as one of these words (CloudKitty's
 * client sends `"active": 0`): see {@link ACTIVE_NUMBERS}.
 */
export const ACTIVE_FORMS = { true: ['true', '1'], false: ['false', '0'] } as const

/** Every word of {@link ACTIVE_FORMS}, paired: the names (true, false), then each alternative (1, 0). */
const ACTIVE_PAIRS: ReadonlyArray<readonly [string, string]> = ACTIVE_FORMS.true.map((word, i) => [word, ACTIVE_FORMS.false[i]] as const)

/** Every word of {@link ACTIVE_FORMS}, in the order messages list them: true, false, 1, 0. */
export const ACTIVE_WORDS: readonly string[] = ACTIVE_PAIRS.flat()

/** The JSON numbers a body's `active` may be: the words of {@link ACTIVE_FORMS} that are numerals (1, 0). */
export const ACTIVE_NUMBERS: readonly number[] = ACTIVE_WORDS.filter((word) => /^[0-9]+$/.test(word)).map(Number)

/** A list in words: `a`, `a or b`, `a, b or c`. */
export function wordList (words: readonly string[]): string {
  return words.length <= 1 ? words.join('') : `${words.slice(0, -1).join(', ')} or ${words[words.length - 1]}`
}

/** What `active` accepts, in words, for validation errors. */
export const ACTIVE_RULE = `${ACTIVE_PAIRS[0].join(' or ')} (also ${ACTIVE_PAIRS.slice(1).map((pair) => pair.join('/')).join(', ')}, ` +
  `or the strings ${ACTIVE_WORDS.map((word) => `"${word}"`).join(', ')})`

/** Reads `active` in every accepted form: booleans, 0/1, and the strings true/false/1/0 in any case. */
export function parseActive (value: boolean | number | string): boolean {
  if (typeof value === 'boolean') return value
  return parseBooleanWord(String(value), 'active')
}

/**
 * Reads a boolean sent as a word of {@link ACTIVE_FORMS} (true/false/1/0 in
 * any case), as `active` is read: the one reading of boolean words, for
 * `active` and for flags such as the query's `dry_run`. Anything else
 * throws INVALID_INPUT naming `field`.
 */
export function parseBooleanWord (word: string, field: string): boolean {
  const text = word.toLowerCase()
  if ((ACTIVE_FORMS.true as readonly string[]).includes(text)) return true
  if ((ACTIVE_FORMS.false as readonly string[]).includes(text)) return false
  throw invalidInput(`Invalid ${field}: '${text}' is not ${wordList(ACTIVE_WORDS)}.`)
}
