import { randomUUID } from 'node:crypto'
import type { Socket } from 'node:net'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Logger } from 'pino'
import type { ErrorObject } from 'ajv'
import { ScopeKeeperError, type ErrorCode } from '../domain/errors.ts'
import { MAX_VALUES_KEYWORD, RULE_KEYWORD } from './v2/scope/scope-schemas.ts'

const STATUS: Record<ErrorCode, number> = {
  INVALID_INPUT: 400,
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  SCOPE_NOT_FOUND: 404,
  RESET_NOT_FOUND: 404,
  RESET_NOT_CANCELLABLE: 409,
  SCOPE_AMBIGUOUS: 409,
  SCOPE_CONFLICT: 409,
  // RFC 9110 §15.5.13: a precondition (If-Match) evaluated to false.
  SCOPE_CHANGED: 412,
  // draft-ietf-httpapi-idempotency-key-header: 409 while the first request is in progress, 422 for a key reused with another payload.
  IDEMPOTENCY_KEY_IN_PROGRESS: 409,
  IDEMPOTENCY_KEY_REUSED: 422,
  DATABASE_UNAVAILABLE: 503,
  IDENTITY_UNAVAILABLE: 503,
  // RFC 9110 §15.6.3: an upstream server (Keystone) answered, but not with what this request needs.
  IDENTITY_REFUSED: 502,
  IDENTITY_NOT_CONFIGURED: 503,
}

/** The 404 body's message, for any listener's unknown path. */
export function notFoundMessage (path: string): string {
  return `The resource ${path.slice(0, 200)} could not be found.`
}

/**
 * Answers every request no route takes, as CloudKitty's Flask API does: on
 * a known path, OPTIONS is a 200 with an Allow header of the path's methods
 * (Flask's automatic answer, no body) and any other method a 405 with the
 * same Allow; any other path a 404 ({@link notFoundMessage}). Learns the
 * paths from an `onRoute` hook, so it must be called before the routes are
 * added; a route added before it is answered as an unknown path.
 */
export function registerNotFoundHandler (app: FastifyInstance): void {
  const knownPaths = new Map<string, { pattern: RegExp, methods: Set<string> }>()
  app.addHook('onRoute', (route) => {
    const known = knownPaths.get(route.url) ?? { pattern: new RegExp(`^${route.url.replace(/:[^/]+/g, '[^/]+')}/*$`), methods: new Set<string>() }
    for (const m of [route.method].flat()) known.methods.add(m)
    knownPaths.set(route.url, known)
  })
  app.setNotFoundHandler(async (request, reply) => {
    const path = request.url.split('?')[0]
    const methods = [...knownPaths.values()].find((known) => known.pattern.test(path))?.methods
    if (methods !== undefined) {
      const allow = [...new Set([...methods, 'OPTIONS'])].join(', ')
      if (request.method === 'OPTIONS') return await reply.code(200).header('allow', allow).send()
      return await reply.code(405).header('allow', allow)
        .send({ message: `The method ${request.method} is not allowed for ${path}.` })
    }
    return await reply.code(404).send({ message: notFoundMessage(path) })
  })
}

/** Seconds a client should wait before retrying after a 503. */
const RETRY_AFTER_SECONDS = 5

const LOCATIONS: Record<string, string> = { querystring: 'query string', params: 'path', body: 'request body' }

// What the route's own schema says, in words, its `field` of `context`
// (querystring, params, body) accepts: the property's RULE_KEYWORD
// annotation, which the schema builders set beside the bounds it describes.
function ruleOf (request: FastifyRequest, context: string, field: string): string | undefined {
  const part = (request.routeOptions.schema as Record<string, { properties?: Record<string, Record<string, unknown>> } | undefined> | undefined)?.[context]
  const rule = part?.properties?.[field]?.[RULE_KEYWORD]
  return typeof rule === 'string' ? rule : undefined
}

function validationMessage (errors: ErrorObject[], context: string | undefined, request: FastifyRequest): string {
  const where = LOCATIONS[context ?? 'body'] ?? 'request body'
  const first = errors[0]
  if (first.keyword === 'additionalProperties') {
    const field = String(first.params.additionalProperty)
    return context === 'querystring' ? `Unknown query parameter '${field}'.` : `Unknown field '${field}' in the request body.`
  }
  if (context === 'headers') {
    // `idempotency-key` → `Idempotency-Key`, as the header is written.
    const header = first.instancePath.split('/')[1] ?? ''
    const name = header.split('-').map((word) => word.charAt(0).toUpperCase() + word.slice(1)).join('-')
    const rule = ruleOf(request, 'headers', header)
    return `Invalid ${name} header: must be ${rule ?? first.message ?? 'a valid value'}.`
  }
  if (first.keyword === 'required') return `Missing required field '${String(first.params.missingProperty)}' in the ${where}.`
  const field = first.instancePath.split('/')[1]
  if (field === undefined) return context === 'querystring' ? 'Invalid query string.' : 'The request body must be a JSON object.'
  if (first.keyword === MAX_VALUES_KEYWORD) return `Too many values for ${field} in the ${where}: at most ${String(first.params.limit)}.`
  const rule = ruleOf(request, context ?? 'body', field)
  return `Invalid ${field} in the ${where}: ${rule === undefined ? first.message ?? 'invalid value' : `must be ${rule}`}.`
}

/**
 * The only place an error becomes a status code: a {@link ScopeKeeperError}
 * by its code; a Fastify client error (validation, bad JSON, content type,
 * body size) keeps its 4xx status with our `{"message"}` body; anything else
 * is our bug, a 500 whose cause is logged, never shown.
 */
export function registerErrorHandler (app: FastifyInstance): void {
  app.setErrorHandler(async (error: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    // Refused before its body was read (a 401 at onRequest): Node would
    // keep reading whatever the client trickles in on this connection,
    // unauthenticated and never timed out. Closing ends it.
    if (!request.raw.complete) reply.header('connection', 'close')
    if (error instanceof ScopeKeeperError) {
      const status = STATUS[error.code]
      if (status === 503) reply.header('retry-after', String(RETRY_AFTER_SECONDS))
      if (error.wwwAuthenticate !== undefined) reply.header('www-authenticate', error.wwwAuthenticate)
      return await reply.code(status).send({ message: error.message })
    }
    if (error.validation !== undefined) {
      return await reply.code(400).send({ message: validationMessage(error.validation as ErrorObject[], error.validationContext, request) })
    }
    const status = error.statusCode
    if (status !== undefined && status >= 400 && status < 500) {
      const message = error.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE'
        ? `Unsupported content type '${String(request.headers['content-type']).slice(0, 100)}': send application/json.`
        : error.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || error instanceof SyntaxError
          ? 'The request body is not valid JSON.'
          : error.message
      return await reply.code(status).send({ message })
    }
    request.log.error({ err: error }, 'unhandled error')
    return await reply.code(500).send({ message: 'The server failed to process the request; see its log for the request id.' })
  })
}

/** What Node's HTTP parser refuses before a request reaches Fastify, by parser error code. */
const CLIENT_ERRORS: Record<string, { status: number, reason: string, message: string }> = {
  ERR_HTTP_REQUEST_TIMEOUT: { status: 408, reason: 'Request Timeout', message: 'The request was not received in time ([api] request_timeout).' },
  HPE_HEADER_OVERFLOW: { status: 431, reason: 'Request Header Fields Too Large', message: 'The request headers are too large.' },
}
const BAD_REQUEST = { status: 400, reason: 'Bad Request', message: 'The request is not valid HTTP.' }

/**
 * Fastify's `clientErrorHandler`: errors Node's HTTP parser raises (a
 * malformed request, oversized headers, a request not received within
 * `[api] request_timeout`) answered in the same `{"message"}` shape, with an
 * `x-openstack-request-id`, and the connection closed, as Node does.
 */
export function clientErrorHandler (logger: Logger) {
  return (error: Error & { code?: string }, socket: Socket): void => {
    if (error.code === 'ECONNRESET' || socket.destroyed) return
    const { status, reason, message } = CLIENT_ERRORS[error.code ?? ''] ?? BAD_REQUEST
    const requestId = `req-${randomUUID()}`
    const body = JSON.stringify({ message })
    logger.info({ request_id: requestId, status, code: error.code, client: socket.remoteAddress }, 'client error')
    if (socket.writable) {
      socket.end(`HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nx-openstack-request-id: ${requestId}\r\nConnection: close\r\n\r\n${body}`)
    }
    socket.destroySoon()
  }
}

/**
 * Fastify's `frameworkErrors`: a path it cannot decode (`/%zz`) or a path
 * parameter over its length is refused before routing and before our
 * hooks, in Fastify's own shape and echoing the path. Answered here in
 * ours instead, with the request id the hooks would have set.
 */
export function frameworkErrorHandler (error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  const status = error.code === 'FST_ERR_MAX_PARAM_LENGTH' ? 414 : 400
  const message = error.code === 'FST_ERR_BAD_URL'
    ? 'The request path is not a valid URL: each % must start an escape of two hexadecimal digits.'
    : error.code === 'FST_ERR_MAX_PARAM_LENGTH' ? 'A segment of the request path is too long.' : 'The request is not valid.'
  request.log.info({ status, code: error.code }, 'request refused before routing')
  void reply.code(status).header('x-openstack-request-id', request.id).send({ message })
}
