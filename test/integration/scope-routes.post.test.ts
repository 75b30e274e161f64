import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { createHash } from 'node:crypto'
import { buildTestApp, call, dumpStates } from '../helpers/build-test-app.ts'
import { connectRaw } from '../helpers/cloudkitty-schema.ts'
import { testEngines } from '../helpers/test-databases.ts'
import { creationLockKey, creationLockName } from '../../src/storage/scope-state-repository.ts'

const NOW = Date.parse('2026-11-29T13:45:17.500Z')

/** Whether `promise` is still pending after a short while. */
async function isPending (promise: Promise<unknown>): Promise<boolean> {
  const pending = Symbol('pending')
  return await Promise.race([promise, new Promise((resolve) => setTimeout(() => resolve(pending), 300))]) === pending
}

const HELD_ROW = "INSERT INTO cloudkitty_storage_states (identifier, scope_key, fetcher, collector, last_processed_timestamp, active) VALUES ('held', 'project_id', 'keystone', 'other', '2026-01-01 00:00:00', %s)"

for (const engine of testEngines()) {
  describe(`${engine}: POST /v2/scope`, () => {
    it('creates a scope with the defaults, starting at the beginning of the current month', async (t) => {
      const { app } = await buildTestApp(t, { engine, clock: () => new Date(NOW) })
      const res = await call(app, 'POST', '/v2/scope', { scope_id: 'trial-project' })
      assert.equal(res.status, 200)
      assert.deepEqual(res.body, {
        scope_id: 'trial-project', scope_key: 'project_id', fetcher: 'keystone', collector: 'gnocchi',
        state: '2026-11-01T00:00:00+00:00', last_processed_timestamp: '2026-11-01T00:00:00+00:00',
        active: true, scope_activation_toggle_date: '2026-11-29T13:45:17+00:00',
      })
      assert.deepEqual((await call(app, 'GET', '/v2/scope?scope_id=trial-project')).body.results, [res.body])
    })

    it('registers a trial project inactive, so it is listed but never rated', async (t) => {
      const { app } = await buildTestApp(t, { engine })
      const res = await call(app, 'POST', '/v2/scope', { scope_id: 'trial', active: false })
      assert.equal(res.status, 200)
      assert.equal(res.body.active, false)
      assert.deepEqual((await call(app, 'GET', '/v2/scope?active=0')).body.results.map((r: any) => r.scope_id), ['trial'])
      assert.equal((await call(app, 'GET', '/v2/scope?active=1')).status, 404)
    })

    it('takes every field, the state alias, and active in the PATCH forms', async (t) => {
      const { app } = await buildTestApp(t, { engine })
      const res = await call(app, 'POST', '/v2/scope', {
        scope_id: 'x', scope_key: 'domain_id', fetcher: 'prometheus', collector: 'prometheus', active: 0, state: '2019-07-16T10:55:01+02:00',
      })
      assert.equal(res.status, 200)
      assert.equal(res.body.last_processed_timestamp, '2019-07-16T08:55:01+00:00')
      assert.deepEqual([res.body.scope_key, res.body.fetcher, res.body.collector, res.body.active], ['domain_id', 'prometheus', 'prometheus', false])
      const basic = await call(app, 'POST', '/v2/scope', { scope_id: 'y', last_processed_timestamp: '20190716T085501Z', active: 'TRUE' })
      assert.equal(basic.body.last_processed_timestamp, '2019-07-16T08:55:01+00:00')
      assert.equal(basic.body.active, true)
    })

    it('uses the configured defaults for scope_key, fetcher and collector', async (t) => {
      const { app } = await buildTestApp(t, { engine, env: { SCOPEKEEPER_COLLECT_COLLECTOR: 'prometheus', SCOPEKEEPER_COLLECT_SCOPE_KEY: 'domain_id', SCOPEKEEPER_FETCHER_BACKEND: 'source' } })
      const res = await call(app, 'POST', '/v2/scope', { scope_id: 'x' })
      assert.deepEqual([res.body.scope_key, res.body.fetcher, res.body.collector], ['domain_id', 'source', 'prometheus'])
    })

    it('answers 409 when the scope_id already exists, changing nothing', async (t) => {
      const { app, database } = await buildTestApp(t, { engine })
      await call(app, 'POST', '/v2/scope', { scope_id: 'aaaa' })
      const before = await dumpStates(database)
      for (const body of [{ scope_id: 'aaaa' }, { scope_id: 'aaaa', collector: 'prometheus' }]) {
        const res = await call(app, 'POST', '/v2/scope', body)
        assert.equal(res.status, 409)
        assert.match(res.body.message, /aaaa already exists/)
      }
      assert.deepEqual(await dumpStates(database), before)
    })

    // The creation lock of a scope_id (issue 11 §6), taken here by another
    // connection as a second API process takes it. SQLite's is the write
    // lock of the file, whose holder must be another process (the
    // concurrency tests): better-sqlite3 waits for it synchronously.
    it('holds a POST while another process creates the same scope_id, then answers 409', async (t) => {
      const { app, database, url } = await buildTestApp(t, { engine })
      if (database.traits.creationLock === 'write-transaction') return
      const raw = await connectRaw(engine, url)
      try {
        const postgres = database.traits.creationLock === 'transaction-advisory'
        if (postgres) {
          await raw.exec('BEGIN')
          await raw.exec(`SELECT pg_advisory_xact_lock(${creationLockKey('held')})`)
          await raw.exec(HELD_ROW.replace('%s', 'true'))
        } else {
          await raw.rows(`SELECT GET_LOCK('${creationLockName('held')}', 10)`)
        }
        const post = call(app, 'POST', '/v2/scope', { scope_id: 'held', collector: 'mine' })
        assert.ok(await isPending(post), 'the POST did not wait for the lock')
        if (postgres) {
          await raw.exec('COMMIT')
        } else {
          await raw.exec(HELD_ROW.replace('%s', '1'))
          await raw.rows(`SELECT RELEASE_LOCK('${creationLockName('held')}')`)
        }
        const res = await post
        assert.equal(res.status, 409, res.text)
        assert.match(res.body.message, /held already exists/)
        assert.equal((await call(app, 'GET', '/v2/scope?scope_id=held')).body.results.length, 1)
      } finally {
        await raw.close()
      }
    })

    it('is not held by a lock of CloudKitty\'s processor (tooz) on the same database', async (t) => {
      const { app, database, url } = await buildTestApp(t, { engine })
      if (database.traits.creationLock === 'write-transaction') return
      const raw = await connectRaw(engine, url)
      try {
        if (database.traits.creationLock === 'transaction-advisory') {
          // tooz's pgsql driver locks pg_advisory_lock(int, int): here the two
          // ints with the very bits of the creation key, in the other key space.
          const key = creationLockKey('held')
          await raw.exec(`SELECT pg_advisory_lock(${BigInt.asIntN(32, key >> 32n)}, ${BigInt.asIntN(32, key)})`)
        } else {
          // tooz's mysql driver: GET_LOCK of CloudKitty's name, 64 hex digits.
          const name = createHash('sha256').update('cloudkitty-held-gnocchi-keystone-project_id').digest('hex')
          await raw.rows(`SELECT GET_LOCK('${name}', 10)`)
        }
        const res = await call(app, 'POST', '/v2/scope', { scope_id: 'held' })
        assert.equal(res.status, 200, res.text)
      } finally {
        await raw.close()
      }
    })

    it('stores scope ids up to 256 characters, 4-byte UTF-8 included, and refuses longer ones', async (t) => {
      const { app } = await buildTestApp(t, { engine })
      const long = 'é'.repeat(255) + '😀'
      const res = await call(app, 'POST', '/v2/scope', { scope_id: long })
      assert.equal(res.status, 200)
      assert.equal(res.body.scope_id, long)
      assert.equal((await call(app, 'GET', `/v2/scope?scope_id=${encodeURIComponent(long)}`)).body.results[0].scope_id, long)
      const tooLong = await call(app, 'POST', '/v2/scope', { scope_id: 'a'.repeat(257) })
      assert.equal(tooLong.status, 400)
      assert.match(tooLong.body.message, /scope_id/)
    })

    it('answers 400 naming the field for bad bodies, creating nothing', async (t) => {
      const { app, database } = await buildTestApp(t, { engine })
      const cases: Array<[unknown, RegExp]> = [
        [{}, /Missing required field 'scope_id'/],
        [{ scope_id: '' }, /scope_id/],
        [{ scope_id: 5 }, /scope_id/],
        [{ scope_id: 'nul\u0000byte' }, /scope_id/],
        [{ scope_id: 'lone\ud800surrogate' }, /scope_id/],
        [{ scope_id: 'a', scope_key: 'k'.repeat(41) }, /scope_key/],
        [{ scope_id: 'a', fetcher: 'f'.repeat(41) }, /fetcher/],
        [{ scope_id: 'a', collector: '' }, /collector/],
        [{ scope_id: 'a', active: 'nope' }, /active/],
        [{ scope_id: 'a', last_processed_timestamp: 'soon' }, /last_processed_timestamp/],
        [{ scope_id: 'a', state: '2019-01-01', last_processed_timestamp: '2018-01-01' }, /disagree/],
        [{ scope_id: 'a', all_scopes: true }, /Unknown field 'all_scopes'/],
        [42, /JSON object/],
      ]
      for (const [body, pattern] of cases) {
        const res = await call(app, 'POST', '/v2/scope', body)
        assert.equal(res.status, 400, JSON.stringify(body))
        assert.match(res.body.message, pattern, JSON.stringify(body))
      }
      assert.deepEqual(await dumpStates(database), [])
    })
  })
}
