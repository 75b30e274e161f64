/**
 * Benchmarks scopekeeper as a real process over loopback, side by side with
 * a bare node:http server answering the same bytes (the ceiling), and prints
 * ratios. Never part of `npm test`.
 *
 *   npm run bench -- --scopes 10000,100000 --engine sqlite,postgres,mariadb [--duration 5] [--connections 10]
 *     [--only lag,put] [--without-index ix_scopekeeper_states_active_last_processed]
 *
 * --only runs the scenarios whose names contain one of the words (case
 * ignored); --without-index drops that index after migrating, to measure
 * what it costs and saves.
 *
 *   npm run bench -- --against cloudkitty [--scopes 10000] [--duration 8] [--connections 16]
 *
 * runs scopekeeper beside the real CloudKitty API instead (bench/cloudkitty-api.ts).
 */
import { spawn } from 'node:child_process'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import autocannon from 'autocannon'
import { sql } from 'kysely'
import { toStoredText } from '../src/domain/timestamps.ts'
import { migrateToLatest } from '../src/storage/migrate.ts'
import { openDatabase } from '../src/storage/open-database.ts'
import { runAgainstCloudKitty } from './cloudkitty-api.ts'
import { freshDatabase } from './fresh-database.ts'

const { values } = parseArgs({
  options: {
    scopes: { type: 'string', default: '10000' },
    engine: { type: 'string', default: 'sqlite' },
    duration: { type: 'string', default: '5' },
    connections: { type: 'string', default: '10' },
    only: { type: 'string', default: '' },
    'without-index': { type: 'string', default: '' },
    against: { type: 'string', default: '' },
  },
})
const ONLY = values.only.split(',').map((w) => w.trim().toLowerCase()).filter((w) => w !== '')
const selected = (name: string) => ONLY.length === 0 || ONLY.some((w) => name.toLowerCase().includes(w))
const WITHOUT_INDEX = values['without-index']
const SIZES = values.scopes.split(',').map(Number)
const ENGINES = values.engine.split(',')
const DURATION = Number(values.duration)
const CONNECTIONS = Number(values.connections)
const BIN = new URL('../bin/scopekeeper.js', import.meta.url).pathname

interface Row { scenario: string, scopes: number, rps: number, p50: number, p99: number, rssMb: number, ceilingRps?: number, ofCeiling?: number, note?: string }

// The hour the seeded scopes' lags are measured from: scopes are seeded 1 to
// 3 periods (hours) behind it, and every 97th 30 to 79 periods behind (stuck).
const ANCHOR = Math.floor(Date.now() / 3_600_000) * 3_600_000
function lastProcessed (n: number): string {
  const behind = n % 97 === 0 ? 30 + n % 50 : 1 + n % 3
  return toStoredText(new Date(ANCHOR - behind * 3_600_000))
}

/** Deterministic scopes: s0000000…, six collectors, three fetchers, every seventh inactive, lags of 1 to 79 periods. */
async function seed (url: string, count: number): Promise<number> {
  const database = openDatabase(url)
  await migrateToLatest(database)
  if (WITHOUT_INDEX !== '') {
    const drop = database.db.schema.dropIndex(WITHOUT_INDEX).ifExists()
    await (database.traits.dropIndexNamesTable ? drop.on('cloudkitty_storage_states') : drop).execute()
  }
  const started = Date.now()
  const chunk = database.traits.engine === 'sqlite' ? 4000 : 5000
  for (let i = 0; i < count; i += chunk) {
    const rows = Array.from({ length: Math.min(chunk, count - i) }, (_, j) => {
      const n = i + j
      return {
        identifier: `s${String(n).padStart(7, '0')}`, scope_key: n % 10 === 0 ? 'domain_id' : 'project_id',
        fetcher: ['keystone', 'gnocchi', 'prometheus'][n % 3], collector: `c${n % 6}`,
        last_processed_timestamp: lastProcessed(n), active: n % 7 === 0 ? 0 : 1,
      }
    })
    await database.db.insertInto('cloudkitty_storage_states').values(rows).execute()
  }
  // Statistics, as a live table has them (PostgreSQL's autovacuum, SQLite's probe at start).
  if (database.traits.analyzeTable !== undefined) await database.traits.analyzeTable('cloudkitty_storage_states').execute(database.db)
  else if (database.traits.engine === 'mysql') await sql`ANALYZE TABLE cloudkitty_storage_states`.execute(database.db)
  await database.close()
  return (Date.now() - started) / 1000
}

async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as { port: number }).port
  await new Promise((resolve) => server.close(resolve))
  return port
}

function rssMb (pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:'))
  return Math.round(Number(line?.replace(/\D+/g, '') ?? 0) / 1024)
}

async function load (url: string, options: Partial<autocannon.Options> = {}): Promise<autocannon.Result> {
  return await autocannon({ url, connections: CONNECTIONS, duration: DURATION, ...options })
}

async function runEngine (engine: string): Promise<Row[]> {
  const rows: Row[] = []
  for (const size of SIZES) {
    const { url, drop } = await freshDatabase(engine)
    try {
      const seconds = await seed(url, size)
      console.error(`${engine}: seeded ${size} scopes in ${seconds.toFixed(1)} s`)
      const port = await freePort()
      // Production settings: info logs (to /dev/null here), the in-process worker on.
      const server = spawn(process.execPath, [BIN, 'serve', '--auth', 'noauth', '--port', String(port), '--database', url], { stdio: 'ignore', env: { ...process.env, SCOPEKEEPER_RESET_POLL_INTERVAL: '0.1', SCOPEKEEPER_ORCHESTRATOR_COORDINATION_URL: `file://${join(tmpdir(), 'sk-bench-locks')}` } })
      const base = `http://127.0.0.1:${port}`
      for (let i = 0; i < 200; i++) { try { if ((await fetch(`${base}/healthz`)).ok) break } catch {} await new Promise((r) => setTimeout(r, 100)) }
      let peakRss = 0
      const record = (scenario: string, result: autocannon.Result, extra: Partial<Row> = {}) => {
        peakRss = Math.max(peakRss, rssMb(server.pid!))
        if (result.non2xx > 0) console.error(`${scenario}: ${result.non2xx} non-2xx answers`)
        rows.push({ scenario, scopes: size, rps: Math.round(result.requests.average), p50: result.latency.p50, p99: result.latency.p99, rssMb: rssMb(server.pid!), ...extra })
      }
      // Each scenario runs twice side by side: against the server, then
      // against a bare node:http server answering its bytes (the ceiling).
      // One request at a time, no load: what an operator waits for.
      const alone = async (path: string, times = 15): Promise<number> => {
        const ms: number[] = []
        for (let i = 0; i < times; i++) {
          const started = process.hrtime.bigint()
          const res = await fetch(`${base}${path}`)
          await res.arrayBuffer()
          ms.push(Number(process.hrtime.bigint() - started) / 1e6)
        }
        return ms.sort((a, b) => a - b)[Math.floor(ms.length / 2)]
      }
      const scenario = async (name: string, path: string, options: Partial<autocannon.Options> = {}, sample?: RequestInit, extra: Partial<Row> = {}) => {
        if (!selected(name)) return
        const probe = await fetch(`${base}${path}`, sample)
        const bytes = await probe.text()
        const result = await load(`${base}${path}`, options)
        const bare = createServer((req, res) => {
          req.resume()
          req.on('end', () => { res.writeHead(probe.status, { 'content-type': 'application/json' }); res.end(bytes) })
        })
        await new Promise<void>((resolve) => bare.listen(0, '127.0.0.1', resolve))
        const ceiling = await load(`http://127.0.0.1:${(bare.address() as { port: number }).port}${path}`, options)
        bare.close()
        record(name, result, { ceilingRps: Math.round(ceiling.requests.average), ofCeiling: Math.round(1000 * result.requests.average / ceiling.requests.average) / 1000, ...extra })
      }
      await scenario('GET list page (limit=100)', '/v2/scope?limit=100')
      await scenario('GET deep page (offset=N-100)', `/v2/scope?limit=100&offset=${size - 100}`)
      await scenario('GET deep page by marker', `/v2/scope?limit=100&marker=${size - 100}`)
      await scenario('GET single scope_id', `/v2/scope?scope_id=s${String(Math.floor(size / 2)).padStart(7, '0')}`)
      await scenario('GET five filters', `/v2/scope?scope_id=s${String(size - 7).padStart(7, '0')},s${String(size - 1).padStart(7, '0')}&scope_key=project_id&fetcher=keystone,gnocchi,prometheus&collector=c0,c1,c2,c3,c4,c5&active=1`)
      // The lag figures (issue 15): the summary, and the scopes not yet rated through a cut-off one period before the anchor.
      const cutoff = new Date(ANCHOR - 3_600_000).toISOString().slice(0, 19) + 'Z'
      for (const [name, path] of [
        ['GET lag: summary', '/v2/scope/summary'],
        ['GET lag: summary ?cutoff', `/v2/scope/summary?cutoff=${cutoff}`],
        ['GET lag: summary ?collector=c1', '/v2/scope/summary?collector=c1'],
        ['GET lag: active&rated_before (limit=100)', `/v2/scope?active=true&rated_before=${cutoff}&limit=100`],
        ['GET lag: stuck=true (limit=100)', '/v2/scope?stuck=true&limit=100'],
      ]) {
        if (!selected(name)) continue
        const single = await alone(path)
        await scenario(name, path, {}, undefined, { note: `one request at a time: p50 ${single.toFixed(1)} ms` })
      }
      const json = { 'content-type': 'application/json' }
      const toggle = (active: boolean) => JSON.stringify({ scope_id: 's0000001', active })
      await scenario('PATCH toggle active', '/v2/scope', {
        requests: [{ method: 'PATCH', headers: json, body: toggle(false) }, { method: 'PATCH', headers: json, body: toggle(true) }],
      }, { method: 'PATCH', headers: json, body: toggle(true) })
      let n = 0
      const newScope = () => JSON.stringify({ scope_id: `new-${process.pid}-${n++}` })
      await scenario('POST new scope', '/v2/scope', {
        requests: [{ method: 'POST', headers: json, setupRequest: (req) => ({ ...req, body: newScope() }) }],
      }, { method: 'POST', headers: json, body: newScope() })
      if (size === Math.max(...SIZES) && selected('PUT all_scopes')) {
        const before = Date.now()
        const put = await fetch(`${base}/v2/scope`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ all_scopes: true, state: '2019-01-01' }) })
        const accepted = (Date.now() - before) / 1000
        const location = put.headers.get('location')!
        let job: any
        do { await new Promise((r) => setTimeout(r, 200)); job = await (await fetch(new URL(location, base))).json(); peakRss = Math.max(peakRss, rssMb(server.pid!)) } while (job.status !== 'done' && job.status !== 'failed')
        const applied = (Date.now() - before) / 1000 - accepted
        rows.push({ scenario: 'PUT all_scopes', scopes: job.scopes_total, rps: 0, p50: 0, p99: 0, rssMb: peakRss, note: `202 in ${accepted.toFixed(2)} s; applied in ${applied.toFixed(1)} s = ${Math.round(job.scopes_total / applied)} scopes/s (${job.status})` })
      }
      rows.push({ scenario: 'server peak RSS', scopes: size, rps: 0, p50: 0, p99: 0, rssMb: peakRss })
      server.kill('SIGTERM')
      await new Promise((resolve) => server.once('exit', resolve))
    } finally {
      await drop()
    }
  }
  return rows
}

function print (engine: string, rows: Row[]): void {
  console.log(`\n## ${engine} (${CONNECTIONS} connections, ${DURATION} s per scenario, load generator on the same 2-core machine)\n`)
  console.log('| scenario | scopes | req/s | p50 ms | p99 ms | RSS MB | ceiling req/s | of ceiling | note |')
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|---|')
  for (const r of rows) console.log(`| ${r.scenario} | ${r.scopes} | ${r.rps || ''} | ${r.p50 || ''} | ${r.p99 || ''} | ${r.rssMb || ''} | ${r.ceilingRps ?? ''} | ${r.ofCeiling ?? ''} | ${r.note ?? ''} |`)
  const single = rows.filter((r) => r.scenario === 'GET single scope_id')
  if (single.length > 1) {
    const small = single[0]; const large = single[single.length - 1]
    console.log(`\nsingle scope_id cost at ${large.scopes} vs ${small.scopes}: ${(small.rps / large.rps).toFixed(2)}×`)
  }
  for (const size of SIZES) {
    const first = rows.find((r) => r.scopes === size && r.scenario.startsWith('GET list page'))
    const deep = rows.find((r) => r.scopes === size && r.scenario.startsWith('GET deep page (offset'))
    if (first !== undefined && deep !== undefined) console.log(`deep page at ${size}: ${(first.rps / deep.rps).toFixed(2)}× the first page's cost`)
  }
}

if (values.against === 'cloudkitty') {
  await runAgainstCloudKitty({ sizes: SIZES, duration: DURATION, connections: CONNECTIONS, freePort, bin: BIN })
  process.exit(0)
}
if (values.against !== '') { console.error(`--against: only cloudkitty is known, not ${values.against}`); process.exit(2) }

mkdirSync(new URL('./results/', import.meta.url), { recursive: true })
for (const engine of ENGINES) {
  const rows = await runEngine(engine)
  print(engine, rows)
  const file = new URL(`./results/${new Date().toISOString().slice(0, 10)}-${engine}.json`, import.meta.url)
  writeFileSync(file, JSON.stringify({ engine, sizes: SIZES, durationSeconds: DURATION, connections: CONNECTIONS, node: process.version, rows }, null, 2) + '\n')
}
