import assert from 'node:assert/strict'
import { describe, it, type TestContext } from 'node:test'
import { buildTestApp, call, createScopes } from '../helpers/build-test-app.ts'
import { testEngines, type TestEngine } from '../helpers/test-databases.ts'

const FIELDS = ['scope_id', 'scope_key', 'fetcher', 'collector', 'state', 'last_processed_timestamp', 'active', 'scope_activation_toggle_date']

async function seeded (t: TestContext, engine: TestEngine) {
  const ctx = await buildTestApp(t, { engine })
  await createScopes(ctx.app, [
    { scope_id: 'aaaa', collector: 'gnocchi', fetcher: 'keystone', scope_key: 'project_id', last_processed_timestamp: '2019-01-01T00:00:00Z' },
    { scope_id: 'bbbb', collector: 'prometheus', fetcher: 'prometheus', scope_key: 'project_id', last_processed_timestamp: '2019-02-01T00:00:00Z' },
    { scope_id: 'cccc', collector: 'gnocchi', fetcher: 'gnocchi', scope_key: 'domain_id', active: false, last_processed_timestamp: '2019-03-01T00:00:00Z' },
    { scope_id: 'dddd', collector: 'prometheus', fetcher: 'keystone', scope_key: 'project_id', last_processed_timestamp: '2019-04-01T00:00:00Z' },
  ])
  return ctx
}

const ids = (body: any) => body.results.map((r: any) => r.scope_id)

for (const engine of testEngines()) {
  describe(`${engine}: GET /v2/scope`, () => {
    it('lists every scope, inactive ones included, in creation order with every field', async (t) => {
      const { app } = await seeded(t, engine)
      const res = await call(app, 'GET', '/v2/scope')
      assert.equal(res.status, 200)
      assert.deepEqual(ids(res.body), ['aaaa', 'bbbb', 'cccc', 'dddd'])
      assert.deepEqual(Object.keys(res.body.results[0]).sort(), [...FIELDS].sort())
      assert.deepEqual(res.body.results[2], {
        scope_id: 'cccc', scope_key: 'domain_id', fetcher: 'gnocchi', collector: 'gnocchi',
        state: '2019-03-01T00:00:00+00:00', last_processed_timestamp: '2019-03-01T00:00:00+00:00',
        active: false, scope_activation_toggle_date: res.body.results[2].scope_activation_toggle_date,
      })
      assert.match(res.body.results[2].scope_activation_toggle_date, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$/)
    })

    it('filters by each parameter, repeated or comma-separated, ANDing parameters', async (t) => {
      const { app } = await seeded(t, engine)
      assert.deepEqual(ids((await call(app, 'GET', '/v2/scope?scope_id=bbbb')).body), ['bbbb'])
      assert.deepEqual(ids((await call(app, 'GET', '/v2/scope?scope_id=aaaa%2Cdddd')).body), ['aaaa', 'dddd'])
      assert.deepEqual(ids((await call(app, 'GET', '/v2/scope?scope_id=aaaa&scope_id=cccc')).body), ['aaaa', 'cccc'])
      assert.deepEqual(ids((await call(app, 'GET', '/v2/scope?collector=prometheus')).body), ['bbbb', 'dddd'])
      assert.deepEqual(ids((await call(app, 'GET', '/v2/scope?collector=a,prometheus&collector=gnocchi')).body), ['aaaa', 'bbbb', 'cccc', 'dddd'])
      assert.deepEqual(ids((await call(app, 'GET', '/v2/scope?fetcher=keystone')).body), ['aaaa', 'dddd'])
      assert.deepEqual(ids((await call(app, 'GET', '/v2/scope?scope_key=domain_id')).body), ['cccc'])
      assert.deepEqual(ids((await call(app, 'GET', '/v2/scope?collector=prometheus&fetcher=keystone')).body), ['dddd'])
      assert.deepEqual(ids((await call(app, 'GET', '/v2/scope?collector=gnocchi&fetcher=keystone&scope_key=project_id&scope_id=aaaa,cccc')).body), ['aaaa'])
    })

    it('filters on active with 1/0 and true/false, repeatable', async (t) => {
      const { app } = await seeded(t, engine)
      assert.deepEqual(ids((await call(app, 'GET', '/v2/scope?active=0')).body), ['cccc'])
      assert.deepEqual(ids((await call(app, 'GET', '/v2/scope?active=false')).body), ['cccc'])
      assert.deepEqual(ids((await call(app, 'GET', '/v2/scope?active=1')).body), ['aaaa', 'bbbb', 'dddd'])
      assert.deepEqual(ids((await call(app, 'GET', '/v2/scope?active=TRUE')).body), ['aaaa', 'bbbb', 'dddd'])
      assert.deepEqual(ids((await call(app, 'GET', '/v2/scope?active=1&active=0')).body).length, 4)
      assert.deepEqual(ids((await call(app, 'GET', '/v2/scope?active=1,0')).body).length, 4)
    })

    it('is case-sensitive', async (t) => {
      const { app } = await seeded(t, engine)
      assert.equal((await call(app, 'GET', '/v2/scope?scope_id=AAAA')).status, 404)
    })

    it('pages with limit and offset in a stable order', async (t) => {
      const { app } = await seeded(t, engine)
      assert.deepEqual(ids((await call(app, 'GET', '/v2/scope?limit=2')).body), ['aaaa', 'bbbb'])
      assert.deepEqual(ids((await call(app, 'GET', '/v2/scope?limit=2&offset=2')).body), ['cccc', 'dddd'])
      assert.deepEqual(ids((await call(app, 'GET', '/v2/scope?limit=2&offset=3')).body), ['dddd'])
      assert.deepEqual(ids((await call(app, 'GET', '/v2/scope?offset=1&collector=prometheus')).body), ['dddd'])
    })

    it('defaults to pages of 100', async (t) => {
      const { app, database } = await buildTestApp(t, { engine })
      const rows = Array.from({ length: 150 }, (_, i) => ({
        identifier: `p${String(i).padStart(3, '0')}`, scope_key: 'project_id', fetcher: 'keystone', collector: 'gnocchi',
        last_processed_timestamp: '2019-01-01 00:00:00.000000', active: 1,
      }))
      await database.db.insertInto('cloudkitty_storage_states').values(rows).execute()
      const first = await call(app, 'GET', '/v2/scope')
      assert.equal(first.body.results.length, 100)
      const second = await call(app, 'GET', '/v2/scope?offset=100')
      assert.equal(second.body.results.length, 50)
      assert.equal(second.body.results[0].scope_id, 'p100')
    })

    it('streams a page larger than its read chunk, whole and in order', async (t) => {
      const { app, database } = await buildTestApp(t, { engine })
      const rows = Array.from({ length: 2500 }, (_, i) => ({
        identifier: `s${String(i).padStart(5, '0')}`, scope_key: 'project_id', fetcher: 'keystone', collector: 'gnocchi',
        last_processed_timestamp: '2019-01-01 00:00:00.000000', active: i % 2,
      }))
      for (let i = 0; i < rows.length; i += 500) await database.db.insertInto('cloudkitty_storage_states').values(rows.slice(i, i + 500)).execute()
      const all = await call(app, 'GET', '/v2/scope?limit=5000&offset=10')
      assert.equal(all.status, 200)
      assert.equal(all.body.results.length, 2490)
      assert.deepEqual(ids(all.body), rows.slice(10).map((r) => r.identifier))
      const some = await call(app, 'GET', '/v2/scope?limit=2100&active=1')
      assert.equal(some.body.results.length, 1250)
      assert.ok(some.body.results.every((r: any) => r.active === true))
      assert.equal(some.headers.link, undefined)
      const full = await call(app, 'GET', '/v2/scope?limit=1500')
      assert.equal(full.body.results.length, 1500)
      const marker = Number(/marker=(\d+)/.exec(String(full.headers.link))?.[1])
      const after = await call(app, 'GET', `/v2/scope?marker=${marker}&limit=1`)
      assert.equal(after.body.results[0].scope_id, rows[1500].identifier)
    })

    it('pages with a marker, following Link rel="next" to the end with the filters kept', async (t) => {
      const { app } = await seeded(t, engine)
      const first = await call(app, 'GET', '/v2/scope?limit=2&collector=gnocchi,prometheus')
      assert.deepEqual(ids(first.body), ['aaaa', 'bbbb'])
      const link = String(first.headers.link)
      assert.match(link, /^<http:\/\/localhost:80\/v2\/scope\?collector=gnocchi%2Cprometheus&marker=\d+&limit=2>; rel="next"$/)
      const seen = [...ids(first.body)]
      let next: string | undefined = link.slice(1, link.indexOf('>'))
      while (next !== undefined) {
        const page = await call(app, 'GET', next)
        if (page.status === 404) break
        seen.push(...ids(page.body))
        next = page.headers.link === undefined ? undefined : String(page.headers.link).slice(1, String(page.headers.link).indexOf('>'))
      }
      assert.deepEqual(seen, ['aaaa', 'bbbb', 'cccc', 'dddd'])
      const offsetPage = await call(app, 'GET', '/v2/scope?limit=3&offset=1')
      assert.deepEqual(ids(offsetPage.body), ['bbbb', 'cccc', 'dddd'])
      assert.match(String(offsetPage.headers.link), /marker=\d+&limit=3>/)
      assert.equal((await call(app, 'GET', '/v2/scope?limit=5')).headers.link, undefined, 'a short page is the last')
      const both = await call(app, 'GET', '/v2/scope?marker=1&offset=1')
      assert.equal(both.status, 400)
      assert.match(both.body.message, /marker or offset/)
      assert.equal((await call(app, 'GET', '/v2/scope?marker=999999')).status, 404)
      assert.equal((await call(app, 'GET', '/v2/scope?marker=x')).status, 400)
    })

    it('answers 404 when nothing matches, including an offset past the end', async (t) => {
      const { app } = await seeded(t, engine)
      for (const url of ['/v2/scope?scope_id=zzzz', '/v2/scope?offset=4', '/v2/scope?collector=gnocchi&active=1&fetcher=gnocchi']) {
        const res = await call(app, 'GET', url)
        assert.equal(res.status, 404, url)
        assert.deepEqual(res.body, { message: 'No resource found for provided filters.' })
      }
      const empty = await buildTestApp(t, { engine })
      assert.equal((await call(empty.app, 'GET', '/v2/scope')).status, 404)
    })

    it('answers 400 naming the parameter for bad limit, offset, active and unknown parameters', async (t) => {
      const { app } = await seeded(t, engine)
      const cases: Array<[string, RegExp]> = [
        ['limit=0', /limit/], ['limit=-1', /limit/], ['limit=abc', /limit/], ['limit=1.5', /limit/], ['limit=1&limit=2', /limit/],
        ['offset=-1', /offset/], ['offset=x', /offset/],
        ['active=maybe', /active/], ['active=2', /active/],
        ['foo=bar', /Unknown query parameter 'foo'/], ['scope=aaaa', /'scope'/],
        ['scope_id=', /scope_id/],
      ]
      for (const [query, pattern] of cases) {
        const res = await call(app, 'GET', `/v2/scope?${query}`)
        assert.equal(res.status, 400, query)
        assert.match(res.body.message, pattern, query)
      }
    })

    it('lists rows CloudKitty wrote with NULL scope_key, fetcher and collector', async (t) => {
      const { app, database } = await buildTestApp(t, { engine })
      await database.db.insertInto('cloudkitty_storage_states').values({
        identifier: 'legacy', scope_key: null, fetcher: null, collector: null,
        last_processed_timestamp: '2019-07-16 08:55:01', scope_activation_toggle_date: '2019-07-16 08:55:01', active: 1,
      }).execute()
      const res = await call(app, 'GET', '/v2/scope')
      assert.equal(res.status, 200)
      assert.deepEqual(res.body.results[0], {
        scope_id: 'legacy', scope_key: null, fetcher: null, collector: null,
        state: '2019-07-16T08:55:01+00:00', last_processed_timestamp: '2019-07-16T08:55:01+00:00',
        active: true, scope_activation_toggle_date: '2019-07-16T08:55:01+00:00',
      })
    })
  })
}
