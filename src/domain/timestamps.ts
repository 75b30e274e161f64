import { invalidInput } from './errors.ts'

// Extended (2019-07-16T08:55:01+02:00, with 'T' or a space) and basic
// (20190716T085501Z) ISO 8601 forms; CONTRACT.md "Timestamps".
const EXTENDED = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,]\d+)?)?)?(Z|[+-]\d{2}(?::?\d{2})?)?$/i
const BASIC = /^(\d{4})(\d{2})(\d{2})(?:T(\d{2})(\d{2})(?:(\d{2})(?:[.,]\d+)?)?)?(Z|[+-]\d{2}(?:\d{2})?)?$/i
// What the databases hand back: SQLite TEXT (SQLAlchemy writes a space and
// six fraction digits; its server default writes no fraction).
const STORED = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.\d+)?$/

/** The earliest and latest instants every engine can store (MySQL DATETIME starts at year 1000). */
const MIN_YEAR = 1000
const MAX_YEAR = 9999

function offsetMinutes (offset: string | undefined): number {
  if (offset === undefined || offset.toUpperCase() === 'Z') return 0
  const digits = offset.slice(1).replace(':', '')
  const hours = Number(digits.slice(0, 2))
  const minutes = digits.length > 2 ? Number(digits.slice(2, 4)) : 0
  if (hours > 23 || minutes > 59) return Number.NaN
  return (offset[0] === '-' ? -1 : 1) * (hours * 60 + minutes)
}

function fromParts (m: RegExpExecArray): Date | undefined {
  const [year, month, day, hour = 0, minute = 0, second = 0] = m.slice(1, 7).map((v) => v === undefined ? undefined : Number(v)) as number[]
  if (month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 59) return undefined
  const ms = Date.UTC(year, month - 1, day, hour, minute, second)
  const utc = new Date(ms)
  // Date.UTC rolls 2019-02-30 over into March: reject instead.
  if (utc.getUTCDate() !== day || utc.getUTCMonth() !== month - 1) return undefined
  const offset = offsetMinutes(m[7])
  if (Number.isNaN(offset)) return undefined
  const result = new Date(utc.getTime() - offset * 60_000)
  const y = result.getUTCFullYear()
  return y < MIN_YEAR || y > MAX_YEAR ? undefined : result
}

/** True when {@link parseTimestamp} accepts `value`. */
export function isTimestamp (value: string): boolean {
  const m = EXTENDED.exec(value) ?? BASIC.exec(value)
  return m !== null && fromParts(m) !== undefined
}

/**
 * Parses a timestamp sent by a client into a UTC instant.
 *
 * Accepts the ISO 8601 extended and basic forms, with `T` or a space, with or
 * without an offset (none means UTC); a date alone is midnight UTC. Fractions
 * of a second are dropped. Anything else, or a year outside 1000–9999, throws
 * INVALID_INPUT naming `field`.
 */
export function parseTimestamp (value: string, field: string): Date {
  const m = EXTENDED.exec(value) ?? BASIC.exec(value)
  const parsed = m === null ? undefined : fromParts(m)
  if (parsed === undefined) {
    throw invalidInput(`Invalid ${field}: '${value.slice(0, 64)}' is not an ISO 8601 timestamp between the years ${MIN_YEAR} and ${MAX_YEAR}.`)
  }
  return parsed
}

/** Formats an instant as the API returns it: `YYYY-MM-DDTHH:MM:SS+00:00`. */
export function formatTimestamp (at: Date): string {
  const ms = at.getTime()
  let text = formatted.get(ms)
  if (text === undefined) {
    text = at.toISOString().slice(0, 19) + '+00:00'
    remember(formatted, ms, text)
  }
  return text
}

// Listing pages format and parse the same few timestamps over and over
// (scopes reset together share them): small memos take this off the
// serializer's hot path. Bounded: cleared when full.
const MEMO_SIZE = 4096
const formatted = new Map<number, string>()
const parsed = new Map<string, number>()

function remember<K, V> (memo: Map<K, V>, key: K, value: V): void {
  if (memo.size >= MEMO_SIZE) memo.clear()
  memo.set(key, value)
}

/**
 * Formats an instant as CloudKitty's SQLAlchemy writes a DateTime into SQLite:
 * naive UTC, a space, six fraction digits (always zero: we keep whole seconds).
 */
export function toStoredText (at: Date): string {
  return at.toISOString().slice(0, 19).replace('T', ' ') + '.000000'
}

/**
 * An instant as a bound to compare a stored datetime column with: naive UTC
 * `YYYY-MM-DD HH:MM:SS`, no fraction. PostgreSQL and MySQL/MariaDB compare
 * it as a datetime; SQLite compares TEXT lexicographically, where this form
 * sorts right against both stored forms (SQLAlchemy's six fraction digits,
 * and the server default's none): a row of the same second compares equal
 * or greater, never less, as {@link fromStored}, which drops fractions,
 * reads it.
 */
export function toStoredBound (at: Date): string {
  return at.toISOString().slice(0, 19).replace('T', ' ')
}

/**
 * Reads a datetime column back, whatever form the engine returned: SQLite
 * text with or without a fraction, or a driver `Date` built from a naive UTC
 * value. Throws on anything else, since that means a corrupt row.
 */
export function fromStored (value: string | Date): Date {
  if (value instanceof Date) return new Date(Math.floor(value.getTime() / 1000) * 1000)
  const known = parsed.get(value)
  if (known !== undefined) return new Date(known)
  const m = STORED.exec(value)
  if (m === null) throw new Error(`Unreadable stored timestamp: ${JSON.stringify(value)}`)
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number)
  const at = new Date(Date.UTC(year, month - 1, day, hour, minute, second))
  at.setUTCFullYear(year)
  remember(parsed, value, at.getTime())
  return at
}

/** The first instant of the month (UTC) that contains `now`: where a newly discovered scope starts. */
export function startOfMonth (now: Date): Date {
  return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1))
}
