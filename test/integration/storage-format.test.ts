import assert from 'node:assert/strict'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import BetterSqlite3 from 'better-sqlite3'
import { migrateDownAll, migrateToLatest } from '../../src/storage/migrate.ts'
import { openDatabase, sqlitePathFromUrl } from '../../src/storage/open-database.ts'
import { buildTestApp, call, tempDir } from '../helpers/build-test-app.ts'

// The table as CloudKitty's alembic migrations leave it on SQLite.
const CLOUDKITTY_DDL = `
CREATE TABLE cloudkitty_storage_states (
  id INTEGER NOT NULL,
  identifier VARCHAR(256) NOT NULL,
  scope_key VARCHAR(40),
  fetcher VARCHAR(40),
  collector VARCHAR(40),
  last_processed_timestamp DATETIME NOT NULL,
  scope_activation_toggle_date DATETIME DEFAULT (CURRENT_TIMESTAMP) NOT NULL,
  active BOOLEAN NOT NULL,
  PRIMARY KEY (id),
  CONSTRAINT uq_cloudkitty_storage_states_identifier UNIQUE (identifier, scope_key, collector, fetcher),
  CHECK (active IN (0, 1))
);
CREATE TABLE storage_states_alembic (version_num VARCHAR(32) NOT NULL, CONSTRAINT storage_states_alembic_pkc PRIMARY KEY (version_num));
INSERT INTO storage_states_alembic VALUES ('9feccd32');
`

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

  it('serves a database CloudKitty created, without altering its table or alembic history', async (t) => {
    const file = join(tempDir(t), 'cloudkitty.sqlite')
    const raw = new BetterSqlite3(file)
    raw.exec(CLOUDKITTY_DDL)
    // Rows as CloudKitty writes them: server-default toggle date without a
    // fraction, NULL key/fetcher/collector, one scope_id in two rows.
    raw.exec(`INSERT INTO cloudkitty_storage_states (identifier, scope_key, fetcher, collector, last_processed_timestamp, active)
      VALUES ('p1', 'project_id', 'keystone', 'gnocchi', '2019-07-16 08:00:00.000000', 1),
             ('p2', NULL, NULL, NULL, '2019-07-16 09:00:00.000000', 0),
             ('p2', 'project_id', 'keystone', 'prometheus', '2019-07-16 10:00:00.000000', 1)`)
    const tableBefore = raw.prepare("select sql from sqlite_master where name = 'cloudkitty_storage_states'").get()
    raw.close()

    const url = `sqlite:///${file}`
    const { app, database } = await buildTestApp(t, { env: { SCOPEKEEPER_DATABASE_URL: url } })
    await migrateToLatest(database) // a second run is a no-op
    const listed = (await call(app, 'GET', '/v2/scope')).body.results
    assert.deepEqual(listed.map((r: any) => [r.scope_id, r.collector, r.active, r.last_processed_timestamp]), [
      ['p1', 'gnocchi', true, '2019-07-16T08:00:00+00:00'],
      ['p2', null, false, '2019-07-16T09:00:00+00:00'],
      ['p2', 'prometheus', true, '2019-07-16T10:00:00+00:00'],
    ])
    assert.match(listed[0].scope_activation_toggle_date, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$/)
    assert.equal((await call(app, 'PATCH', '/v2/scope', { scope_id: 'p2', active: true })).status, 409)
    assert.equal((await call(app, 'PATCH', '/v2/scope', { scope_id: 'p1', active: false })).status, 200)
    assert.equal((await call(app, 'POST', '/v2/scope', { scope_id: 'p1' })).status, 409)

    const check = new BetterSqlite3(file, { readonly: true })
    t.after(() => check.close())
    assert.deepEqual(check.prepare("select sql from sqlite_master where name = 'cloudkitty_storage_states'").get(), tableBefore)
    assert.deepEqual(check.prepare('select version_num from storage_states_alembic').all(), [{ version_num: '9feccd32' }])
    assert.deepEqual(check.prepare("select active from cloudkitty_storage_states where identifier = 'p1'").get(), { active: 0 })
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
    assert.deepEqual(await tables(), ['cloudkitty_storage_states', 'scopekeeper_reset_job_scopes', 'scopekeeper_reset_jobs'])
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
