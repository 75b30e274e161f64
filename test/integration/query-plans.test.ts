import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { CompiledQuery } from 'kysely'
import { findScopes } from '../../src/storage/scope-state-repository.ts'
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
  })
}
