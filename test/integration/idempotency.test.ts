// Issue 14 §3: an Idempotency-Key on PUT, PATCH and POST /v2/scope, on
// every engine. A repeat (same caller, key and body) within
// [api] idempotency_ttl gets the first answer back and acts no more; the same
// key with another body is a 422; concurrent repeats wait for the first and
// never act twice, also from two apps (two pools: two processes' worth)
// sharing one database; keys expire by age.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { IdempotencyService, requestHash, type IdempotentRequest } from '../../src/domain/idempotency.ts'
import { idempotencyKeys } from '../../src/storage/idempotency-repository.ts'
import type { OpenDatabase } from '../../src/storage/open-database.ts'
import { buildTestApp, createScopes, dumpJobs, dumpStates } from '../helpers/build-test-app.ts'
import { testEngines } from '../helpers/test-databases.ts'

const RESET = { scope_id: 'aaaa', last_processed_timestamp: '2020-01-01T00:00:00Z' }
const RACERS = 10

type Method = 'PUT' | 'PATCH' | 'POST'

/** Sends `body` as JSON with `key` as its Idempotency-Key (none when undefined). */
async function send (app: FastifyInstance, method: Method, body: unknown, key?: string, url = '/v2/scope') {
  const res = await app.inject({
    method,
    url,
    headers: { 'content-type': 'application/json', ...(key === undefined ? {} : { 'idempotency-key': key }) },
    payload: typeof body === 'string' ? body : JSON.stringify(body),
  })
  return { status: res.statusCode, text: res.body, headers: res.headers, body: res.body === '' ? undefined : res.json() }
}

/** Sends the same request `RACERS` times at once, alternating between `apps`. */
async function race (apps: FastifyInstance[], method: Method, body: unknown, key?: string) {
  return await Promise.all(Array.from({ length: RACERS }, async (_, i) => await send(apps[i % apps.length], method, body, key)))
}

async function keyRows (database: OpenDatabase) {
  return await database.db.selectFrom('scopekeeper_idempotency_keys').selectAll().orderBy('created_at').execute()
}

/** A clock the test moves. */
function movableClock () {
  let offsetMs = 0
  return { now: () => new Date(Date.now() + offsetMs), advance: (seconds: number) => { offsetMs += seconds * 1000 } }
}

for (const engine of testEngines()) {
  describe(`${engine}: Idempotency-Key`, () => {
    it('a repeated PUT answers the same 202 and Location and queues no second job', async (t) => {
      const { app, database } = await buildTestApp(t, { engine })
      await createScopes(app, [{ scope_id: 'aaaa' }])
      const first = await send(app, 'PUT', RESET, 'reset-1')
      assert.equal(first.status, 202, first.text)
      assert.match(String(first.headers.location), /\/v2\/scope\/resets\/\d+$/)
      assert.equal(first.headers['idempotent-replayed'], undefined)
      // The same body with its keys in another order is the same request.
      const again = await send(app, 'PUT', { last_processed_timestamp: RESET.last_processed_timestamp, scope_id: 'aaaa' }, 'reset-1')
      assert.equal(again.status, 202)
      assert.equal(again.text, first.text)
      assert.equal(again.headers.location, first.headers.location)
      assert.equal(again.headers['content-type'], first.headers['content-type'])
      assert.equal(again.headers['idempotent-replayed'], 'true')
      assert.notEqual(again.headers['x-openstack-request-id'], first.headers['x-openstack-request-id'])
      assert.equal((await dumpJobs(database)).length, 1)
      // Without a key, or with another, a PUT acts as ever.
      assert.equal((await send(app, 'PUT', RESET)).status, 202)
      assert.equal((await send(app, 'PUT', RESET, 'reset-2')).status, 202)
      assert.equal((await dumpJobs(database)).length, 3)
    })

    it('a repeated PATCH answers what the first answered, even after the scope changed', async (t) => {
      const { app, database } = await buildTestApp(t, { engine })
      await createScopes(app, [{ scope_id: 'aaaa', active: true }])
      const first = await send(app, 'PATCH', { scope_id: 'aaaa', active: false }, 'patch-1')
      assert.equal(first.status, 200, first.text)
      assert.equal(first.body.active, false)
      assert.equal((await send(app, 'PATCH', { scope_id: 'aaaa', active: true })).status, 200)
      const again = await send(app, 'PATCH', { scope_id: 'aaaa', active: false }, 'patch-1')
      assert.equal(again.status, 200)
      assert.equal(again.text, first.text)
      assert.equal(again.headers['idempotent-replayed'], 'true')
      // It did not act: the scope keeps the change made in between.
      const [row] = await dumpStates(database) as any[]
      assert.equal(Boolean(row.active), true)
    })

    it('a repeated POST answers its 200 again instead of a 409, with one row created', async (t) => {
      const { app, database } = await buildTestApp(t, { engine })
      const body = { scope_id: 'new-project', active: false }
      const first = await send(app, 'POST', body, 'create-1')
      assert.equal(first.status, 200, first.text)
      const again = await send(app, 'POST', body, 'create-1')
      assert.equal(again.status, 200, again.text)
      assert.equal(again.text, first.text)
      assert.equal((await dumpStates(database)).length, 1)
      assert.equal((await send(app, 'POST', body)).status, 409)
    })

    it('a 4xx answer is stored and replayed like a success', async (t) => {
      const { app, database } = await buildTestApp(t, { engine })
      const first = await send(app, 'PUT', RESET, 'too-early')
      assert.equal(first.status, 404, first.text)
      await createScopes(app, [{ scope_id: 'aaaa' }])
      const again = await send(app, 'PUT', RESET, 'too-early')
      assert.equal(again.status, 404)
      assert.equal(again.text, first.text)
      assert.equal(again.headers['idempotent-replayed'], 'true')
      assert.equal((await dumpJobs(database)).length, 0)
    })

    it('the same key with another body, method or route is a 422 and acts not', async (t) => {
      const { app, database } = await buildTestApp(t, { engine })
      await createScopes(app, [{ scope_id: 'aaaa' }])
      assert.equal((await send(app, 'PUT', RESET, 'k')).status, 202)
      const other = await send(app, 'PUT', { ...RESET, last_processed_timestamp: '2021-01-01T00:00:00Z' }, 'k')
      assert.equal(other.status, 422, other.text)
      assert.match(other.body.message, /Idempotency-Key was already used for a different request/)
      const patch = await send(app, 'PATCH', { scope_id: 'aaaa', active: false }, 'k')
      assert.equal(patch.status, 422, patch.text)
      assert.equal((await dumpJobs(database)).length, 1)
      const [row] = await dumpStates(database) as any[]
      assert.equal(Boolean(row.active), true)
      // The first request's answer is still there for its own repeats.
      assert.equal((await send(app, 'PUT', RESET, 'k')).headers['idempotent-replayed'], 'true')
    })

    it('keys expire by age: within the ttl a repeat replays, past it the request acts again', async (t) => {
      const clock = movableClock()
      const { app, database } = await buildTestApp(t, { engine, clock: clock.now, env: { SCOPEKEEPER_API_IDEMPOTENCY_TTL: '60' } })
      await createScopes(app, [{ scope_id: 'aaaa' }])
      const first = await send(app, 'PUT', RESET, 'daily')
      clock.advance(59)
      const within = await send(app, 'PUT', RESET, 'daily')
      assert.equal(within.headers['idempotent-replayed'], 'true')
      assert.equal(within.headers.location, first.headers.location)
      clock.advance(3)
      const past = await send(app, 'PUT', RESET, 'daily')
      assert.equal(past.status, 202)
      assert.equal(past.headers['idempotent-replayed'], undefined)
      assert.notEqual(past.headers.location, first.headers.location)
      assert.equal((await dumpJobs(database)).length, 2)
      // An expired key with another body is a new request, not a 422.
      clock.advance(62)
      assert.equal((await send(app, 'PUT', { ...RESET, last_processed_timestamp: '2021-01-01T00:00:00Z' }, 'daily')).status, 202)
    })

    it('expired keys are purged, in bounded batches, after a new key', async (t) => {
      const clock = movableClock()
      const { app, database } = await buildTestApp(t, { engine, clock: clock.now, env: { SCOPEKEEPER_API_IDEMPOTENCY_TTL: '60' } })
      const keys = idempotencyKeys(database)
      const old = clock.now()
      for (let i = 0; i < 150; i++) await keys.claim({ caller: 'noauth', key: `old-${i}`, method: 'PUT', path: '/v2/scope', requestHash: 'x' }, `t${i}`, old)
      clock.advance(61)
      await keys.claim({ caller: 'noauth', key: 'recent', method: 'PUT', path: '/v2/scope', requestHash: 'x' }, 'r', clock.now())
      clock.advance(5)
      await createScopes(app, [{ scope_id: 'aaaa' }])
      // Purged after the answer (onResponse): wait for it.
      await send(app, 'PUT', RESET, 'fresh-1')
      const left = async () => (await keyRows(database)).map((r) => r.idempotency_key)
      for (let i = 0; i < 50 && (await left()).length > 52; i++) await new Promise((resolve) => setTimeout(resolve, 20))
      // One batch: at most 100 of the 150 expired ones (rows of one second may go together), never the live ones.
      const afterOne = await left()
      assert.ok(afterOne.includes('recent') && afterOne.includes('fresh-1'), String(afterOne))
      assert.ok(afterOne.length >= 2 && afterOne.length < 152, String(afterOne.length))
      await send(app, 'PUT', RESET, 'fresh-2')
      for (let i = 0; i < 50 && (await left()).some((k) => k.startsWith('old-')); i++) await new Promise((resolve) => setTimeout(resolve, 20))
      assert.deepEqual((await left()).sort(), ['fresh-1', 'fresh-2', 'recent'])
    })

    it(`${RACERS} concurrent identical PUTs, from two apps on one database, queue one job`, async (t) => {
      const a = await buildTestApp(t, { engine })
      const b = await buildTestApp(t, { engine, env: { SCOPEKEEPER_DATABASE_URL: a.url } })
      await createScopes(a.app, [{ scope_id: 'aaaa' }])
      const answers = await race([a.app, b.app], 'PUT', RESET, 'raced-put')
      assert.deepEqual(answers.map((r) => r.status), Array(RACERS).fill(202), JSON.stringify(answers.map((r) => r.text)))
      assert.equal(new Set(answers.map((r) => r.headers.location)).size, 1)
      assert.equal(answers.filter((r) => r.headers['idempotent-replayed'] === undefined).length, 1)
      const jobs = await dumpJobs(a.database) as any[]
      assert.equal(jobs.length, 1)
      assert.equal(String(answers[0].headers.location).split('/').pop(), String(jobs[0].id))
      // The control: without a key the same race queues a job each.
      await race([a.app, b.app], 'PUT', RESET)
      assert.equal((await dumpJobs(a.database)).length, 1 + RACERS)
    })

    it(`${RACERS} concurrent identical POSTs create one row and all answer its 200`, async (t) => {
      const a = await buildTestApp(t, { engine })
      const b = await buildTestApp(t, { engine, env: { SCOPEKEEPER_DATABASE_URL: a.url } })
      const answers = await race([a.app, b.app], 'POST', { scope_id: 'raced' }, 'raced-post')
      assert.deepEqual(answers.map((r) => r.status), Array(RACERS).fill(200), JSON.stringify(answers.map((r) => r.text)))
      assert.equal(new Set(answers.map((r) => r.text)).size, 1)
      assert.equal(answers.filter((r) => r.headers['idempotent-replayed'] === undefined).length, 1)
      assert.equal((await dumpStates(a.database)).length, 1)
      // The control: without a key one racer creates it and the others get a 409.
      const unkeyed = await race([a.app, b.app], 'POST', { scope_id: 'raced-2' })
      assert.equal(unkeyed.filter((r) => r.status === 409).length, RACERS - 1)
    })

    it(`${RACERS} concurrent identical PATCHes: one acts, the others replay its answer`, async (t) => {
      const a = await buildTestApp(t, { engine })
      const b = await buildTestApp(t, { engine, env: { SCOPEKEEPER_DATABASE_URL: a.url } })
      await createScopes(a.app, [{ scope_id: 'aaaa', active: true }])
      const answers = await race([a.app, b.app], 'PATCH', { scope_id: 'aaaa', active: false }, 'raced-patch')
      assert.deepEqual(answers.map((r) => r.status), Array(RACERS).fill(200), JSON.stringify(answers.map((r) => r.text)))
      assert.equal(new Set(answers.map((r) => r.text)).size, 1)
      assert.equal(answers.filter((r) => r.headers['idempotent-replayed'] === undefined).length, 1)
    })

    it(`${RACERS} concurrent repeats of a slow request wait for the first one, which alone acts`, async (t) => {
      // A handler slow enough that every repeat arrives while the first is in
      // progress, whatever the engine's own pace (SQLite's one connection
      // serialises the real routes' statements).
      const a = await buildTestApp(t, { engine })
      const b = await buildTestApp(t, { engine, env: { SCOPEKEEPER_DATABASE_URL: a.url } })
      let calls = 0
      for (const app of [a.app, b.app]) {
        app.post('/test/slow', { config: { idempotent: true } }, async () => {
          calls++
          await new Promise((resolve) => setTimeout(resolve, 300))
          return { call: calls }
        })
      }
      const answers = await Promise.all(Array.from({ length: RACERS }, async (_, i) => await send([a.app, b.app][i % 2], 'POST', { x: 1 }, 'slow', '/test/slow')))
      assert.equal(calls, 1)
      assert.deepEqual(answers.map((r) => [r.status, r.body]), Array(RACERS).fill([200, { call: 1 }]))
      assert.equal(answers.filter((r) => r.headers['idempotent-replayed'] === 'true').length, RACERS - 1)
    })

    it('a key is its caller\'s own: another caller with the same key acts independently', async (t) => {
      const { database } = await buildTestApp(t, { engine })
      const service = new IdempotencyService({ keys: idempotencyKeys(database), ttlSeconds: 60, leaseSeconds: 60, waitSeconds: 1 })
      const request = (caller: string, body: unknown): IdempotentRequest => ({ caller, key: 'shared', method: 'PUT', path: '/v2/scope', requestHash: requestHash(body) })
      const alice = await service.begin(request('keystone:alice:p1', { a: 1 }))
      const bob = await service.begin(request('keystone:bob:p1', { b: 2 }))
      const aliceElsewhere = await service.begin(request('keystone:alice:p2', { c: 3 }))
      assert.deepEqual([alice.kind, bob.kind, aliceElsewhere.kind], ['proceed', 'proceed', 'proceed'])
      if (alice.kind !== 'proceed') return
      await service.complete(alice.claim, { status: 202, headers: { location: '/a' }, body: '{}' })
      assert.deepEqual(await service.begin(request('keystone:alice:p1', { a: 1 })), { kind: 'replay', response: { status: 202, headers: { location: '/a' }, body: '{}' } })
      await assert.rejects(service.begin(request('keystone:alice:p1', { b: 2 })), { code: 'IDEMPOTENCY_KEY_REUSED' })
    })

    it('a released key (a 5xx) lets a retry act', async (t) => {
      const { app, database } = await buildTestApp(t, { engine })
      let calls = 0
      app.post('/test/flaky', { config: { idempotent: true } }, async () => {
        calls++
        if (calls === 1) throw new Error('the first attempt fails on the server side')
        return { calls }
      })
      const first = await send(app, 'POST', { x: 1 }, 'flaky', '/test/flaky')
      assert.equal(first.status, 500)
      assert.equal((await keyRows(database)).length, 0)
      const retry = await send(app, 'POST', { x: 1 }, 'flaky', '/test/flaky')
      assert.equal(retry.status, 200)
      assert.deepEqual(retry.body, { calls: 2 })
      assert.deepEqual((await send(app, 'POST', { x: 1 }, 'flaky', '/test/flaky')).body, { calls: 2 })
      assert.equal(calls, 2)
    })

    it('a repeat waits for a claim in progress, answers 409 past the bound, and takes over an abandoned one', async (t) => {
      const clock = movableClock()
      // Waits at most request_timeout (1 s); abandoned after 1 + statement_timeout (1) s.
      const { app, database } = await buildTestApp(t, {
        engine, clock: clock.now, env: { SCOPEKEEPER_API_REQUEST_TIMEOUT: '1', SCOPEKEEPER_DATABASE_STATEMENT_TIMEOUT: '1' },
      })
      await createScopes(app, [{ scope_id: 'aaaa' }])
      // A process claimed the key, then died before answering.
      const keys = idempotencyKeys(database)
      await keys.claim({ caller: 'noauth', key: 'orphan', method: 'PUT', path: '/v2/scope', requestHash: requestHash(RESET) }, 'dead', clock.now())
      const started = Date.now()
      const waiting = await send(app, 'PUT', RESET, 'orphan')
      assert.equal(waiting.status, 409, waiting.text)
      assert.match(waiting.body.message, /still in progress/)
      assert.ok(Date.now() - started >= 900, `answered after ${Date.now() - started} ms`)
      assert.equal((await dumpJobs(database)).length, 0)
      clock.advance(3)
      const taken = await send(app, 'PUT', RESET, 'orphan')
      assert.equal(taken.status, 202, taken.text)
      assert.equal((await dumpJobs(database)).length, 1)
    })

    it('a malformed Idempotency-Key is a 400 naming the header, and acts not', async (t) => {
      const { app, database } = await buildTestApp(t, { engine })
      await createScopes(app, [{ scope_id: 'aaaa' }])
      for (const key of ['', 'k'.repeat(256), 'clé']) {
        const res = await send(app, 'PUT', RESET, key)
        assert.equal(res.status, 400, `${JSON.stringify(key)}: ${res.text}`)
        assert.deepEqual(res.body, { message: 'Invalid Idempotency-Key header: must be 1 to 255 printable ASCII characters.' })
      }
      assert.equal((await send(app, 'PUT', RESET, 'k'.repeat(255))).status, 202)
      assert.equal((await dumpJobs(database)).length, 1)
    })
  })
}

describe('Idempotency-Key in the API document', () => {
  it('documents the header on PUT, PATCH and POST /v2/scope, and their 422', async (t) => {
    const { app } = await buildTestApp(t)
    const doc = (await app.inject({ method: 'GET', url: '/v2/openapi.json' })).json()
    for (const method of ['put', 'patch', 'post']) {
      const operation = doc.paths['/v2/scope'][method]
      const header = operation.parameters.find((p: any) => p.in === 'header' && p.name === 'idempotency-key')
      assert.ok(header, method)
      assert.equal(header.required, false)
      assert.equal(header.schema.maxLength, 255)
      assert.ok(operation.responses['422'], method)
    }
    assert.equal(doc.paths['/v2/scope'].get.parameters.some((p: any) => p.name === 'idempotency-key'), false)
  })
})
