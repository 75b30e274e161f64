/**
 * What CloudKitty's processing lock costs a reset: scopes/s of a reset of
 * every scope, applied by the worker with the lock taken on each tooz
 * backend, against the same reset taken with no lock at all (the baseline,
 * a coordinator that grants every name without any I/O: what the worker
 * would cost if it ignored CloudKitty's processor). All variants run on one
 * seeded SQLite database in one run, interleaved round by round.
 *
 *   npm run bench:locks -- --scopes 100000 --rounds 3
 *   node --import tsx bench/reset-locks.ts --backends none,file,mysql,postgresql,redis
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { pino } from 'pino'
import type { Coordinator } from '../src/storage/coordination/coordinator.ts'
import { openCoordinator } from '../src/storage/coordination/open-coordinator.ts'
import { ResetWorker } from '../src/reset/reset-worker.ts'
import { migrateToLatest } from '../src/storage/migrate.ts'
import { openDatabase } from '../src/storage/open-database.ts'
import { insertResetJob } from '../src/storage/reset-job-repository.ts'

const { values } = parseArgs({
  options: {
    scopes: { type: 'string', default: '100000' },
    rounds: { type: 'string', default: '2' },
    backends: { type: 'string', default: 'none,file,mysql,postgresql,redis' },
    'batch-size': { type: 'string', default: '500' },
  },
})
const SCOPES = Number(values.scopes)
const ROUNDS = Number(values.rounds)
const BATCH = Number(values['batch-size'])
const dir = mkdtempSync(join(tmpdir(), 'sk-bench-locks-'))

const URLS: Record<string, string> = {
  file: `file://${join(dir, 'locks')}`,
  mysql: process.env.BENCH_TOOZ_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test',
  postgresql: process.env.BENCH_TOOZ_POSTGRESQL_URL ?? 'postgresql://postgres@127.0.0.1:5432/test',
  redis: process.env.BENCH_TOOZ_REDIS_URL ?? 'redis://127.0.0.1:6379?namespace=sk_bench',
}

// The baseline: every name granted, nothing asked of any backend.
const NO_LOCK: Coordinator = {
  description: 'no lock',
  tryLock: async (names) => ({ held: new Set(names), release: async () => {} }),
  close: async () => {},
}

const database = openDatabase(`sqlite:///${join(dir, 'bench.sqlite')}`)
await migrateToLatest(database)
for (let i = 0; i < SCOPES; i += 4000) {
  await database.db.insertInto('cloudkitty_storage_states').values(Array.from({ length: Math.min(4000, SCOPES - i) }, (_, j) => ({
    identifier: `s${String(i + j).padStart(7, '0')}`, scope_key: 'project_id', fetcher: 'keystone', collector: 'gnocchi',
    last_processed_timestamp: '2020-01-01 00:00:00.000000', active: 1,
  }))).execute()
}

const backends = values.backends.split(',')
const coordinators = new Map(backends.map((b) => [b, b === 'none' ? NO_LOCK : openCoordinator(URLS[b])]))
const rates = new Map<string, number[]>(backends.map((b) => [b, []]))
const logger = pino({ level: 'silent' })
const BENCH_CONTEXT = { actor: { auth: 'noauth' as const, userId: null, userName: null, projectId: null, roles: [] }, requestId: 'req-bench', reason: null }
let day = 1
for (let round = 0; round < ROUNDS; round++) {
  for (const backend of backends) {
    const target = new Date(Date.UTC(2019, 0, day++))
    await insertResetJob(database, {}, { lastProcessedTimestamp: target, now: new Date(), maxAttempts: 1, context: BENCH_CONTEXT })
    const worker = new ResetWorker({
      store: database, logger,
      locks: { coordinator: coordinators.get(backend)!, names: { collector: 'gnocchi', fetcher: 'keystone', scopeKey: 'project_id' } },
    }, { batchSize: BATCH })
    const started = process.hrtime.bigint()
    await worker.drain()
    const seconds = Number(process.hrtime.bigint() - started) / 1e9
    rates.get(backend)!.push(SCOPES / seconds)
    console.error(`round ${round + 1} ${backend}: ${Math.round(SCOPES / seconds)} scopes/s`)
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const baseline = rates.has('none') ? median(rates.get('none')!) : undefined
console.log(`reset of ${SCOPES} scopes on SQLite, batches of ${BATCH}, median of ${ROUNDS} rounds`)
console.log('| coordination_url | scopes/s | of no lock |')
console.log('|---|---|---|')
for (const backend of backends) {
  const rate = median(rates.get(backend)!)
  console.log(`| ${backend === 'none' ? '(no lock)' : backend} | ${Math.round(rate)} | ${baseline === undefined ? '' : (rate / baseline).toFixed(2)} |`)
}
for (const coordinator of coordinators.values()) await coordinator.close()
await database.close()
rmSync(dir, { recursive: true, force: true })
