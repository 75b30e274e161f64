import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import type { TestContext } from 'node:test'
import { connect, type ConsumeMessage, type Message } from 'amqplib'
import { deferCleanup } from './cleanup.ts'

/** The broker the suite uses, in amqplib's form; overridable by environment. */
export const TEST_AMQP_URL = process.env.TEST_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672/'
/** The same broker as an oslo.messaging transport_url. */
export const TRANSPORT_URL = TEST_AMQP_URL.replace(/^amqp:/, 'rabbit:')
export const BROKER = new URL(TEST_AMQP_URL)

let probed: Promise<string | undefined> | undefined

/**
 * Whether RabbitMQ answers: fails the test under CI=true and skips it,
 * loudly, otherwise. Returns false when skipped.
 */
export async function requireRabbit (t: TestContext): Promise<boolean> {
  probed ??= connect(TEST_AMQP_URL, { timeout: 3000 }).then(
    async (connection) => { await connection.close(); return undefined },
    (error: Error) => `RabbitMQ is unreachable (${BROKER.host}): ${error.message}`)
  const problem = await probed
  if (problem === undefined) return true
  if (process.env.CI === 'true') throw new Error(`${problem} (RabbitMQ is required when CI=true)`)
  process.stderr.write(`\n!!! SKIPPED: ${problem}\n`)
  t.skip(`SKIPPED: ${problem}`)
  return false
}

export function testExchange (): string {
  return `cloudkitty_test_${randomBytes(6).toString('hex')}`
}

/**
 * A processor's view of the control exchange: a queue bound to `exchange`
 * with `routingKey`, declaring the exchange with oslo.messaging's attributes.
 * The queue, the exchange and the connection go after the test.
 */
export async function listen (t: TestContext, exchange: string, routingKey = 'cloudkitty') {
  const connection = await connect(TEST_AMQP_URL)
  const channel = await connection.createChannel()
  await channel.assertExchange(exchange, 'topic', { durable: false, autoDelete: false })
  const { queue } = await channel.assertQueue('', { exclusive: true, autoDelete: true })
  await channel.bindQueue(queue, exchange, routingKey)
  const received: ConsumeMessage[] = []
  const waiters: Array<() => void> = []
  await channel.consume(queue, (message) => {
    if (message === null) return
    received.push(message)
    for (const wake of waiters.splice(0)) wake()
  }, { noAck: true })
  deferCleanup(t, async () => {
    await channel.deleteQueue(queue)
    await channel.deleteExchange(exchange)
    await connection.close()
  })
  return {
    received,
    /** Waits, with a deadline, until `count` messages have arrived. */
    async take (count: number): Promise<ConsumeMessage[]> {
      const deadline = Date.now() + 5000
      while (received.length < count) {
        const left = deadline - Date.now()
        assert.ok(left > 0, `expected ${count} message(s), got ${received.length}`)
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, left)
          waiters.push(() => { clearTimeout(timer); resolve() })
        })
      }
      return received.slice(0, count)
    },
  }
}

/** Deletes `exchange` after the test, for exchanges only the caster declared. */
export function deleteExchangeAfter (t: TestContext, exchange: string): void {
  deferCleanup(t, async () => {
    const connection = await connect(TEST_AMQP_URL)
    const channel = await connection.createChannel()
    await channel.deleteExchange(exchange)
    await connection.close()
  })
}

export function innerMessage (message: Message): Record<string, unknown> {
  const outer = JSON.parse(message.content.toString('utf8'))
  assert.deepEqual(Object.keys(outer), ['oslo.version', 'oslo.message'])
  assert.equal(outer['oslo.version'], '2.0')
  assert.equal(typeof outer['oslo.message'], 'string')
  return JSON.parse(outer['oslo.message'])
}

/** Rejects when `promise` has not settled within `ms`. */
