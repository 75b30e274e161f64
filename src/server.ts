import type { IncomingMessage, ServerResponse } from 'node:http'
import { BlockList, isIP } from 'node:net'
import type { FastifyInstance } from 'fastify'
import type { Logger } from 'pino'
import { buildMetricsApp } from './api/metrics.ts'
import { buildApp } from './app.ts'
import type { Config } from './config/config-schema.ts'
import { osloMessagingDispatcher } from './reset/oslo-messaging-dispatcher.ts'
import { OsloMessagingCaster } from './reset/oslo-messaging-caster.ts'
import { openCoordinator } from './storage/coordination/open-coordinator.ts'
import { ResetWorker } from './reset/reset-worker.ts'
import { migrateToLatest } from './storage/migrate.ts'
import { openDatabase, type OpenDatabase } from './storage/open-database.ts'

/** A running service: its address, and how to stop it gracefully. */
export interface RunningServer {
  app: FastifyInstance
  address: string
  /** The `[metrics] port` listener's address, when one is open. */
  metricsAddress?: string
  close: () => Promise<void>
}

/**
 * Opens the configured database with its pool bounds; pool errors are
 * logged, never fatal. The first connection (migrate's, at every start) is
 * retried as oslo.db does, `[database] max_retries` times
 * `retry_interval` seconds apart (-1: until it succeeds), with one warning
 * line per failed attempt; a URL or first connection that cannot be used
 * throws a one-line ConfigError naming `[database] connection`.
 */
export function openDatabaseFromConfig (config: Config, logger: Logger): OpenDatabase {
  return openDatabase(config.database.url, {
    poolSize: config.database.maxPoolSize,
    acquireTimeoutMs: config.database.poolTimeout * 1000,
    connectTimeoutMs: config.database.connectTimeout * 1000,
    statementTimeoutMs: config.database.statementTimeout * 1000,
    connectionRecycleSeconds: config.database.connectionRecycleTime,
    firstConnection: {
      maxRetries: config.database.maxRetries,
      retryIntervalMs: config.database.retryInterval * 1000,
      onRetry: ({ database, attempt, attempts, reason, retryInSeconds }) => {
        logger.warn({ database, attempt, attempts: attempts ?? 'unlimited', reason }, `database connection failed; retrying in ${retryInSeconds} s`)
      },
    },
  }, (error) => { logger.warn({ err: error }, 'database connection lost; the pool reconnects') })
}

/** A reset worker as configured, and what to close when it stops. */
export interface ConfiguredWorker {
  worker: ResetWorker
  close: () => Promise<void>
}

/**
 * Builds a reset worker from the configuration: it applies resets here,
 * under CloudKitty's processing lock of each scope on `[orchestrator]
 * coordination_url`, or with `[reset] dispatcher = oslo_messaging` casts
 * them to CloudKitty's processors, which take the lock themselves. A
 * coordination backend whose locks scopekeeper cannot take throws a
 * ConfigError: the start stops.
 */
export function workerFromConfig (config: Config, database: OpenDatabase, logger: Logger): ConfiguredWorker {
  const caster = config.reset.dispatcher === 'oslo_messaging'
    ? new OsloMessagingCaster({ transportUrl: config.messaging.transportUrl, exchange: config.messaging.controlExchange, topic: config.messaging.topic })
    : undefined
  const coordinator = caster === undefined ? openCoordinator(config.orchestrator.coordinationUrl) : undefined
  const worker = new ResetWorker({
    store: database,
    logger,
    dispatcher: caster === undefined ? undefined : osloMessagingDispatcher(caster),
    locks: coordinator === undefined
      ? undefined
      : { coordinator, names: { collector: config.collect.collector, fetcher: config.fetcher.backend, scopeKey: config.collect.scopeKey } },
  }, {
    periodSeconds: config.collect.period,
    auditRetentionDays: config.audit.retentionDays,
    batchSize: config.reset.batchSize,
    pollIntervalMs: config.reset.pollInterval * 1000,
    leaseMs: config.reset.leaseSeconds * 1000,
    concurrency: config.reset.concurrency,
  })
  return { worker, close: async () => { await worker.stop(); await caster?.close(); await coordinator?.close() } }
}

// 127.0.0.0/8 and ::1; BlockList also matches ::ffff:127.x.y.z against the IPv4 rule.
const LOOPBACK = new BlockList()
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4')
LOOPBACK.addAddress('::1', 'ipv6')

function isLoopback (host: string): boolean {
  const type = isIP(host)
  return host.toLowerCase() === 'localhost' || (type !== 0 && LOOPBACK.check(host, type === 4 ? 'ipv4' : 'ipv6'))
}

/**
 * How the API stops: it stops listening and waits for the requests in
 * flight, at most `seconds`; then their connections are closed. Fastify
 * closes idle keep-alive connections at once (forceCloseConnections
 * defaults to 'idle'), and the answers still to come say Connection: close,
 * or Node would keep their connections, and the stop, for keepAliveTimeout.
 */
function gracefulClose (app: FastifyInstance, seconds: number, logger: Logger): () => Promise<void> {
  const inFlight = new Set<ServerResponse>()
  app.server.on('request', (_request: IncomingMessage, response: ServerResponse) => {
    inFlight.add(response)
    response.once('close', () => inFlight.delete(response))
  })
  return async () => {
    for (const response of inFlight) if (!response.headersSent) response.setHeader('connection', 'close')
    const timer = setTimeout(() => {
      logger.warn({ shutdownTimeout: seconds }, 'requests still in flight after [api] shutdown_timeout: closing their connections')
      app.server.closeAllConnections()
    }, seconds * 1000)
    try {
      await app.close()
    } finally {
      clearTimeout(timer)
    }
  }
}

/**
 * Opens the database, migrates it (idempotent), starts the in-process reset
 * worker unless turned off, and listens. `close` stops accepting, lets
 * in-flight requests finish within `[api] shutdown_timeout` and the reset
 * worker its current batch, then closes the database.
 */
export async function startServer (config: Config, logger: Logger): Promise<RunningServer> {
  const database = openDatabaseFromConfig(config, logger)
  // Build first: a broken policy file or Keystone setting stops the start
  // before anything is written to the database.
  const app = await buildApp(config, { database, logger })
  const closeApp = gracefulClose(app, config.api.shutdownTimeout, logger)
  await migrateToLatest(database)
  const configured = config.reset.worker ? workerFromConfig(config, database, logger) : undefined
  const address = await app.listen({ host: config.api.host, port: config.api.port })
  const metricsApp = config.metrics.port === 0 || app.metricsRegistry === undefined ? undefined : buildMetricsApp(app.metricsRegistry, { logger, requestTimeoutSeconds: config.api.requestTimeout })
  const metricsAddress = await metricsApp?.listen({ host: config.metrics.host, port: config.metrics.port })
  configured?.worker.start()
  if (config.auth.strategy === 'noauth' && !isLoopback(config.api.host)) {
    logger.warn({ host: config.api.host, address }, "auth_strategy is noauth and the API listens beyond loopback: every caller is treated as an admin, who may reset any project's rating; set [DEFAULT] auth_strategy = keystone, or [api] host_ip to a loopback address")
  }
  logger.info({ address, metrics: metricsAddress, database: database.description, worker: configured !== undefined }, 'scopekeeper listening')
  return {
    app,
    address,
    metricsAddress,
    close: async () => {
      // The worker stops after its batch (handing its job back) meanwhile.
      const workerClosed = configured?.close()
      await closeApp()
      await metricsApp?.close()
      await workerClosed
      await database.close()
    },
  }
}
