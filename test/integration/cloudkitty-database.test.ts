import assert from 'node:assert/strict'
import { describe, it, type TestContext } from 'node:test'
import { migrateDownAll, migrateToLatest } from '../../src/storage/migrate.ts'
import { buildTestApp, call, tempDir } from '../helpers/build-test-app.ts'
import { CLOUDKITTY_ALEMBIC_HEAD, connectRaw, createCloudKittySchema, describeStatesTable, type RawDatabase } from '../helpers/cloudkitty-schema.ts'
import { freshDatabaseUrl, testEngines, type TestEngine } from '../helpers/test-databases.ts'
import { deferCleanup } from '../helpers/cleanup.ts'

/** A fresh database holding CloudKitty's schema and rows, served by scopekeeper. */
async function liveCloudKitty (t: TestContext, engine: TestEngine) {
  const url = await freshDatabaseUrl(t, engine, tempDir(t))
  if (url === undefined) return undefined
  const raw = await connectRaw(engine, url)
  deferCleanup(t, async () => { await raw.close() })
  await createCloudKittySchema(raw, engine)
  const tableBefore = await describeStatesTable(raw, engine)
  const ctx = await buildTestApp(t, { engine, env: { SCOPEKEEPER_DATABASE_URL: url } })
  return { ...ctx, raw, tableBefore }
}

// The stored value of a datetime column as text, whatever the engine's type.
function asText (engine: TestEngine, column: string): string {
  if (engine === 'postgres') return `${column}::text`
  if (engine === 'mariadb') return `CAST(${column} AS CHAR)`
  return column
}

async function rawRow (raw: RawDatabase, engine: TestEngine, identifier: string) {
  const [row] = await raw.rows(`SELECT ${asText(engine, 'last_processed_timestamp')} AS lpt, ${asText(engine, 'scope_activation_toggle_date')} AS toggled, active, scope_key, fetcher, collector
    FROM cloudkitty_storage_states WHERE identifier = '${identifier}'`)
  return row
}

const ids = (body: any) => body.results.map((r: any) => `${r.scope_id}/${r.collector}`)

for (const engine of testEngines()) {
  describe(`${engine}: a live CloudKitty database`, () => {
    it("adds only scopekeeper's tables and indexes, never altering CloudKitty's table or alembic history", async (t) => {
      const live = await liveCloudKitty(t, engine)
      if (live === undefined) return
      await migrateToLatest(live.database)
      const after = await describeStatesTable(live.raw, engine) as Record<string, unknown>
      // PostgreSQL only gains a storage parameter (room for in-page timestamp updates).
      if (engine === 'postgres') assert.deepEqual(after.storage, [{ reloptions: ['fillfactor=50'] }])
      assert.deepEqual({ ...after, storage: undefined }, { ...live.tableBefore as object, storage: undefined })
      assert.deepEqual(await live.raw.rows('SELECT version_num FROM storage_states_alembic'), [{ version_num: CLOUDKITTY_ALEMBIC_HEAD }])
      await migrateDownAll(live.database)
      assert.deepEqual(await describeStatesTable(live.raw, engine), live.tableBefore)
      assert.equal((await live.raw.rows('SELECT id FROM cloudkitty_storage_states')).length, 4)
      await migrateToLatest(live.database)
      assert.equal((await call(live.app, 'GET', '/v2/scope')).body.results.length, 4)
    })

    it('lists the rows CloudKitty wrote, NULL columns and repeated scope_ids included', async (t) => {
      const live = await liveCloudKitty(t, engine)
      if (live === undefined) return
      const res = await call(live.app, 'GET', '/v2/scope')
      assert.equal(res.status, 200)
      assert.deepEqual(ids(res.body), ['aaaa/gnocchi', 'legacy/null', 'twin/gnocchi', 'twin/prometheus'])
      const legacy = res.body.results[1]
      assert.deepEqual({ ...legacy, scope_activation_toggle_date: undefined }, {
        scope_id: 'legacy', scope_key: null, fetcher: null, collector: null,
        state: '2019-07-16T09:00:00+00:00', last_processed_timestamp: '2019-07-16T09:00:00+00:00', active: false, scope_activation_toggle_date: undefined,
      })
      assert.match(legacy.scope_activation_toggle_date, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$/)
      assert.deepEqual(ids((await call(live.app, 'GET', '/v2/scope?scope_id=twin&fetcher=gnocchi')).body), ['twin/prometheus'])
      // Case-sensitive even where CloudKitty's table collation is not.
      assert.equal((await call(live.app, 'GET', '/v2/scope?scope_id=AAAA')).status, 404)
      assert.equal((await call(live.app, 'GET', '/v2/scope?collector=GNOCCHI')).status, 404)
    })

    it('resets every matching CloudKitty row, NULL and repeated ones included', async (t) => {
      const live = await liveCloudKitty(t, engine)
      if (live === undefined) return
      assert.equal((await call(live.app, 'PUT', '/v2/scope', { scope_id: 'twin,legacy', state: '2019-01-01T00:00:00Z' })).status, 202)
      await live.worker.drain()
      for (const id of ['legacy', 'twin']) {
        for (const row of await live.raw.rows(`SELECT ${asText(engine, 'last_processed_timestamp')} AS lpt FROM cloudkitty_storage_states WHERE identifier = '${id}'`)) {
          assert.match(String(row.lpt), /^2019-01-01 00:00:00(\.000000)?$/)
        }
      }
      assert.match(String((await rawRow(live.raw, engine, 'aaaa')).lpt), /^2019-07-16 08:00:00/)
    })

    it('gives the documented PATCH outcomes on CloudKitty rows', async (t) => {
      const live = await liveCloudKitty(t, engine)
      if (live === undefined) return
      const twin = await call(live.app, 'PATCH', '/v2/scope', { scope_id: 'twin', active: false })
      assert.equal(twin.status, 409)
      const legacy = await call(live.app, 'PATCH', '/v2/scope', { scope_id: 'legacy', active: 1 })
      assert.equal(legacy.status, 200)
      assert.deepEqual([legacy.body.scope_key, legacy.body.fetcher, legacy.body.collector, legacy.body.active], [null, null, null, true])
      assert.equal((await call(live.app, 'PATCH', '/v2/scope', { scope_id: 'nope' })).status, 404)
      assert.equal((await call(live.app, 'POST', '/v2/scope', { scope_id: 'twin' })).status, 409)
    })

    it('writes rows that read back through the plain driver in the engine native form, and reads theirs', async (t) => {
      const live = await liveCloudKitty(t, engine)
      if (live === undefined) return
      await call(live.app, 'POST', '/v2/scope', { scope_id: 'ours', active: false, last_processed_timestamp: '2019-07-16T10:55:01+02:00' })
      const ours = await rawRow(live.raw, engine, 'ours')
      assert.equal(ours.lpt, engine === 'sqlite' ? '2019-07-16 08:55:01.000000' : '2019-07-16 08:55:01')
      assert.ok(engine === 'postgres' ? ours.active === false : Number(ours.active) === 0)
      assert.deepEqual([ours.scope_key, ours.fetcher, ours.collector], ['project_id', 'keystone', 'gnocchi'])
      // A row CloudKitty inserts now, with its server-default toggle date, lists through us.
      await live.raw.exec(`INSERT INTO cloudkitty_storage_states (identifier, scope_key, fetcher, collector, last_processed_timestamp, active)
        VALUES ('theirs', 'project_id', 'keystone', 'gnocchi', '2020-02-02 02:02:02', ${engine === 'postgres' ? 'true' : '1'})`)
      const theirs = (await call(live.app, 'GET', '/v2/scope?scope_id=theirs')).body.results[0]
      assert.equal(theirs.last_processed_timestamp, '2020-02-02T02:02:02+00:00')
      assert.equal(theirs.active, true)
    })

    it('refuses a scope id the table cannot store with a 400, never a 500', async (t) => {
      const live = await liveCloudKitty(t, engine)
      if (live === undefined) return
      const res = await call(live.app, 'POST', '/v2/scope', { scope_id: 'emoji-😀' })
      // CloudKitty's MySQL tables are utf8mb3: no 4-byte characters there.
      if (engine === 'mariadb') {
        assert.equal(res.status, 400)
        assert.match(res.body.message, /character set/)
        const filtered = await call(live.app, 'GET', '/v2/scope?scope_id=emoji-%F0%9F%98%80')
        assert.ok(filtered.status === 404 || filtered.status === 400, String(filtered.status))
      } else {
        assert.equal(res.status, 200)
      }
    })
  })
}
