import { createHash, randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Actor } from './change-context.ts'
import { ScopeKeeperError } from './errors.ts'

/**
 * Idempotency keys (issue 14 §3): a PUT, PATCH or POST /v2/scope sent with an
 * `Idempotency-Key` acts once; a repeat of it (same caller, key, method, path
 * and body) within `[api] idempotency_ttl` gets the first answer back.
 *
 * The first request claims the key by inserting an in-progress row: the
 * table's primary key decides who is first, across processes. A repeat that
 * finds the claim in progress waits for it (polling, bounded), then replays
 * its answer. A 2xx or 4xx answer is stored and replayed; a 5xx releases the
 * claim so a retry acts. A claim older than the lease (the first request's
 * process died) is taken over.
 */

/** The longest key accepted, and what it may contain: printable ASCII. */
export const IDEMPOTENCY_KEY_MAX_LENGTH = 255
export const IDEMPOTENCY_KEY_PATTERN = /^[\x20-\x7e]+$/
export const IDEMPOTENCY_KEY_RULE = `1 to ${IDEMPOTENCY_KEY_MAX_LENGTH} printable ASCII characters`

/** What makes two requests "the same": who sent them, with which key, and what they asked. */
export interface IdempotentRequest {
  caller: string
  key: string
  method: string
  path: string
  /** {@link requestHash} of the body. */
  requestHash: string
}

/** An answer as it is replayed. */
export interface StoredResponse {
  status: number
  /** Lower-case names: location, etag, content-type (those present). */
  headers: Record<string, string>
  body: string
}

/** A key's row: the request that claimed it and, once answered, its answer. */
export interface IdempotencyRecord extends IdempotentRequest {
  claimToken: string
  createdAt: Date
  response: StoredResponse | undefined
}

/** A claim held by the request that acts; only its holder completes or releases it. */
export interface IdempotencyClaim {
  caller: string
  key: string
  token: string
}

/** What storage answers for idempotency keys (`storage/idempotency-repository.ts`). */
export interface IdempotencyKeys {
  /** Inserts an in-progress row for `request`; false when the caller already has a row for this key. */
  claim: (request: IdempotentRequest, token: string, now: Date) => Promise<boolean>
  find: (caller: string, key: string) => Promise<IdempotencyRecord | undefined>
  /** Stores the answer of the claim `token`; a claim that is no longer `token`'s is left alone. */
  complete: (claim: IdempotencyClaim, response: StoredResponse, now: Date) => Promise<void>
  /** Deletes the row if it still carries `token`. */
  remove: (caller: string, key: string, token: string) => Promise<void>
  /** Deletes about `limit` of the rows created before `createdBefore` (oldest first); returns how many. */
  purgeExpired: (createdBefore: Date, limit: number) => Promise<number>
}

/** What {@link IdempotencyService.begin} decided: act (holding the claim), or answer as before. */
export type IdempotencyOutcome =
  | { kind: 'proceed', claim: IdempotencyClaim }
  | { kind: 'replay', response: StoredResponse }

/** Rows deleted per purge: a request never deletes more than this. */
export const PURGE_BATCH = 100

const FIRST_POLL_MS = 10
const MAX_POLL_MS = 200

/** JSON with every object's keys sorted, so `{"a":1,"b":2}` and `{"b":2,"a":1}` are one body. */
export function canonicalJson (value: unknown): string {
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v ?? null)).join(',')}]`
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0)
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`
  }
  return JSON.stringify(value ?? null)
}

/** SHA-256 (hex) of the body's {@link canonicalJson}. */
export function requestHash (body: unknown): string {
  return createHash('sha256').update(canonicalJson(body)).digest('hex')
}

/** Whose key it is: a Keystone user in a project, or everyone under noauth. Fits 255 characters. */
export function callerOf (actor: Actor): string {
  if (actor.auth === 'noauth') return 'noauth'
  const caller = `keystone:${actor.userId ?? ''}:${actor.projectId ?? ''}`
  return caller.length <= 255 ? caller : `keystone-sha256:${createHash('sha256').update(caller).digest('hex')}`
}

/** Whole seconds, as the rows store their times. */
function seconds (at: Date): number {
  return Math.floor(at.getTime() / 1000)
}

export interface IdempotencyOptions {
  keys: IdempotencyKeys
  /** `[api] idempotency_ttl`: a key older than this is forgotten. */
  ttlSeconds: number
  /** A claim in progress for longer than this is abandoned (its process died) and taken over. */
  leaseSeconds: number
  /** How long a repeat waits for the claim in progress before a 409. */
  waitSeconds: number
  clock?: () => Date
}

export class IdempotencyService {
  private readonly keys: IdempotencyKeys
  private readonly clock: () => Date

  constructor (private readonly options: IdempotencyOptions) {
    this.keys = options.keys
    this.clock = options.clock ?? (() => new Date())
  }

  /**
   * Claims `request`'s key, or answers what its first request answered. A
   * key in use by a different request is IDEMPOTENCY_KEY_REUSED; one still
   * in progress after `waitSeconds` is IDEMPOTENCY_KEY_IN_PROGRESS.
   */
  async begin (request: IdempotentRequest): Promise<IdempotencyOutcome> {
    const { caller, key } = request
    const deadline = Date.now() + this.options.waitSeconds * 1000
    let pollMs = FIRST_POLL_MS
    for (;;) {
      const now = this.clock()
      const token = randomUUID()
      if (await this.keys.claim(request, token, now)) return { kind: 'proceed', claim: { caller, key, token } }
      const found = await this.keys.find(caller, key)
      if (found !== undefined) {
        const age = seconds(now) - seconds(found.createdAt)
        if (age > this.options.ttlSeconds || (found.response === undefined && age > this.options.leaseSeconds)) {
          // Expired, or abandoned by a process that died: as if never sent.
          await this.keys.remove(caller, key, found.claimToken)
          continue
        }
        if (found.method !== request.method || found.path !== request.path || found.requestHash !== request.requestHash) {
          throw new ScopeKeeperError('IDEMPOTENCY_KEY_REUSED',
            `The Idempotency-Key was already used for a different request (${found.method} ${found.path} with another body); send this one with a new key.`)
        }
        if (found.response !== undefined) return { kind: 'replay', response: found.response }
      }
      // In progress (or released just now): wait, then look again.
      const left = deadline - Date.now()
      if (left <= 0) {
        throw new ScopeKeeperError('IDEMPOTENCY_KEY_IN_PROGRESS',
          'A request with this Idempotency-Key is still in progress; retry it later.')
      }
      await sleep(Math.min(pollMs, left))
      pollMs = Math.min(pollMs * 2, MAX_POLL_MS)
    }
  }

  /** Stores the answer of the request holding `claim`, for its repeats. */
  async complete (claim: IdempotencyClaim, response: StoredResponse): Promise<void> {
    await this.keys.complete(claim, response, this.clock())
  }

  /** Gives the key up (the request failed on the server's side): a retry acts. */
  async release (claim: IdempotencyClaim): Promise<void> {
    await this.keys.remove(claim.caller, claim.key, claim.token)
  }

  /** Deletes at most about {@link PURGE_BATCH} expired keys, oldest first. */
  async purgeExpired (): Promise<number> {
    const cutoff = new Date((seconds(this.clock()) - this.options.ttlSeconds) * 1000)
    return await this.keys.purgeExpired(cutoff, PURGE_BATCH)
  }
}
