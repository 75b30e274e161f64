import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify'
import type { Logger } from 'pino'
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client'
import { RESET_JOB_STATUSES } from '../domain/reset-job.ts'
import type { ServiceFigures } from '../domain/service-figures.ts'
import { notFoundMessage, registerErrorHandler } from './error-handler.ts'
import { serverOptions } from './server-options.ts'

declare module 'fastify' {
  // Set when metrics are enabled: the [metrics] port serves the same registry.
  interface FastifyInstance { metricsRegistry?: Registry }
}

/** Scope counts are a full index scan on large tables: computed at most this often. */
const SCOPE_COUNT_TTL_MS = 15_000

/**
 * Registers `GET /metrics` (Prometheus text format, prom-client) and the
 * hooks that feed it: requests and latency by route, method and status;
 * reset jobs by status and the age of the oldest pending one; scopes by
 * active flag; database pool use; the process's default metrics. Database
 * figures are read when Prometheus scrapes, never on the request path.
 *
 * On this port the route authenticates and checks `scopekeeper:get_metrics`
 * (an admin by default): the figures span every project. The registry is
 * `app.metricsRegistry`, for {@link buildMetricsApp}.
 */
export function registerMetrics (app: FastifyInstance, figures: ServiceFigures): void {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry })
  const labelNames = ['route', 'method', 'status'] as const
  const requests = new Counter({ name: 'scopekeeper_http_requests_total', help: 'HTTP requests answered', labelNames, registers: [registry] })
  const latency = new Histogram({
    name: 'scopekeeper_http_request_duration_seconds', help: 'HTTP request latency', labelNames, registers: [registry],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
  })
  app.addHook('onResponse', async (request, reply) => {
    // The route pattern, not the URL: unknown paths collapse into one series.
    const labels = { route: request.routeOptions.url ?? 'unknown', method: request.method, status: String(reply.statusCode) }
    requests.inc(labels)
    latency.observe(labels, reply.elapsedTime / 1000)
  })

  // prom-client fails the whole scrape when one collect throws: a database
  // outage would then hide the request and process figures just when they
  // matter. A figure that cannot be read is left out of that scrape instead.
  const fromDatabase = (read: (gauge: Gauge) => Promise<void>) => async function (this: Gauge) {
    try {
      await read(this)
    } catch (error) {
      this.reset()
      // A gauge without labels always has its one series: NaN, not a false 0.
      if ((this as unknown as { labelNames: string[] }).labelNames.length === 0) this.set(Number.NaN)
      app.log.warn({ err: error, metric: (this as unknown as { name: string }).name }, 'metric left out: the database did not answer')
    }
  }
  new Gauge({
    name: 'scopekeeper_reset_jobs', help: 'Reset jobs by status', labelNames: ['status'], registers: [registry],
    collect: fromDatabase(async (gauge) => {
      const counts = await figures.resetJobCounts()
      gauge.reset()
      for (const status of RESET_JOB_STATUSES) gauge.set({ status }, counts[status])
    }),
  })
  new Gauge({
    name: 'scopekeeper_reset_queue_lag_seconds', help: 'Age of the oldest pending reset job (0 when none)', registers: [registry],
    collect: fromDatabase(async (gauge) => {
      const oldest = await figures.oldestUnfinishedResetJob()
      gauge.set(oldest === undefined ? 0 : Math.max(0, (Date.now() - oldest.getTime()) / 1000))
    }),
  })
  let scopeCounts: { at: number, counts: { active: number, inactive: number } } | undefined
  new Gauge({
    name: 'scopekeeper_scopes', help: 'Scope states by active flag', labelNames: ['active'], registers: [registry],
    collect: fromDatabase(async (gauge) => {
      if (scopeCounts === undefined || Date.now() - scopeCounts.at > SCOPE_COUNT_TTL_MS) {
        scopeCounts = { at: Date.now(), counts: await figures.scopeCounts() }
      }
      gauge.set({ active: 'true' }, scopeCounts.counts.active)
      gauge.set({ active: 'false' }, scopeCounts.counts.inactive)
    }),
  })
  new Gauge({
    name: 'scopekeeper_db_pool_connections', help: 'Database connections by state', labelNames: ['state'], registers: [registry],
    collect () {
      const { inUse, idle } = figures.poolStats()
      this.set({ state: 'in_use' }, inUse)
      this.set({ state: 'idle' }, idle)
    },
  })

  app.decorate('metricsRegistry', registry)
  app.get('/metrics', { schema: { hide: true }, config: { rule: 'scopekeeper:get_metrics' } }, async (_request, reply) => await scrape(registry, reply))
}

async function scrape (registry: Registry, reply: FastifyReply): Promise<FastifyReply> {
  return await reply.type(registry.contentType).send(await registry.metrics())
}

/**
 * The `[metrics] port` listener's application: `GET /metrics` from
 * `registry` without a token, for a Prometheus that has no Keystone
 * account; every other request is a 404. Kept apart from the API so that
 * access to it is decided by where it listens (`[metrics] host`, loopback
 * by default), never by a token. Never listens; the caller does.
 */
export function buildMetricsApp (registry: Registry, { logger, requestTimeoutSeconds }: { logger: Logger, requestTimeoutSeconds: number }): FastifyInstance {
  const app = Fastify(serverOptions(logger, requestTimeoutSeconds))
  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-openstack-request-id', request.id)
  })
  app.get('/metrics', async (_request, reply) => await scrape(registry, reply))
  app.setNotFoundHandler(async (request, reply) => {
    return await reply.code(404).send({ message: notFoundMessage(request.url.split('?')[0]) })
  })
  registerErrorHandler(app)
  return app
}
