import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { CompiledQuery } from 'kysely'
import { toStoredText } from '../../src/domain/timestamps.ts'
import { findScopes, lastProcessedCounts } from '../../src/storage/scope-state-repository.ts'
import type { OpenDatabase } from '../../src/storage/open-database.ts'
import { buildTestApp } from '../helpers/build-test-app.ts'
import { testEngines, type TestEngine } from '../helpers/test-databases.ts'

const EXPLAIN: Record<TestEngine, string> = { sqlite: 'EXPLAIN QUERY PLAN', postgres: 'EXPLAIN', mariadb: 'EXPLAIN' }

for (const engine of testEngines()) {
  describe(`${engine}: query plans without fresh statistics`, () => {
    it("finds a scope_id through the unique index, not by walking the primary key (PATCH's LIMIT 2 lookup)", async (t) => {
      const { database } = await buildTestApp(t, { engine })
      // Loaded in bulk and never analyzed, as after an import or a benchmark's seeding.
      for (let i = 0; i < 100_000; i += 5000) {
        await database.db.insertInto('cloudkitty_storage_states').values(Array.from({ length: 5000 }, (_, j) => ({
          identifier: `s${i + j}`, scope_key: 'project_id', fetcher: 'keystone', collector: 'gnocchi', last_processed_timestamp: '2020-01-01 00:00:00.000000', active: 1,
        }))).execute()
      }
      for (const options of [{ limit: 2, forUpdate: true }, { limit: 1 }]) {
        let query: CompiledQuery | undefined
        await findScopes({ db: database.compileOnly((q) => { query = q }), traits: database.traits }, { scopeIds: ['s1'] }, options)
        const { rows } = await database.db.executeQuery(CompiledQuery.raw(`${EXPLAIN[engine]} ${query!.sql}`, [...query!.parameters]))
        const plan = JSON.stringify(rows)
        assert.doesNotMatch(plan, /pkey|PRIMARY|SCAN cloudkitty_storage_states(?! USING)/, plan)
        assert.match(plan, /uq_cloudkitty_storage_states_identifier|sqlite_autoindex_cloudkitty_storage_states/, plan)
      }
    })

    // The summary and the lag filters (issue 15). SQLite and MariaDB read the
    // (active, last_processed_timestamp) index: the summary's groups, and the
    // active ones' for the median, come in its order with no sort, and a
    // rated_before page is a range of it. PostgreSQL has no such index, so
    // that its timestamp updates stay heap-only (migration 0003): its
    // summary is one parallel scan and hash aggregate.
    it('answers the summary and the lag filters from the (active, last_processed_timestamp) index where there is one', async (t) => {
      const { database } = await buildTestApp(t, { engine })
      for (let i = 0; i < 100_000; i += 5000) {
        await database.db.insertInto('cloudkitty_storage_states').values(Array.from({ length: 5000 }, (_, j) => ({
          identifier: `s${i + j}`, scope_key: 'project_id', fetcher: 'keystone', collector: `c${(i + j) % 6}`,
          last_processed_timestamp: toStoredText(new Date(Date.UTC(2026, 0, 1, (i + j) % 50))), active: (i + j) % 7 === 0 ? 0 : 1,
        }))).execute()
      }
      const plans = async (run: (store: OpenDatabase) => Promise<unknown>) => {
        const queries: CompiledQuery[] = []
        await run({ ...database, db: database.compileOnly((q) => { queries.push(q) }) } as OpenDatabase).catch(() => {})
        const out: string[] = []
        for (const query of queries) {
          const { rows } = await database.db.executeQuery(CompiledQuery.raw(`${EXPLAIN[engine]} ${query.sql}`, [...query.parameters]))
          out.push(JSON.stringify(rows))
        }
        return out
      }
      const [counts] = await plans((store) => lastProcessedCounts(store, {}))
      // The stuck bound's median: the same groups over the active scopes.
      const [median] = await plans((store) => lastProcessedCounts(store, { active: [true] }))
      const [page] = await plans((store) => findScopes(store, { active: [true], lastProcessedBefore: new Date(Date.UTC(2025, 0, 1)) }, { limit: 100 }))
      if (engine === 'postgres') {
        assert.match(counts, /HashAggregate|GroupAggregate/, counts)
        assert.doesNotMatch(counts + median + page, /ix_scopekeeper_states_active_last_processed/)
        return
      }
      for (const plan of [counts, median]) {
        assert.match(plan, /ix_scopekeeper_states_active_last_processed/, plan)
        assert.doesNotMatch(plan, /TEMP B-TREE|filesort|temporary/, plan)
      }
      assert.doesNotMatch(page, /SCAN cloudkitty_storage_states(?! USING)|"type":"ALL"/, page)
    })
  })
}
