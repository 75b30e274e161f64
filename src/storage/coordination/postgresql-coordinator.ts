import { createHash } from 'node:crypto'
import { createRequire } from 'node:module'
import type pg from 'pg'
import type { Coordinator, HeldLocks } from './coordinator.ts'
import { SessionPool } from './session-pool.ts'
import { ToozUrlError, type ToozUrl } from './tooz-url.ts'

// pg is loaded when a URL first names postgresql://.
const require = createRequire(import.meta.url)

/**
 * The advisory lock key tooz takes for `name`: `md5(name).digest()[0:2]`,
 * passed as the parameter sequence of `pg_advisory_lock(%s, %s)`, so the
 * two int4 keys are the digest's first two bytes, each 0..255
 * (`tooz/drivers/pgsql.py` `PostgresLock.__init__`). Only 65 536 keys
 * exist: two names can share one, and then exclude each other, as they do
 * in CloudKitty's processor.
 */
export function advisoryKeyOf (name: string): [number, number] {
  const digest = createHash('md5').update(name, 'ascii').digest()
  return [digest[0], digest[1]]
}

/**
 * Connection settings as tooz's `PostgresDriver.get_connection` hands them
 * to psycopg2: the `host`, `port` and `dbname` options win over the URL's
 * host, port and path; user and password exactly as written (tooz does not
 * percent-decode them). Without a host anywhere, libpq would use its Unix
 * socket and node-postgres uses PGHOST or localhost.
 */
export function postgresConnectionOptions (url: ToozUrl): pg.ClientConfig {
  const host = url.options.get('host') ?? url.hostname
  const portText = url.options.get('port')
  let port = url.port
  if (portText !== undefined) {
    if (!/^[0-9]+$/.test(portText.trim())) throw new ToozUrlError(`option port: invalid port '${portText}'`)
    port = Number(portText.trim())
  }
  const database = url.options.get('dbname') ?? url.path.slice(1)
  return {
    ...(host !== undefined ? { host } : {}),
    ...(port !== undefined ? { port } : {}),
    ...(database !== '' ? { database } : {}),
    ...(url.username !== undefined && url.username !== '' ? { user: url.username } : {}),
    ...(url.password !== undefined ? { password: url.password } : {}),
  }
}

/**
 * tooz's PostgreSQL driver: a lock is the session-level advisory lock
 * `pg_try_advisory_lock(k1, k2)` of {@link advisoryKeyOf}, on a connection of
 * its own, released by `pg_advisory_unlock` (`tooz/drivers/pgsql.py`
 * `PostgresLock.acquire`, non-blocking branch, and `release`). Advisory
 * locks stack within a session, so each holder has a session of its own;
 * a batch is one statement, and release is `pg_advisory_unlock_all()`
 * before the session goes back to the pool.
 */
export class PostgresqlCoordinator implements Coordinator {
  private readonly pool: SessionPool<pg.Client>

  constructor (private readonly options: pg.ClientConfig, readonly description: string) {
    const { Client } = require('pg') as typeof pg
    this.pool = new SessionPool(async () => {
      const client = new Client(this.options)
      // A session the server drops fails its next query; without a listener the error would be thrown.
      client.on('error', () => {})
      try {
        await client.connect()
      } catch (error) {
        await client.end().catch(() => {})
        throw error
      }
      return client
    }, async (client) => { await client.end() })
  }

  async tryLock (names: readonly string[]): Promise<HeldLocks> {
    const unique = [...new Set(names)]
    if (unique.length === 0) return { held: new Set(), release: async () => {} }
    const keyOf = new Map(unique.map((name) => [name, advisoryKeyOf(name)]))
    // Each key once: a second take in the same session would stack.
    const keys = [...new Map([...keyOf.values()].map((key) => [key[0] * 256 + key[1], key])).values()]
    const { session, result: answers } = await this.pool.withSession(async (client) => {
      const result = await client.query<{ r: string }>(
        `SELECT string_agg(CASE WHEN pg_try_advisory_lock(k1, k2) THEN '1' ELSE '0' END, '' ORDER BY n) AS r
           FROM unnest($1::int[], $2::int[]) WITH ORDINALITY AS t(k1, k2, n)`,
        [keys.map((key) => key[0]), keys.map((key) => key[1])])
      return result.rows[0].r
    })
    const takenKeys = new Set(keys.filter((_, i) => answers[i] === '1').map((key) => key[0] * 256 + key[1]))
    const held = new Set(unique.filter((name) => { const key = keyOf.get(name)!; return takenKeys.has(key[0] * 256 + key[1]) }))
    const release = this.pool.releaser(session, async () => {
      if (takenKeys.size > 0) await session.query('SELECT pg_advisory_unlock_all()')
    })
    return { held, release }
  }

  /** Ends every session; the server releases the locks they still held. */
  async close (): Promise<void> {
    await this.pool.close()
  }
}
