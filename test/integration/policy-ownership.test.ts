// Owner-style policy rules (`role:admin or project_id:%(project_id)s`)
// with real Keystone tokens of two projects, on every engine: a member sees
// and changes only their own project's scopes and reset jobs; an admin sees
// everything, as before. Keystone 22 is started once for this file
// (test/helpers/keystone-server.ts); without it these tests are skipped,
// loudly, and under CI=true they fail instead.
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, it, type TestContext } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { insertScope } from '../../src/storage/scope-state-repository.ts'
import type { OpenDatabase } from '../../src/storage/open-database.ts'
import { buildTestApp, dumpJobs, dumpStates, tempDir, type TestApp } from '../helpers/build-test-app.ts'
import { keystoneSkipReason, startKeystone, waitPastSecond, type KeystoneServer, type KeystoneUser } from '../helpers/keystone-server.ts'
import { testEngines } from '../helpers/test-databases.ts'

const FORBIDDEN = { message: 'You are not authorized to perform this action' }
const OWNER = 'role:admin or project_id:%(project_id)s'
const POLICY = ['get_state', 'reset_state', 'patch_state', 'post_state'].map((r) => `"scope:${r}": "${OWNER}"`).join('\n') + '\n'
const TS = '2024-01-01T00:00:00Z'

async function send (app: FastifyInstance, token: string, method: string, url: string, body?: unknown) {
  const res = await app.inject({
    method: method as 'GET',
    url,
    headers: { 'x-auth-token': token, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { payload: JSON.stringify(body) }),
  })
  let json: any
  try { json = res.json() } catch { json = undefined }
  return { status: res.statusCode, body: json, headers: res.headers }
}

/** Follows `Link: rel="next"` from `url`; returns each page's scope_id/collector pairs. */
async function pages (app: FastifyInstance, token: string, url: string): Promise<string[][]> {
  const out: string[][] = []
  for (let next: string | undefined = url; next !== undefined;) {
    const res = await send(app, token, 'GET', next)
    if (res.status === 404 && out.length > 0) break
    assert.equal(res.status, 200, `${next}: ${JSON.stringify(res.body)}`)
    out.push(res.body.results.map((r: any) => `${r.scope_id}/${r.collector}`))
    next = /<([^>]+)>; rel="next"/.exec(String(res.headers.link ?? ''))?.[1]
  }
  return out
}

const skip = keystoneSkipReason()

describe('Owner-style policy rules, with real Keystone tokens of two projects', { skip }, () => {
  let keystone: KeystoneServer
  const bob: KeystoneUser = { name: 'bob', password: 'bob-secret', project: 'other' }
  let projectA: string
  let projectB: string

  before(async () => {
    keystone = await startKeystone()
    projectB = await keystone.createUser(bob, 'member')
    projectA = await keystone.projectId(keystone.member.project)
    await waitPastSecond()
    process.stdout.write(`# Keystone started in ${keystone.startSeconds.toFixed(1)} s\n`)
  })
  after(async () => { await keystone?.stop() })

  for (const engine of testEngines()) {
    describe(engine, () => {
      async function ownerApp (t: TestContext): Promise<TestApp> {
        const file = join(tempDir(t), 'policy.yaml')
        writeFileSync(file, POLICY)
        return await buildTestApp(t, { engine, env: { ...keystone.authEnv(), SCOPEKEEPER_OSLO_POLICY_POLICY_FILE: file } })
      }

      /**
       * Project A's scope under five collectors, each between rows of other
       * scopes (B's, others', and A's id in capitals), so that a page of A's
       * rows is never a page of the table.
       */
      async function seed (database: OpenDatabase): Promise<void> {
        let n = 0
        const row = (scopeId: string) => ({
          scopeId, scopeKey: 'project_id', fetcher: 'keystone', collector: `c${n++}`,
          lastProcessedTimestamp: new Date('2024-01-01T00:00:00Z'), active: true, activationToggleDate: new Date('2024-01-01T00:00:00Z'),
        })
        for (let i = 0; i < 5; i++) {
          for (const other of [projectB, 'someone-else', projectA.toUpperCase()]) await insertScope(database, row(other))
          await insertScope(database, row(projectA))
        }
      }

      it("lists only the member's own project's scopes, in full pages, by offset and by marker", async (t) => {
        const { app, database } = await ownerApp(t)
        await seed(database)
        const alice = await keystone.token(keystone.member)
        const own = (await send(app, alice, 'GET', '/v2/scope')).body.results.map((r: any) => r.scope_id)
        assert.deepEqual(own, Array(5).fill(projectA))
        // Marker paging through the Link header: every page full but the last, none lost.
        const byMarker = await pages(app, alice, '/v2/scope?limit=2')
        assert.deepEqual(byMarker.map((p) => p.length), [2, 2, 1])
        assert.deepEqual(byMarker.flat(), ['c3', 'c7', 'c11', 'c15', 'c19'].map((c) => `${projectA}/${c}`))
        // Offsets count the member's rows only.
        const at = async (offset: number) => (await send(app, alice, 'GET', `/v2/scope?limit=2&offset=${offset}`)).body?.results?.map((r: any) => r.collector)
        assert.deepEqual([await at(0), await at(2), await at(4)], [['c3', 'c7'], ['c11', 'c15'], ['c19']])
        assert.equal((await send(app, alice, 'GET', '/v2/scope?offset=5')).status, 404)
        // Other filters still apply, within the project.
        assert.deepEqual((await send(app, alice, 'GET', '/v2/scope?collector=c7,c0')).body.results.map((r: any) => r.collector), ['c7'])
        assert.deepEqual((await send(app, alice, 'GET', `/v2/scope?scope_id=${projectA}&collector=c3`)).body.results.map((r: any) => r.collector), ['c3'])
        // Bob's own, likewise.
        const bobs = (await send(app, await keystone.token(bob), 'GET', '/v2/scope?limit=100')).body.results
        assert.deepEqual([...new Set(bobs.map((r: any) => r.scope_id))], [projectB])
        assert.equal(bobs.length, 5)
      })

      it('gives an admin every scope with the same bodies and paging as without the owner rule', async (t) => {
        const { app, database, url } = await ownerApp(t)
        await seed(database)
        const admin = await keystone.token(keystone.admin)
        const all = await pages(app, admin, '/v2/scope?limit=7')
        assert.deepEqual(all.map((p) => p.length), [7, 7, 6])
        // The same database, served with the default rules.
        const defaults = await buildTestApp(t, { engine, env: { ...keystone.authEnv(), SCOPEKEEPER_DATABASE_URL: url } })
        for (const url of ['/v2/scope', '/v2/scope?limit=3&offset=4', `/v2/scope?scope_id=${projectB}`, '/v2/scope?limit=2&marker=3']) {
          const [owner, plain] = [await send(app, admin, 'GET', url), await send(defaults.app, admin, 'GET', url)]
          assert.deepEqual([owner.status, owner.body, owner.headers.link], [plain.status, plain.body, plain.headers.link], url)
        }
      })

      it("forbids a member other projects' scopes by name, and every write that is not theirs", async (t) => {
        const { app, database } = await ownerApp(t)
        await seed(database)
        const alice = await keystone.token(keystone.member)
        const before = await dumpStates(database)
        for (const url of [`/v2/scope?scope_id=${projectB}`, `/v2/scope?scope_id=${projectA},${projectB}`, `/v2/scope?scope_id=${projectA}&scope_id=someone-else`]) {
          assert.deepEqual([(await send(app, alice, 'GET', url)).status, (await send(app, alice, 'GET', url)).body], [403, FORBIDDEN], url)
        }
        const writes: Array<[string, unknown]> = [
          ['PUT', { all_scopes: true, state: TS }],
          ['PUT', { all_scopes: true, collector: 'c3', state: TS }],
          ['PUT', { scope_id: projectB, state: TS }],
          ['PUT', { scope_id: `${projectA},${projectB}`, state: TS }],
          ['PUT', { scope_id: [projectA, 'someone-else'], state: TS }],
          ['PATCH', { scope_id: projectB, active: false }],
          ['PATCH', { scope_id: `${projectA},${projectA}`, active: false }],
          ['POST', { scope_id: 'someone-new' }],
        ]
        for (const [method, body] of writes) {
          const res = await send(app, alice, method, '/v2/scope', body)
          assert.deepEqual([res.status, res.body], [403, FORBIDDEN], `${method} ${JSON.stringify(body)}`)
        }
        assert.deepEqual(await dumpStates(database), before)
        assert.deepEqual(await dumpJobs(database), [])
        // Their own project: allowed (PATCH answers 409: A has five states).
        assert.equal((await send(app, alice, 'PUT', '/v2/scope', { scope_id: projectA, state: TS })).status, 202)
        assert.equal((await send(app, alice, 'PATCH', '/v2/scope', { scope_id: projectA, active: false })).status, 409)
        // The admin still resets everything.
        assert.equal((await send(app, await keystone.token(keystone.admin), 'PUT', '/v2/scope', { all_scopes: true, state: TS })).status, 202)
      })

      it("shows a member only the reset jobs that cover nothing but their scopes, by list and by id; others' are 404 like missing ones", async (t) => {
        const { app, database } = await ownerApp(t)
        await seed(database)
        const [admin, alice, bobs] = [await keystone.token(keystone.admin), await keystone.token(keystone.member), await keystone.token(bob)]
        const put = async (token: string, body: unknown) => {
          const res = await send(app, token, 'PUT', '/v2/scope', { ...body as object, state: TS })
          assert.equal(res.status, 202, JSON.stringify(res.body))
          return Number(String(res.headers.location).split('/').pop())
        }
        const jobB = await put(admin, { scope_id: projectB })
        const jobA1 = await put(alice, { scope_id: projectA })
        const jobAll = await put(admin, { all_scopes: true })
        const jobAB = await put(admin, { scope_id: [projectA, projectB] })
        const jobA2 = await put(admin, { scope_id: projectA, collector: 'c3' })
        const jobOther = await put(admin, { scope_id: projectA.toUpperCase() })
        const ids = async (token: string, query = '') => {
          const res = await send(app, token, 'GET', `/v2/scope/resets${query}`)
          assert.equal(res.status, 200, JSON.stringify(res.body))
          return res.body.results.map((j: any) => j.id)
        }
        assert.deepEqual(await ids(alice), [jobA2, jobA1])
        assert.deepEqual(await ids(bobs), [jobB])
        assert.deepEqual(await ids(admin), [jobOther, jobA2, jobAB, jobAll, jobA1, jobB])
        // Paging counts visible jobs only; the scope filter narrows within them.
        assert.deepEqual([await ids(alice, '?limit=1'), await ids(alice, '?limit=1&offset=1'), await ids(alice, '?limit=1&offset=2')], [[jobA2], [jobA1], []])
        assert.deepEqual(await ids(alice, `?scope_id=${projectA}`), [jobA2, jobA1])
        assert.deepEqual(await ids(alice, '?status=pending'), [jobA2, jobA1])
        assert.deepEqual((await send(app, alice, 'GET', `/v2/scope/resets?scope_id=${projectB}`)).status, 403)
        for (const id of [jobB, jobAll, jobAB, jobOther, 999]) {
          const res = await send(app, alice, 'GET', `/v2/scope/resets/${id}`)
          assert.deepEqual([res.status, res.body], [404, { message: `No reset found with id ${id}.` }], `job ${id}`)
        }
        for (const id of [jobA1, jobA2]) assert.equal((await send(app, alice, 'GET', `/v2/scope/resets/${id}`)).body.id, id)
        for (const id of [jobB, jobAll, jobAB, jobA1, jobOther]) assert.equal((await send(app, admin, 'GET', `/v2/scope/resets/${id}`)).status, 200)
      })

      it('keeps the default rules as they were: a member is forbidden every listing', async (t) => {
        const { app, database } = await buildTestApp(t, { engine, env: keystone.authEnv() })
        await seed(database)
        const alice = await keystone.token(keystone.member)
        for (const url of ['/v2/scope', `/v2/scope?scope_id=${projectA}`, '/v2/scope/resets', '/v2/scope/resets/1']) {
          assert.deepEqual([(await send(app, alice, 'GET', url)).status], [403], url)
        }
      })
    })
  }
})
