// GET /v2/scope/summary and the lag filters of GET /v2/scope
// (rated_before, rated_after, stuck), on every engine, against a fixed
// clock: exact counts per lag bucket on crafted scopes, the boundaries
// (exactly one period, exactly the cut-off, exactly the stuck bound), the
// filters combined, and a property comparing the answers with a
// straightforward computation in JS over random scope sets.
import assert from 'node:assert/strict'
import { describe, it, type TestContext } from 'node:test'
import fc from 'fast-check'
import { ScopeStateService } from '../../src/domain/scope-state-service.ts'
import { toStoredText } from '../../src/domain/timestamps.ts'
import { buildTestApp, call, type TestApp } from '../helpers/build-test-app.ts'
import { testEngines, type TestEngine } from '../helpers/test-databases.ts'

const HOUR = 3600_000
const NOW = new Date('2026-01-10T12:00:00Z')
const at = (offsetMs: number) => new Date(NOW.getTime() + offsetMs)
const wire = (d: Date) => d.toISOString().slice(0, 19) + '+00:00'

/** Inserts scopes directly (any timestamp, in bulk): [scope_id, last processed, active, collector]. */
async function seed (app: TestApp, scopes: Array<[string, Date, boolean, string?]>): Promise<void> {
  if (scopes.length === 0) return
  await app.database.db.insertInto('cloudkitty_storage_states').values(scopes.map(([id, lpt, active, collector]) => ({
    identifier: id, scope_key: 'project_id', fetcher: 'keystone', collector: collector ?? 'gnocchi',
    last_processed_timestamp: toStoredText(lpt), active: app.database.traits.bindsBooleans ? active : Number(active),
  })) as never).execute()
}

// Period 1 h, now 12:00; lag k periods is last processed at now − (k + 1) h.
const CRAFTED: Array<[string, Date, boolean, string?]> = [
  ['h-lag100', at(-101 * HOUR), true, 'prometheus'],
  ['g-lag24', at(-25 * HOUR), true],
  ['f-lag6', at(-7 * HOUR), true, 'prometheus'],
  ['e-lag5', at(-6 * HOUR), true],
  ['d-lag2', at(-3 * HOUR), true],
  ['c-lag1+1s', at(-2 * HOUR - 1000), true],
  ['b-lag1', at(-2 * HOUR), true],
  ['a-lag0.5', at(-1.5 * HOUR), true],
  ['i-future', at(5 * HOUR), true],
  ['j-inactive', at(-101 * HOUR), false],
]

async function crafted (t: TestContext, engine: TestEngine): Promise<TestApp> {
  const app = await buildTestApp(t, { engine, clock: () => NOW })
  await seed(app, CRAFTED)
  return app
}

async function ids (app: TestApp, url: string): Promise<string[]> {
  const res = await call(app.app, 'GET', url)
  if (res.status === 404) return []
  assert.equal(res.status, 200, `${url}: ${res.text}`)
  return res.body.results.map((r: any) => r.scope_id).sort()
}

for (const engine of testEngines()) {
  describe(`${engine}: GET /v2/scope/summary`, () => {
    it('counts every lag bucket, the stuck scopes and a cut-off exactly, boundaries in the lower bucket', async (t) => {
      const app = await crafted(t, engine)
      const res = await call(app.app, 'GET', '/v2/scope/summary?cutoff=2026-01-10T10:00:00Z')
      assert.equal(res.status, 200, res.text)
      assert.deepEqual(res.body, {
        period: 3600,
        now: '2026-01-10T12:00:00+00:00',
        active: 9,
        inactive: 1,
        oldest_rated_through: wire(at(-100 * HOUR)),
        // Nine active: the fifth oldest, d, last processed at 09:00.
        median_rated_through: '2026-01-10T10:00:00+00:00',
        lag_periods: { '0-1': 3, '1-2': 2, '2-6': 2, '6-24': 1, '24+': 1 },
        // Last processed before 09:00 − 3 h: h, g and f; e, at 06:00 exactly, is not.
        stuck: 3,
        stuck_after_periods: 3,
        stuck_rated_through_before: '2026-01-10T07:00:00+00:00',
        // Rated through 10:00 or later: d (exactly), c, b, a, i.
        cutoff: { at: '2026-01-10T10:00:00+00:00', rated_through: 5, not_rated_through: 4 },
      })
    })

    it('answers null medians, zero counts and no cut-off when no scope matches', async (t) => {
      const app = await buildTestApp(t, { engine, clock: () => NOW })
      const res = await call(app.app, 'GET', '/v2/scope/summary')
      assert.equal(res.status, 200, res.text)
      assert.deepEqual(res.body, {
        period: 3600, now: '2026-01-10T12:00:00+00:00', active: 0, inactive: 0, oldest_rated_through: null, median_rated_through: null,
        lag_periods: { '0-1': 0, '1-2': 0, '2-6': 0, '6-24': 0, '24+': 0 }, stuck: 0, stuck_after_periods: 3, stuck_rated_through_before: null, cutoff: null,
      })
    })

    it('narrows by the filters, while stuck keeps the median of every active scope', async (t) => {
      const app = await crafted(t, engine)
      const res = await call(app.app, 'GET', '/v2/scope/summary?collector=prometheus')
      assert.equal(res.status, 200, res.text)
      assert.equal(res.body.active, 2)
      assert.equal(res.body.inactive, 0)
      // The lower median of h and f: h.
      assert.equal(res.body.median_rated_through, wire(at(-100 * HOUR)))
      assert.deepEqual(res.body.lag_periods, { '0-1': 0, '1-2': 0, '2-6': 1, '6-24': 0, '24+': 1 })
      // Stuck against every active scope's median (09:00), not these two's.
      assert.equal(res.body.stuck, 2)
      assert.equal(res.body.stuck_rated_through_before, '2026-01-10T07:00:00+00:00')

      const stuck = await call(app.app, 'GET', '/v2/scope/summary?stuck=true')
      assert.equal(stuck.body.active, 3)
      assert.equal(stuck.body.stuck, 3)
      const inactive = await call(app.app, 'GET', '/v2/scope/summary?active=false&rated_before=2026-01-07')
      assert.equal(inactive.body.active, 0)
      assert.equal(inactive.body.inactive, 1)
      assert.equal(inactive.body.median_rated_through, null)
      const rated = await call(app.app, 'GET', '/v2/scope/summary?rated_after=2026-01-10T10:00:00Z&cutoff=2026-01-10T10:00:00Z')
      assert.deepEqual([rated.body.active, rated.body.cutoff.not_rated_through], [5, 0])
    })

    it('counts only the scopes the caller may see, stuck against their own median', async (t) => {
      const app = await crafted(t, engine)
      const scopes = new ScopeStateService({
        store: app.database, defaults: { scopeKey: 'project_id', fetcher: 'keystone', collector: 'gnocchi' }, resetMaxAttempts: 1,
        periodSeconds: 3600, stuckAfterPeriods: 3, clock: () => NOW,
      })
      // What an owner rule lets a member see: their project's scopes only.
      const summary = await scopes.summary({}, ['h-lag100', 'a-lag0.5', 'i-future', 'j-inactive'])
      assert.equal(summary.active, 3)
      assert.equal(summary.inactive, 1)
      assert.deepEqual(summary.medianRatedThrough, at(-0.5 * HOUR))
      // h is stuck against a's 10:30; nothing outside the visible scopes counts.
      assert.equal(summary.stuck, 1)
      assert.deepEqual(await scopes.summary({ collectors: ['gnocchi'] }, []).then((s) => [s.active, s.inactive, s.stuck]), [0, 0, 0])
      const listing = await scopes.list({}, { limit: 100, offset: 0 }, ['h-lag100', 'g-lag24', 'a-lag0.5'], true)
      // Among h, g and a the median is g (last processed 25 h ago): h alone is more than 3 periods behind it.
      assert.deepEqual(listing.first.map((s) => s.scopeId), ['h-lag100'])
    })

    it('answers 400 naming the parameter for a bad cutoff, rated_before, rated_after or stuck, and for paging parameters', async (t) => {
      const { app } = await buildTestApp(t, { engine, clock: () => NOW })
      for (const [query, name] of [['cutoff=yesterday', 'cutoff'], ['rated_before=2026-13-01', 'rated_before'], ['rated_after=x', 'rated_after'], ['stuck=maybe', 'stuck'], ['limit=10', 'limit']]) {
        const res = await call(app, 'GET', `/v2/scope/summary?${query}`)
        assert.equal(res.status, 400, query)
        assert.match(res.body.message, new RegExp(name), query)
      }
    })
  })

  describe(`${engine}: GET /v2/scope?rated_before, rated_after, stuck`, () => {
    it('splits the scopes in two at a rated-through time, the boundary rated through', async (t) => {
      const app = await crafted(t, engine)
      assert.deepEqual(await ids(app, '/v2/scope?rated_before=2026-01-10T10:00:00Z'), ['e-lag5', 'f-lag6', 'g-lag24', 'h-lag100', 'j-inactive'])
      assert.deepEqual(await ids(app, '/v2/scope?rated_after=2026-01-10T10:00:00Z'), ['a-lag0.5', 'b-lag1', 'c-lag1+1s', 'd-lag2', 'i-future'])
      // The invoicing question: every active scope not yet rated through the cut-off.
      assert.deepEqual(await ids(app, '/v2/scope?active=true&rated_before=2026-01-10T10:00:00Z'), ['e-lag5', 'f-lag6', 'g-lag24', 'h-lag100'])
      assert.deepEqual(await ids(app, '/v2/scope?rated_after=2026-01-10T06:00:00Z&rated_before=2026-01-10T10:00:00Z&collector=gnocchi'), ['e-lag5'])
      // Offsets in the request: +02:00 is the same instant.
      assert.deepEqual(await ids(app, '/v2/scope?rated_before=2026-01-10T12:00:00%2B02:00'), await ids(app, '/v2/scope?rated_before=2026-01-10T10:00:00Z'))
    })

    it('lists the stuck scopes, and with stuck=false every other one, inactive included', async (t) => {
      const app = await crafted(t, engine)
      assert.deepEqual(await ids(app, '/v2/scope?stuck=true'), ['f-lag6', 'g-lag24', 'h-lag100'])
      assert.deepEqual(await ids(app, '/v2/scope?stuck=TRUE&collector=prometheus'), ['f-lag6', 'h-lag100'])
      assert.deepEqual(await ids(app, '/v2/scope?stuck=1&rated_before=2026-01-10T00:00:00Z'), ['g-lag24', 'h-lag100'])
      assert.deepEqual(await ids(app, '/v2/scope?stuck=false'), ['a-lag0.5', 'b-lag1', 'c-lag1+1s', 'd-lag2', 'e-lag5', 'i-future', 'j-inactive'])
      assert.deepEqual(await ids(app, '/v2/scope?stuck=0&active=true'), ['a-lag0.5', 'b-lag1', 'c-lag1+1s', 'd-lag2', 'e-lag5', 'i-future'])
      assert.equal((await call(app.app, 'GET', '/v2/scope?stuck=true&active=false')).status, 404)
    })

    it('keeps paging with the lag filters: limit, offset and the marker of Link rel=next', async (t) => {
      const app = await crafted(t, engine)
      const seen: string[] = []
      let next: string | undefined = '/v2/scope?active=true&rated_before=2026-01-10T12:00:00Z&limit=2'
      while (next !== undefined) {
        const res = await call(app.app, 'GET', next)
        if (res.status === 404) break
        assert.equal(res.status, 200, res.text)
        seen.push(...res.body.results.map((r: any) => r.scope_id))
        const link = /<([^>]+)>; rel="next"/.exec(String(res.headers.link ?? ''))?.[1]
        next = link === undefined ? undefined : new URL(link).pathname + new URL(link).search
        if (next !== undefined) assert.match(next, /rated_before=/)
      }
      assert.deepEqual(seen.sort(), ['a-lag0.5', 'b-lag1', 'c-lag1+1s', 'd-lag2', 'e-lag5', 'f-lag6', 'g-lag24', 'h-lag100'])
      // In creation order: h, g, f.
      assert.deepEqual(await ids(app, '/v2/scope?stuck=true&limit=1&offset=2'), ['f-lag6'])
    })

    it('answers 400 naming the parameter for bad values', async (t) => {
      const { app } = await buildTestApp(t, { engine, clock: () => NOW })
      for (const [query, name] of [['rated_before=soon', 'rated_before'], ['rated_after=2026-02-30', 'rated_after'], ['stuck=yes', 'stuck'], ['stuck=', 'stuck']]) {
        const res = await call(app, 'GET', `/v2/scope?${query}`)
        assert.equal(res.status, 400, query)
        assert.match(res.body.message, new RegExp(name), `${query}: ${res.body.message}`)
      }
    })

    it('agrees with a computation in JS over random scope sets (summary, rated_before, rated_after, stuck)', async (t) => {
      const app = await buildTestApp(t, { engine, clock: () => NOW })
      let round = 0
      // Last processed timestamps on a grid of half periods around now, so that ties and exact boundaries are common.
      const scopeSet = fc.array(fc.record({ halfPeriods: fc.integer({ min: -70, max: 6 }), active: fc.boolean(), prometheus: fc.boolean() }), { maxLength: 25 })
      await fc.assert(fc.asyncProperty(scopeSet, fc.integer({ min: -60, max: 4 }), fc.boolean(), async (scopes, cutoffHalfPeriods, byCollector) => {
        round++
        await app.database.db.deleteFrom('cloudkitty_storage_states').execute()
        const rows = scopes.map((s, i) => ({ id: `r${round}-${i}`, lpt: at(s.halfPeriods * HOUR / 2), active: s.active, collector: s.prometheus ? 'prometheus' : 'gnocchi' }))
        await seed(app, rows.map((r) => [r.id, r.lpt, r.active, r.collector]))
        const cutoff = at(cutoffHalfPeriods * HOUR / 2)
        const matched = rows.filter((r) => !byCollector || r.collector === 'prometheus')
        const active = matched.filter((r) => r.active)
        const rt = (r: typeof rows[number]) => r.lpt.getTime() + HOUR
        const lag = (r: typeof rows[number]) => (NOW.getTime() - rt(r)) / HOUR
        const lowerMedian = (list: typeof rows) => list.map((r) => r.lpt.getTime()).sort((a, b) => a - b)[Math.floor((list.length - 1) / 2)]
        const allActive = rows.filter((r) => r.active)
        const stuckBound = allActive.length === 0 ? undefined : lowerMedian(allActive) - 3 * HOUR
        const isStuck = (r: typeof rows[number]) => r.active && stuckBound !== undefined && r.lpt.getTime() < stuckBound
        const expected = {
          active: active.length,
          inactive: matched.length - active.length,
          oldest_rated_through: active.length === 0 ? null : wire(new Date(Math.min(...active.map(rt)))),
          median_rated_through: active.length === 0 ? null : wire(new Date(lowerMedian(active) + HOUR)),
          lag_periods: {
            '0-1': active.filter((r) => lag(r) <= 1).length,
            '1-2': active.filter((r) => lag(r) > 1 && lag(r) <= 2).length,
            '2-6': active.filter((r) => lag(r) > 2 && lag(r) <= 6).length,
            '6-24': active.filter((r) => lag(r) > 6 && lag(r) <= 24).length,
            '24+': active.filter((r) => lag(r) > 24).length,
          },
          stuck: active.filter(isStuck).length,
          cutoff: { at: wire(cutoff), rated_through: active.filter((r) => rt(r) >= cutoff.getTime()).length, not_rated_through: active.filter((r) => rt(r) < cutoff.getTime()).length },
        }
        const filter = byCollector ? '&collector=prometheus' : ''
        const res = await call(app.app, 'GET', `/v2/scope/summary?cutoff=${cutoff.toISOString()}${filter}`)
        assert.equal(res.status, 200, res.text)
        const { period: _p, now: _n, stuck_after_periods: _s, stuck_rated_through_before: _b, ...got } = res.body
        assert.deepEqual(got, expected)
        const idsOf = (list: typeof rows) => list.map((r) => r.id).sort()
        assert.deepEqual(await ids(app, `/v2/scope?limit=1000&rated_before=${cutoff.toISOString()}${filter}`), idsOf(matched.filter((r) => rt(r) < cutoff.getTime())))
        assert.deepEqual(await ids(app, `/v2/scope?limit=1000&rated_after=${cutoff.toISOString()}${filter}`), idsOf(matched.filter((r) => rt(r) >= cutoff.getTime())))
        assert.deepEqual(await ids(app, `/v2/scope?limit=1000&stuck=true${filter}`), idsOf(matched.filter(isStuck)))
        assert.deepEqual(await ids(app, `/v2/scope?limit=1000&stuck=false${filter}`), idsOf(matched.filter((r) => !isStuck(r))))
      }), { numRuns: engine === 'sqlite' ? 60 : 25 })
    })
  })
}
