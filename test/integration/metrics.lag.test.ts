// The lag metrics of GET /metrics on every engine, against a fixed clock:
// the histogram's cumulative buckets at 1, 2, 6 and 24 periods, its sum and
// count, the largest lag, the stuck scopes and the period, on crafted
// scopes whose lags sit on and around the bounds.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { toStoredText } from '../../src/domain/timestamps.ts'
import { buildTestApp, type TestApp } from '../helpers/build-test-app.ts'
import { testEngines } from '../helpers/test-databases.ts'

const HOUR = 3600_000
const NOW = new Date('2026-01-10T12:00:00Z')
const at = (offsetMs: number) => new Date(NOW.getTime() + offsetMs)

function metric (text: string, name: string, labels = ''): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels === '' ? ' ' : `{${labels}} `}`))
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1))
}

async function seed (app: TestApp, scopes: Array<[string, Date, boolean]>): Promise<void> {
  await app.database.db.insertInto('cloudkitty_storage_states').values(scopes.map(([id, lpt, active]) => ({
    identifier: id, scope_key: 'project_id', fetcher: 'keystone', collector: 'gnocchi',
    last_processed_timestamp: toStoredText(lpt), active: app.database.traits.bindsBooleans ? active : Number(active),
  })) as never).execute()
}

for (const engine of testEngines()) {
  describe(`${engine}: GET /metrics, the lag of the scopes`, () => {
    it('writes the lag histogram, its maximum, the stuck scopes and the period', async (t) => {
      const app = await buildTestApp(t, { engine, clock: () => NOW })
      // Lag k periods is last processed at now − (k + 1) h (period 1 h).
      await seed(app, [
        ['h', at(-101 * HOUR), true], ['g', at(-25 * HOUR), true], ['f', at(-7 * HOUR), true], ['e', at(-6 * HOUR), true],
        ['d', at(-3 * HOUR), true], ['c', at(-2 * HOUR - 1000), true], ['b', at(-2 * HOUR), true], ['a', at(-1.5 * HOUR), true],
        ['i', at(5 * HOUR), true], ['j', at(-500 * HOUR), false],
      ])
      const res = await app.app.inject({ method: 'GET', url: '/metrics' })
      assert.equal(res.statusCode, 200)
      const text = res.body
      assert.match(text, /# TYPE scopekeeper_scope_lag_seconds histogram/)
      const bucket = (le: string) => metric(text, 'scopekeeper_scope_lag_seconds_bucket', `le="${le}"`)
      // On a bound counts below it (le): b at exactly 1 period, d at 2, f at 6, g at 24; i, rated into the future, in the first.
      assert.deepEqual(['3600', '7200', '21600', '86400', '+Inf'].map(bucket), [3, 5, 7, 8, 9])
      assert.equal(metric(text, 'scopekeeper_scope_lag_seconds_count'), 9)
      // 100 + 24 + 6 + 5 + 2 + (1 h 1 s) + 1 + 0.5 − 6 hours; the inactive j counts nowhere.
      assert.equal(metric(text, 'scopekeeper_scope_lag_seconds_sum'), 133.5 * 3600 + 1)
      assert.equal(metric(text, 'scopekeeper_scope_lag_max_seconds'), 100 * 3600)
      // The median is d (09:00): h, g and f are more than 3 periods behind it; e, exactly 3, is not.
      assert.equal(metric(text, 'scopekeeper_scopes_stuck'), 3)
      assert.equal(metric(text, 'scopekeeper_collect_period_seconds'), 3600)
    })

    it('answers zeros without active scopes, with the period of the configuration', async (t) => {
      const app = await buildTestApp(t, { engine, clock: () => NOW, env: { SCOPEKEEPER_COLLECT_PERIOD: '600', SCOPEKEEPER_COLLECT_STUCK_AFTER_PERIODS: '1' } })
      await seed(app, [['x', at(-500 * HOUR), false]])
      const text = (await app.app.inject({ method: 'GET', url: '/metrics' })).body
      assert.deepEqual(['600', '1200', '3600', '14400', '+Inf'].map((le) => metric(text, 'scopekeeper_scope_lag_seconds_bucket', `le="${le}"`)), [0, 0, 0, 0, 0])
      assert.equal(metric(text, 'scopekeeper_scope_lag_seconds_sum'), 0)
      assert.equal(metric(text, 'scopekeeper_scope_lag_max_seconds'), 0)
      assert.equal(metric(text, 'scopekeeper_scopes_stuck'), 0)
      assert.equal(metric(text, 'scopekeeper_collect_period_seconds'), 600)
    })

    it('leaves the lag figures out when the database does not answer, and keeps the period', async (t) => {
      const app = await buildTestApp(t, { engine, clock: () => NOW })
      await app.database.close()
      const res = await app.app.inject({ method: 'GET', url: '/metrics' })
      assert.equal(res.statusCode, 200)
      assert.ok(Number.isNaN(metric(res.body, 'scopekeeper_scopes_stuck')), 'unknown, not 0')
      assert.ok(Number.isNaN(metric(res.body, 'scopekeeper_scope_lag_max_seconds')), 'unknown, not 0')
      assert.ok(!res.body.split('\n').some((line) => line.startsWith('scopekeeper_scope_lag_seconds_')), 'no histogram series')
      assert.equal(metric(res.body, 'scopekeeper_collect_period_seconds'), 3600)
    })
  })
}
