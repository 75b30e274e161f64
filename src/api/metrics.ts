import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify'
import type { Logger } from 'pino'
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client'
import { RESET_JOB_STATUSES } from '../domain/reset-job.ts'
import { LAG_BUCKET_PERIODS, lagFigures, stuckBefore, type LagFigures } from '../domain/scope-lag.ts'
import type { ServiceFigures } from '../domain/service-figures.ts'
import { notFoundMessage, registerErrorHandler } from './error-handler.ts'
import { serverOptions } from './server-options.ts'

declare module 'fastify' {
  // Set when metrics are enabled: the [metrics] port serves the same registry.
  interface FastifyInstance { metricsRegistry?: Registry }
}

/** Scope counts are a full index scan on large tables: computed at most this often. */
const SCOPE_COUNT_TTL_MS = 15_000

/** What the lag metrics are measured with. */
export interface LagMetricOptions {
  /** `[collect] period`, seconds. */
  periodSeconds: number
  /** `[collect] stuck_after_periods`. */
  stuckAfterPeriods: number
  clock?: () => Date
}

/**
 * Registers `GET /metrics` (Prometheus text format, prom-client) and the
 * hooks that feed it: requests and latency by route, method and status;
 * reset jobs by status and the age of the oldest pending one; scopes by
 * active flag; the lag of the active scopes (a histogram, its maximum, the
 * stuck ones) and the period; database pool use; the process's default
 * metrics. Database figures are read when Prometheus scrapes, never on the
 * request path; scope figures at most every 15 s.
 *
 * On this port the route authenticates and checks `scopekeeper:get_metrics`
 * (an admin by default): the figures span every project. The registry is
 * `app.metricsRegistry`, for {@link buildMetricsApp}.
 */
export function registerMetrics (app: FastifyInstance, figures: ServiceFigures, lag: LagMetricOptions): void {
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
  registerLagMetrics(registry, figures, lag, (error, metric) => {
    app.log.warn({ err: error, metric }, 'metric left out: the database did not answer')
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

/**
 * The lag metrics, from one read of every scope's (active, last processed
 * timestamp) counts at most every 15 s, shared by the four:
 * - `scopekeeper_scope_lag_seconds`, a histogram of the active scopes' lag
 *   (now − last processed − period) with bounds at 1, 2, 6 and 24 periods;
 *   prom-client's Histogram only observes one value at a time, so its
 *   cumulative `_bucket`, `_sum` and `_count` series are written here from
 *   the counts;
 * - `scopekeeper_scope_lag_max_seconds`, the oldest active scope's lag (0
 *   when none lags);
 * - `scopekeeper_scopes_stuck`, the active scopes more than
 *   `stuck_after_periods` periods behind the median one;
 * - `scopekeeper_collect_period_seconds`, the period itself.
 * A read that fails leaves the first three out of that scrape.
 */
function registerLagMetrics (registry: Registry, figures: ServiceFigures, options: LagMetricOptions, warn: (error: unknown, metric: string) => void): void {
  const { periodSeconds, stuckAfterPeriods } = options
  const now = options.clock ?? (() => new Date())
  let cached: { at: number, read: Promise<{ figures: LagFigures, maxLagSeconds: number }> } | undefined
  const read = async () => {
    if (cached === undefined || Date.now() - cached.at > SCOPE_COUNT_TTL_MS) {
      const at = now()
      const read = figures.lastProcessedCounts().then((counts) => {
        const median = lagFigures(counts, at, periodSeconds).medianLastProcessed
        const lag = lagFigures(counts, at, periodSeconds, { stuckBefore: stuckBefore(median, periodSeconds, stuckAfterPeriods) })
        const oldest = lag.oldestLastProcessed
        const maxLagSeconds = oldest === undefined ? 0 : Math.max(0, (at.getTime() - oldest.getTime()) / 1000 - periodSeconds)
        return { figures: lag, maxLagSeconds }
      })
      // Concurrent collects of one scrape share the read; a failed one is retried at the next scrape.
      cached = { at: Date.now(), read }
      read.catch(() => { if (cached?.read === read) cached = undefined })
    }
    return await cached.read
  }
  const fromLag = (name: string, help: string, value: (lag: { figures: LagFigures, maxLagSeconds: number }) => number) => new Gauge({
    name, help, registers: [registry],
    async collect () {
      try {
        this.set(value(await read()))
      } catch (error) {
        this.set(Number.NaN)
        warn(error, name)
      }
    },
  })
  fromLag('scopekeeper_scopes_stuck', `Active scopes more than [collect] stuck_after_periods (${stuckAfterPeriods}) periods behind the median active scope`, (lag) => lag.figures.stuck)
  fromLag('scopekeeper_scope_lag_max_seconds', 'Largest lag among active scopes: now minus last processed timestamp minus period (0 when none lags)', (lag) => lag.maxLagSeconds)
  new Gauge({ name: 'scopekeeper_collect_period_seconds', help: 'The rating period, [collect] period', registers: [registry] }).set(periodSeconds)
  const name = 'scopekeeper_scope_lag_seconds'
  const help = 'Lag of the active scopes: now minus last processed timestamp minus period; buckets at 1, 2, 6 and 24 periods'
  registry.registerMetric({
    name, help, type: 'histogram', aggregator: 'sum',
    async get () {
      const values: Array<{ metricName: string, labels: { le?: string }, value: number }> = []
      try {
        const { figures: lag } = await read()
        LAG_BUCKET_PERIODS.forEach((k, i) => values.push({ metricName: `${name}_bucket`, labels: { le: String(k * periodSeconds) }, value: lag.withinPeriods[i] }))
        values.push({ metricName: `${name}_bucket`, labels: { le: '+Inf' }, value: lag.active })
        values.push({ metricName: `${name}_sum`, labels: {}, value: lag.lagSecondsSum })
        values.push({ metricName: `${name}_count`, labels: {}, value: lag.active })
      } catch (error) {
        warn(error, name)
      }
      return { name, help, type: 'histogram', aggregator: 'sum', values }
    },
  } as unknown as Parameters<Registry['registerMetric']>[0])
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
