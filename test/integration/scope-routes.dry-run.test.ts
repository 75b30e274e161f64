import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { ScopeKeeperError } from '../../src/domain/errors.ts'
import { checkUpdateFits, countScopes, findScopes, updateScope } from '../../src/storage/scope-state-repository.ts'
import { buildTestApp, call, createScopes, dumpJobs, dumpStates, type TestApp } from '../helpers/build-test-app.ts'
import { testEngines } from '../helpers/test-databases.ts'

// Issue 14 §2: `?dry_run=true` on PUT, PATCH and POST validates the request
// and computes its effect, and writes nothing; it answers the status the
// real request would get.

/** A fixed clock, so that a dry run and the real request made after it toggle at the same instant. */
const NOW = new Date('2026-03-17T10:20:30Z')
const clock = () => NOW
/** A period other than the default, so that discard_from is seen to follow [collect] period. */
const PERIOD = 900

/** Every table a dry run must leave alone. */
async function dumpAll ({ database }: TestApp): Promise<unknown[]> {
  return [await dumpStates(database), await dumpJobs(database)]
}

/** Sends `method` with and without ?dry_run=true in turn: the dry run first, then the real request. */
async function dryThenReal (testApp: TestApp, method: 'PUT' | 'PATCH' | 'POST', body: unknown) {
  const before = await dumpAll(testApp)
  const dry = await call(testApp.app, method, '/v2/scope?dry_run=true', body)
  assert.deepEqual(await dumpAll(testApp), before, `${method} dry run ${JSON.stringify(body)} wrote`)
  const real = await call(testApp.app, method, '/v2/scope', body)
  return { dry, real }
}

for (const engine of testEngines()) {
  describe(`${engine}: dry runs of /v2/scope`, () => {
    it('PUT: counts every matched scope and the inactive ones, shows the first page, and records no job', async (t) => {
      const testApp = await buildTestApp(t, { engine, clock, env: { SCOPEKEEPER_COLLECT_PERIOD: String(PERIOD) } })
      const { app } = testApp
      await createScopes(app, [
        { scope_id: 'aaaa' }, { scope_id: 'bbbb', active: false }, { scope_id: 'cccc', active: 0 }, { scope_id: 'dddd', collector: 'prometheus' },
      ])
      const body = { scope_id: 'aaaa,bbbb,cccc,zzzz', state: '2019-07-16T10:00:00+02:00' }
      const before = await dumpAll(testApp)
      const dry = await call(app, 'PUT', '/v2/scope?dry_run=true', body)
      assert.equal(dry.status, 200)
      assert.deepEqual(Object.keys(dry.body), ['dry_run', 'scopes_total', 'scopes_inactive', 'last_processed_timestamp', 'discard_from', 'results'])
      assert.equal(dry.body.dry_run, true)
      assert.equal(dry.body.scopes_total, 3)
      assert.equal(dry.body.scopes_inactive, 2)
      assert.equal(dry.body.last_processed_timestamp, '2019-07-16T08:00:00+00:00')
      assert.equal(dry.body.discard_from, '2019-07-16T08:15:00+00:00')
      // The list's order and wire shape.
      assert.deepEqual(dry.body.results, (await call(app, 'GET', '/v2/scope?scope_id=aaaa,bbbb,cccc')).body.results)
      assert.equal(dry.headers.location, undefined)
      assert.deepEqual(await dumpAll(testApp), before)
      // The real reset covers what the dry run counted.
      const real = await call(app, 'PUT', '/v2/scope', body)
      assert.equal(real.status, 202)
      const job = await call(app, 'GET', new URL(String(real.headers.location)).pathname)
      assert.equal(job.body.scopes_total, dry.body.scopes_total)
    })

    it('PUT: a reset of every scope shows the first 100, in creation order, and counts them all', async (t) => {
      const testApp = await buildTestApp(t, { engine, env: { SCOPEKEEPER_COLLECT_PERIOD: String(PERIOD) } })
      const { app, database } = testApp
      await database.db.insertInto('cloudkitty_storage_states').values(Array.from({ length: 130 }, (_, i) => ({
        identifier: `s${String(i).padStart(3, '0')}`, scope_key: 'project_id', fetcher: 'keystone', collector: 'gnocchi',
        last_processed_timestamp: '2019-01-01 00:00:00.000000', scope_activation_toggle_date: '2019-01-01 00:00:00.000000', active: i % 3 === 0 ? 0 : 1,
      }))).execute()
      const before = await dumpAll(testApp)
      const dry = await call(app, 'PUT', '/v2/scope?dry_run=1', { all_scopes: true, last_processed_timestamp: '2019-07-16' })
      assert.equal(dry.status, 200)
      assert.equal(dry.body.scopes_total, 130)
      assert.equal(dry.body.scopes_inactive, 44)
      assert.equal(dry.body.discard_from, '2019-07-16T00:15:00+00:00')
      assert.equal(dry.body.results.length, 100)
      assert.deepEqual(dry.body.results, (await call(app, 'GET', '/v2/scope')).body.results)
      assert.deepEqual(await dumpAll(testApp), before)
      // The aggregate agrees with the narrowed filters too.
      assert.deepEqual(await countScopes(database, { active: [false] }), { total: 44, inactive: 44 })
      assert.deepEqual(await countScopes(database, { scopeIds: ['nope'] }), { total: 0, inactive: 0 })
    })

    it('PUT: answers what the real request answers when it would fail (404, 400), writing nothing', async (t) => {
      const testApp = await buildTestApp(t, { engine })
      await createScopes(testApp.app, [{ scope_id: 'aaaa' }])
      const bodies: Array<[unknown, number]> = [
        [{ scope_id: 'zzzz', state: '2019-01-01' }, 404],
        [{ scope_id: 'aaaa', collector: 'prometheus', state: '2019-01-01' }, 404],
        [{ scope_id: 'aaaa' }, 400],
        [{ all_scopes: true, scope_id: 'aaaa', state: '2019-01-01' }, 400],
        [{ state: '2019-01-01' }, 400],
        [{ scope_id: 'aaaa', state: 'yesterday' }, 400],
        [{ scope_id: 'aaaa', state: '2019-01-01', dry_run: true }, 400],
      ]
      for (const [body, status] of bodies) {
        const { dry, real } = await dryThenReal(testApp, 'PUT', body)
        assert.equal(dry.status, status, JSON.stringify(body))
        assert.deepEqual(dry.body, real.body, JSON.stringify(body))
      }
    })

    it('reads dry_run as active is read, and refuses anything else before doing anything', async (t) => {
      const testApp = await buildTestApp(t, { engine })
      const { app } = testApp
      await createScopes(app, [{ scope_id: 'aaaa' }])
      for (const word of ['true', 'TRUE', 'True', '1']) {
        const res = await call(app, 'PUT', `/v2/scope?dry_run=${word}`, { scope_id: 'aaaa', state: '2019-01-01' })
        assert.equal(res.status, 200, word)
        assert.equal(res.body.dry_run, true, word)
      }
      const before = await dumpAll(testApp)
      const bodies = { PUT: { scope_id: 'aaaa', state: '2019-01-01' }, PATCH: { scope_id: 'aaaa', active: false }, POST: { scope_id: 'bbbb' } }
      for (const word of ['yes', '', '2', 'true,false', 'on']) {
        for (const method of ['PUT', 'PATCH', 'POST'] as const) {
          const res = await call(app, method, `/v2/scope?dry_run=${encodeURIComponent(word)}`, bodies[method])
          assert.equal(res.status, 400, `${method} ${word}`)
          assert.match(res.body.message, /^Invalid dry_run in the query string: must be true, false, 1 or 0 in any case\.$/, `${method} ${word}`)
        }
      }
      const twice = await call(app, 'PATCH', '/v2/scope?dry_run=1&dry_run=0', { scope_id: 'aaaa', active: false })
      assert.equal(twice.status, 400)
      const unknown = await call(app, 'POST', '/v2/scope?dryrun=1', { scope_id: 'bbbb' })
      assert.equal(unknown.status, 400)
      assert.match(unknown.body.message, /Unknown query parameter 'dryrun'/)
      assert.deepEqual(await dumpAll(testApp), before)
      for (const word of ['false', '0', 'FALSE']) {
        const res = await call(app, 'PATCH', `/v2/scope?dry_run=${word}`, { scope_id: 'aaaa', collector: `c-${word}` })
        assert.equal(res.status, 200, word)
        assert.equal(res.headers.etag === undefined, false, word)
        assert.deepEqual((await call(app, 'GET', '/v2/scope?scope_id=aaaa')).body.results[0].collector, `c-${word}`)
      }
      assert.notDeepEqual(await dumpAll(testApp), before)
    })

    it('PATCH: answers the row as it would be, then the real PATCH answers and stores that row', async (t) => {
      const testApp = await buildTestApp(t, { engine, clock })
      const [created] = await createScopes(testApp.app, [{ scope_id: 'aaaa', active: true, last_processed_timestamp: '2019-01-01' }])
      const { dry, real } = await dryThenReal(testApp, 'PATCH', { scope_id: 'aaaa', active: 0, collector: 'prometheus' })
      assert.equal(dry.status, 200)
      assert.deepEqual(dry.body, { ...created, active: false, collector: 'prometheus', scope_activation_toggle_date: '2026-03-17T10:20:30+00:00' })
      assert.equal(dry.headers.etag, undefined)
      assert.equal(real.status, 200)
      assert.deepEqual(real.body, dry.body)
      assert.deepEqual((await call(testApp.app, 'GET', '/v2/scope?scope_id=aaaa')).body.results, [dry.body])
    })

    it('PATCH: 404 for an unknown scope_id and 409 for one naming several rows, as the real PATCH', async (t) => {
      const testApp = await buildTestApp(t, { engine })
      await createScopes(testApp.app, [{ scope_id: 'twin', collector: 'gnocchi' }])
      await testApp.database.db.insertInto('cloudkitty_storage_states').values({
        identifier: 'twin', scope_key: 'project_id', fetcher: 'keystone', collector: 'prometheus',
        last_processed_timestamp: '2019-01-01 00:00:00.000000', scope_activation_toggle_date: '2019-01-01 00:00:00.000000', active: 1,
      }).execute()
      for (const [body, status] of [[{ scope_id: 'nope', active: false }, 404], [{ scope_id: 'twin', active: false }, 409], [{ active: false }, 400]] as const) {
        const { dry, real } = await dryThenReal(testApp, 'PATCH', body)
        assert.equal(dry.status, status, JSON.stringify(body))
        assert.deepEqual(dry.body, real.body, JSON.stringify(body))
      }
    })

    it('PATCH: finds, without writing, the collision the unique constraint would refuse', async (t) => {
      // Through the API a collision needs two rows of one scope_id, refused
      // as ambiguous first (see scope-routes.patch.test.ts); the dry run's
      // check is the storage's, and it agrees with the write's.
      const { database } = await buildTestApp(t, { engine })
      await database.db.insertInto('cloudkitty_storage_states').values([
        { identifier: 'aaaa', scope_key: 'project_id', fetcher: 'keystone', collector: 'gnocchi', last_processed_timestamp: '2019-01-01 00:00:00', active: 1 },
        { identifier: 'aaaa', scope_key: 'project_id', fetcher: 'keystone', collector: 'prometheus', last_processed_timestamp: '2019-01-01 00:00:00', active: 1 },
        { identifier: 'bbbb', scope_key: 'project_id', fetcher: 'keystone', collector: 'other', last_processed_timestamp: '2019-01-01 00:00:00', active: 1 },
      ]).execute()
      const before = await dumpStates(database)
      const [first] = await findScopes(database, { collectors: ['gnocchi'] }, { limit: 1 })
      const isConflict = (e: unknown) => e instanceof ScopeKeeperError && e.code === 'SCOPE_CONFLICT'
      let checked: unknown
      await assert.rejects(checkUpdateFits(database, first, { ...first, collector: 'prometheus' }), (e) => { checked = e; return isConflict(e) })
      let written: unknown
      await assert.rejects(updateScope(database, first, { ...first, collector: 'prometheus' }), (e) => { written = e; return isConflict(e) })
      assert.equal((checked as Error).message, (written as Error).message)
      // Another scope_id's row, the row itself, a NULL or no key change: no collision.
      await checkUpdateFits(database, first, { ...first, collector: 'other' })
      await checkUpdateFits(database, first, { ...first, active: false })
      await checkUpdateFits(database, first, { ...first, collector: 'gnocchi', fetcher: 'keystone' })
      await checkUpdateFits(database, first, { ...first, scopeKey: null, collector: 'prometheus' })
      assert.deepEqual(await dumpStates(database), before)
    })

    it('POST: answers the row as it would be created (defaults, start of month, toggled now), then the real POST creates it', async (t) => {
      const testApp = await buildTestApp(t, { engine, clock })
      const { dry, real } = await dryThenReal(testApp, 'POST', { scope_id: 'trial', active: false })
      assert.equal(dry.status, 200)
      assert.deepEqual(dry.body, {
        scope_id: 'trial', scope_key: 'project_id', fetcher: 'keystone', collector: 'gnocchi',
        state: '2026-03-01T00:00:00+00:00', last_processed_timestamp: '2026-03-01T00:00:00+00:00', active: false,
        scope_activation_toggle_date: '2026-03-17T10:20:30+00:00',
      })
      assert.equal(dry.headers.etag, undefined)
      assert.equal(real.status, 200)
      assert.deepEqual(real.body, dry.body)
      const given = await dryThenReal(testApp, 'POST', { scope_id: 'other', scope_key: 'domain_id', fetcher: 'gnocchi', collector: 'prometheus', state: '2019-07-16T08:55:01+02:00' })
      assert.equal(given.dry.status, 200)
      assert.deepEqual(given.real.body, given.dry.body)
      assert.equal(given.dry.body.last_processed_timestamp, '2019-07-16T06:55:01+00:00')
    })

    it('POST: 409 when the scope_id exists, 400 as the real POST, writing nothing', async (t) => {
      const testApp = await buildTestApp(t, { engine })
      await createScopes(testApp.app, [{ scope_id: 'aaaa' }])
      for (const [body, status] of [
        [{ scope_id: 'aaaa' }, 409],
        [{ scope_id: 'aaaa', collector: 'prometheus' }, 409],
        [{ scope_id: 'bbbb', state: 'never' }, 400],
        [{ scope_id: 'bbbb', last_processed_timestamp: '2019-01-01', state: '2019-02-01' }, 400],
      ] as const) {
        const dry = await call(testApp.app, 'POST', '/v2/scope?dry_run=true', body)
        assert.equal(dry.status, status, JSON.stringify(body))
        const before = await dumpAll(testApp)
        const real = await call(testApp.app, 'POST', '/v2/scope', body)
        assert.deepEqual(dry.body, real.body, JSON.stringify(body))
        assert.deepEqual(await dumpAll(testApp), before)
      }
    })

    it('property: a dry-run PATCH answers what the real PATCH then answers, and writes nothing', async (t) => {
      const testApp = await buildTestApp(t, { engine, clock })
      await createScopes(testApp.app, [{ scope_id: 'alpha' }, { scope_id: 'beta', active: false, fetcher: 'gnocchi' }, { scope_id: 'twin' }])
      await testApp.database.db.insertInto('cloudkitty_storage_states').values({
        identifier: 'twin', scope_key: 'project_id', fetcher: 'keystone', collector: 'prometheus',
        last_processed_timestamp: '2019-01-01 00:00:00.000000', scope_activation_toggle_date: '2019-01-01 00:00:00.000000', active: 1,
      }).execute()
      const word = fc.constantFrom('project_id', 'domain_id', 'keystone', 'gnocchi', 'prometheus', 'x'.repeat(40), 'x'.repeat(41), '')
      const change = fc.record({
        scope_id: fc.constantFrom('alpha', 'beta', 'twin', 'nope'),
        scope_key: word, fetcher: word, collector: word,
        active: fc.constantFrom<unknown>(true, false, 0, 1, 'TRUE', 'false', 2, 'yes'),
      }, { requiredKeys: ['scope_id'] })
      await fc.assert(fc.asyncProperty(change, async (body) => {
        const { dry, real } = await dryThenReal(testApp, 'PATCH', body)
        assert.equal(dry.status, real.status)
        assert.deepEqual(dry.body, real.body)
      }), { numRuns: 60 })
    })
  })
}
