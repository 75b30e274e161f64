import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { buildTestApp, call, createScopes, dumpStates, tempDir } from '../helpers/build-test-app.ts'
import { freshDatabaseUrl, testEngines, type TestEngine } from '../helpers/test-databases.ts'
import { startServerProcess, type ServerProcess } from '../helpers/server-process.ts'
import { connectRaw } from '../helpers/cloudkitty-schema.ts'
import { fromStored } from '../../src/domain/timestamps.ts'
import { booleanFromDb } from '../../src/storage/engine-traits.ts'

// CONTRACT.md "POST /v2/scope": concurrent identical POSTs create exactly one
// row, and a scope_id that exists is a 409 whatever the other fields (issue
// 11 §6: racing POSTs of one scope_id with different collectors made 2–5
// rows on PostgreSQL and MariaDB, since CloudKitty's unique constraint spans
// identifier, scope_key, collector and fetcher); "PATCH /v2/scope": the
// toggle date changes only when `active` flips.

const RACERS = 50
const SCOPE = { scope_id: 'raced-project', scope_key: 'project_id', fetcher: 'keystone', collector: 'gnocchi', active: false }

/** How many responses had each status, e.g. `{ 200: 1, 409: 49 }`. */
function countStatuses (statuses: number[]): Record<number, number> {
  const counts: Record<number, number> = {}
  for (const s of statuses) counts[s] = (counts[s] ?? 0) + 1
  return counts
}

/** POSTs the same scope once per target URL entry, all at the same time, over real HTTP. */
/**
 * Sends `bodies[i]` to `bases[i % bases.length]`, all at once over real HTTP:
 * each racer opens its keep-alive connection first (a GET /healthz), then
 * waits on one barrier, so no TCP handshake spreads the POSTs out.
 */
async function raceOverHttp (bases: string[], bodies: object[]): Promise<Array<{ status: number, body: any }>> {
  const baseOf = (i: number) => bases[i % bases.length]
  await Promise.all(bodies.map(async (_, i) => { await (await fetch(`${baseOf(i)}/healthz`)).arrayBuffer() }))
  let open!: () => void
  const barrier = new Promise<void>((resolve) => { open = resolve })
  const racing = bodies.map(async (body, i) => {
    await barrier
    const res = await fetch(`${baseOf(i)}/v2/scope`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
    return { status: res.status, body: await res.json() }
  })
  open()
  return await Promise.all(racing)
}

/** One scope_id with a collector of its own per racer (c0, c1, …): not duplicates in the eyes of CloudKitty's unique constraint. */
function ownCollectorBodies (scopeId: string): object[] {
  return Array.from({ length: RACERS }, (_, i) => ({ scope_id: scopeId, collector: `c${i}` }))
}

/** The collectors of the rows stored for `scopeId`, read with the plain driver, past scopekeeper's storage layer. */
async function storedCollectors (engine: TestEngine, url: string, scopeId: string): Promise<string[]> {
  const raw = await connectRaw(engine, url)
  try {
    const rows = await raw.rows(`SELECT collector FROM cloudkitty_storage_states WHERE identifier = '${scopeId}' ORDER BY id`)
    return rows.map((r) => String(r.collector))
  } finally {
    await raw.close()
  }
}

/**
 * Exactly one racer got a 200 and the other 49 a 409; one row holds the
 * winner's collector, and PATCH by scope_id finds that one row.
 */
async function assertOneScopeCreated (engine: TestEngine, url: string, base: string, responses: Array<{ status: number, body: any }>): Promise<void> {
  assert.deepEqual(countStatuses(responses.map((r) => r.status)), { 200: 1, 409: RACERS - 1 },
    `answers other than 409: ${JSON.stringify(responses.filter((r) => r.status !== 409).map((r) => [r.status, r.body.collector ?? r.body.message]))}`)
  const winner = responses.find((r) => r.status === 200)!.body
  for (const r of responses.filter((r) => r.status === 409)) assert.equal(r.body.message, `Scope ${winner.scope_id} already exists.`)
  assert.deepEqual(await storedCollectors(engine, url, winner.scope_id), [winner.collector])
  const patched = await fetch(`${base}/v2/scope`, { method: 'PATCH', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ scope_id: winner.scope_id, active: false }) })
  assert.equal(patched.status, 200, await patched.clone().text())
  assert.equal((await patched.json()).collector, winner.collector)
}

function assertOneCreatedRestConflict (responses: Array<{ status: number, body: any }>): void {
  assert.deepEqual(countStatuses(responses.map((r) => r.status)), { 200: 1, 409: RACERS - 1 })
  const created = responses.find((r) => r.status === 200)!.body
  assert.equal(created.scope_id, SCOPE.scope_id)
  assert.equal(created.active, false)
  for (const r of responses.filter((r) => r.status === 409)) assert.equal(typeof r.body.message, 'string')
}

/** The rows a server lists for the racing scope_id. */
async function listedRows (base: string): Promise<unknown[]> {
  const res = await fetch(`${base}/v2/scope?scope_id=${encodeURIComponent(SCOPE.scope_id)}`)
  return res.status === 404 ? [] : (await res.json() as { results: unknown[] }).results
}

for (const engine of testEngines()) {
  describe(`${engine}: concurrent POST /v2/scope`, () => {
    it('creates exactly one row and answers 409 to the other 49 of 50 simultaneous identical POSTs', async (t) => {
      const { app, database } = await buildTestApp(t, { engine })
      const responses = await Promise.all(Array.from({ length: RACERS }, async () => {
        const res = await app.inject({
          method: 'POST', url: '/v2/scope', payload: JSON.stringify(SCOPE), headers: { 'content-type': 'application/json' },
        })
        return { status: res.statusCode, body: res.json() }
      }))
      assertOneCreatedRestConflict(responses)
      assert.equal((await dumpStates(database)).length, 1)
    })

    it('creates exactly one row when a real server receives 50 simultaneous identical POSTs over HTTP', async (t) => {
      const url = await freshDatabaseUrl(t, engine, tempDir(t))
      if (url === undefined) return
      const server = await startServerProcess(t, ['--database', url])
      try {
        assertOneCreatedRestConflict(await raceOverHttp([server.url], Array.from({ length: RACERS }, () => SCOPE)))
        assert.equal((await listedRows(server.url)).length, 1)
      } finally {
        await server.stop()
      }
    })

    it('creates exactly one row when two server processes on one database receive 25 identical POSTs each', async (t) => {
      const url = await freshDatabaseUrl(t, engine, tempDir(t))
      if (url === undefined) return
      const servers: ServerProcess[] = []
      try {
        servers.push(...await Promise.all([0, 1].map(async () => await startServerProcess(t, ['--database', url, '--no-worker']))))
        assertOneCreatedRestConflict(await raceOverHttp(servers.map((s) => s.url), Array.from({ length: RACERS }, () => SCOPE)))
        assert.equal((await listedRows(servers[1].url)).length, 1)
      } finally {
        for (const server of servers) await server.stop()
      }
    })

    it('creates one row and answers 409 to the other 49 when 50 POSTs of one scope_id, each with its own collector, reach a real server at once', async (t) => {
      const url = await freshDatabaseUrl(t, engine, tempDir(t))
      if (url === undefined) return
      const server = await startServerProcess(t, ['--database', url, '--no-worker'])
      try {
        await assertOneScopeCreated(engine, url, server.url, await raceOverHttp([server.url], ownCollectorBodies('dupX')))
      } finally {
        await server.stop()
      }
    })

    it('creates one row when three server processes on one database receive those 50 POSTs between them', async (t) => {
      const url = await freshDatabaseUrl(t, engine, tempDir(t))
      if (url === undefined) return
      const servers: ServerProcess[] = []
      try {
        servers.push(...await Promise.all([0, 1, 2].map(async () => await startServerProcess(t, ['--database', url, '--no-worker']))))
        const bases = servers.map((s) => s.url)
        await assertOneScopeCreated(engine, url, bases[0], await raceOverHttp(bases, ownCollectorBodies('dupX')))
        // Again on a scope_id that other rows now surround in the index.
        await assertOneScopeCreated(engine, url, bases[1], await raceOverHttp(bases, ownCollectorBodies('dupW')))
      } finally {
        for (const server of servers) await server.stop()
      }
    })

    it('creates all of 50 simultaneous POSTs of different scope_ids on three server processes, none refused', async (t) => {
      const url = await freshDatabaseUrl(t, engine, tempDir(t))
      if (url === undefined) return
      const servers: ServerProcess[] = []
      try {
        servers.push(...await Promise.all([0, 1, 2].map(async () => await startServerProcess(t, ['--database', url, '--no-worker']))))
        const bodies = Array.from({ length: RACERS }, (_, i) => ({ scope_id: `distinct-${i}`, collector: `c${i % 3}` }))
        const responses = await raceOverHttp(servers.map((s) => s.url), bodies)
        assert.deepEqual(countStatuses(responses.map((r) => r.status)), { 200: RACERS },
          JSON.stringify(responses.filter((r) => r.status !== 200).map((r) => [r.status, r.body])))
        const raw = await connectRaw(engine, url)
        try {
          assert.equal((await raw.rows("SELECT id FROM cloudkitty_storage_states WHERE identifier LIKE 'distinct-%'")).length, RACERS)
        } finally {
          await raw.close()
        }
      } finally {
        for (const server of servers) await server.stop()
      }
    })
  })

  describe(`${engine}: concurrent PATCH /v2/scope`, () => {
    /** A fake clock that advances one second per call, so that every flip gets its own toggle date. */
    function fakeTickingClock (): () => Date {
      let ticks = 0
      const start = Date.UTC(2024, 4, 1, 12, 0, 0)
      return () => new Date(start + 1000 * ticks++)
    }

    it('keeps active and its toggle date consistent under 40 simultaneous alternating PATCHes', async (t) => {
      const { app, database } = await buildTestApp(t, { engine, clock: fakeTickingClock() })
      const [created] = await createScopes(app, [{ scope_id: 'toggled' }])
      assert.equal(created.active, true)

      // Alternates false/true, in the JSON boolean and the integer forms the CloudKitty client sends.
      const forms = [false, true, 0, 1]
      const responses = await Promise.all(Array.from({ length: 40 }, async (_, i) =>
        await call(app, 'PATCH', '/v2/scope', { scope_id: 'toggled', active: forms[i % forms.length] })))
      for (const r of responses) assert.equal(r.status, 200, r.text)

      // Each response shows the row as its own transaction left it. Every flip
      // took a new toggle date (the clock ticks), so responses sharing a date
      // must agree on `active`, and dates in time order must alternate
      // true → false → true … starting from the created state.
      const activeByDate = new Map<string, boolean>([[created.scope_activation_toggle_date, true]])
      for (const { body } of responses) {
        assert.equal(typeof body.active, 'boolean')
        const known = activeByDate.get(body.scope_activation_toggle_date)
        if (known !== undefined) assert.equal(body.active, known, `two values of active for toggle date ${body.scope_activation_toggle_date}`)
        activeByDate.set(body.scope_activation_toggle_date, body.active)
      }
      const timeline = [...activeByDate].sort(([a], [b]) => a.localeCompare(b))
      assert.equal(timeline[0][0], created.scope_activation_toggle_date)
      timeline.forEach(([date, active], i) => assert.equal(active, i % 2 === 0, `flip ${i} at ${date} did not flip`))
      assert.ok(timeline.length > 1, 'no PATCH flipped the scope')

      // The stored row is the one the last flip left.
      const [lastDate, lastActive] = timeline[timeline.length - 1]
      const listed = await call(app, 'GET', '/v2/scope?scope_id=toggled')
      assert.equal(listed.status, 200)
      assert.equal(listed.body.results.length, 1)
      assert.equal(listed.body.results[0].active, lastActive)
      assert.equal(listed.body.results[0].scope_activation_toggle_date, lastDate)
      const [row] = await dumpStates(database) as Array<{ active: unknown, scope_activation_toggle_date: unknown }>
      assert.equal(booleanFromDb(row.active), lastActive)
      assert.equal(fromStored(row.scope_activation_toggle_date as string).toISOString().slice(0, 19), lastDate.slice(0, 19))
      if (engine === 'sqlite') {
        // On disk exactly as CloudKitty's SQLAlchemy writes it.
        assert.equal(row.active, lastActive ? 1 : 0)
        assert.equal(row.scope_activation_toggle_date, `${lastDate.slice(0, 10)} ${lastDate.slice(11, 19)}.000000`)
      }
    })

    it('leaves the toggle date alone when a PATCH sends the current value of active, in any form', async (t) => {
      const { app, database } = await buildTestApp(t, { engine, clock: fakeTickingClock() })
      await createScopes(app, [{ scope_id: 'steady', active: false }])
      const before = await dumpStates(database)
      const created = (await call(app, 'GET', '/v2/scope?scope_id=steady')).body.results[0]

      for (const same of [false, 0, 'false', 'FALSE', '0']) {
        const res = await call(app, 'PATCH', '/v2/scope', { scope_id: 'steady', active: same })
        assert.equal(res.status, 200, res.text)
        assert.equal(res.body.active, false)
        assert.equal(res.body.scope_activation_toggle_date, created.scope_activation_toggle_date, `active: ${JSON.stringify(same)} moved the toggle date`)
      }
      assert.deepEqual(await dumpStates(database), before)

      // The clock does tick: a real flip takes a later date.
      const flipped = await call(app, 'PATCH', '/v2/scope', { scope_id: 'steady', active: 1 })
      assert.equal(flipped.status, 200, flipped.text)
      assert.equal(flipped.body.active, true)
      assert.ok(flipped.body.scope_activation_toggle_date > created.scope_activation_toggle_date)
    })
  })
}
