import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import type { FastifyInstance } from 'fastify'
import fc from 'fast-check'
import { sql } from 'kysely'
import type { OpenDatabase } from '../../src/storage/open-database.ts'
import { insertScope } from '../../src/storage/scope-state-repository.ts'
import { buildTestApp, call, createScopes, dumpStates, tempDir } from '../helpers/build-test-app.ts'
import { testEngines } from '../helpers/test-databases.ts'

const T0 = new Date('2024-05-01T10:00:00Z')
const T1 = new Date('2024-05-02T11:30:00Z')
const WIRE_T0 = '2024-05-01T10:00:00+00:00'
const WIRE_T1 = '2024-05-02T11:30:00+00:00'

/** A clock the test moves by hand. */
function testClock (start: Date) {
  let now = start
  return { clock: () => now, set (at: Date) { now = at } }
}

async function activate (app: FastifyInstance, body: unknown, headers: Record<string, string> = {}, query = '') {
  const res = await app.inject({
    method: 'POST', url: `/v2/scope/activation${query}`, headers: { 'content-type': 'application/json', ...headers }, payload: JSON.stringify(body),
  })
  let json: any
  try { json = res.json() } catch { json = undefined }
  return { status: res.statusCode, body: json, headers: res.headers, text: res.body }
}

/** Every scope as GET lists it, keyed `scope_id/collector`. */
async function scopesByKey (app: FastifyInstance): Promise<Map<string, any>> {
  const res = await call(app, 'GET', '/v2/scope?limit=10000')
  if (res.status === 404) return new Map()
  assert.equal(res.status, 200, res.text)
  return new Map(res.body.results.map((s: any) => [`${s.scope_id}/${s.collector}`, s]))
}

async function eventCount (database: { db: any }): Promise<number> {
  const rows = await database.db.selectFrom('scopekeeper_events').select((eb: any) => eb.fn.countAll().as('n')).execute()
  return Number(rows[0].n)
}

interface SeedScope { scope_id: string, collector: string, active: boolean, fetcher?: string }

/**
 * Creates `scopes`: through POST where it can (their `created` event
 * included), and in the table for a scope_id POST already created (POST
 * refuses a second state of one id, as CloudKitty's processor may write it).
 */
async function seed (app: FastifyInstance, database: OpenDatabase, scopes: readonly SeedScope[], at: Date): Promise<void> {
  const posted = new Set<string>()
  for (const scope of scopes) {
    if (!posted.has(scope.scope_id)) {
      posted.add(scope.scope_id)
      await createScopes(app, [{ ...scope }])
      continue
    }
    await insertScope(database, {
      scopeId: scope.scope_id, scopeKey: 'project_id', fetcher: scope.fetcher ?? 'keystone', collector: scope.collector,
      lastProcessedTimestamp: new Date('2024-01-01T00:00:00Z'), active: scope.active, activationToggleDate: at,
    })
  }
}

// Six scopes: three gnocchi (two active), two prometheus (one active), and
// one whose id also exists under prometheus.
const SCOPES: SeedScope[] = [
  { scope_id: 'g1', collector: 'gnocchi', active: true },
  { scope_id: 'g2', collector: 'gnocchi', active: false },
  { scope_id: 'g3', collector: 'gnocchi', active: true },
  { scope_id: 'p1', collector: 'prometheus', active: true },
  { scope_id: 'p2', collector: 'prometheus', active: false },
  { scope_id: 'g1', collector: 'prometheus', active: false },
]

for (const engine of testEngines()) {
  describe(`${engine}: POST /v2/scope/activation`, () => {
    it('flips the matching scopes that had the other flag, and moves the toggle date on those only', async (t) => {
      const time = testClock(T0)
      const { app, database } = await buildTestApp(t, { engine, clock: time.clock })
      await seed(app, database, SCOPES, T0)
      time.set(T1)
      const res = await activate(app, { active: false, collector: 'gnocchi' })
      assert.equal(res.status, 200, res.text)
      assert.deepEqual(res.body, { dry_run: false, active: false, scopes_total: 3, scopes_flipped: 2, scope_activation_toggle_date: WIRE_T1 })
      const after = await scopesByKey(app)
      const seen = [...after.values()].map((s) => [s.scope_id, s.collector, s.active, s.scope_activation_toggle_date])
      assert.deepEqual(seen, [
        ['g1', 'gnocchi', false, WIRE_T1],
        ['g2', 'gnocchi', false, WIRE_T0], // already inactive: untouched
        ['g3', 'gnocchi', false, WIRE_T1],
        ['p1', 'prometheus', true, WIRE_T0],
        ['p2', 'prometheus', false, WIRE_T0],
        ['g1', 'prometheus', false, WIRE_T0],
      ])
      // The same request again flips nothing and moves no date.
      time.set(new Date('2024-05-03T00:00:00Z'))
      const again = await activate(app, { active: 0, collector: ['gnocchi'] })
      assert.deepEqual(again.body, { dry_run: false, active: false, scopes_total: 3, scopes_flipped: 0, scope_activation_toggle_date: null })
      assert.deepEqual(await scopesByKey(app), after)
    })

    it('takes the lag filters of GET /v2/scope: rated_before, rated_after and stuck (a boolean in the body)', async (t) => {
      // Period 3600 s, stuck after 3 periods; now 2024-05-01T10:00Z.
      const { app } = await buildTestApp(t, { engine, clock: () => T0 })
      const at = (hours: number) => new Date(T0.getTime() - hours * 3_600_000).toISOString()
      // Rated through (last processed + 1 h): 9:00, 9:00, 8:00, 9:00, 2:00 (lag 8 h, stuck), 0:00 (inactive).
      await createScopes(app, [
        { scope_id: 'a', last_processed_timestamp: at(2) }, { scope_id: 'b', last_processed_timestamp: at(2) },
        { scope_id: 'c', last_processed_timestamp: at(3) }, { scope_id: 'd', last_processed_timestamp: at(2) },
        { scope_id: 'late', last_processed_timestamp: at(9) }, { scope_id: 'off', last_processed_timestamp: at(11), active: false },
      ])
      const flipped = async (body: Record<string, unknown>) => {
        const preview = await activate(app, { ...body, dry_run: true })
        assert.equal(preview.status, 200, preview.text)
        return preview.body.results.map((s: any) => s.scope_id)
      }
      // Not rated through 09:00: c and late (rated through 08:00 and 02:00), and off.
      assert.deepEqual(await flipped({ active: false, rated_before: '2024-05-01T09:00:00Z' }), ['c', 'late'])
      assert.deepEqual(await flipped({ active: true, rated_before: '2024-05-01T09:00:00Z' }), ['off'])
      assert.deepEqual(await flipped({ active: false, rated_after: '2024-05-01T09:00:00Z' }), ['a', 'b', 'd'])
      // Stuck: more than 3 periods behind the median (rated through 09:00).
      assert.deepEqual(await flipped({ active: false, stuck: true }), ['late'])
      assert.deepEqual(await flipped({ active: false, stuck: false }), ['a', 'b', 'c', 'd'])
      const res = await activate(app, { active: false, stuck: true, reason: 'collector error' })
      assert.deepEqual([res.status, res.body.scopes_total, res.body.scopes_flipped], [200, 1, 1])
      assert.equal((await scopesByKey(app)).get('late/gnocchi')?.active, false)
      // None left stuck among the active scopes: 404, as for any filter matching nothing.
      assert.equal((await activate(app, { active: false, stuck: true })).status, 404)
      // A lag filter alone names the scopes; bad values are 400s naming the body field.
      const bad = await activate(app, { active: false, rated_before: 'yesterday' })
      assert.equal(bad.status, 400)
      assert.match(bad.body.message, /rated_before/)
      assert.match(bad.body.message, /body/)
      const badStuck = await activate(app, { active: false, stuck: 'yes' })
      assert.equal(badStuck.status, 400)
      assert.match(badStuck.body.message, /stuck/)
    })

    it('takes scope_id, scope_key, fetcher and collector as PUT does: strings, comma-separated, or lists, ANDed', async (t) => {
      const { app, database } = await buildTestApp(t, { engine })
      await seed(app, database, SCOPES, T0)
      const res = await activate(app, { active: 'TRUE', scope_id: ['g1,g2', 'p2'], collector: 'gnocchi,prometheus', fetcher: 'keystone', scope_key: 'project_id' })
      assert.equal(res.status, 200, res.text)
      // g1/gnocchi is active already; g2, p2 and g1/prometheus flip.
      assert.deepEqual([res.body.scopes_total, res.body.scopes_flipped], [4, 3])
      const after = await scopesByKey(app)
      assert.deepEqual([...after.values()].filter((s) => s.active).map((s) => `${s.scope_id}/${s.collector}`),
        ['g1/gnocchi', 'g2/gnocchi', 'g3/gnocchi', 'p1/prometheus', 'p2/prometheus', 'g1/prometheus'])
      // all_scopes: every scope.
      const all = await activate(app, { active: false, all_scopes: true })
      assert.deepEqual([all.body.scopes_total, all.body.scopes_flipped], [6, 6])
    })

    it("records each flipped scope's activation in its history, with the reason and request id; unflipped ones record nothing", async (t) => {
      const { app, database } = await buildTestApp(t, { engine })
      await seed(app, database, SCOPES, T0)
      const before = await eventCount(database)
      const res = await activate(app, { active: false, collector: 'gnocchi', reason: 'collector retired' })
      assert.equal(res.status, 200, res.text)
      const history = async (scopeId: string) => (await call(app, 'GET', `/v2/scope/events?scope_id=${scopeId}`)).body.results as any[]
      const [g1] = await history('g1')
      assert.deepEqual(
        { kind: g1.kind, scope_id: g1.scope_id, reason: g1.reason, request_id: g1.request_id, details: g1.details, auth: g1.auth },
        { kind: 'deactivated', scope_id: 'g1', reason: 'collector retired', request_id: res.headers['x-openstack-request-id'], details: { active: { old: true, new: false } }, auth: 'noauth' },
      )
      assert.equal((await history('g3'))[0].kind, 'deactivated')
      // g2 was inactive already, p1 not matched: their newest event is still their creation.
      assert.equal((await history('g2'))[0].kind, 'created')
      assert.equal((await history('p1'))[0].kind, 'created')
      // The kind filter finds them; without a scope filter the flip is one entry with its count.
      const listed = (await call(app, 'GET', '/v2/scope/events?kind=deactivated')).body.results
      assert.equal(listed.length, 1)
      assert.deepEqual([listed[0].scope_id, listed[0].details.active, listed[0].details.scopes_flipped], [null, { old: true, new: false }, 2])
      assert.equal(await eventCount(database), before + 1)

      // The X-Reason header, when the body has none; activation as `activated`.
      const header = await activate(app, { active: true, scope_id: 'g1' }, { 'x-reason': 'back in service' })
      assert.equal(header.status, 200, header.text)
      const back = await history('g1')
      assert.deepEqual([back[0].kind, back[0].reason, back[0].details], ['activated', 'back in service', { active: { old: false, new: true } }])
      // g1/prometheus was inactive and is matched too (its id is g1): both states flipped, two entries.
      assert.deepEqual(back.filter((e) => e.kind === 'activated').length, 2)
    })

    it('answers a dry run (body or query) with the counts and the first scopes that would flip, and writes nothing', async (t) => {
      const { app, database } = await buildTestApp(t, { engine })
      await seed(app, database, SCOPES, T0)
      const states = await dumpStates(database)
      const events = await eventCount(database)
      for (const [body, query] of [[{ active: false, collector: 'gnocchi', dry_run: true }, ''], [{ active: false, collector: 'gnocchi' }, '?dry_run=1']] as const) {
        const res = await activate(app, body, { 'idempotency-key': 'dry-key' }, query)
        assert.equal(res.status, 200, res.text)
        assert.equal(res.body.dry_run, true)
        assert.deepEqual([res.body.active, res.body.scopes_total, res.body.scopes_flipped], [false, 3, 2])
        assert.match(res.body.scope_activation_toggle_date, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$/)
        assert.deepEqual(res.body.results.map((s: any) => [s.scope_id, s.collector, s.active]), [['g1', 'gnocchi', true], ['g3', 'gnocchi', true]])
      }
      assert.deepEqual(await dumpStates(database), states)
      assert.equal(await eventCount(database), events)
      // The dry runs took no Idempotency-Key: the real request with it acts.
      const real = await activate(app, { active: false, collector: 'gnocchi' }, { 'idempotency-key': 'dry-key' })
      assert.deepEqual([real.status, real.body.scopes_flipped, real.headers['idempotent-replayed']], [200, 2, undefined])
    })

    it('answers 400 naming the body field, and changes nothing', async (t) => {
      const { app, database } = await buildTestApp(t, { engine })
      await seed(app, database, SCOPES, T0)
      const states = await dumpStates(database)
      const cases: Array<[unknown, RegExp]> = [
        [{ active: false }, /^Name the scopes to switch in the request body: at least one filter \(scope_id, scope_key, fetcher, collector, rated_before, rated_after or stuck\), or all_scopes: true/],
        [{ active: false, all_scopes: false }, /^Name the scopes to switch in the request body/],
        [{ active: false, all_scopes: true, collector: 'gnocchi' }, /^Either all_scopes or filters .* should be specified in the request body, not both\.$/],
        [{ collector: 'gnocchi' }, /^Missing required field 'active' in the request body\.$/],
        [{ active: 'yes', collector: 'gnocchi' }, /^Invalid active in the request body: must be true or false/],
        [{ active: 2, collector: 'gnocchi' }, /^Invalid active in the request body/],
        [{ active: null, collector: 'gnocchi' }, /^Invalid active in the request body/],
        [{ active: false, collector: 'gnocchi', colector: 'x' }, /^Unknown field 'colector' in the request body\.$/],
        [{ active: false, scope_id: ',' }, /^Invalid scope_id in the request body: no value given\.$/],
        [{ active: false, collector: 'x'.repeat(41) }, /^Invalid collector in the request body: must be a non-empty string of at most 40 characters/],
        [{ active: false, collector: 'gnocchi', dry_run: 'yes' }, /^Invalid dry_run in the request body: must be a boolean\.$/],
        [{ active: false, collector: 'gnocchi', reason: '' }, /^Invalid reason in the request body/],
        [[], /^The request body must be a JSON object\.$/],
      ]
      for (const [body, message] of cases) {
        const res = await activate(app, body)
        assert.equal(res.status, 400, `${JSON.stringify(body)}: ${res.text}`)
        assert.match(res.body.message, message, JSON.stringify(body))
      }
      const query = await activate(app, { active: false, collector: 'gnocchi' }, {}, '?dry_run=maybe')
      assert.deepEqual([query.status, query.body.message.startsWith('Invalid dry_run in the query string')], [400, true])
      assert.deepEqual(await dumpStates(database), states)
    })

    it('answers 404 when nothing matches, as PUT does', async (t) => {
      const { app, database } = await buildTestApp(t, { engine })
      await seed(app, database, SCOPES, T0)
      for (const body of [{ active: false, collector: 'cloudkitty' }, { active: false, collector: 'cloudkitty', dry_run: true }]) {
        const res = await activate(app, body)
        assert.deepEqual([res.status, res.body], [404, { message: 'No resource found for provided filters.' }])
      }
    })

    it('refuses to flip more than [api] activation_max_scopes in one transaction, writing nothing; a dry run still counts them', async (t) => {
      const { app, database } = await buildTestApp(t, { engine, env: { SCOPEKEEPER_API_ACTIVATION_MAX_SCOPES: '2' } })
      await seed(app, database, SCOPES, T0)
      const states = await dumpStates(database)
      const res = await activate(app, { active: true, all_scopes: true })
      assert.equal(res.status, 400, res.text)
      assert.equal(res.body.message, 'This would switch 3 scope states, more than the 2 one activation may switch ([api] activation_max_scopes): narrow the filters (a dry run counts them), or raise the setting.')
      assert.deepEqual(await dumpStates(database), states)
      const dry = await activate(app, { active: true, all_scopes: true, dry_run: true })
      assert.deepEqual([dry.status, dry.body.scopes_flipped], [200, 3])
      // Two flips are within the bound (and matching more is fine: only flips count).
      const ok = await activate(app, { active: true, scope_id: 'g1' })
      assert.deepEqual([ok.status, ok.body.scopes_total, ok.body.scopes_flipped], [200, 2, 1])
    })

    it('rolls the whole flip back when the transaction fails after it: nothing changed, nothing recorded', async (t) => {
      const { app, database } = await buildTestApp(t, { engine })
      await seed(app, database, SCOPES, T0)
      const states = await dumpStates(database)
      // The events table gone: the UPDATE of the states succeeds, the event INSERT after it fails.
      await sql`ALTER TABLE scopekeeper_events RENAME TO scopekeeper_events_away`.execute(database.db)
      let res
      try {
        res = await activate(app, { active: false, all_scopes: true })
      } finally {
        await sql`ALTER TABLE scopekeeper_events_away RENAME TO scopekeeper_events`.execute(database.db)
      }
      assert.equal(res.status, 500, res.text)
      assert.deepEqual(await dumpStates(database), states)
      // And the same request then succeeds whole.
      const retried = await activate(app, { active: false, all_scopes: true })
      assert.deepEqual([retried.status, retried.body.scopes_flipped], [200, 3])
    })

    it('replays a repeated Idempotency-Key without acting again, and refuses the key with another body (422)', async (t) => {
      const { app, database } = await buildTestApp(t, { engine })
      await seed(app, database, SCOPES, T0)
      const body = { active: false, collector: 'gnocchi' }
      const first = await activate(app, body, { 'idempotency-key': 'k-1' })
      assert.deepEqual([first.status, first.body.scopes_flipped], [200, 2])
      // g1 switched back on in between: a replay must not switch it off again.
      assert.equal((await activate(app, { active: true, scope_id: 'g1', collector: 'gnocchi' })).body.scopes_flipped, 1)
      const events = await eventCount(database)
      const replay = await activate(app, { collector: 'gnocchi', active: false }, { 'idempotency-key': 'k-1' })
      assert.deepEqual([replay.status, replay.body, replay.headers['idempotent-replayed']], [200, first.body, 'true'])
      assert.equal((await scopesByKey(app)).get('g1/gnocchi').active, true)
      assert.equal(await eventCount(database), events)
      const other = await activate(app, { active: true, collector: 'gnocchi' }, { 'idempotency-key': 'k-1' })
      assert.equal(other.status, 422, other.text)
    })

    it('is guarded by scope:post_activation, checked as PUT is: each named scope, and every scope when it names none', async (t) => {
      const dir = tempDir(t)
      const policy = join(dir, 'policy.yaml')
      // Under noauth: a rule that passes for scope g1 alone.
      writeFileSync(policy, '"scope:post_activation": "\'g1\':%(project_id)s"\n')
      const { app, database } = await buildTestApp(t, { engine, env: { SCOPEKEEPER_OSLO_POLICY_POLICY_FILE: policy } })
      await seed(app, database, SCOPES, T0)
      const states = await dumpStates(database)
      const forbidden = { message: 'You are not authorized to perform this action' }
      for (const body of [
        { active: false, scope_id: 'g1,g2' }, // comma-separated: two scopes, one refused
        { active: false, scope_id: ['g1', 'p1'] },
        { active: false, collector: 'gnocchi' }, // names no scope: every scope, refused
        { active: false, all_scopes: true },
        { active: false, scope_id: 'g2', dry_run: true },
      ]) {
        const res = await activate(app, body)
        assert.deepEqual([res.status, res.body], [403, forbidden], JSON.stringify(body))
      }
      assert.deepEqual(await dumpStates(database), states)
      const allowed = await activate(app, { active: true, scope_id: 'g1' })
      assert.deepEqual([allowed.status, allowed.body.scopes_flipped], [200, 1])
    })

    it('answers any body below 500, and a 4xx changes nothing (property)', async (t) => {
      const { app, database } = await buildTestApp(t, { engine })
      await seed(app, database, SCOPES, T0)
      const value = fc.oneof(fc.string(), fc.boolean(), fc.integer({ min: -2, max: 3 }), fc.constant(null), fc.array(fc.string({ maxLength: 5 }), { maxLength: 3 }),
        fc.constantFrom('g1', 'g1,p1', 'gnocchi', 'true', '0', 'False', ''))
      const field = fc.constantFrom('active', 'all_scopes', 'scope_id', 'scope_key', 'fetcher', 'collector', 'rated_before', 'rated_after', 'stuck', 'dry_run', 'reason', 'state', 'x')
      const body = fc.oneof(fc.dictionary(field, value, { maxKeys: 5 }), fc.jsonValue({ maxDepth: 2 }))
      await fc.assert(fc.asyncProperty(body, fc.constantFrom('', '?dry_run=true', '?dry_run=0', '?dry_run=x', '?x=1'), async (sent, query) => {
        const states = await dumpStates(database)
        const res = await activate(app, sent, {}, query)
        assert.ok(res.status < 500, `${JSON.stringify(sent)}${query}: ${res.status} ${res.text}`)
        if (res.status >= 400) {
          assert.equal(typeof res.body.message, 'string')
          assert.deepEqual(await dumpStates(database), states)
        }
      }), { numRuns: 60 })
    })

    it('is documented in the OpenAPI document with its body, query, headers and answer', async (t) => {
      const { app } = await buildTestApp(t, { engine })
      const doc = (await call(app, 'GET', '/v2/openapi.json')).body
      const post = doc.paths['/v2/scope/activation']?.post
      assert.ok(post !== undefined, Object.keys(doc.paths).join(', '))
      const body = post.requestBody.content['application/json'].schema
      assert.deepEqual(Object.keys(body.properties), ['active', 'all_scopes', 'scope_id', 'scope_key', 'fetcher', 'collector', 'rated_before', 'rated_after', 'stuck', 'dry_run', 'reason'])
      assert.deepEqual(body.required, ['active'])
      assert.deepEqual(post.parameters.map((p: any) => `${p.in}:${p.name}`).sort(), ['header:idempotency-key', 'header:x-reason', 'query:dry_run'])
      const reply = post.responses['200'].content['application/json'].schema
      assert.deepEqual(Object.keys(reply.properties), ['dry_run', 'active', 'scopes_total', 'scopes_flipped', 'scope_activation_toggle_date', 'results'])
    })

    it('flips exactly the matching scopes that had the other flag, for any scopes and filter (property)', async (t) => {
      const { app, database } = await buildTestApp(t, { engine })
      const ids = ['a', 'b', 'c', 'd']
      const collectors = ['gnocchi', 'prometheus', 'x']
      const fetchers = ['keystone', 'gnocchi']
      const scopeArb = fc.record({ scope_id: fc.constantFrom(...ids), collector: fc.constantFrom(...collectors), fetcher: fc.constantFrom(...fetchers), active: fc.boolean() })
      const subset = <T>(values: T[]) => fc.option(fc.uniqueArray(fc.constantFrom(...values), { minLength: 1 }), { nil: undefined })
      const filterArb = fc.record({ scope_id: subset(ids), collector: subset(collectors), fetcher: subset(fetchers) })
      await fc.assert(fc.asyncProperty(
        fc.uniqueArray(scopeArb, { maxLength: 12, selector: (s) => `${s.scope_id}/${s.collector}/${s.fetcher}` }), filterArb, fc.boolean(),
        async (scopes, filter, active) => {
          await database.db.deleteFrom('cloudkitty_storage_states').execute()
          for (const scope of scopes) {
            await insertScope(database, {
              scopeId: scope.scope_id, scopeKey: 'project_id', fetcher: scope.fetcher, collector: scope.collector,
              lastProcessedTimestamp: T0, active: scope.active, activationToggleDate: T0,
            })
          }
          const before = await dumpStates(database) as any[]
          const named = Object.fromEntries(Object.entries(filter).filter(([, v]) => v !== undefined))
          const body = Object.keys(named).length === 0 ? { active, all_scopes: true } : { active, ...named }
          const matches = (s: any) => (filter.scope_id?.includes(s.identifier) ?? true) && (filter.collector?.includes(s.collector) ?? true) && (filter.fetcher?.includes(s.fetcher) ?? true)
          const expectedFlips = before.filter((s) => matches(s) && Boolean(Number(s.active)) !== active).map((s) => s.id)
          const res = await activate(app, body)
          if (!before.some(matches)) {
            assert.equal(res.status, 404, res.text)
            return
          }
          assert.equal(res.status, 200, res.text)
          assert.deepEqual([res.body.scopes_total, res.body.scopes_flipped], [before.filter(matches).length, expectedFlips.length])
          const after = await dumpStates(database) as any[]
          const changed = after.filter((s, i) => JSON.stringify(s) !== JSON.stringify(before[i])).map((s) => s.id)
          assert.deepEqual(changed, expectedFlips)
          for (const s of after) if (expectedFlips.includes(s.id)) assert.equal(Boolean(Number(s.active)), active)
        },
      ), { numRuns: 25 })
    })
  })
}
