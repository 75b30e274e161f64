// The console's one way to the API: same origin, JSON, the token from
// session storage (per tab, gone when the tab closes, never sent by the
// browser on its own as a cookie would be, so no request can be forged
// from another site).

export const TOKEN_KEY = 'scopekeeper.token'

// Which policy rule guards what (src/auth/policy/default-rules.ts): a 403
// names it, so an operator knows what to ask for.
const RULES: Array<[string, RegExp, string]> = [
  ['GET', /^\/v2\/scope\/summary$/, 'scope:get_summary'],
  ['GET', /^\/v2\/scope\/events$/, 'scope:get_events'],
  ['GET', /^\/v2\/scope(\/resets(\/\d+)?)?$/, 'scope:get_state'],
  ['PUT', /^\/v2\/scope$/, 'scope:reset_state'],
  ['PATCH', /^\/v2\/scope$/, 'scope:patch_state'],
  ['POST', /^\/v2\/scope$/, 'scope:post_state'],
  ['POST', /^\/v2\/scope\/activation$/, 'scope:post_activation'],
  ['DELETE', /^\/v2\/scope\/resets\/\d+$/, 'scope:cancel_reset'],
]

export function ruleOf (method: string, path: string): string | undefined {
  return RULES.find(([m, pattern]) => m === method && pattern.test(path))?.[2]
}

export class ApiError extends Error {
  readonly status: number
  readonly rule: string | undefined
  constructor (status: number, message: string, rule: string | undefined) {
    super(message)
    this.status = status
    this.rule = rule
  }
}

export interface Answer<T> { status: number, headers: Headers, body: T }

export type Query = Record<string, string | undefined>

export function queryString (query: Query): string {
  const params = new URLSearchParams()
  for (const [key, value] of Object.entries(query)) if (value !== undefined && value !== '') params.set(key, value)
  const text = params.toString()
  return text === '' ? '' : `?${text}`
}

/** Called on a 401: the token is missing, expired or revoked. */
let onUnauthorized: () => void = () => {}
export function setUnauthorizedHandler (handler: () => void): void { onUnauthorized = handler }

export async function api<T> (method: string, path: string, { query = {}, body, headers = {}, allow = [] }: {
  query?: Query, body?: unknown, headers?: Record<string, string>, allow?: number[]
} = {}): Promise<Answer<T>> {
  const token = sessionStorage.getItem(TOKEN_KEY)
  const sent: Record<string, string> = { accept: 'application/json', ...headers }
  if (token !== null) sent['x-auth-token'] = token
  if (body !== undefined) sent['content-type'] = 'application/json'
  const response = await fetch(path + queryString(query), {
    method, headers: sent, body: body === undefined ? undefined : JSON.stringify(body), credentials: 'omit',
  })
  const text = await response.text()
  let parsed: unknown = {}
  try { parsed = text === '' ? {} : JSON.parse(text) } catch { parsed = { message: text } }
  if (response.ok || allow.includes(response.status)) return { status: response.status, headers: response.headers, body: parsed as T }
  const message = (parsed as { message?: string }).message ?? `HTTP ${response.status}`
  if (response.status === 401) onUnauthorized()
  throw new ApiError(response.status, message, response.status === 403 ? ruleOf(method, path) : undefined)
}

/** A fresh Idempotency-Key: a retried click acts once. */
export function idempotencyKey (): string {
  return crypto.randomUUID()
}

/** The marker of a `Link: <…>; rel="next"` header, if any. */
export function nextMarker (headers: Headers): string | undefined {
  const link = headers.get('link')
  const match = link?.match(/<([^>]+)>\s*;\s*rel="?next"?/)
  if (match === null || match === undefined) return undefined
  return new URL(match[1], location.href).searchParams.get('marker') ?? undefined
}
