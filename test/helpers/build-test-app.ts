import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { TestContext } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { pino } from 'pino'
import { buildApp } from '../../src/app.ts'
import type { Config } from '../../src/config/config-schema.ts'
import { loadConfig } from '../../src/config/load-config.ts'
import { openCoordinator } from '../../src/storage/coordination/open-coordinator.ts'
import { ResetWorker, type ProcessingLocks, type ResetWorkerOptions } from '../../src/reset/reset-worker.ts'
import type { RatedDataStore } from '../../src/reset/rated-data-hook.ts'
import { migrateToLatest } from '../../src/storage/migrate.ts'
import { openDatabaseFromConfig } from '../../src/server.ts'
import type { OpenDatabase } from '../../src/storage/open-database.ts'
import { freshDatabaseUrl, type TestEngine } from './test-databases.ts'
import { deferCleanup } from './cleanup.ts'

/** Thrown when the test's engine is unreachable and the test was skipped. */
export class SkippedEngine extends Error {}

export interface TestApp {
  app: FastifyInstance
  database: OpenDatabase
  config: Config
  worker: ResetWorker
  /** A folder removed after the test; on SQLite, where test.sqlite lives. */
  dir: string
  /** The database URL the app uses. */
  url: string
  /** CloudKitty's processing locks as the worker takes them: tooz's file backend in `dir`. */
  locks: ProcessingLocks
}

/**
 * CloudKitty's processing locks on tooz's file backend in `dir/locks`, with
 * the lock-name settings of `config`; closed when the test ends.
 */
export function testLocks (t: TestContext, dir: string, config: Config): ProcessingLocks {
  const coordinator = openCoordinator(`file://${join(dir, 'locks')}`)
  deferCleanup(t, async () => { await coordinator.close() })
  return { coordinator, names: { collector: config.collect.collector, fetcher: config.fetcher.backend, scopeKey: config.collect.scopeKey } }
}

/** A temporary folder removed when the test ends. */
export function tempDir (t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'scopekeeper-test-'))
  deferCleanup(t, () => rmSync(dir, { recursive: true, force: true }))
  return dir
}

/**
 * Builds the app on a fresh SQLite file, migrated, with a reset worker that
 * the test drives by hand (`worker.drain()`); everything closes after the test.
 */
export async function buildTestApp (
  t: TestContext,
  options: { engine?: TestEngine, env?: Record<string, string>, ratedData?: RatedDataStore, worker?: Partial<ResetWorkerOptions>, clock?: () => Date } = {},
): Promise<TestApp> {
  const dir = tempDir(t)
  const url = options.env?.SCOPEKEEPER_DATABASE_URL ?? await freshDatabaseUrl(t, options.engine ?? 'sqlite', dir)
  if (url === undefined) throw new SkippedEngine()
  // auth_strategy defaults to keystone, as in CloudKitty: tests that want Keystone say so in env.
  const config = loadConfig({ env: { SCOPEKEEPER_LOG_LEVEL: 'silent', SCOPEKEEPER_DEFAULT_AUTH_STRATEGY: 'noauth', ...options.env, SCOPEKEEPER_DATABASE_URL: url } })
  const logger = pino({ level: 'silent' })
  const database = openDatabaseFromConfig(config, logger)
  await migrateToLatest(database)
  const app = await buildApp(config, { database, logger, clock: options.clock })
  const locks = testLocks(t, dir, config)
  const worker = new ResetWorker({ store: database, logger, ratedData: options.ratedData, clock: options.clock, locks }, {
    periodSeconds: config.collect.period, auditRetentionDays: config.audit.retentionDays, retryBaseMs: 1, retryMaxMs: 1, ...options.worker,
  })
  deferCleanup(t, async () => {
    await app.close()
    await database.close()
  })
  return { app, database, config, worker, dir, url, locks }
}

/** Sends a JSON request through `inject` and returns status, parsed body and headers. */
export async function call (app: FastifyInstance, method: 'GET' | 'PUT' | 'PATCH' | 'POST' | 'DELETE', url: string, body?: unknown) {
  const res = await app.inject({
    method,
    url,
    ...(body === undefined ? {} : { payload: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
  })
  let json: any
  try { json = res.json() } catch { json = undefined }
  return { status: res.statusCode, body: json, headers: res.headers, text: res.body }
}

/** Creates scopes through POST; returns their wire objects. */
export async function createScopes (app: FastifyInstance, bodies: Array<Record<string, unknown>>): Promise<any[]> {
  const created = []
  for (const body of bodies) {
    const res = await call(app, 'POST', '/v2/scope', body)
    if (res.status !== 200) throw new Error(`POST failed: ${res.status} ${res.text}`)
    created.push(res.body)
  }
  return created
}

/** Every row of the states table, raw, ordered by id: for "nothing changed" checks. */
export async function dumpStates (database: OpenDatabase): Promise<unknown[]> {
  return await database.db.selectFrom('cloudkitty_storage_states').selectAll().orderBy('id').execute()
}

/** Every reset job row, for "nothing was queued" checks. */
export async function dumpJobs (database: OpenDatabase): Promise<unknown[]> {
  return await database.db.selectFrom('scopekeeper_reset_jobs').selectAll().orderBy('id').execute()
}
