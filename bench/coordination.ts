// The cost of CloudKitty's processing lock per name on each tooz backend:
// tryLock of a 500-name batch (the reset worker's batch) and its release,
// uncontended, against the services on this machine.
//
//   node --import tsx bench/coordination.ts [--rounds 40] [--batch 500] [--backends file,mysql,postgresql,redis]
//
// Prints one line per backend (names/s, p50/p99 per batch, throughput as a
// ratio of the fastest) and the same as JSON. Never asserts.
import { createHash, randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { openCoordinator } from '../src/storage/coordination/open-coordinator.ts'

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '40' },
    batch: { type: 'string', default: '500' },
    backends: { type: 'string', default: 'file,mysql,postgresql,redis' },
  },
})
const rounds = Number(values.rounds)
const batch = Number(values.batch)
const dir = mkdtempSync(join(tmpdir(), 'sk-bench-coordination-'))
const URLS: Record<string, string> = {
  file: `file://${join(dir, 'locks')}`,
  mysql: process.env.TEST_MARIADB_URL ?? 'mysql://root@127.0.0.1:3306/test',
  postgresql: process.env.TEST_POSTGRES_URL ?? 'postgresql://postgres@127.0.0.1:5432/test',
  redis: `${process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'}?namespace=sk_bench_${randomBytes(4).toString('hex')}`,
}

// The same scopes in every round, as repeated resets of one project set: names of CloudKitty's shape.
const names = Array.from({ length: batch }, (_, i) => createHash('sha256').update(`bench-scope-${i}`).digest('hex'))

function percentile (sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]
}

interface Result { backend: string, namesPerSecond: number, p50Ms: number, p99Ms: number, held: number }
const results: Result[] = []
for (const backend of values.backends.split(',')) {
  const coordinator = openCoordinator(URLS[backend])
  try {
    // Warm-up: connections, lock files, scripts.
    for (let i = 0; i < 3; i++) await (await coordinator.tryLock(names)).release()
    const durations: number[] = []
    let held = 0
    for (let round = 0; round < rounds; round++) {
      const start = process.hrtime.bigint()
      const locks = await coordinator.tryLock(names)
      await locks.release()
      durations.push(Number(process.hrtime.bigint() - start) / 1e6)
      held = locks.held.size
    }
    const total = durations.reduce((a, b) => a + b, 0)
    durations.sort((a, b) => a - b)
    results.push({ backend, namesPerSecond: Math.round(batch * rounds / (total / 1000)), p50Ms: percentile(durations, 0.5), p99Ms: percentile(durations, 0.99), held })
  } finally {
    await coordinator.close()
  }
}
rmSync(dir, { recursive: true, force: true })

const best = Math.max(...results.map((r) => r.namesPerSecond))
console.log(`tryLock + release of ${batch} names, ${rounds} rounds per backend (uncontended)`)
for (const r of results) {
  console.log(`${r.backend.padEnd(11)} ${String(r.namesPerSecond).padStart(9)} names/s  p50 ${r.p50Ms.toFixed(2).padStart(7)} ms  p99 ${r.p99Ms.toFixed(2).padStart(7)} ms per batch  ${(r.namesPerSecond / best).toFixed(2)}x of fastest  (held ${r.held}/${batch})`)
}
console.log(JSON.stringify({ batch, rounds, results }))
