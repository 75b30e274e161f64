// POST /v2/scope/reconcile against the real Keystone the suite starts: one
// Keystone for the file, with [resource] list_limit = 2 so that every
// listing is truncated and the reconciliation must split it (per domain,
// per enabled flag, then the domain's subtree and one read per project).
// Each engine's scenario reconciles as its own user, which has the rating
// role on its own projects only: the projects of the other engines'
// scenarios, in the same Keystone, are not "new" to it.
import assert from 'node:assert/strict'
import { after, before, describe, it, type TestContext } from 'node:test'
import { buildTestApp, call, dumpStates } from '../helpers/build-test-app.ts'
import { freePort } from '../helpers/free-port.ts'
import { keystoneSkipReason, startKeystone, waitPastSecond, type KeystoneServer } from '../helpers/keystone-server.ts'
import { testEngines } from '../helpers/test-databases.ts'
import { insertNewScopes } from '../../src/storage/scope-state-repository.ts'
import { inTransaction } from '../../src/storage/store.ts'

const skip = keystoneSkipReason()
const NOW = Date.parse('2026-12-04T10:20:30.000Z')
const LIST_LIMIT = 2

/** [fetcher_keystone] for `user` (password `<user>-secret`, project `<user>-service`) on `keystone`. */
function fetcherEnv (keystone: KeystoneServer, user: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    SCOPEKEEPER_FETCHER_KEYSTONE_AUTH_TYPE: 'password',
    SCOPEKEEPER_FETCHER_KEYSTONE_AUTH_URL: `${keystone.url}/v3`,
    SCOPEKEEPER_FETCHER_KEYSTONE_USERNAME: user,
    SCOPEKEEPER_FETCHER_KEYSTONE_PASSWORD: `${user}-secret`,
    SCOPEKEEPER_FETCHER_KEYSTONE_PROJECT_NAME: `${user}-service`,
    ...extra,
  }
}

/** The events of `kind` about `scopeId` (a batch of several scopes is expanded per scope only with a scope filter). */
async function events (app: Parameters<typeof call>[0], kind: string, scopeId: string): Promise<any[]> {
  const res = await call(app, 'GET', `/v2/scope/events?kind=${kind}&scope_id=${scopeId}`)
  return res.status === 200 ? res.body.results : []
}

describe('POST /v2/scope/reconcile against a real Keystone', { skip }, () => {
  let keystone: KeystoneServer

  before(async () => {
    keystone = await startKeystone({ listLimit: LIST_LIMIT })
    process.stdout.write(`# Keystone (list_limit ${LIST_LIMIT}) started in ${keystone.startSeconds.toFixed(1)} s\n`)
  })
  after(async () => { await keystone?.stop() })

  /** A reconciliation user with admin on its own project, as CloudKitty's user has on `service`. */
  async function reconcileUser (name: string): Promise<void> {
    await keystone.createUser({ name, password: `${name}-secret`, project: `${name}-service` }, 'admin')
    await waitPastSecond()
  }

  for (const engine of testEngines()) {
    it(`${engine}: reports deleted, disabled and new projects, deactivates, registers, and then has nothing to report`, async (t: TestContext) => {
      const user = `ck-${engine}`
      await reconcileUser(user)
      const p = async (name: string, rated = true) => {
        const id = await keystone.createProject(`${engine}-${name}`)
        if (rated) await keystone.grantRole(user, id, 'rating')
        return id
      }
      const kept = await p('kept')
      const disabled = await p('disabled')
      const deleted = await p('deleted')
      const fresh = await p('new')
      const freshDisabled = await p('new-disabled')
      const unrated = await p('unrated', false)
      const { app, database } = await buildTestApp(t, { engine, env: fetcherEnv(keystone, user), clock: () => new Date(NOW) })
      for (const body of [
        { scope_id: kept }, { scope_id: disabled }, { scope_id: deleted, collector: 'prometheus' },
        // Not a project id: skipped, whatever it names.
        { scope_id: 'default', scope_key: 'domain_id' },
        // Already inactive: nothing to do, not reported.
        { scope_id: 'gone-long-ago', active: false },
      ]) assert.equal((await call(app, 'POST', '/v2/scope', body)).status, 200)
      await keystone.setProjectEnabled(disabled, false)
      await keystone.setProjectEnabled(freshDisabled, false)
      await keystone.deleteProject(deleted)

      const before = await dumpStates(database)
      const eventsBefore = (await call(app, 'GET', '/v2/scope/events')).body.results.length
      const dry = await call(app, 'POST', '/v2/scope/reconcile', {})
      assert.equal(dry.status, 200, dry.text)
      assert.equal(dry.body.dry_run, true)
      assert.deepEqual(dry.body.deleted.results.map((s: any) => [s.scope_id, s.collector, s.active]), [[deleted, 'prometheus', true]])
      assert.equal(dry.body.deleted.count, 1)
      assert.deepEqual(dry.body.disabled.results.map((s: any) => [s.scope_id, s.project_name, s.domain_id]), [[disabled, `${engine}-disabled`, 'default']])
      assert.deepEqual(dry.body.new, { count: 1, results: [{ project_id: fresh, project_name: `${engine}-new`, domain_id: 'default' }] })
      assert.equal(dry.body.scopes_compared, 4)
      assert.equal(dry.body.scopes_skipped, 1)
      assert.equal(dry.body.projects_rated, 4)
      assert.ok(dry.body.projects_total > LIST_LIMIT * 3, `every project, past list_limit: ${dry.body.projects_total}`)
      assert.equal(dry.body.deactivated, 0)
      assert.deepEqual(dry.body.registered, { count: 0, results: [] })
      // A dry run writes nothing, even when it names the changes.
      assert.equal((await call(app, 'POST', '/v2/scope/reconcile', { deactivate_missing: true, register_new: true })).status, 200)
      assert.deepEqual(await dumpStates(database), before)
      assert.equal((await call(app, 'GET', '/v2/scope/events')).body.results.length, eventsBefore)

      const deactivation = await call(app, 'POST', '/v2/scope/reconcile', { dry_run: false, deactivate_missing: true })
      assert.equal(deactivation.status, 200, deactivation.text)
      assert.equal(deactivation.body.deactivated, 2)
      assert.equal(deactivation.body.registered.count, 0)
      const states = (await call(app, 'GET', '/v2/scope?limit=100')).body.results
      const active = Object.fromEntries(states.map((s: any) => [s.scope_id, s.active]))
      assert.deepEqual(active, { [kept]: true, [disabled]: false, [deleted]: false, default: true, 'gone-long-ago': false })
      const deactivated = [...await events(app, 'deactivated', deleted), ...await events(app, 'deactivated', disabled)]
      assert.deepEqual(deactivated.map((e) => e.scope_id), [deleted, disabled])
      assert.deepEqual(await events(app, 'deactivated', kept), [])
      assert.ok(deactivated.every((e) => e.reason === 'reconcile'), JSON.stringify(deactivated))

      const registration = await call(app, 'POST', '/v2/scope/reconcile', { dry_run: false, register_new: true, inactive: true })
      assert.equal(registration.status, 200, registration.text)
      assert.deepEqual(registration.body.registered.results, [{
        scope_id: fresh, scope_key: 'project_id', fetcher: 'keystone', collector: 'gnocchi',
        state: '2026-12-01T00:00:00+00:00', last_processed_timestamp: '2026-12-01T00:00:00+00:00',
        active: false, scope_activation_toggle_date: '2026-12-04T10:20:30+00:00',
      }])
      assert.deepEqual((await call(app, 'GET', `/v2/scope?scope_id=${fresh}`)).body.results, registration.body.registered.results)
      const created = await events(app, 'created', fresh)
      assert.equal(created.length, 1)
      assert.equal(created[0].reason, 'reconcile')
      assert.equal(created[0].details.active, false)

      // Idempotent: everything done, nothing to report, nothing written.
      const again = await call(app, 'POST', '/v2/scope/reconcile', { dry_run: false, deactivate_missing: true, register_new: true })
      assert.equal(again.status, 200)
      assert.deepEqual([again.body.deleted.count, again.body.disabled.count, again.body.new.count, again.body.deactivated, again.body.registered.count], [0, 0, 0, 0, 0])
      assert.equal(unrated.length > 0, true)
    })

    it(`${engine}: skips a new scope that someone else created meanwhile, and writes the others`, async (t) => {
      const { database } = await buildTestApp(t, { engine })
      const row = (scopeId: string) => ({
        scopeId, scopeKey: 'project_id', fetcher: 'keystone', collector: 'gnocchi',
        lastProcessedTimestamp: new Date('2026-12-01T00:00:00Z'), active: true, activationToggleDate: new Date('2026-12-04T10:00:00Z'),
      })
      await inTransaction(database, async (trx) => await insertNewScopes(trx, [row('taken')]))
      const written = await inTransaction(database, async (trx) => await insertNewScopes(trx, [row('a'), row('taken'), row('b')]))
      assert.deepEqual(written.map((s) => s.scopeId), ['a', 'b'])
      const ids = (await dumpStates(database) as Array<{ identifier: string }>).map((r) => r.identifier)
      assert.deepEqual(ids, ['taken', 'a', 'b'])
    })
  }

  it('reads with [keystone_authtoken] when [fetcher_keystone] has no auth_type, and checks scope:reconcile', async (t) => {
    const project = await keystone.createProject('authtoken-rated')
    await keystone.grantRole(keystone.service.name, project, 'rating')
    const { app } = await buildTestApp(t, { env: keystone.authEnv() })
    const send = async (token: string) => await app.inject({ method: 'POST', url: '/v2/scope/reconcile', headers: { 'x-auth-token': token, 'content-type': 'application/json' }, payload: '{}' })
    const res = await send(await keystone.token(keystone.admin))
    assert.equal(res.statusCode, 200, res.body)
    assert.deepEqual(res.json().new.results.map((p: any) => p.project_id), [project])
    const member = await send(await keystone.token(keystone.member))
    assert.equal(member.statusCode, 403)
  })

  it('counts every project as rated with ignore_rating_role, in every domain, past list_limit in each', async (t) => {
    await reconcileUser('ck-ignore')
    const unrated = await keystone.createProject('ignore-unrated')
    // More than list_limit projects of each flag in a second domain: its
    // enabled=true and enabled=false lists are both cut, so these are found
    // through the domain's subtree and read one by one.
    const domain = await keystone.createDomain('reconcile-other')
    const enabled = []
    const disabled = []
    for (let i = 0; i <= LIST_LIMIT; i++) {
      enabled.push(await keystone.createProject(`other-enabled-${i}`, { domainId: domain }))
      disabled.push(await keystone.createProject(`other-disabled-${i}`, { domainId: domain, enabled: false }))
    }
    const { app } = await buildTestApp(t, { env: fetcherEnv(keystone, 'ck-ignore', { SCOPEKEEPER_FETCHER_KEYSTONE_IGNORE_RATING_ROLE: 'true' }) })
    for (const id of disabled) assert.equal((await call(app, 'POST', '/v2/scope', { scope_id: id })).status, 200)
    const res = await call(app, 'POST', '/v2/scope/reconcile', {})
    assert.equal(res.status, 200, res.text)
    assert.equal(res.body.projects_rated, res.body.projects_total)
    const fresh = new Set(res.body.new.results.map((p: any) => p.project_id))
    for (const id of [unrated, ...enabled]) assert.ok(fresh.has(id), `${id} is new`)
    assert.ok(disabled.every((id) => !fresh.has(id)), 'a disabled project is never new')
    assert.deepEqual(res.body.disabled.results.map((s: any) => [s.scope_id, s.domain_id]), disabled.map((id) => [id, domain]))
    // Every project once: the partial lists overlap.
    assert.equal(fresh.size, res.body.new.count)
    // ignore_disabled_tenants: CloudKitty rates no disabled project; the new ones are the same.
    const { app: skipping } = await buildTestApp(t, {
      env: fetcherEnv(keystone, 'ck-ignore', { SCOPEKEEPER_FETCHER_KEYSTONE_IGNORE_RATING_ROLE: 'true', SCOPEKEEPER_FETCHER_KEYSTONE_IGNORE_DISABLED_TENANTS: 'true' }),
    })
    const enabledOnly = await call(skipping, 'POST', '/v2/scope/reconcile', {})
    assert.ok(enabledOnly.body.projects_rated <= res.body.projects_rated - disabled.length, `${enabledOnly.body.projects_rated} of ${res.body.projects_rated}`)
    assert.deepEqual(enabledOnly.body.new, res.body.new)
  })

  it('answers 503 with Retry-After when Keystone cannot be reached, and writes nothing', async (t) => {
    await reconcileUser('ck-down')
    const { app, database } = await buildTestApp(t, {
      env: fetcherEnv(keystone, 'ck-down', { SCOPEKEEPER_FETCHER_KEYSTONE_AUTH_URL: `http://127.0.0.1:${await freePort()}/v3` }),
    })
    assert.equal((await call(app, 'POST', '/v2/scope', { scope_id: 'some-project' })).status, 200)
    const before = await dumpStates(database)
    const res = await call(app, 'POST', '/v2/scope/reconcile', { dry_run: false, deactivate_missing: true })
    assert.equal(res.status, 503)
    assert.equal(res.headers['retry-after'], '5')
    assert.deepEqual(Object.keys(res.body), ['message'])
    assert.match(res.body.message, /Keystone/)
    assert.deepEqual(await dumpStates(database), before)
  })

  it('answers 502 when Keystone refuses the credentials, without the password', async (t) => {
    await reconcileUser('ck-refused')
    const { app } = await buildTestApp(t, { env: fetcherEnv(keystone, 'ck-refused', { SCOPEKEEPER_FETCHER_KEYSTONE_PASSWORD: 'not-the-password' }) })
    const res = await call(app, 'POST', '/v2/scope/reconcile', {})
    assert.equal(res.status, 502, res.text)
    assert.match(res.body.message, /\[fetcher_keystone\]/)
    assert.doesNotMatch(res.text, /not-the-password/)
  })

  it('answers 502 when the user may not list projects', async (t) => {
    // alice has only the member role on demo.
    const { app } = await buildTestApp(t, {
      env: fetcherEnv(keystone, keystone.member.name, { SCOPEKEEPER_FETCHER_KEYSTONE_PASSWORD: keystone.member.password, SCOPEKEEPER_FETCHER_KEYSTONE_PROJECT_NAME: keystone.member.project }),
    })
    const res = await call(app, 'POST', '/v2/scope/reconcile', {})
    assert.equal(res.status, 502, res.text)
    assert.match(res.body.message, /admin role/)
  })
})

describe('POST /v2/scope/reconcile without Keystone', () => {
  it('answers 503 naming the settings when no Keystone credentials are configured', async (t) => {
    const { app } = await buildTestApp(t)
    const res = await call(app, 'POST', '/v2/scope/reconcile', {})
    assert.equal(res.status, 503)
    assert.match(res.body.message, /\[fetcher_keystone\]/)
  })

  it('refuses inactive without register_new, and unknown fields, naming them', async (t) => {
    const { app } = await buildTestApp(t)
    const inactive = await call(app, 'POST', '/v2/scope/reconcile', { inactive: true })
    assert.equal(inactive.status, 400)
    assert.match(inactive.body.message, /inactive/)
    const unknown = await call(app, 'POST', '/v2/scope/reconcile', { deactivate: true })
    assert.equal(unknown.status, 400)
    assert.match(unknown.body.message, /'deactivate'/)
    const typed = await call(app, 'POST', '/v2/scope/reconcile', { dry_run: 'no' })
    assert.equal(typed.status, 400)
    assert.match(typed.body.message, /dry_run/)
  })
})
