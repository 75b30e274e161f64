import Fastify, { type FastifyInstance } from 'fastify'
import swagger from '@fastify/swagger'
import type { Logger } from 'pino'
import { actorOf } from './api/change-context.ts'
import { consoleDirectory, registerConsole, registerConsoleLogin } from './api/console.ts'
import { registerErrorHandler, registerNotFoundHandler } from './api/error-handler.ts'
import { registerHealthcheck } from './api/healthcheck.ts'
import { registerIdempotency } from './api/idempotency.ts'
import { registerMetrics } from './api/metrics.ts'
import { absoluteUrl, registerProxyHeaders } from './api/proxy-headers.ts'
import { registerRequestLog } from './api/request-log.ts'
import { serverOptions } from './api/server-options.ts'
import { validatorCompiler } from './api/validation.ts'
import { registerActivationRoutes } from './api/v2/scope/activation-routes.ts'
import { registerEventRoutes } from './api/v2/scope/event-routes.ts'
import { registerResetJobRoutes } from './api/v2/scope/reset-job-routes.ts'
import { registerReconcileRoutes } from './api/v2/scope/reconcile-routes.ts'
import { registerScopeRoutes } from './api/v2/scope/scope-routes.ts'
import type { Credentials } from './auth/credentials.ts'
import { KeystoneAuth, keystoneAuthOptions } from './auth/keystone-auth.ts'
import { KeystoneLogin } from './auth/keystone-login.ts'
import { keystoneTls } from './auth/keystone-tls.ts'
import { KeystoneProjectDirectory, reconcileSessionOptions } from './auth/keystone-projects.ts'
import { noAuth } from './auth/noauth.ts'
import type { RuleName } from './auth/policy/default-rules.ts'
import { loadPolicy, requestedScopes } from './auth/policy/policy-enforcer.ts'
import type { ScopeAccess } from './auth/policy/scope-access.ts'
import type { Config } from './config/config-schema.ts'
import type { Actor } from './domain/change-context.ts'
import { EventService } from './domain/event-service.ts'
import { IdempotencyService } from './domain/idempotency.ts'
import { ResetJobService } from './domain/reset-job-service.ts'
import { ScopeReconciliation } from './domain/scope-reconciliation.ts'
import { ScopeStateService } from './domain/scope-state-service.ts'
import type { OpenDatabase } from './storage/open-database.ts'
import { idempotencyKeys } from './storage/idempotency-repository.ts'
import { serviceFigures } from './storage/service-figures.ts'

declare module 'fastify' {
  // `public`: served without authentication (version discovery, health, API document).
  // `scopeFilter`: the body's scope_id is a filter (comma-separated values), not one scope, for the policy check.
  interface FastifyContextConfig { rule?: RuleName, public?: boolean, scopeFilter?: boolean }
  // `scopeAccess`: which scopes the answer may show, set by the policy check.
  // `actor`: who the credentials are, for the audit history.
  interface FastifyRequest { credentials: Credentials, scopeAccess: ScopeAccess, actor: Actor }
  // Re-reads `[oslo_policy] policy_file`; throws a ConfigError (rules unchanged) when it does not parse.
  interface FastifyInstance { reloadPolicy: () => void }
}

export interface AppDeps {
  database: OpenDatabase
  logger: Logger
  clock?: () => Date
}

/**
 * Builds the HTTP application; never listens. Plugins and routes are
 * registered explicitly, in order: infrastructure, auth, routes, errors.
 */
export async function buildApp (config: Config, { database, logger, clock }: AppDeps): Promise<FastifyInstance> {
  const app = Fastify(serverOptions(logger, config.api.requestTimeout))
  app.setValidatorCompiler(validatorCompiler)
  // Bodies are JSON only: a text/plain body is a 415, not a string to validate.
  app.removeContentTypeParser('text/plain')

  // Infrastructure: request id on every response, the caller's origin
  // (through a trusted proxy), one log line per request.
  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-openstack-request-id', request.id)
  })
  registerProxyHeaders(app, config.api.enableProxyHeadersParsing)
  registerRequestLog(app)
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'scopekeeper: CloudKitty v2 scope state API', version: '2' },
    },
  })

  // Auth: who is calling (onRequest), then may they (preHandler, after validation).
  // A bad policy file or missing Keystone settings throw a ConfigError here: the start stops.
  // `let`: SIGHUP reloads the policy file (app.reloadPolicy); a file that
  // no longer parses keeps the rules in force.
  let enforcer = loadPolicy(config.policy.file)
  app.decorate('reloadPolicy', () => { enforcer = loadPolicy(config.policy.file) })
  const authenticator = config.auth.strategy === 'keystone'
    ? new KeystoneAuth(keystoneAuthOptions(config.keystone), { logger, isAdmin: (credentials) => enforcer.isAdmin(credentials) })
    : noAuth
  app.addHook('onClose', async () => { await authenticator.close?.() })
  app.decorateRequest('credentials')
  app.decorateRequest('scopeAccess')
  app.decorateRequest('actor')
  app.addHook('onRequest', async (request) => {
    // OPTIONS answers only which methods a path has (haproxy's default
    // httpchk is `OPTIONS /`): nothing to protect.
    if (request.routeOptions.config.public === true || request.method === 'OPTIONS') return
    request.credentials = await authenticator.authenticate(request.headers)
    request.actor = actorOf(request.credentials, config.auth.strategy)
  })
  app.addHook('preHandler', async (request) => {
    const rule = request.routeOptions.config.rule
    if (rule === undefined) return
    const input = (request.body ?? request.query) as { scope_id?: unknown } | undefined
    request.scopeAccess = enforcer.authorizeScopes(rule, requestedScopes(request.method, input?.scope_id, request.routeOptions.config.scopeFilter), request.credentials)
  })
  // Idempotency-Key on PUT, PATCH and POST /v2/scope: after the policy check, a
  // repeat is answered as its first request was. A repeat waits for the first
  // as long as a request may take to arrive; a claim in progress for longer
  // than that and a statement's bound was abandoned by a process that died.
  registerIdempotency(app, new IdempotencyService({
    keys: idempotencyKeys(database),
    ttlSeconds: config.api.idempotencyTtl,
    leaseSeconds: config.api.requestTimeout + config.database.statementTimeout,
    waitSeconds: config.api.requestTimeout,
    clock,
  }))

  // Routes.
  registerNotFoundHandler(app)
  app.get('/', { schema: { hide: true }, config: { public: true } }, async (request) => ({
    versions: [{ id: 'v2', status: 'CURRENT', links: [{ href: absoluteUrl(request.origin, '/v2'), rel: 'self' }] }],
  }))
  registerHealthcheck(app, database, config.healthcheck)
  app.get('/v2/openapi.json', { schema: { hide: true }, config: { public: true } }, async () => app.swagger())
  registerConsole(app, consoleDirectory())
  if (config.auth.strategy === 'keystone') {
    registerConsoleLogin(app, new KeystoneLogin(config.keystone.authUrl, keystoneTls(config.keystone), config.keystone.httpConnectTimeout * 1000))
  }
  if (config.metrics.enabled) {
    registerMetrics(app, serviceFigures(database), { periodSeconds: config.collect.period, stuckAfterPeriods: config.collect.stuckAfterPeriods, clock })
  }
  const defaults = { scopeKey: config.collect.scopeKey, fetcher: config.fetcher.backend, collector: config.collect.collector }
  const scopes = new ScopeStateService({
    store: database,
    defaults,
    resetMaxAttempts: config.reset.maxAttempts,
    periodSeconds: config.collect.period,
    activationMaxScopes: config.api.activationMaxScopes,
    stuckAfterPeriods: config.collect.stuckAfterPeriods,
    clock,
  })
  registerScopeRoutes(app, scopes)
  registerActivationRoutes(app, scopes)
  // Keystone's projects, read with CloudKitty's keystone fetcher's credentials
  // ([fetcher_keystone], else [keystone_authtoken]); none set: reconciliation
  // answers that it is not configured, and nothing else changes.
  const sessionOptions = reconcileSessionOptions(config)
  const directory = sessionOptions === undefined
    ? undefined
    : new KeystoneProjectDirectory(sessionOptions, { ignoreRatingRole: config.fetcherKeystone.ignoreRatingRole, ignoreDisabledTenants: config.fetcherKeystone.ignoreDisabledTenants }, { logger })
  if (directory !== undefined) app.addHook('onClose', async () => { await directory.close() })
  registerReconcileRoutes(app, new ScopeReconciliation({ store: database, scopes, defaults, directory, clock }))
  registerResetJobRoutes(app, new ResetJobService(database, clock))
  registerEventRoutes(app, new EventService(database))

  // Errors: unknown paths, known paths with another method, and everything thrown.
  registerErrorHandler(app)
  return app
}
