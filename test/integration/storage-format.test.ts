import assert from 'node:assert/strict'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import BetterSqlite3 from 'better-sqlite3'
import { migrateDownAll, migrateToLatest } from '../../src/storage/migrate.ts'
import { openDatabase, sqlitePathFromUrl } from '../../src/storage/open-database.ts'
import { buildTestApp, call, tempDir } from '../helpers/build-test-app.ts'

describe('SQLite storage', () => {
  it('reads SQLAlchemy URLs as cloudkitty.conf writes them', () => {
    assert.equal(sqlitePathFromUrl('sqlite:////var/lib/cloudkitty/cloudkitty.sqlite'), '/var/lib/cloudkitty/cloudkitty.sqlite')
    assert.equal(sqlitePathFromUrl('sqlite:///data/x.sqlite'), 'data/x.sqlite')
    assert.equal(sqlitePathFromUrl('sqlite://'), ':memory:')
    assert.equal(sqlitePathFromUrl('sqlite:///:memory:'), ':memory:')
    assert.throws(() => openDatabase('oracle://x'), /Unsupported database URL/)
  })

  it('writes rows exactly as CloudKitty does: naive UTC text with six fraction digits, 0/1 booleans', async (t) => {
    const { app, database } = await buildTestApp(t)
    await call(app, 'POST', '/v2/scope', { scope_id: 'a', active: false, last_processed_timestamp: '2019-07-16T10:55:01.75+02:00' })
    await call(app, 'PATCH', '/v2/scope', { scope_id: 'a', active: true })
    const row: any = await database.db.selectFrom('cloudkitty_storage_states').selectAll().executeTakeFirstOrThrow()
    assert.equal(row.last_processed_timestamp, '2019-07-16 08:55:01.000000')
    assert.match(row.scope_activation_toggle_date, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.000000$/)
    assert.equal(row.active, 1)
  })

  it('migrates down and up again, keeping the states table and its rows', async (t) => {
    const database = openDatabase(`sqlite:///${join(tempDir(t), 'm.sqlite')}`)
    t.after(() => database.close())
    await migrateToLatest(database)
    await database.db.insertInto('cloudkitty_storage_states').values({
      identifier: 'kept', scope_key: 'project_id', fetcher: 'keystone', collector: 'gnocchi', last_processed_timestamp: '2019-01-01 00:00:00.000000', active: 1,
    }).execute()
    await migrateDownAll(database)
    const tables = async () => (await database.db.introspection.getTables()).map((tb) => tb.name).filter((n) => !n.startsWith('scopekeeper_migration')).sort()
    assert.deepEqual(await tables(), ['cloudkitty_storage_states'])
    await migrateToLatest(database)
    assert.deepEqual(await tables(), ['cloudkitty_storage_states', 'scopekeeper_events', 'scopekeeper_idempotency_keys', 'scopekeeper_reset_job_scopes', 'scopekeeper_reset_job_waits', 'scopekeeper_reset_jobs'])
    assert.equal((await database.db.selectFrom('cloudkitty_storage_states').select('identifier').execute()).length, 1)
  })

  it('has an index for every served filter', async (t) => {
    const { dir } = await buildTestApp(t)
    const raw = new BetterSqlite3(join(dir, 'test.sqlite'), { readonly: true })
    t.after(() => raw.close())
    const indexed = raw.prepare("select il.name as idx, ii.name as col from pragma_index_list('cloudkitty_storage_states') il join pragma_index_info(il.name) ii where ii.seqno = 0").all() as any[]
    const leading = new Set(indexed.map((r) => r.col))
    for (const column of ['identifier', 'scope_key', 'fetcher', 'collector', 'active']) assert.ok(leading.has(column), column)
  })
})
