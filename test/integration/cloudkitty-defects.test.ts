import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { buildTestApp, call, createScopes } from '../helpers/build-test-app.ts'
import { testEngines } from '../helpers/test-databases.ts'

// CONTRACT.md "Known defects of the original that we fix", one test each.
for (const engine of testEngines()) {
  describe(`${engine}: CloudKitty 17.0.0 defects that do not happen here`, () => {
    it('POST without a timestamp stores one (CloudKitty: 500, no timestamp stored)', async (t) => {
      const { app, database } = await buildTestApp(t, { engine })
      const res = await call(app, 'POST', '/v2/scope', { scope_id: 'p' })
      assert.equal(res.status, 200)
      const row: any = await database.db.selectFrom('cloudkitty_storage_states').selectAll().executeTakeFirstOrThrow()
      assert.match(row.last_processed_timestamp, /^\d{4}-\d\d-01 00:00:00(\.000000)?$/)
    })

    it('an ordinary PATCH answers 200 (CloudKitty: 500 reading a field that no longer exists)', async (t) => {
      const { app } = await buildTestApp(t, { engine })
      await createScopes(app, [{ scope_id: 'p' }])
      const res = await call(app, 'PATCH', '/v2/scope', { scope_id: 'p', active: 0, collector: 'prometheus' })
      assert.equal(res.status, 200)
      assert.deepEqual([res.body.active, res.body.collector], [false, 'prometheus'])
    })

    it('POST with active false answers 200 and stores it inactive (CloudKitty: 500)', async (t) => {
      const { app } = await buildTestApp(t, { engine })
      const res = await call(app, 'POST', '/v2/scope', { scope_id: 'trial', active: false })
      assert.equal(res.status, 200)
      assert.equal((await call(app, 'GET', '/v2/scope?scope_id=trial')).body.results[0].active, false)
    })

    it('a duplicate POST answers 409, not 404', async (t) => {
      const { app } = await buildTestApp(t, { engine })
      await createScopes(app, [{ scope_id: 'p' }])
      assert.equal((await call(app, 'POST', '/v2/scope', { scope_id: 'p' })).status, 409)
    })

    it('a PATCH on a scope_id with several rows answers 409, not a 500 from the unique constraint', async (t) => {
      const { app, database } = await buildTestApp(t, { engine })
      await database.db.insertInto('cloudkitty_storage_states').values([
        { identifier: 'p', scope_key: 'project_id', fetcher: 'keystone', collector: 'gnocchi', last_processed_timestamp: '2019-01-01 00:00:00', active: 1 },
        { identifier: 'p', scope_key: 'project_id', fetcher: 'keystone', collector: 'prometheus', last_processed_timestamp: '2019-01-01 00:00:00', active: 1 },
      ]).execute()
      assert.equal((await call(app, 'PATCH', '/v2/scope', { scope_id: 'p', collector: 'gnocchi' })).status, 409)
    })

    it('PUT resets inactive scopes and more than 100 of them (CloudKitty: active only, first 100)', async (t) => {
      const { app, database, worker } = await buildTestApp(t, { engine })
      const rows = Array.from({ length: 150 }, (_, i) => ({
        identifier: `p${i}`, scope_key: 'project_id', fetcher: 'keystone', collector: 'gnocchi',
        last_processed_timestamp: '2020-01-01 00:00:00.000000', active: i % 2,
      }))
      await database.db.insertInto('cloudkitty_storage_states').values(rows).execute()
      assert.equal((await call(app, 'PUT', '/v2/scope', { all_scopes: true, state: '2019-01-01' })).status, 202)
      await worker.drain()
      const listed = (await call(app, 'GET', '/v2/scope?limit=1000')).body.results
      assert.equal(listed.length, 150)
      assert.ok(listed.every((r: any) => r.last_processed_timestamp === '2019-01-01T00:00:00+00:00'))
    })

    it('POST without scope_key, fetcher and collector stores the defaults, not NULLs', async (t) => {
      const { app, database } = await buildTestApp(t, { engine })
      await call(app, 'POST', '/v2/scope', { scope_id: 'p' })
      const row: any = await database.db.selectFrom('cloudkitty_storage_states').selectAll().executeTakeFirstOrThrow()
      assert.deepEqual([row.scope_key, row.fetcher, row.collector], ['project_id', 'keystone', 'gnocchi'])
    })

    it('reads the string "false" as false, never as true', async (t) => {
      const { app } = await buildTestApp(t, { engine })
      await createScopes(app, [{ scope_id: 'p' }])
      assert.equal((await call(app, 'PATCH', '/v2/scope', { scope_id: 'p', active: 'false' })).body.active, false)
    })
  })
}
