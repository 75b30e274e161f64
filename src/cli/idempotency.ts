import { randomUUID } from 'node:crypto'
import { ConnectionError, type ConnectionFailure } from './http-transport.ts'

/**
 * The `Idempotency-Key` of one CLI invocation: a random UUID, unless the
 * operator gave `--idempotency-key`. The server replays its first answer to
 * a repeat of the same key, so a retried PUT, PATCH or POST acts once.
 */
export function idempotencyKeyOf (given: string | undefined): string {
  return given ?? randomUUID()
}

/** The methods that change something: the only ones sent with an `Idempotency-Key`, and so the only ones retried. */
export const KEYED_METHODS: ReadonlySet<string> = new Set(['PUT', 'PATCH', 'POST'])

// Failures after which the request may not have arrived, or arrived and its
// answer was lost: a second try can succeed, and the key makes it safe. A
// TLS or DNS failure would only fail again.
const RETRIED_FAILURES: ReadonlySet<ConnectionFailure> = new Set(['refused', 'reset', 'unreachable', 'timeout'])

/** How many times a keyed request is sent at most: the first try and one retry. */
export const MAX_ATTEMPTS = 2

/**
 * Whether to send a request again after `error` on try `attempt` (1 for
 * the first): once, for a PUT, PATCH or POST that carries an
 * `Idempotency-Key`, after a connection failure a retry may cure. An answer
 * of any status, even 5xx, is never retried: the server did answer.
 */
export function shouldRetry (request: { method: string, idempotencyKey?: string }, error: unknown, attempt: number): boolean {
  return attempt < MAX_ATTEMPTS &&
    KEYED_METHODS.has(request.method) &&
    request.idempotencyKey !== undefined && request.idempotencyKey !== '' &&
    error instanceof ConnectionError && RETRIED_FAILURES.has(error.kind)
}
