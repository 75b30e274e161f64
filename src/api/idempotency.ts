import type { FastifyInstance, FastifyRequest } from 'fastify'
import { invalidInput } from '../domain/errors.ts'
import {
  callerOf, IDEMPOTENCY_KEY_MAX_LENGTH, IDEMPOTENCY_KEY_PATTERN, IDEMPOTENCY_KEY_RULE, requestHash,
  type IdempotencyClaim, type IdempotencyService,
} from '../domain/idempotency.ts'
import type { DryRunQuery } from './v2/scope/scope-schemas.ts'
import { dryRunFromWire } from './v2/scope/scope-wire.ts'

declare module 'fastify' {
  // `idempotent`: the route honours an Idempotency-Key header (PUT, PATCH, POST /v2/scope; POST /v2/scope/activation).
  interface FastifyContextConfig { idempotent?: boolean }
  // The key this request claimed; `settled` once its answer is stored or the key released.
  interface FastifyRequest { idempotency?: { claim: IdempotencyClaim, settled: boolean } }
}

/** The headers a replay repeats besides its status and body. */
const REPLAYED_HEADERS = ['location', 'etag', 'content-type']

/** The request's Idempotency-Key, undefined when it sent none; a 400 naming the header when malformed. */
export function idempotencyKeyOf (request: FastifyRequest): string | undefined {
  const value = request.headers['idempotency-key']
  if (value === undefined) return undefined
  if (typeof value !== 'string' || value.length === 0 || value.length > IDEMPOTENCY_KEY_MAX_LENGTH || !IDEMPOTENCY_KEY_PATTERN.test(value)) {
    throw invalidInput(`Invalid Idempotency-Key header: must be ${IDEMPOTENCY_KEY_RULE}.`)
  }
  return value
}

/**
 * Honours `Idempotency-Key` on the routes whose config says `idempotent`
 * (`domain/idempotency.ts` says what a repeat gets). A preHandler, after the
 * policy check, claims the key or replays the first answer, with
 * `Idempotent-Replayed: true`; onSend stores the answer of the request that
 * claimed it (2xx and 4xx; a 5xx releases the key so that a retry acts),
 * before the client sees it, so a client's retry always finds it. Expired
 * keys are purged, a bounded batch after each new key's response.
 * Register after the policy hook and before the routes.
 */
export function registerIdempotency (app: FastifyInstance, service: IdempotencyService): void {
  app.decorateRequest('idempotency')

  app.addHook('preHandler', async (request, reply) => {
    if (request.routeOptions.config.idempotent !== true) return
    // A dry run writes nothing, so repeating it is safe as it is; claiming
    // its key would replay the preview to the real request sent after it.
    // (POST /v2/scope/activation may also say so in its body.)
    if (dryRunFromWire(request.query as DryRunQuery) || (request.body as { dry_run?: unknown } | undefined)?.dry_run === true) return
    const key = idempotencyKeyOf(request)
    if (key === undefined) return
    const outcome = await service.begin({
      caller: callerOf(request.actor),
      key,
      method: request.method,
      // The route, not the URL: `/v2/scope/` is `/v2/scope`.
      path: request.routeOptions.url ?? request.url.split('?')[0],
      requestHash: requestHash(request.body),
    })
    if (outcome.kind === 'proceed') {
      request.idempotency = { claim: outcome.claim, settled: false }
      return
    }
    const { status, headers, body } = outcome.response
    return await reply.code(status).headers({ ...headers, 'idempotent-replayed': 'true' }).send(body)
  })

  app.addHook('onSend', async (request, reply, payload) => {
    const held = request.idempotency
    if (held === undefined || held.settled) return payload
    held.settled = true
    const { claim } = held
    try {
      if (reply.statusCode >= 500 || !(typeof payload === 'string' || Buffer.isBuffer(payload))) {
        await service.release(claim)
      } else {
        const headers: Record<string, string> = {}
        for (const name of REPLAYED_HEADERS) {
          const value = reply.getHeader(name)
          if (value !== undefined) headers[name] = String(value)
        }
        await service.complete(claim, { status: reply.statusCode, headers, body: payload.toString() })
      }
    } catch (error) {
      // The answer goes out all the same; the claim stays in progress until
      // its lease ends, when a retry acts again.
      request.log.warn({ err: error }, 'the answer of an Idempotency-Key could not be stored')
    }
    return payload
  })

  app.addHook('onResponse', async (request) => {
    const held = request.idempotency
    if (held === undefined) return
    try {
      // No onSend ran (the connection closed first): give the key up.
      if (!held.settled) await service.release(held.claim)
      // Once the client has its answer, and only after a new key.
      await service.purgeExpired()
    } catch (error) {
      request.log.warn({ err: error }, 'Idempotency-Key bookkeeping failed')
    }
  })
}
