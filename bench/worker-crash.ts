/**
 * The reset crash test at scale: worker processes apply overlapping resets
 * over many scopes while they are killed with -9 again and again. Prints the
 * kills, jobs and scope resets, the time taken, and whether every scope ended
 * on its last accepted reset. Never part of `npm test`.
 *
 *   node --import tsx bench/worker-crash.ts --engine postgres --scopes 200000 --workers 3 --kill-every 2
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { createServer } from 'node:http'
import { tmpdir } from 'node:os'
import { parseArgs } from 'node:util'
import { createConnection } from 'mysql2/promise'
import pg from 'pg'
import { migrateToLatest } from '../src/storage/migrate.ts'
import { openDatabase } from '../src/storage/open-database.ts'

const { values } = parseArgs({
  options: {
    engine: { type: 'string', default: 'postgres' },
    scopes: { type: 'string', default: '200000' },
    workers: { type: 'string', default: '3' },
    'kill-every': { type: 'string', default: '2' },
  },
})
const SCOPES = Number(values.scopes)
const WORKERS = Number(values.workers)
const KILL_EVERY_MS = Number(values['kill-every']) * 1000
const BIN = new URL('../bin/scopekeeper.js', import.meta.url).pathname
const RESETS = [
  { state: '2019-01-01T00:00:00Z' },
  { collector: ['c0', 'c2', 'c4'], state: '2019-02-01T00:00:00Z' },
  { collector: ['c0', 'c3'], state: '2019-03-01T00:00:00Z' },
  { collector: ['c5'], state: '2019-04-01T00:00:00Z' },
  { collector: ['c1', 'c2'], state: '2019-05-01T00:00:00Z' },
]
const expected = (collector: string) => RESETS.filter((r) => r.collector === undefined || r.collector.includes(collector)).at(-1)!.state.replace('Z', '+00:00')

async function createDatabase (): Promise<{ url: string, drop: () => Promise<void> }> {
  const name = `sk_crash_${randomBytes(4).toString('hex')}`
  if (values.engine === 'postgres') {
    const admin = process.env.TEST_POSTGRES_URL ?? 'postgresql://postgres@127.0.0.1:5432/test'
    const c = new pg.Client({ connectionString: admin }); await c.connect(); await c.query(`CREATE DATABASE ${name}`); await c.end()
    const url = new URL(admin); url.pathname = `/${name}`
    return { url: url.toString(), drop: async () => { const d = new pg.Client({ connectionString: admin }); await d.connect(); await d.query(`DROP DATABASE ${name} WITH (FORCE)`); await d.end() } }
  }
  const admin = process.env.TEST_MARIADB_URL ?? 'mysql://root@127.0.0.1:3306/test'
  const c = await createConnection({ uri: admin }); await c.query(`CREATE DATABASE ${name}`); await c.end()
  const url = new URL(admin); url.pathname = `/${name}`
  return { url: url.toString(), drop: async () => { const d = await createConnection({ uri: admin }); await d.query(`DROP DATABASE ${name}`); await d.end() } }
}

const { url, drop } = await createDatabase()
const database = openDatabase(url)
try {
  await migrateToLatest(database)
  for (let i = 0; i < SCOPES; i += 5000) {
    await database.db.insertInto('cloudkitty_storage_states').values(Array.from({ length: Math.min(5000, SCOPES - i) }, (_, j) => ({
      identifier: `p${String(i + j).padStart(7, '0')}`, scope_key: 'project_id', fetcher: 'keystone', collector: `c${(i + j) % 6}`,
      last_processed_timestamp: '2020-01-01 00:00:00', active: 1,
    }))).execute()
  }
  const probe = createServer(); await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve))
  const port = (probe.address() as { port: number }).port; probe.close()
  const api = spawn(process.execPath, [BIN, 'serve', '--auth', 'noauth', '--no-worker', '--port', String(port), '--database', url], { stdio: 'ignore' })
  const base = `http://127.0.0.1:${port}`
  for (let i = 0; i < 100; i++) { try { if ((await fetch(`${base}/healthz`)).ok) break } catch {} await new Promise((r) => setTimeout(r, 100)) }
  for (const { collector, state } of RESETS) {
    const res = await fetch(`${base}/v2/scope`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ all_scopes: true, state, ...(collector === undefined ? {} : { collector }) }) })
    if (res.status !== 202) throw new Error(`PUT answered ${res.status}`)
  }
  const env = { ...process.env, SCOPEKEEPER_LOG_LEVEL: 'warn', SCOPEKEEPER_RESET_LEASE_SECONDS: '2', SCOPEKEEPER_RESET_POLL_INTERVAL: '0.1', SCOPEKEEPER_ORCHESTRATOR_COORDINATION_URL: `file://${tmpdir()}/sk-crash-locks` }
  const spawnWorker = (): ChildProcess => spawn(process.execPath, [BIN, 'worker', '--database', url, '--concurrency', '2'], { env, stdio: 'ignore' })
  const workers = Array.from({ length: WORKERS }, spawnWorker)
  const started = Date.now()
  let kills = 0
  const unfinished = async () => (await database.db.selectFrom('scopekeeper_reset_jobs').select('id').where('status', '!=', 'done').execute()).length
  while (await unfinished() > 0) {
    await new Promise((resolve) => setTimeout(resolve, KILL_EVERY_MS))
    if (await unfinished() === 0) break
    const victim = kills % WORKERS
    workers[victim].kill('SIGKILL')
    workers[victim] = spawnWorker()
    kills++
  }
  const seconds = (Date.now() - started) / 1000
  for (const w of workers) w.kill('SIGKILL')
  api.kill('SIGTERM')
  const rows = await database.db.selectFrom('cloudkitty_storage_states').select(['collector', 'last_processed_timestamp']).execute()
  const wrong = rows.filter((r) => `${String(r.last_processed_timestamp).slice(0, 19).replace(' ', 'T')}+00:00` !== expected(String(r.collector))).length
  const jobs = await database.db.selectFrom('scopekeeper_reset_jobs').select(['status', 'scopes_total']).execute()
  const applied = jobs.reduce((n, j) => n + j.scopes_total, 0)
  console.log(JSON.stringify({
    engine: values.engine, scopes: SCOPES, workers: WORKERS, kills, jobs: jobs.length, jobsDone: jobs.filter((j) => j.status === 'done').length,
    scopeResetsApplied: applied, seconds, scopesPerSecond: Math.round(applied / seconds), scopesOnWrongTimestamp: wrong,
  }, null, 2))
  if (wrong > 0) process.exitCode = 1
} finally {
  await database.close()
  await drop()
}
