// scopekeeper started with nothing but a cloudkitty.conf shaped like the one
// kolla-ansible renders (ansible/roles/cloudkitty/templates/cloudkitty.conf.j2):
// no auth_strategy line, secrets holding # and ;, domain ids instead of
// names, memcache options, coordination_url = mysql://… on CloudKitty's own
// database, against a real MariaDB, a real Keystone and a real tooz client.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { processingLockName } from '../../src/storage/coordination/coordinator.ts'
import { KOLLA_SECRETS, startKollaDeployment } from '../helpers/kolla-deployment.ts'
import { keystoneSkipReason } from '../helpers/keystone-server.ts'
import { startServerProcess, waitFor } from '../helpers/server-process.ts'
import { requireTooz, startToozHolder } from '../helpers/tooz-holder.ts'

describe('a kolla-ansible cloudkitty.conf on MariaDB and Keystone', { skip: keystoneSkipReason() }, () => {
  it('asks for a token by default, serves an admin, and makes a reset wait for the tooz lock on coordination_url', async (t) => {
    if (!requireTooz(t)) return
    const deployment = await startKollaDeployment(t)
    if (deployment === undefined) return
    const { conf, keystone, coordinationUrl, logFile } = deployment
    // Nothing but the file: --port 0 only so that tests can run side by side.
    const server = await startServerProcess(t, ['--config-file', conf], { SCOPEKEEPER_RESET_POLL_INTERVAL: '0.05' }, { logFile })
    const request = async (method: string, path: string, token?: string, body?: unknown) => {
      const res = await fetch(`${server.url}${path}`, {
        method,
        headers: { ...(token === undefined ? {} : { 'x-auth-token': token }), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      })
      return { status: res.status, headers: res.headers, body: await res.json() as any }
    }

    const anonymous = await request('GET', '/v2/scope')
    assert.equal(anonymous.status, 401)
    assert.match(anonymous.headers.get('www-authenticate') ?? '', /^Keystone uri=/)
    const token = await keystone.token(keystone.admin)
    assert.equal((await request('GET', '/v2/scope', token)).status, 200)
    assert.equal((await request('GET', '/v2/scope', await keystone.token(keystone.member))).status, 403)

    for (const scopeId of ['busy', 'free']) {
      assert.equal((await request('POST', '/v2/scope', token, { scope_id: scopeId, last_processed_timestamp: '2020-01-01T00:00:00Z' })).status, 200)
    }
    // CloudKitty's processor rating 'busy': its lock, on the coordination_url, through tooz.
    const processor = await startToozHolder(t, coordinationUrl)
    const name = processingLockName('busy', { collector: 'gnocchi', fetcher: 'keystone', scopeKey: 'project_id' })
    assert.equal(await processor.hold(name), true)
    const put = await request('PUT', '/v2/scope', token, { scope_id: ['busy', 'free'], last_processed_timestamp: '2019-01-01T00:00:00Z' })
    assert.equal(put.status, 202)
    const job = new URL(put.headers.get('location')!).pathname
    await waitFor(async () => (await request('GET', job, token)).body.scopes_applied === 1, 20_000, 'free applied')
    const waiting = (await request('GET', job, token)).body
    assert.deepEqual([waiting.status, waiting.scopes_waiting], ['running', 1])
    const stamps = async () => Object.fromEntries((await request('GET', '/v2/scope?scope_id=busy,free', token)).body.results.map((r: any) => [r.scope_id, r.last_processed_timestamp]))
    assert.deepEqual(await stamps(), { busy: '2020-01-01T00:00:00+00:00', free: '2019-01-01T00:00:00+00:00' })

    assert.equal(await processor.release(name), true)
    await waitFor(async () => (await request('GET', job, token)).body.status === 'done', 20_000, 'the reset done')
    assert.deepEqual(await stamps(), { busy: '2019-01-01T00:00:00+00:00', free: '2019-01-01T00:00:00+00:00' })
    // No secret of the file reaches the log.
    for (const secret of KOLLA_SECRETS) {
      assert.ok(!server.lines.some((line) => line.includes(secret)), `${secret} appears in the log`)
    }
  })
})
