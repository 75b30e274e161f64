import assert from 'node:assert/strict'
import { describe, it, type TestContext } from 'node:test'
import type { ScopeState } from '../../src/domain/scope-state.ts'
import type { RatedDataStore } from '../../src/reset/rated-data-hook.ts'
import { buildTestApp, call, createScopes, dumpJobs, dumpStates } from '../helpers/build-test-app.ts'
import { testEngines, type TestEngine } from '../helpers/test-databases.ts'

/** Records every discard the worker asks for, in order. */
function recordingStore (): RatedDataStore & { calls: Array<{ scopeId: string, collector: string | null, from: string }> } {
  const calls: Array<{ scopeId: string, collector: string | null, from: string }> = []
  return { calls, async discardFrom (scope: ScopeState, from: Date) { calls.push({ scopeId: scope.scopeId, collector: scope.collector, from: from.toISOString() }) } }
}

async function seeded (t: TestContext, engine: TestEngine, store?: RatedDataStore) {
  const ctx = await buildTestApp(t, { engine, ratedData: store })
  await createScopes(ctx.app, [
    { scope_id: 'aaaa', collector: 'gnocchi', last_processed_timestamp: '2020-01-01T00:00:00Z' },
    { scope_id: 'bbbb', collector: 'prometheus', last_processed_timestamp: '2020-01-01T00:00:00Z' },
    { scope_id: 'cccc', collector: 'gnocchi', active: false, last_processed_timestamp: '2020-01-01T00:00:00Z' },
  ])
  return ctx
}

async function timestamps (app: any): Promise<Record<string, string>> {
  const res = await call(app, 'GET', '/v2/scope?limit=1000')
  return Object.fromEntries(res.body.results.map((r: any) => [`${r.scope_id}/${r.collector}`, r.last_processed_timestamp]))
}

for (const engine of testEngines()) {
  describe(`${engine}: PUT /v2/scope`, () => {
    it('answers 202 {} and records the reset durably before the worker applies it', async (t) => {
      const { app, worker, database } = await seeded(t, engine)
      const res = await call(app, 'PUT', '/v2/scope', { scope_id: 'aaaa', last_processed_timestamp: '2019-07-16T08:55:01Z' })
      assert.equal(res.status, 202)
      assert.deepEqual(res.body, {})
      assert.match(String(res.headers['x-openstack-request-id']), /^req-[0-9a-f-]{36}$/)
      const [job] = await dumpJobs(database) as any[]
      assert.equal(job.status, 'pending')
      assert.equal(job.scopes_total, 1)
      assert.equal(job.request_id, res.headers['x-openstack-request-id'])
      assert.equal((await timestamps(app))['aaaa/gnocchi'], '2020-01-01T00:00:00+00:00')
      await worker.drain()
      assert.equal((await timestamps(app))['aaaa/gnocchi'], '2019-07-16T08:55:01+00:00')
      assert.equal(((await dumpJobs(database)) as any[])[0].status, 'done')
    })

    it('accepts the deprecated state alias and a comma-joined scope_id, as the CloudKitty client sends them', async (t) => {
      const { app, worker } = await seeded(t, engine)
      assert.equal((await call(app, 'PUT', '/v2/scope', { scope_id: 'aaaa,bbbb', state: '20190716T085501Z' })).status, 202)
      await worker.drain()
      const ts = await timestamps(app)
      assert.equal(ts['aaaa/gnocchi'], '2019-07-16T08:55:01+00:00')
      assert.equal(ts['bbbb/prometheus'], '2019-07-16T08:55:01+00:00')
      assert.equal(ts['cccc/gnocchi'], '2020-01-01T00:00:00+00:00')
    })

    it('takes scope_id as a list and narrows with scope_key, fetcher and collector', async (t) => {
      const { app, worker } = await seeded(t, engine)
      assert.equal((await call(app, 'PUT', '/v2/scope', { scope_id: ['aaaa', 'bbbb', 'cccc'], collector: 'gnocchi', last_processed_timestamp: '2019-05-05' })).status, 202)
      await worker.drain()
      assert.deepEqual(await timestamps(app), {
        'aaaa/gnocchi': '2019-05-05T00:00:00+00:00', 'bbbb/prometheus': '2020-01-01T00:00:00+00:00', 'cccc/gnocchi': '2019-05-05T00:00:00+00:00',
      })
      assert.equal((await call(app, 'PUT', '/v2/scope', { scope_id: 'aaaa', fetcher: 'gnocchi', last_processed_timestamp: '2019-05-05' })).status, 404)
    })

    it('resets every scope, inactive ones included, with all_scopes', async (t) => {
      const { app, worker } = await seeded(t, engine)
      assert.equal((await call(app, 'PUT', '/v2/scope', { all_scopes: true, state: '2019-01-01T00:00:00+01:00' })).status, 202)
      await worker.drain()
      assert.ok(Object.values(await timestamps(app)).every((ts) => ts === '2018-12-31T23:00:00+00:00'))
    })

    it('discards rated data from T + period on, through the storage hook, for every matched scope', async (t) => {
      const store = recordingStore()
      const { app, worker } = await seeded(t, engine, store)
      await call(app, 'PUT', '/v2/scope', { all_scopes: true, collector: 'gnocchi', last_processed_timestamp: '2019-07-16T08:00:00Z' })
      await worker.drain()
      assert.deepEqual(store.calls, [
        { scopeId: 'aaaa', collector: 'gnocchi', from: '2019-07-16T09:00:00.000Z' },
        { scopeId: 'cccc', collector: 'gnocchi', from: '2019-07-16T09:00:00.000Z' },
      ])
    })

    it('uses the configured period for the discard boundary', async (t) => {
      const store = recordingStore()
      const ctx = await buildTestApp(t, { engine, ratedData: store, env: { SCOPEKEEPER_COLLECT_PERIOD: '600' } })
      await createScopes(ctx.app, [{ scope_id: 'aaaa' }])
      await call(ctx.app, 'PUT', '/v2/scope', { scope_id: 'aaaa', state: '2019-07-16T08:00:00Z' })
      await ctx.worker.drain()
      assert.equal(store.calls[0].from, '2019-07-16T08:10:00.000Z')
    })

    it('applies resets of the same scope in acceptance order: the last accepted wins', async (t) => {
      const { app, worker } = await seeded(t, engine)
      for (const ts of ['2019-03-03', '2019-01-01', '2019-02-02']) {
        assert.equal((await call(app, 'PUT', '/v2/scope', { scope_id: 'aaaa', state: ts })).status, 202)
      }
      await worker.drain()
      assert.equal((await timestamps(app))['aaaa/gnocchi'], '2019-02-02T00:00:00+00:00')
    })

    it('resets every matching row of a scope_id present several times', async (t) => {
      const { app, worker, database } = await buildTestApp(t, { engine })
      await database.db.insertInto('cloudkitty_storage_states').values([
        { identifier: 'dup', scope_key: 'project_id', fetcher: 'keystone', collector: 'gnocchi', last_processed_timestamp: '2020-01-01 00:00:00.000000', active: 1 },
        { identifier: 'dup', scope_key: null, fetcher: null, collector: null, last_processed_timestamp: '2020-01-01 00:00:00', active: 0 },
      ]).execute()
      assert.equal((await call(app, 'PUT', '/v2/scope', { scope_id: 'dup', state: '2019-01-01' })).status, 202)
      await worker.drain()
      const rows = (await call(app, 'GET', '/v2/scope')).body.results
      assert.deepEqual(rows.map((r: any) => r.last_processed_timestamp), ['2019-01-01T00:00:00+00:00', '2019-01-01T00:00:00+00:00'])
    })

    it('answers 404 when no scope matches, and records nothing', async (t) => {
      const { app, database } = await seeded(t, engine)
      const res = await call(app, 'PUT', '/v2/scope', { scope_id: 'zzzz', state: '2019-01-01' })
      assert.equal(res.status, 404)
      assert.deepEqual(res.body, { message: 'No resource found for provided filters.' })
      assert.deepEqual(await dumpJobs(database), [])
    })

    it('answers 400 with a clear message for every malformed reset, and records nothing', async (t) => {
      const { app, database } = await seeded(t, engine)
      const before = await dumpStates(database)
      const cases: Array<[unknown, RegExp]> = [
        [{ state: '2019-01-01' }, /^Either all_scopes or a scope_id should be specified\.$/],
        [{ all_scopes: false, state: '2019-01-01' }, /^Either all_scopes or a scope_id should be specified\.$/],
        [{ all_scopes: true, scope_id: 'aaaa', state: '2019-01-01' }, /not both/],
        [{ scope_id: 'aaaa' }, /last_processed_timestamp .*required/],
        [{ all_scopes: true }, /last_processed_timestamp .*required/],
        [{ scope_id: 'aaaa', state: 'yesterday' }, /state/],
        [{ scope_id: 'aaaa', last_processed_timestamp: '2019-02-30' }, /last_processed_timestamp/],
        [{ scope_id: 'aaaa', state: '2019-01-01', last_processed_timestamp: '2019-02-01' }, /disagree/],
        [{ scope_id: 'aaaa', state: '2019-01-01', bogus: 1 }, /Unknown field 'bogus'/],
        [{ all_scopes: 'yes', state: '2019-01-01' }, /all_scopes/],
        [{ scope_id: 42, state: '2019-01-01' }, /scope_id/],
        [{ scope_id: [], state: '2019-01-01' }, /scope_id/],
        [{ scope_id: ',', state: '2019-01-01' }, /scope_id/],
        [{ scope_id: 'aaaa', state: 20190101 }, /state/],
        [[1, 2], /JSON object/],
        ['just a string', /JSON object/],
      ]
      for (const [body, pattern] of cases) {
        const res = await call(app, 'PUT', '/v2/scope', body)
        assert.equal(res.status, 400, JSON.stringify(body))
        assert.match(res.body.message, pattern, JSON.stringify(body))
      }
      assert.deepEqual(await dumpJobs(database), [])
      assert.deepEqual(await dumpStates(database), before)
    })

    it('accepts the same timestamp under both names', async (t) => {
      const { app } = await seeded(t, engine)
      assert.equal((await call(app, 'PUT', '/v2/scope', { scope_id: 'aaaa', state: '2019-01-01T00:00:00Z', last_processed_timestamp: '2019-01-01' })).status, 202)
    })
  })
}
