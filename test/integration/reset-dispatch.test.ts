import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { pino } from 'pino'
import { OsloMessagingCaster, uniqueIdFor } from '../../src/reset/oslo-messaging-caster.ts'
import { osloMessagingDispatcher } from '../../src/reset/oslo-messaging-dispatcher.ts'
import { ResetWorker } from '../../src/reset/reset-worker.ts'
import { buildTestApp, call, createScopes, dumpJobs } from '../helpers/build-test-app.ts'
import { deferCleanup } from '../helpers/cleanup.ts'
import { innerMessage, listen, requireRabbit, testExchange, TRANSPORT_URL } from '../helpers/rabbitmq.ts'

describe('resets cast to CloudKitty processors over RabbitMQ ([reset] dispatcher = oslo_messaging)', () => {
  it('casts each batch as reset_state once the broker confirms it, and leaves the timestamps to the processor', async (t) => {
    if (!await requireRabbit(t)) return
    const exchange = testExchange()
    const consumer = await listen(t, exchange)
    const { app, database } = await buildTestApp(t)
    await createScopes(app, ['a', 'b', 'c', 'd', 'e'].map((id) => ({ scope_id: id, last_processed_timestamp: '2020-01-01' })))
    const put = await call(app, 'PUT', '/v2/scope', { all_scopes: true, state: '2019-07-16T08:00:00Z' })
    assert.equal(put.status, 202)
    const caster = new OsloMessagingCaster({ transportUrl: TRANSPORT_URL, exchange })
    deferCleanup(t, () => caster.close())
    const worker = new ResetWorker({ store: database, logger: pino({ level: 'silent' }), dispatcher: osloMessagingDispatcher(caster) }, { batchSize: 2 })
    await worker.drain()

    const messages = await consumer.take(3)
    assert.equal(consumer.received.length, 3)
    const inner = messages.map(innerMessage)
    assert.deepEqual(inner.map((m: any) => m.args.res_data.scopes.map((s: any) => s.scope_id)), [['a', 'b'], ['c', 'd'], ['e']])
    for (const m of inner as any[]) {
      assert.equal(m.method, 'reset_state')
      assert.equal(m.version, '1.0')
      assert.equal(m.namespace, undefined)
      assert.equal(m.args.res_data.last_processed_timestamp, '2019-07-16T08:00:00+00:00')
      assert.deepEqual(Object.keys(m.args.res_data.scopes[0]).sort(), ['collector', 'fetcher', 'scope_id', 'scope_key'])
      assert.equal(m._context_request_id, put.headers['x-openstack-request-id'])
    }
    assert.deepEqual(inner.map((m: any) => m._unique_id), [uniqueIdFor(1, 1), uniqueIdFor(1, 3), uniqueIdFor(1, 5)])
    for (const message of messages) {
      assert.equal(message.properties.contentType, 'application/json')
      assert.equal(message.properties.contentEncoding, 'utf-8')
      assert.equal(message.properties.deliveryMode, 2)
      assert.equal(message.fields.routingKey, 'cloudkitty')
    }
    const [job] = await dumpJobs(database) as any[]
    assert.deepEqual([job.status, job.scopes_applied], ['done', 5])
    const listed = (await call(app, 'GET', '/v2/scope')).body.results
    assert.ok(listed.every((r: any) => r.last_processed_timestamp === '2020-01-01T00:00:00+00:00'), 'the processor, not scopekeeper, moves the timestamps')
  })

  it('keeps the job pending while the broker is unreachable, and casts it once it is back', async (t) => {
    if (!await requireRabbit(t)) return
    const exchange = testExchange()
    const { app, database } = await buildTestApp(t)
    await createScopes(app, [{ scope_id: 'a' }])
    await call(app, 'PUT', '/v2/scope', { scope_id: 'a', state: '2019-01-01' })
    const logger = pino({ level: 'silent' })
    const down = new OsloMessagingCaster({ transportUrl: 'rabbit://guest:guest@127.0.0.1:1/', exchange, connectTimeoutMs: 1000 })
    deferCleanup(t, () => down.close())
    const unlucky = new ResetWorker({ store: database, logger, dispatcher: osloMessagingDispatcher(down) }, { retryBaseMs: 1, retryMaxMs: 1 })
    assert.equal(await unlucky.runOnce(), true)
    const [pending] = await dumpJobs(database) as any[]
    assert.deepEqual([pending.status, pending.attempts, pending.scopes_applied], ['pending', 1, 0])
    assert.match(pending.last_error, /RabbitMQ/)

    const consumer = await listen(t, exchange)
    const up = new OsloMessagingCaster({ transportUrl: TRANSPORT_URL, exchange })
    deferCleanup(t, () => up.close())
    const lucky = new ResetWorker({ store: database, logger, dispatcher: osloMessagingDispatcher(up) })
    await new Promise((resolve) => setTimeout(resolve, 5))
    await lucky.drain()
    assert.equal((await consumer.take(1)).length, 1)
    assert.equal(((await dumpJobs(database)) as any[])[0].status, 'done')
  })
})
