// Who may read /metrics (issue 12 §7): on the API port, a Keystone token
// that passes scopekeeper:get_metrics (an admin by default, a policy file
// may say otherwise); on the [metrics] port, anyone who can reach it, with
// no token. Against a real Keystone (test/helpers/keystone-server.ts);
// skipped loudly without one, failed under CI=true.
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, it, type TestContext } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { pino } from 'pino'
import { loadConfig } from '../../src/config/load-config.ts'
import { startServer } from '../../src/server.ts'
import { buildTestApp, tempDir } from '../helpers/build-test-app.ts'
import { deferCleanup } from '../helpers/cleanup.ts'
import { keystoneSkipReason, startKeystone, waitPastSecond, type KeystoneServer, type KeystoneUser } from '../helpers/keystone-server.ts'
import { freePort } from '../helpers/free-port.ts'

const FORBIDDEN = 'You are not authorized to perform this action'
const MONITORING: KeystoneUser = { name: 'prometheus', password: 'prometheus-secret', project: 'monitoring' }

async function scrape (app: FastifyInstance, token?: string) {
  const res = await app.inject({ method: 'GET', url: '/metrics', headers: token === undefined ? {} : { 'x-auth-token': token } })
  return { status: res.statusCode, body: res.body, headers: res.headers }
}


const skip = keystoneSkipReason()

describe('access to /metrics, against a real Keystone', { skip }, () => {
  let keystone: KeystoneServer
  let tokens: { admin: string, member: string, monitoring: string }

  before(async () => {
    keystone = await startKeystone()
    const admin = await keystone.token(keystone.admin)
    await keystone.api('POST', '/roles', { token: admin, body: { role: { name: 'monitoring' } } })
    await keystone.createUser(MONITORING, 'monitoring')
    // A token issued in the second of a role assignment may lack the role.
    await waitPastSecond()
    tokens = { admin: await keystone.token(keystone.admin), member: await keystone.token(keystone.member), monitoring: await keystone.token(MONITORING) }
  })
  after(async () => { await keystone?.stop() })

  function policyFile (t: TestContext, text: string): string {
    const file = join(tempDir(t), 'policy.yaml')
    writeFileSync(file, text)
    return file
  }

  async function keystoneApp (t: TestContext, env: Record<string, string> = {}) {
    return (await buildTestApp(t, { env: { ...keystone.authEnv(), ...env } })).app
  }

  it('answers 401 without a token, 403 to a member and 200 to an admin on the API port', async (t) => {
    const app = await keystoneApp(t)
    const anonymous = await scrape(app)
    assert.equal(anonymous.status, 401)
    assert.equal(typeof JSON.parse(anonymous.body).message, 'string')
    assert.ok(anonymous.headers['www-authenticate'] !== undefined)
    const member = await scrape(app, tokens.member)
    assert.equal(member.status, 403)
    assert.deepEqual(JSON.parse(member.body), { message: FORBIDDEN })
    const monitoring = await scrape(app, tokens.monitoring)
    assert.equal(monitoring.status, 403, 'the monitoring role is nothing without a policy file saying so')
    const admin = await scrape(app, tokens.admin)
    assert.equal(admin.status, 200, admin.body)
    assert.match(String(admin.headers['content-type']), /^text\/plain/)
    assert.match(admin.body, /^scopekeeper_http_requests_total\{route="\/metrics",method="GET",status="403"\} 2$/m)
  })

  it('lets through whom a policy file names in scopekeeper:get_metrics', async (t) => {
    const app = await keystoneApp(t, {
      SCOPEKEEPER_OSLO_POLICY_POLICY_FILE: policyFile(t, '"scopekeeper:get_metrics": "role:admin or role:monitoring"\n'),
    })
    assert.equal((await scrape(app, tokens.monitoring)).status, 200)
    assert.equal((await scrape(app, tokens.admin)).status, 200)
    assert.equal((await scrape(app, tokens.member)).status, 403)
    assert.equal((await scrape(app)).status, 401)
  })

  it('checks scopekeeper:get_metrics against no scope: an owner rule lets only admins through', async (t) => {
    const app = await keystoneApp(t, {
      SCOPEKEEPER_OSLO_POLICY_POLICY_FILE: policyFile(t, '"scopekeeper:get_metrics": "rule:admin_or_owner"\n'),
    })
    assert.equal((await scrape(app, tokens.member)).status, 403)
    const named = await app.inject({ method: 'GET', url: `/metrics?project_id=${await keystone.projectId('demo')}`, headers: { 'x-auth-token': tokens.member } })
    assert.equal(named.statusCode, 403, 'a query string names no scope here')
    assert.equal((await scrape(app, tokens.admin)).status, 200)
  })

  it('serves the same registry without a token on the [metrics] port, and nothing else there', async (t) => {
    const dir = tempDir(t)
    const metricsPort = await freePort()
    const config = loadConfig({
      env: {
        ...keystone.authEnv(),
        SCOPEKEEPER_LOG_LEVEL: 'silent',
        SCOPEKEEPER_DATABASE_URL: `sqlite:///${join(dir, 'test.sqlite')}`,
        SCOPEKEEPER_API_PORT: '0',
        SCOPEKEEPER_ORCHESTRATOR_COORDINATION_URL: `file://${join(dir, 'locks')}`,
        SCOPEKEEPER_RESET_WORKER: 'false',
        SCOPEKEEPER_METRICS_PORT: String(metricsPort),
      },
    })
    const running = await startServer(config, pino({ level: 'silent' }))
    let closed = false
    deferCleanup(t, async () => { if (!closed) await running.close() })
    assert.equal(running.metricsAddress, `http://127.0.0.1:${metricsPort}`)
    const metricsUrl = running.metricsAddress

    assert.equal((await fetch(`${running.address}/metrics`)).status, 401, 'the API port still wants a token')
    const listed = await fetch(`${running.address}/v2/scope`, { headers: { 'x-auth-token': tokens.admin } })
    assert.equal(listed.status, 404, await listed.text())

    const res = await fetch(`${metricsUrl}/metrics`)
    assert.equal(res.status, 200)
    assert.match(String(res.headers.get('content-type')), /^text\/plain/)
    assert.match(String(res.headers.get('x-openstack-request-id')), /^req-[0-9a-f-]{36}$/)
    const text = await res.text()
    // Counted by the API app, read on the other port: one registry.
    assert.match(text, /^scopekeeper_http_requests_total\{route="\/v2\/scope",method="GET",status="404"\} 1$/m)
    assert.match(text, /^scopekeeper_http_requests_total\{route="\/metrics",method="GET",status="401"\} 1$/m)
    assert.match(text, /^scopekeeper_scopes\{active="true"\} 0$/m)

    for (const [method, path] of [['GET', '/v2/scope'], ['GET', '/'], ['GET', '/healthz'], ['POST', '/metrics'], ['PUT', '/v2/scope']]) {
      const other = await fetch(`${metricsUrl}${path}`, { method })
      assert.equal(other.status, 404, `${method} ${path}`)
      assert.deepEqual(await other.json(), { message: `The resource ${path} could not be found.` }, `${method} ${path}`)
    }

    closed = true
    await running.close()
    await assert.rejects(fetch(`${metricsUrl}/metrics`), 'close() closes the metrics port too')
  })
})
