import { randomUUID } from 'node:crypto'
import { LogController, type FastifyBaseLogger, type FastifyHttpOptions } from 'fastify'
import type { Server } from 'node:http'
import type { Logger } from 'pino'
import { clientErrorHandler, frameworkErrorHandler } from './error-handler.ts'

/**
 * The Fastify options of every listener scopekeeper opens (the API and the
 * `[metrics] port`): our request ids, our one log line, our error shape
 * for what never reaches a route, and the bound on receiving a request.
 */
export function serverOptions (logger: Logger, requestTimeoutSeconds: number): FastifyHttpOptions<Server> {
  const requestTimeout = requestTimeoutSeconds * 1000
  return {
    loggerInstance: logger as FastifyBaseLogger,
    genReqId: () => `req-${randomUUID()}`,
    // Our onResponse hook writes the one line per request.
    logController: new LogController({ requestIdLogLabel: 'request_id', disableRequestLogging: true }),
    // `/v2/scope/` is `/v2/scope`, as operators' scripts often write it.
    routerOptions: { ignoreTrailingSlash: true },
    // Node's own bound is off in Fastify: a trickled body would hold a
    // connection, and SIGTERM's drain, for ever.
    requestTimeout,
    // Node looks for requests past their timeout every 30 s by default,
    // which would stretch a 60 s bound to 90; and a body is cut off at
    // requestTimeout only when headersTimeout (60 s) is no longer (Node 20:
    // with the longer headersTimeout a trickled body ran to 60 s whatever
    // requestTimeout said).
    http: {
      requestTimeout,
      headersTimeout: Math.min(60_000, requestTimeout),
      connectionsCheckingInterval: Math.min(1000, requestTimeout / 4),
    },
    clientErrorHandler: clientErrorHandler(logger),
    frameworkErrors: frameworkErrorHandler,
  }
}
