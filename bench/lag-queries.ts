/**
 * Times the queries behind GET /v2/scope/summary and the lag filters
 * directly through the repository (no HTTP), median of 5, with their plans
 * when EXPLAIN=1: what migration 0010's index decision was measured with.
 *
 *   node --import tsx bench/lag-queries.ts <database url> <scopes> seed|noseed [drop]
 *
 * `seed` loads the scopes (as bench/run.ts does) into a migrated, empty
 * database; `noseed` times an already seeded one; `drop` first drops
 * ix_scopekeeper_states_active_last_processed. Never part of `npm test`.
 */
import { CompiledQuery } from 'kysely'
import { openDatabase } from '../src/storage/open-database.ts'
import { migrateToLatest } from '../src/storage/migrate.ts'
import { lastProcessedCounts, findScopes, countScopes } from '../src/storage/scope-state-repository.ts'
import { toStoredText } from '../src/domain/timestamps.ts'

const [url, countText, seedFlag, dropIndex] = process.argv.slice(2)
const count = Number(countText)
const database = openDatabase(url)
await migrateToLatest(database)
const ANCHOR = Math.floor(Date.now() / 3_600_000) * 3_600_000
if (seedFlag === 'seed') {
  const chunk = 4000
  for (let i = 0; i < count; i += chunk) {
    const rows = Array.from({ length: Math.min(chunk, count - i) }, (_, j) => {
      const n = i + j
      const behind = n % 97 === 0 ? 30 + n % 50 : 1 + n % 3
      return { identifier: `s${String(n).padStart(7, '0')}`, scope_key: 'project_id', fetcher: ['keystone', 'gnocchi', 'prometheus'][n % 3], collector: `c${n % 6}`,
        last_processed_timestamp: toStoredText(new Date(ANCHOR - behind * 3_600_000)), active: n % 7 === 0 ? 0 : 1 }
    })
    await database.db.insertInto('cloudkitty_storage_states').values(rows as never).execute()
  }
  await database.probe()
}
if (dropIndex === 'drop') {
  const drop = database.db.schema.dropIndex('ix_scopekeeper_states_active_last_processed').ifExists()
  await (database.traits.dropIndexNamesTable ? drop.on('cloudkitty_storage_states') : drop).execute()
}
const EXPLAIN = database.traits.engine === 'sqlite' ? 'EXPLAIN QUERY PLAN' : 'EXPLAIN'
async function explain (run: (store: any) => Promise<unknown>) {
  const queries: CompiledQuery[] = []
  await run({ db: database.compileOnly((q) => { queries.push(q) }), traits: database.traits }).catch(() => {})
  for (const q of queries) {
    const { rows } = await database.db.executeQuery(CompiledQuery.raw(`${EXPLAIN} ${q.sql}`, [...q.parameters]))
    console.log(q.sql.slice(0, 200), '\n  ', JSON.stringify(rows).slice(0, 600))
  }
}
async function time (name: string, run: () => Promise<unknown>) {
  const ms: number[] = []
  for (let i = 0; i < 5; i++) { const t = performance.now(); await run(); ms.push(performance.now() - t) }
  console.log(name, ms.sort((a, b) => a - b)[2].toFixed(1), 'ms')
}
const store = database
await time('counts', () => lastProcessedCounts(store, {}))
await time('counts collector', () => lastProcessedCounts(store, { collectors: ['c1'] }))
await time('count active', () => countScopes(store, { active: [true] }))
await time('median (counts of the active)', () => lastProcessedCounts(store, { active: [true] }))
await time('rated_before page', () => findScopes(store, { active: [true], lastProcessedBefore: new Date(ANCHOR - 2 * 3600_000) }, { limit: 100 }))
await time('rated_before none', () => findScopes(store, { active: [true], lastProcessedBefore: new Date(ANCHOR - 500 * 3600_000) }, { limit: 100 }))
await time('rated_after few', () => findScopes(store, { active: [true], lastProcessedAtOrAfter: new Date(ANCHOR - 1 * 3600_000) }, { limit: 100 }))
await time('stuck page', () => findScopes(store, { active: [true], lastProcessedBefore: new Date(ANCHOR - 5 * 3600_000) }, { limit: 100 }))
if (process.env.EXPLAIN === '1') {
  await explain((s) => lastProcessedCounts(s, {}))
  await explain((s) => lastProcessedCounts(s, { collectors: ['c1'] }))
  await explain((s) => lastProcessedCounts(s, { active: [true] }))
  await explain((s) => findScopes(s, { active: [true], lastProcessedBefore: new Date(ANCHOR - 5 * 3600_000) }, { limit: 100 }))
}
await database.close()
