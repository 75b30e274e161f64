/**
 * What a bulk activation (POST /v2/scope/activation) costs, and what it
 * holds up, at N scopes on each engine:
 * - `one UPDATE`: a single `UPDATE … SET active, toggle date WHERE active <> X`
 *   over every row, in its own transaction (the simplest way);
 * - `setActivation`: the service's way, in one transaction too: one
 *   UPDATE … RETURNING (MariaDB: SELECT … FOR UPDATE, then UPDATEs by id),
 *   and one event row per ACTIVATION_CHUNK flipped states;
 * - events at 100 000 flips: one event row per scope (recordEvents, 1 000
 *   rows per INSERT) against one row per chunk (recordActivationBatch).
 * While each flip runs, a probe in another process (its own connection, as
 * CloudKitty's processor has) reads a flipped row's `active`, as the
 * processor's is_storage_scope_active does, and then writes its
 * last_processed_timestamp, as its set_last_processed_timestamp does: how
 * long each waited is what the flip holds up. The SQLite probe waits at
 * most 5 s for the lock, pysqlite's default timeout (what CloudKitty gets).
 *
 *   node --import tsx bench/activation.ts --engine sqlite,postgres,mariadb --scopes 1000000
 */
import { spawn } from 'node:child_process'
import { parseArgs } from 'node:util'
import { ACTIVATION_CHUNK, ScopeStateService } from '../src/domain/scope-state-service.ts'
import type { NewEvent } from '../src/domain/scope-event.ts'
import { toStoredText } from '../src/domain/timestamps.ts'
import { booleanToDb } from '../src/storage/engine-traits.ts'
import { recordActivationBatch, recordEvents } from '../src/storage/event-repository.ts'
import { migrateToLatest } from '../src/storage/migrate.ts'
import { openDatabase, type OpenDatabase } from '../src/storage/open-database.ts'
import { inTransaction } from '../src/storage/store.ts'
import { freshDatabase } from './fresh-database.ts'

const { values } = parseArgs({
  options: {
    engine: { type: 'string', default: 'sqlite' },
    scopes: { type: 'string', default: '1000000' },
    events: { type: 'string', default: '100000' },
    probe: { type: 'string' },
    id: { type: 'string' },
    delay: { type: 'string' },
  },
})

const CONTEXT = { actor: { auth: 'noauth' as const, userId: null, userName: null, projectId: null, roles: [] }, requestId: 'req-bench', reason: 'bench' }

/**
 * The probe, in its own process: says `ready` once connected, waits for the
 * go line, waits `delayMs` more (the flip has taken its first locks), then
 * reads the row's flag and writes its timestamp; prints both waits in ms.
 */
async function probe (url: string, id: number, delayMs: number): Promise<void> {
  // SQLite: busy_timeout 5 s, pysqlite's default timeout, what CloudKitty's processor gets.
  const database = openDatabase(url, { statementTimeoutMs: 120_000 })
  const { db } = database
  await db.selectFrom('cloudkitty_storage_states').select('id').limit(1).execute()
  process.stdout.write('ready\n')
  await new Promise((resolve) => process.stdin.once('data', resolve))
  await new Promise((resolve) => setTimeout(resolve, delayMs))
  const startedAt = Date.now()
  const t0 = performance.now()
  const row = await db.selectFrom('cloudkitty_storage_states').select('active').where('id', '=', id).executeTakeFirstOrThrow()
  const t1 = performance.now()
  let error: string | undefined
  try {
    await db.updateTable('cloudkitty_storage_states').set({ last_processed_timestamp: '2020-01-02 00:00:00.000000' }).where('id', '=', id).execute()
  } catch (e) {
    error = (e as Error).message
  }
  const t2 = performance.now()
  process.stdout.write(JSON.stringify({ startedAt, doneAt: Date.now(), readMs: Math.round(t1 - t0), read: row.active, writeMs: Math.round(t2 - t1), error }))
  await database.close()
}

if (values.probe !== undefined) {
  await probe(values.probe, Number(values.id), Number(values.delay ?? 300))
  process.exit(0)
}

async function seed (database: OpenDatabase, count: number): Promise<void> {
  const chunk = database.traits.engine === 'sqlite' ? 4000 : 5000
  for (let i = 0; i < count; i += chunk) {
    await database.db.insertInto('cloudkitty_storage_states').values(Array.from({ length: Math.min(chunk, count - i) }, (_, j) => ({
      identifier: `s${String(i + j).padStart(7, '0')}`, scope_key: 'project_id', fetcher: 'keystone', collector: `c${(i + j) % 6}`,
      last_processed_timestamp: '2020-01-01 00:00:00.000000', active: booleanToDb(database.traits, true),
    }))).execute()
  }
  await database.traits.analyzeTable?.('cloudkitty_storage_states').execute(database.db)
}

/** Runs `flip`, and the probe against row `id` once the flip has had `delayMs` to lock it. */
async function withProbe (url: string, id: number, delayMs: number, flip: () => Promise<void>): Promise<{ seconds: number, probe: unknown }> {
  const child = spawn(process.execPath, ['--import', 'tsx', new URL(import.meta.url).pathname, '--probe', url, '--id', String(id), '--delay', String(delayMs)],
    { stdio: ['pipe', 'pipe', 'inherit'] })
  let out = ''
  const probed = new Promise<string>((resolve) => { child.on('close', () => { resolve(out.replace('ready\n', '')) }) })
  await new Promise<void>((resolve) => {
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); if (out.startsWith('ready\n')) resolve() })
  })
  // The probe's clock starts now; SQLite's flip then blocks this process's event loop, never the probe's.
  child.stdin.end('go\n')
  await new Promise((resolve) => setTimeout(resolve, 20))
  const started = performance.now()
  const startedAt = Date.now()
  await flip()
  const seconds = (performance.now() - started) / 1000
  const committedAt = Date.now()
  const text = (await probed).trim()
  if (text === '') return { seconds, probe: 'no output' }
  // When the probe ran, relative to the flip: it started `startedS` after the flip, and its write ended `afterCommitS` after the commit (negative: before).
  const { startedAt: probeStart, doneAt, ...waits } = JSON.parse(text) as { startedAt: number, doneAt: number }
  return { seconds, probe: { ...waits, startedS: (probeStart - startedAt) / 1000, afterCommitS: (doneAt - committedAt) / 1000 } }
}

const rows: Array<Record<string, unknown>> = []
const SCOPES = Number(values.scopes)
const EVENTS = Number(values.events)
for (const engine of values.engine.split(',')) {
  const { url, drop } = await freshDatabase(engine, 'sk-bench-activation-')
  const database = openDatabase(url, { statementTimeoutMs: 600_000 })
  try {
    await migrateToLatest(database)
    let t = performance.now()
    await seed(database, SCOPES)
    console.error(`${engine}: seeded ${SCOPES} in ${((performance.now() - t) / 1000).toFixed(1)} s`)
    const { db, traits } = database
    const now = new Date(Date.UTC(2024, 0, 1))

    // The probe starts 1.5 s in (the seeding process's own start takes about as long), on row 1, locked by either flip early.
    const one = await withProbe(url, 1, 300, async () => {
      await inTransaction(database, async (trx) => {
        await trx.db.updateTable('cloudkitty_storage_states')
          .set({ active: booleanToDb(traits, false), scope_activation_toggle_date: toStoredText(now) })
          .where('active', '=', booleanToDb(traits, true)).execute()
      })
    })
    rows.push({ engine, variant: 'one UPDATE, one transaction', scopes: SCOPES, seconds: one.seconds.toFixed(2), probe: one.probe })
    console.error(rows[rows.length - 1])

    const service = new ScopeStateService({ store: database, defaults: { scopeKey: 'project_id', fetcher: 'keystone', collector: 'gnocchi' }, resetMaxAttempts: 1, periodSeconds: 3600, stuckAfterPeriods: 3 })
    const chunked = await withProbe(url, 1, 300, async () => {
      const result = await service.setActivation({}, true, CONTEXT)
      if (result.scopesFlipped !== SCOPES) throw new Error(`flipped ${result.scopesFlipped}`)
    })
    rows.push({ engine, variant: `setActivation (events per ${ACTIVATION_CHUNK})`, scopes: SCOPES, seconds: chunked.seconds.toFixed(2), probe: chunked.probe })
    console.error(rows[rows.length - 1])

    // Events alone, rolled back so each variant starts from the same table.
    const ids = await db.selectFrom('cloudkitty_storage_states').select(['id', 'identifier']).orderBy('id').limit(EVENTS).execute()
    const rollback = new Error('rollback')
    for (const variant of ['one event row per scope', `one event row per ${ACTIVATION_CHUNK} scopes`]) {
      t = performance.now()
      await inTransaction(database, async (trx) => {
        for (let i = 0; i < ids.length; i += ACTIVATION_CHUNK) {
          const chunk = ids.slice(i, i + ACTIVATION_CHUNK)
          if (variant.startsWith('one event row per scope')) {
            await recordEvents(trx, chunk.map((r): NewEvent => ({ kind: 'deactivated', scopeId: r.identifier, details: { active: { old: true, new: false } }, context: CONTEXT, at: now })))
          } else {
            await recordActivationBatch(trx, chunk.map((r) => ({ id: r.id, scopeId: r.identifier })), false, CONTEXT, now)
          }
        }
        throw rollback
      }).catch((e) => { if (e !== rollback) throw e })
      rows.push({ engine, variant: `events: ${variant}`, scopes: EVENTS, seconds: ((performance.now() - t) / 1000).toFixed(2) })
      console.error(rows[rows.length - 1])
    }
  } finally {
    await database.close()
    await drop()
  }
}
console.log(JSON.stringify(rows, null, 2))
