import assert from 'node:assert/strict'
import { describe, it, type TestContext } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { buildTestApp, call, tempDir } from '../helpers/build-test-app.ts'
import { connectRaw } from '../helpers/cloudkitty-schema.ts'
import { waitFor } from '../helpers/server-process.ts'
import { startTcpProxy } from '../helpers/tcp-proxy.ts'
import { freshDatabaseUrl, testEngines, type TestEngine } from '../helpers/test-databases.ts'

// Short bounds so an outage shows within a test's patience.
const BOUNDS = { SCOPEKEEPER_DATABASE_CONNECT_TIMEOUT: '1', SCOPEKEEPER_DATABASE_POOL_TIMEOUT: '2', SCOPEKEEPER_DATABASE_STATEMENT_TIMEOUT: '5' }

/** Sends a mix of reads and writes until `stop` is set; records every status. */
function traffic (app: FastifyInstance) {
  const statuses: number[] = []
  const problems: string[] = []
  let stop = false
  let n = 0
  const loop = async () => {
    while (!stop) {
      const i = n++
      const res = i % 3 === 0
        ? await call(app, 'POST', '/v2/scope', { scope_id: `t-${i}` })
        : await call(app, 'GET', i % 3 === 1 ? '/v2/scope?limit=5' : '/healthz')
      statuses.push(res.status)
      if (res.status >= 500 && (res.status !== 503 || typeof res.body?.message !== 'string' || !(Number(res.headers['retry-after']) > 0))) {
        problems.push(`${res.status} ${res.text}`)
      }
      await new Promise((resolve) => setTimeout(resolve, 5))
    }
  }
  const running = Promise.all([loop(), loop(), loop()])
  return { statuses, problems, stop: async () => { stop = true; await running } }
}

// Every connection of the app's database, ended by the server itself.
async function killConnections (engine: TestEngine, adminUrl: string, database: string): Promise<number> {
  const raw = await connectRaw(engine, adminUrl)
  try {
    if (engine === 'postgres') {
      const rows = await raw.rows(`SELECT pg_terminate_backend(pid) AS killed FROM pg_stat_activity WHERE datname = '${database}' AND pid <> pg_backend_pid()`)
      return rows.length
    }
    const rows = await raw.rows(`SELECT id FROM information_schema.processlist WHERE db = '${database}' AND id <> CONNECTION_ID()`)
    for (const { id } of rows) await raw.exec(`KILL ${Number(id)}`).catch(() => {})
    return rows.length
  } finally {
    await raw.close()
  }
}

async function seededWithPendingReset (t: TestContext, engine: TestEngine, url: string) {
  const ctx = await buildTestApp(t, { engine, env: { ...BOUNDS, SCOPEKEEPER_DATABASE_URL: url } })
  for (const id of ['r1', 'r2', 'r3']) await call(ctx.app, 'POST', '/v2/scope', { scope_id: id, last_processed_timestamp: '2020-01-01' })
  assert.equal((await call(ctx.app, 'PUT', '/v2/scope', { scope_id: 'r1,r2,r3', state: '2019-01-01' })).status, 202)
  return ctx
}

async function resetApplied (app: FastifyInstance): Promise<boolean> {
  const res = await call(app, 'GET', '/v2/scope?scope_id=r1,r2,r3')
  return res.status === 200 && res.body.results.every((r: any) => r.last_processed_timestamp === '2019-01-01T00:00:00+00:00')
}

for (const engine of testEngines().filter((e) => e !== 'sqlite')) {
  describe(`${engine}: database outages`, () => {
    it('answers 503 with Retry-After while the server kills its connections, then recovers by itself', async (t) => {
      const url = await freshDatabaseUrl(t, engine, tempDir(t))
      if (url === undefined) return
      const ctx = await seededWithPendingReset(t, engine, url)
      const name = new URL(url).pathname.slice(1)
      const load = traffic(ctx.app)
      ctx.worker.start()
      let killed = 0
      for (let round = 0; round < 5; round++) {
        await new Promise((resolve) => setTimeout(resolve, 150))
        killed += await killConnections(engine, url, name)
      }
      await load.stop()
      assert.deepEqual(load.problems, [], 'only 503s with Retry-After and a message, never a 500')
      assert.ok(killed > 0, 'connections were killed')
      assert.ok(load.statuses.some((s) => s < 300), 'requests succeeded around the kills')
      await waitFor(async () => (await call(ctx.app, 'GET', '/healthz')).status === 200, 10_000, 'health to come back')
      await waitFor(async () => await resetApplied(ctx.app), 15_000, 'the pending reset to complete')
      await ctx.worker.stop()
    })

    it('answers 503 while the database is unreachable, keeps the reset pending, and serves again once it returns', async (t) => {
      const url = await freshDatabaseUrl(t, engine, tempDir(t))
      if (url === undefined) return
      const direct = new URL(url)
      const proxy = await startTcpProxy(t, direct.hostname, Number(direct.port || (engine === 'postgres' ? 5432 : 3306)))
      const proxied = new URL(url)
      proxied.port = String(proxy.port)
      proxied.hostname = '127.0.0.1'
      const ctx = await buildTestApp(t, { engine, env: { ...BOUNDS, SCOPEKEEPER_DATABASE_URL: proxied.toString() } })
      for (const id of ['r1', 'r2', 'r3']) await call(ctx.app, 'POST', '/v2/scope', { scope_id: id, last_processed_timestamp: '2020-01-01' })
      assert.equal((await call(ctx.app, 'PUT', '/v2/scope', { scope_id: 'r1,r2,r3', state: '2019-01-01' })).status, 202)

      await proxy.cut()
      ctx.worker.start()
      for (const [method, path] of [['GET', '/healthz'], ['GET', '/v2/scope'], ['POST', '/v2/scope']] as const) {
        const started = Date.now()
        const res = await call(ctx.app, method, path, method === 'POST' ? { scope_id: 'during' } : undefined)
        assert.equal(res.status, 503, `${method} ${path}: ${res.text}`)
        assert.equal(typeof res.body.message, 'string')
        assert.ok(Number(res.headers['retry-after']) > 0)
        assert.ok(Date.now() - started < 8000, 'bounded by the connect and pool timeouts')
      }
      assert.equal(await resetApplied(ctx.app), false)

      await proxy.restore()
      await waitFor(async () => (await call(ctx.app, 'GET', '/healthz')).status === 200, 10_000, 'health to come back')
      await waitFor(async () => await resetApplied(ctx.app), 15_000, 'the pending reset to complete')
      await ctx.worker.stop()
    })
  })
}
