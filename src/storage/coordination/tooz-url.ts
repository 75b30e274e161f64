/**
 * A coordination URL read as tooz reads it: `tooz/coordination.py`
 * `get_coordinator` splits it with `oslo_utils.netutils.urlsplit` (Python's
 * `urllib.parse.urlsplit`, then any `?` left in the path), reads the query
 * with `urllib.parse.parse_qs`, and each driver collapses repeated options
 * to the last one (`tooz/utils.py` `collapse`).
 *
 * Python's split differs from WHATWG `URL` in ways that decide which server
 * and which lock a deployment uses, so it is reproduced here: the authority
 * ends at the first `/`, `?` or `#` (a `#` in a password starts the
 * fragment); the password runs from the first `:` of the user part to the
 * last `@`; username, password and path are never percent-decoded, while
 * query values are; blank query values are dropped; the host is lowercased.
 * Error messages follow Python's, without quoting any part of the URL.
 */
export interface ToozUrl {
  /** Lowercased, as tooz's driver lookup sees it. */
  scheme: string
  netloc: string
  /** Raw: never percent-decoded. */
  path: string
  /** `parsed_url.hostname`: lowercased, brackets of an IPv6 literal removed; undefined when empty. */
  hostname: string | undefined
  /** `parsed_url.port`; undefined when absent. */
  port: number | undefined
  /** `parsed_url.username`: raw; `''` for `:password@host`; undefined without `@`. */
  username: string | undefined
  /** `parsed_url.password`: raw; undefined without a `:` in the user part. */
  password: string | undefined
  /** Every value of each query option, in order. */
  queryLists: ReadonlyMap<string, readonly string[]>
  /** Each query option's last value, as `utils.collapse` keeps it. */
  options: ReadonlyMap<string, string>
}

/** A coordination URL that tooz could not use; the message is one line and names no secret. */
export class ToozUrlError extends Error {}

const SCHEME_CHARS = /^[A-Za-z][A-Za-z0-9+\-.]*$/

/** Python's `urllib.parse.unquote`: UTF-8 with replacement; a `%` not followed by two hex digits stays. */
function unquote (text: string): string {
  if (!text.includes('%')) return text
  return text.replace(/(?:%[0-9A-Fa-f]{2})+/g, (run) => Buffer.from(run.replace(/%/g, ''), 'hex').toString('utf8'))
}

/** Python's `urllib.parse.parse_qs(query)` (separator `&`, blank values dropped). */
function parseQs (query: string): Map<string, string[]> {
  const lists = new Map<string, string[]>()
  for (const piece of query.split('&')) {
    if (piece === '') continue
    const equals = piece.indexOf('=')
    if (equals < 0) continue
    const value = piece.slice(equals + 1)
    if (value === '') continue
    const name = unquote(piece.slice(0, equals).replace(/\+/g, ' '))
    const list = lists.get(name) ?? []
    list.push(unquote(value.replace(/\+/g, ' ')))
    lists.set(name, list)
  }
  return lists
}

function hostAndPort (netloc: string): { host: string, port: string } {
  const hostinfo = netloc.slice(netloc.lastIndexOf('@') + 1)
  const bracketed = hostinfo.indexOf('[')
  if (bracketed >= 0) {
    const close = hostinfo.indexOf(']', bracketed)
    const host = hostinfo.slice(bracketed + 1, close)
    const after = hostinfo.slice(close + 1)
    return { host, port: after.startsWith(':') ? after.slice(1) : '' }
  }
  const colon = hostinfo.indexOf(':')
  return colon < 0 ? { host: hostinfo, port: '' } : { host: hostinfo.slice(0, colon), port: hostinfo.slice(colon + 1) }
}

/**
 * Splits `url` as `get_coordinator` does. Throws a {@link ToozUrlError} where
 * Python raises (an unbalanced IPv6 bracket, a port that is not a number or
 * is out of range), with Python's wording.
 */
export function parseToozUrl (url: string): ToozUrl {
  // urlsplit strips leading C0 controls and spaces, and removes tab, CR and LF anywhere.
  let rest = url.replace(/^[\x00-\x20]+/, '').replace(/[\t\r\n]/g, '')
  let scheme = ''
  const colon = rest.indexOf(':')
  if (colon > 0 && SCHEME_CHARS.test(rest.slice(0, colon))) {
    scheme = rest.slice(0, colon).toLowerCase()
    rest = rest.slice(colon + 1)
  }
  let netloc = ''
  if (rest.startsWith('//')) {
    const end = rest.slice(2).search(/[/?#]/)
    netloc = end < 0 ? rest.slice(2) : rest.slice(2, end + 2)
    rest = end < 0 ? '' : rest.slice(end + 2)
    if (netloc.includes('[') !== netloc.includes(']')) throw new ToozUrlError('Invalid IPv6 URL')
  }
  const hash = rest.indexOf('#')
  if (hash >= 0) rest = rest.slice(0, hash)
  let query = ''
  const question = rest.indexOf('?')
  if (question >= 0) {
    query = rest.slice(question + 1)
    rest = rest.slice(0, question)
  }
  const { host, port: portText } = hostAndPort(netloc)
  let port: number | undefined
  if (portText !== '') {
    // Python's message quotes the text; here it may be part of a password.
    if (!/^[0-9]+$/.test(portText)) throw new ToozUrlError("Port could not be cast to integer value (tooz's host part ends at the first '/', '?' or '#', even inside a password)")
    port = Number(portText)
    if (port > 65535) throw new ToozUrlError('Port out of range 0-65535')
  }
  let username: string | undefined
  let password: string | undefined
  const at = netloc.lastIndexOf('@')
  if (at >= 0) {
    const userinfo = netloc.slice(0, at)
    const separator = userinfo.indexOf(':')
    username = separator < 0 ? userinfo : userinfo.slice(0, separator)
    password = separator < 0 ? undefined : userinfo.slice(separator + 1)
  }
  const queryLists = parseQs(query)
  const options = new Map([...queryLists].map(([name, values]) => [name, values[values.length - 1]]))
  return {
    scheme,
    netloc,
    path: rest,
    hostname: host === '' ? undefined : host.toLowerCase(),
    port,
    username,
    password,
    queryLists,
    options,
  }
}

/**
 * The URL with its password replaced by `***`, for messages and logs. Masks
 * from the first `:` after `//` to the last `@`, so a password that tooz
 * itself cannot split (one holding `#` or `/`) is still hidden whole.
 */
export function maskToozUrl (url: string): string {
  const start = url.indexOf('//')
  const at = url.lastIndexOf('@')
  if (start < 0 || at < start) return url
  const colon = url.indexOf(':', start + 2)
  if (colon < 0 || colon > at) return url
  return `${url.slice(0, colon + 1)}***${url.slice(at)}`
}

/** An integer option as tooz reads it with `int(value)`; Python's `int` also takes surrounding spaces, `+` and `_`. */
export function intOption (options: ReadonlyMap<string, string>, name: string, fallback: number): number {
  const text = options.get(name)
  if (text === undefined) return fallback
  const trimmed = text.trim()
  if (!/^[+-]?[0-9](?:_?[0-9])*$/.test(trimmed)) throw new ToozUrlError(`option ${name}: invalid literal for int() with base 10: '${text}'`)
  return Number(trimmed.replace(/_/g, ''))
}

/** A boolean option as `oslo_utils.strutils.bool_from_string` reads it (non-strict: anything else is false). */
export function boolOption (options: ReadonlyMap<string, string>, name: string, fallback: boolean): boolean {
  const text = options.get(name)
  if (text === undefined) return fallback
  return ['1', 't', 'true', 'on', 'y', 'yes'].includes(text.trim().toLowerCase())
}
