import assert from 'node:assert/strict'
import { createServer, connect as connectTcp, type AddressInfo, type Server, type Socket } from 'node:net'
import { describe, it, type TestContext } from 'node:test'
import { connect } from 'amqplib'
import {
  OsloMessagingCaster, resetStateMessage, uniqueIdFor,
  type CastContext, type CastScope,
} from '../../src/reset/oslo-messaging-caster.ts'
import { deferCleanup } from '../helpers/cleanup.ts'
import { BROKER, deleteExchangeAfter, innerMessage, listen, requireRabbit, TEST_AMQP_URL, testExchange, TRANSPORT_URL } from '../helpers/rabbitmq.ts'

const BROKER_PORT = Number(BROKER.port || 5672)

const SCOPES: CastScope[] = [
  { scopeId: 'p1', scopeKey: 'project_id', fetcher: 'keystone', collector: 'gnocchi' },
  { scopeId: 'p2', scopeKey: null, fetcher: null, collector: null },
]
const AT = new Date('2019-07-16T08:00:00.000Z')
const CONTEXT: CastContext = { requestId: 'req-6f1c1d2e-0f3a-4c55-9a0e-2b6d7e8f9a01', userId: 'u1', projectId: 'admin-project', roles: ['admin', 'reader'], isAdmin: true }

function newCaster (t: TestContext, options: Partial<ConstructorParameters<typeof OsloMessagingCaster>[0]> = {}): OsloMessagingCaster {
  const caster = new OsloMessagingCaster({ transportUrl: TRANSPORT_URL, ...options })
  deferCleanup(t, () => caster.close())
  return caster
}

async function within<T> (ms: number, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<never>((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`not settled within ${ms} ms`)), ms) })
  try {
    return await Promise.race([promise, deadline])
  } finally {
    clearTimeout(timer)
  }
}

/**
 * A TCP relay to the broker on a port of its own that can be stopped,
 * restarted on the same port, made to cut its open connections, or to stop
 * reading from the connections it has: a broker going away, coming back or
 * stalling, seen from the caster.
 */
async function tcpRelay (t: TestContext) {
  const sockets = new Set<Socket>()
  const clients = new Set<Socket>()
  let server: Server | undefined
  let port = 0
  let accepted = 0
  const track = (socket: Socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => socket.destroy())
  }
  const relay = {
    get port () { return port },
    /** How many connections the relay has accepted so far. */
    get accepted () { return accepted },
    async start (): Promise<void> {
      server = createServer((client) => {
        accepted++
        const upstream = connectTcp(BROKER_PORT, BROKER.hostname)
        track(client)
        track(upstream)
        clients.add(client)
        client.on('close', () => clients.delete(client))
        client.on('close', () => upstream.destroy())
        upstream.on('close', () => client.destroy())
        client.pipe(upstream).pipe(client)
      })
      await new Promise<void>((resolve, reject) => server!.once('error', reject).listen(port, '127.0.0.1', resolve))
      port = (server.address() as AddressInfo).port
    },
    /** Stops forwarding what the open connections send: nothing more reaches the broker. */
    stall (): void {
      for (const client of clients) {
        client.unpipe()
        client.pause()
      }
    },
    cut (): void {
      for (const socket of sockets) socket.destroy()
    },
    async stop (): Promise<void> {
      const closing = server === undefined ? Promise.resolve() : new Promise<void>((resolve) => server!.close(() => resolve()))
      server = undefined
      relay.cut()
      await closing
    },
  }
  await relay.start()
  deferCleanup(t, () => relay.stop())
  return relay
}

/** A port that accepts TCP connections and never says a word: a hung broker. */
async function silentPort (t: TestContext): Promise<number> {
  const sockets = new Set<Socket>()
  const server = createServer((socket) => { sockets.add(socket); socket.on('error', () => {}) })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  deferCleanup(t, () => new Promise<void>((resolve) => {
    for (const socket of sockets) socket.destroy()
    server.close(() => resolve())
  }))
  return (server.address() as AddressInfo).port
}

describe('resetStateMessage', () => {
  const cases: Array<{ name: string, scopes: CastScope[], at: Date, uniqueId: string, context: CastContext, message: Record<string, unknown> }> = [
    {
      name: 'two scopes, an admin context',
      scopes: SCOPES,
      at: AT,
      uniqueId: 'a'.repeat(32),
      context: CONTEXT,
      message: {
        method: 'reset_state',
        args: {
          res_data: {
            scopes: [
              { scope_id: 'p1', scope_key: 'project_id', fetcher: 'keystone', collector: 'gnocchi' },
              { scope_id: 'p2', scope_key: null, fetcher: null, collector: null },
            ],
            last_processed_timestamp: '2019-07-16T08:00:00+00:00',
          },
        },
        version: '1.0',
        _unique_id: 'a'.repeat(32),
        _context_user: 'u1',
        _context_user_id: 'u1',
        _context_project_id: 'admin-project',
        _context_system_scope: null,
        _context_project: 'admin-project',
        _context_domain: null,
        _context_user_domain: null,
        _context_project_domain: null,
        _context_is_admin: true,
        _context_read_only: false,
        _context_show_deleted: false,
        _context_auth_token: null,
        _context_request_id: CONTEXT.requestId,
        _context_global_request_id: null,
        _context_resource_uuid: null,
        _context_roles: ['admin', 'reader'],
        _context_user_identity: 'u1 admin-project - - -',
        _context_is_admin_project: true,
      },
    },
    {
      name: 'no scopes, milliseconds dropped, a bare context',
      scopes: [],
      at: new Date('2024-02-29T23:59:59.999Z'),
      uniqueId: '0123456789abcdef0123456789abcdef',
      context: { requestId: null },
      message: {
        method: 'reset_state',
        args: { res_data: { scopes: [], last_processed_timestamp: '2024-02-29T23:59:59+00:00' } },
        version: '1.0',
        _unique_id: '0123456789abcdef0123456789abcdef',
        _context_user: null,
        _context_user_id: null,
        _context_project_id: null,
        _context_system_scope: null,
        _context_project: null,
        _context_domain: null,
        _context_user_domain: null,
        _context_project_domain: null,
        _context_is_admin: false,
        _context_read_only: false,
        _context_show_deleted: false,
        _context_auth_token: null,
        _context_request_id: 'req-01234567-89ab-cdef-0123-456789abcdef',
        _context_global_request_id: null,
        _context_resource_uuid: null,
        _context_roles: [],
        _context_user_identity: '- - - - -',
        _context_is_admin_project: true,
      },
    },
    {
      name: 'a timestamp made in another offset is sent in UTC',
      scopes: [{ scopeId: 'é/ü"', scopeKey: 'k', fetcher: 'f', collector: 'c' }],
      at: new Date('2019-07-16T10:00:00+02:00'),
      uniqueId: 'f'.repeat(32),
      context: { requestId: 'req-x', userId: 'u', projectId: null, roles: ['reader'], isAdmin: false },
      message: {
        method: 'reset_state',
        args: { res_data: { scopes: [{ scope_id: 'é/ü"', scope_key: 'k', fetcher: 'f', collector: 'c' }], last_processed_timestamp: '2019-07-16T08:00:00+00:00' } },
        version: '1.0',
        _unique_id: 'f'.repeat(32),
        _context_user: 'u',
        _context_user_id: 'u',
        _context_project_id: null,
        _context_system_scope: null,
        _context_project: null,
        _context_domain: null,
        _context_user_domain: null,
        _context_project_domain: null,
        _context_is_admin: false,
        _context_read_only: false,
        _context_show_deleted: false,
        _context_auth_token: null,
        _context_request_id: 'req-x',
        _context_global_request_id: null,
        _context_resource_uuid: null,
        _context_roles: ['reader'],
        _context_user_identity: 'u - - - -',
        _context_is_admin_project: true,
      },
    },
  ]

  for (const c of cases) {
    it(`builds the oslo.messaging envelope CloudKitty's API sends: ${c.name}`, () => {
      const envelope = resetStateMessage(c.scopes, c.at, c.uniqueId, c.context)
      assert.deepEqual(Object.keys(envelope), ['oslo.version', 'oslo.message'])
      assert.equal(envelope['oslo.version'], '2.0')
      const message = JSON.parse(envelope['oslo.message'])
      assert.deepEqual(message, c.message)
      // oslo.messaging's order: the call, its version, the unique id, the context.
      assert.deepEqual(Object.keys(message), Object.keys(c.message))
      assert.equal('namespace' in message, false)
    })
  }

  it('returns the same envelope for the same arguments and leaves them untouched', () => {
    const scopes = structuredClone(SCOPES)
    const context = structuredClone(CONTEXT)
    const at = new Date(AT)
    const first = resetStateMessage(scopes, at, 'b'.repeat(32), context)
    const second = resetStateMessage(scopes, at, 'b'.repeat(32), context)
    assert.deepEqual(first, second)
    assert.deepEqual(scopes, SCOPES)
    assert.deepEqual(context, CONTEXT)
    assert.equal(at.getTime(), AT.getTime())
  })

  it('refuses a unique id that is not 32 lowercase hex characters, and an invalid timestamp', () => {
    for (const bad of ['', 'a'.repeat(31), 'a'.repeat(33), 'A'.repeat(32), 'g'.repeat(32), `${'a'.repeat(32)}\n`]) {
      assert.throws(() => resetStateMessage(SCOPES, AT, bad, CONTEXT), RangeError, JSON.stringify(bad))
    }
    assert.throws(() => resetStateMessage(SCOPES, new Date(Number.NaN), 'a'.repeat(32), CONTEXT), RangeError)
  })
})

describe('uniqueIdFor', () => {
  it('derives the same 32-hex id from the same job and chunk', () => {
    assert.match(uniqueIdFor(7, 1001), /^[0-9a-f]{32}$/)
    assert.equal(uniqueIdFor(7, 1001), uniqueIdFor(7, 1001))
    assert.equal(uniqueIdFor(0, 0), uniqueIdFor(0, 0))
  })

  it('derives distinct ids for distinct jobs and chunks', () => {
    const seen = new Set<string>()
    let count = 0
    for (let job = 0; job < 60; job++) {
      for (const chunk of [0, 1, 2, 12, 21, 123, 1000, 2 ** 31, Number.MAX_SAFE_INTEGER]) {
        seen.add(uniqueIdFor(job, chunk))
        count++
      }
    }
    assert.equal(seen.size, count)
    assert.notEqual(uniqueIdFor(1, 23), uniqueIdFor(12, 3))
    assert.notEqual(uniqueIdFor(1, 2), uniqueIdFor(2, 1))
  })

  it('refuses ids that are not integers', () => {
    assert.throws(() => uniqueIdFor(1.5, 1), RangeError)
    assert.throws(() => uniqueIdFor(1, Number.NaN), RangeError)
  })
})

describe('OsloMessagingCaster against RabbitMQ', () => {
  it('publishes reset_state to the control exchange with the topic as routing key, as oslo.messaging does', async (t) => {
    if (!await requireRabbit(t)) return
    const exchange = testExchange()
    const inbox = await listen(t, exchange)
    const caster = newCaster(t, { exchange })
    const uniqueId = uniqueIdFor(1, 1)
    await caster.castResetState(SCOPES, AT, uniqueId, CONTEXT)
    const [message] = await inbox.take(1)

    assert.equal(message.fields.exchange, exchange)
    assert.equal(message.fields.routingKey, 'cloudkitty')
    assert.equal(message.properties.contentType, 'application/json')
    assert.equal(message.properties.contentEncoding, 'utf-8')
    assert.equal(message.properties.deliveryMode, 2)
    const inner = innerMessage(message)
    assert.equal(inner.method, 'reset_state')
    assert.deepEqual(inner.args, {
      res_data: {
        scopes: [
          { scope_id: 'p1', scope_key: 'project_id', fetcher: 'keystone', collector: 'gnocchi' },
          { scope_id: 'p2', scope_key: null, fetcher: null, collector: null },
        ],
        last_processed_timestamp: '2019-07-16T08:00:00+00:00',
      },
    })
    assert.equal(inner.version, '1.0')
    assert.equal('namespace' in inner, false)
    assert.equal(inner._unique_id, uniqueId)
    assert.match(String(inner._unique_id), /^[0-9a-f]{32}$/)
    assert.equal(inner._context_request_id, CONTEXT.requestId)
    assert.equal(inner._context_global_request_id, null)
    assert.equal(inner._context_user_id, 'u1')
    assert.equal(inner._context_project_id, 'admin-project')
    assert.equal(inner._context_is_admin, true)
    assert.deepEqual(inner._context_roles, ['admin', 'reader'])
    assert.equal(inner._context_read_only, false)
    assert.equal(inner._context_show_deleted, false)
    assert.equal(inner._context_auth_token, null)
    const unexpected = Object.keys(inner).filter((key) => !['method', 'args', 'version', '_unique_id'].includes(key) && !key.startsWith('_context_'))
    assert.deepEqual(unexpected, [])
  })

  it('reaches one processor through the topic cloudkitty.<host>', async (t) => {
    if (!await requireRabbit(t)) return
    const exchange = testExchange()
    const one = await listen(t, exchange, 'cloudkitty.host-1')
    const all = await listen(t, exchange, 'cloudkitty')
    await newCaster(t, { exchange, topic: 'cloudkitty.host-1' }).castResetState(SCOPES, AT, uniqueIdFor(2, 1), CONTEXT)
    const [message] = await one.take(1)
    assert.equal(message.fields.routingKey, 'cloudkitty.host-1')
    await newCaster(t, { exchange }).castResetState(SCOPES, AT, uniqueIdFor(2, 2), CONTEXT)
    await all.take(1)
    assert.deepEqual(all.received.map((m) => innerMessage(m)._unique_id), [uniqueIdFor(2, 2)])
    assert.equal(one.received.length, 1)
  })

  it('declares the control exchange itself with oslo.messaging\'s attributes', async (t) => {
    if (!await requireRabbit(t)) return
    const exchange = testExchange()
    deleteExchangeAfter(t, exchange)
    await newCaster(t, { exchange }).castResetState(SCOPES, AT, uniqueIdFor(3, 1), CONTEXT)
    const connection = await connect(TEST_AMQP_URL)
    deferCleanup(t, () => connection.close())
    const channel = await connection.createChannel()
    // Redeclaring with other attributes would close the channel: these match.
    await channel.assertExchange(exchange, 'topic', { durable: false, autoDelete: false })
  })

  it('publishes to a control exchange a deployment declared durable', async (t) => {
    if (!await requireRabbit(t)) return
    const exchange = testExchange()
    const connection = await connect(TEST_AMQP_URL)
    const channel = await connection.createChannel()
    await channel.assertExchange(exchange, 'topic', { durable: true, autoDelete: false })
    const { queue } = await channel.assertQueue('', { exclusive: true })
    await channel.bindQueue(queue, exchange, 'cloudkitty')
    deferCleanup(t, async () => {
      await channel.deleteQueue(queue)
      await channel.deleteExchange(exchange)
      await connection.close()
    })
    await newCaster(t, { exchange }).castResetState(SCOPES, AT, uniqueIdFor(4, 1), CONTEXT)
    const message = await channel.get(queue, { noAck: true })
    assert.ok(message !== false)
    assert.equal(innerMessage(message)._unique_id, uniqueIdFor(4, 1))
  })

  it('carries the unique id given with each chunk', async (t) => {
    if (!await requireRabbit(t)) return
    const exchange = testExchange()
    const inbox = await listen(t, exchange)
    const caster = newCaster(t, { exchange })
    await caster.castResetState([SCOPES[0]], AT, uniqueIdFor(5, 1), CONTEXT)
    await caster.castResetState([SCOPES[1]], AT, uniqueIdFor(5, 2), CONTEXT)
    const inner = (await inbox.take(2)).map(innerMessage)
    assert.deepEqual(inner.map((m) => m._unique_id), [uniqueIdFor(5, 1), uniqueIdFor(5, 2)])
    assert.deepEqual(inner.map((m) => (m.args as any).res_data.scopes.map((s: any) => s.scope_id)), [['p1'], ['p2']])
  })

  it('shares one connection among concurrent casts', async (t) => {
    if (!await requireRabbit(t)) return
    const exchange = testExchange()
    const inbox = await listen(t, exchange)
    const relay = await tcpRelay(t)
    const caster = newCaster(t, { transportUrl: `rabbit://guest:guest@127.0.0.1:${relay.port}/`, exchange })
    const ids = Array.from({ length: 20 }, (_, i) => uniqueIdFor(6, i))
    await Promise.all(ids.map((id) => caster.castResetState(SCOPES, AT, id, CONTEXT)))
    const received = (await inbox.take(20)).map((m) => innerMessage(m)._unique_id)
    assert.deepEqual([...received].sort(), [...ids].sort())
    assert.equal(relay.accepted, 1)
  })

  it('accepts the default vhost written as nothing, / or %2F', async (t) => {
    if (!await requireRabbit(t)) return
    const exchange = testExchange()
    const inbox = await listen(t, exchange)
    const base = `rabbit://guest:guest@${BROKER.host}`
    for (const [i, transportUrl] of [base, `${base}/`, `${base}/%2F`].entries()) {
      await newCaster(t, { transportUrl, exchange }).castResetState(SCOPES, AT, uniqueIdFor(7, i), CONTEXT)
    }
    assert.equal((await inbox.take(3)).length, 3)
  })

  it('fails over to the next host of the transport URL', async (t) => {
    if (!await requireRabbit(t)) return
    const exchange = testExchange()
    const inbox = await listen(t, exchange)
    const transportUrl = `rabbit://guest:guest@127.0.0.1:1,guest:guest@${BROKER.host}/`
    await newCaster(t, { transportUrl, exchange }).castResetState(SCOPES, AT, uniqueIdFor(8, 1), CONTEXT)
    assert.equal(innerMessage((await inbox.take(1))[0])._unique_id, uniqueIdFor(8, 1))
  })

  it('rejects promptly when no broker listens, and stays usable', async (t) => {
    const caster = newCaster(t, { transportUrl: 'rabbit://guest:guest@127.0.0.1:1/', connectTimeoutMs: 1000 })
    for (const chunk of [1, 2]) {
      await within(1000 + 2000, assert.rejects(caster.castResetState(SCOPES, AT, uniqueIdFor(9, chunk), CONTEXT), /Could not connect to any RabbitMQ broker.*ECONNREFUSED/))
    }
  })

  it('rejects within the connect timeout when the broker never answers', async (t) => {
    const port = await silentPort(t)
    const caster = newCaster(t, { transportUrl: `rabbit://guest:guest@127.0.0.1:${port}/`, connectTimeoutMs: 300 })
    await within(300 + 2000, assert.rejects(caster.castResetState(SCOPES, AT, uniqueIdFor(10, 1), CONTEXT), /timed out|ETIMEDOUT/))
  })

  it('rejects a transport URL it cannot read', () => {
    for (const transportUrl of ['http://127.0.0.1:5672/', 'rabbit:/127.0.0.1', 'rabbit://guest:guest@127.0.0.1:x/']) {
      assert.throws(() => new OsloMessagingCaster({ transportUrl }), RangeError, transportUrl)
    }
  })

  it("names no part of a password that oslo.messaging's reading splits at a '/', '?' or ','", () => {
    for (const transportUrl of ['rabbit://openstack:QXpw/zz@127.0.0.1:5672/', 'rabbit://openstack:QX?pw@127.0.0.1:5672/', 'rabbit://openstack:QXpw,zz@127.0.0.1:5672/']) {
      assert.throws(() => new OsloMessagingCaster({ transportUrl }), (error: Error) => error instanceof RangeError && !error.message.includes('QX'), transportUrl)
    }
  })

  it('casts once the broker is back after a rejected cast', async (t) => {
    if (!await requireRabbit(t)) return
    const exchange = testExchange()
    const inbox = await listen(t, exchange)
    const relay = await tcpRelay(t)
    const caster = newCaster(t, { transportUrl: `rabbit://guest:guest@127.0.0.1:${relay.port}/`, exchange, connectTimeoutMs: 1000 })
    await relay.stop()
    await within(3000, assert.rejects(caster.castResetState(SCOPES, AT, uniqueIdFor(11, 1), CONTEXT)))
    await relay.start()
    await caster.castResetState(SCOPES, AT, uniqueIdFor(11, 1), CONTEXT)
    assert.equal(innerMessage((await inbox.take(1))[0])._unique_id, uniqueIdFor(11, 1))
  })

  it('survives the broker dropping its connection and reconnects on a later cast', async (t) => {
    if (!await requireRabbit(t)) return
    const exchange = testExchange()
    const inbox = await listen(t, exchange)
    const relay = await tcpRelay(t)
    const caster = newCaster(t, { transportUrl: `rabbit://guest:guest@127.0.0.1:${relay.port}/`, exchange, connectTimeoutMs: 1000 })
    await caster.castResetState(SCOPES, AT, uniqueIdFor(12, 1), CONTEXT)
    relay.cut()
    // The first cast after the cut may race the close notice and reject: a
    // worker then retries with the same unique id, as done here.
    const uniqueId = uniqueIdFor(12, 2)
    let failures = 0
    for (;;) {
      try {
        await within(5000, caster.castResetState(SCOPES, AT, uniqueId, CONTEXT))
        break
      } catch (error) {
        failures++
        assert.ok(failures < 2, `the retry failed too: ${(error as Error).message}`)
      }
    }
    const ids = (await inbox.take(2)).map((m) => innerMessage(m)._unique_id)
    assert.deepEqual(ids, [uniqueIdFor(12, 1), uniqueId])
  })

  it('rejects when the broker does not confirm in time, and casts on a fresh connection next', async (t) => {
    if (!await requireRabbit(t)) return
    const exchange = testExchange()
    const inbox = await listen(t, exchange)
    const relay = await tcpRelay(t)
    const caster = newCaster(t, { transportUrl: `rabbit://guest:guest@127.0.0.1:${relay.port}/`, exchange, confirmTimeoutMs: 300 })
    await caster.castResetState(SCOPES, AT, uniqueIdFor(14, 1), CONTEXT)
    relay.stall()
    await within(300 + 2000, assert.rejects(caster.castResetState(SCOPES, AT, uniqueIdFor(14, 2), CONTEXT), /did not confirm/))
    await caster.castResetState(SCOPES, AT, uniqueIdFor(14, 2), CONTEXT)
    const ids = (await inbox.take(2)).map((m) => innerMessage(m)._unique_id)
    assert.deepEqual(ids, [uniqueIdFor(14, 1), uniqueIdFor(14, 2)])
  })

  it('rejects every cast after close', async (t) => {
    if (!await requireRabbit(t)) return
    const exchange = testExchange()
    await listen(t, exchange)
    const caster = newCaster(t, { exchange })
    await caster.castResetState(SCOPES, AT, uniqueIdFor(13, 1), CONTEXT)
    await caster.close()
    await caster.close()
    await assert.rejects(caster.castResetState(SCOPES, AT, uniqueIdFor(13, 2), CONTEXT), /closed/)
  })
})
