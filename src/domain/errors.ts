/** Every business outcome that is not a success, as a stable code. */
export type ErrorCode =
  | 'INVALID_INPUT'
  | 'UNAUTHENTICATED'
  | 'FORBIDDEN'
  | 'SCOPE_NOT_FOUND'
  | 'RESET_NOT_FOUND'
  /** A reset job that is over (done or failed) cannot be cancelled. */
  | 'RESET_NOT_CANCELLABLE'
  | 'SCOPE_AMBIGUOUS'
  | 'SCOPE_CONFLICT'
  /** A conditional change (If-Match) found the row changed since the caller read it. */
  | 'SCOPE_CHANGED'
  | 'IDEMPOTENCY_KEY_IN_PROGRESS'
  | 'IDEMPOTENCY_KEY_REUSED'
  | 'DATABASE_UNAVAILABLE'
  | 'IDENTITY_UNAVAILABLE'
  /** Keystone answered, but refused the credentials or the request scopekeeper made with them (reconciliation). */
  | 'IDENTITY_REFUSED'
  /** Reconciliation needs Keystone credentials ([fetcher_keystone] or [keystone_authtoken]) that are not set. */
  | 'IDENTITY_NOT_CONFIGURED'

/** What a {@link ScopeKeeperError} may carry besides its cause. */
export interface ScopeKeeperErrorOptions extends ErrorOptions {
  /** The challenge of a 401 (`WWW-Authenticate`), e.g. `Keystone uri="…"`. */
  wwwAuthenticate?: string
}

/**
 * The one error type of scopekeeper. `api/error-handler.ts` is the only place
 * that turns its code into an HTTP status; the message is shown to clients
 * verbatim, so it is one sentence naming the field or the scope.
 */
export class ScopeKeeperError extends Error {
  readonly wwwAuthenticate: string | undefined

  constructor (readonly code: ErrorCode, message: string, options?: ScopeKeeperErrorOptions) {
    super(message, options)
    this.name = 'ScopeKeeperError'
    this.wwwAuthenticate = options?.wwwAuthenticate
  }
}

/** Shorthand for the most common error: a request field that is not acceptable. */
export function invalidInput (message: string): ScopeKeeperError {
  return new ScopeKeeperError('INVALID_INPUT', message)
}
