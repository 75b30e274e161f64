/** Every business outcome that is not a success, as a stable code. */
export type ErrorCode =
  | 'INVALID_INPUT'
  | 'UNAUTHENTICATED'
  | 'FORBIDDEN'
  | 'SCOPE_NOT_FOUND'
  | 'RESET_NOT_FOUND'
  | 'SCOPE_AMBIGUOUS'
  | 'SCOPE_CONFLICT'
  | 'DATABASE_UNAVAILABLE'

/**
 * The one error type of scopekeeper. `api/error-handler.ts` is the only place
 * that turns its code into an HTTP status; the message is shown to clients
 * verbatim, so it is one sentence naming the field or the scope.
 */
export class ScopeKeeperError extends Error {
  constructor (readonly code: ErrorCode, message: string, options?: ErrorOptions) {
    super(message, options)
    this.name = 'ScopeKeeperError'
  }
}

/** Shorthand for the most common error: a request field that is not acceptable. */
export function invalidInput (message: string): ScopeKeeperError {
  return new ScopeKeeperError('INVALID_INPUT', message)
}
