import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import type { TestContext } from 'node:test'
import { createConnection } from 'mysql2/promise'
import pg from 'pg'
import type { Engine } from '../../src/storage/engine-traits.ts'
import { deferCleanup } from './cleanup.ts'

/** The engine names of TEST_ENGINES: `mariadb` is our MySQL engine. */
export type TestEngine = 'sqlite' | 'postgres' | 'mariadb'

/** Servers the suite uses; overridable by environment. */
export const TEST_POSTGRES_URL = process.env.TEST_POSTGRES_URL ?? 'postgresql://postgres@127.0.0.1:5432/test'
export const TEST_MARIADB_URL = process.env.TEST_MARIADB_URL ?? 'mysql://root@127.0.0.1:3306/test'

/** The engines to test, from TEST_ENGINES (default `sqlite,postgres,mariadb`). */
export function testEngines (): TestEngine[] {
  const names = (process.env.TEST_ENGINES ?? 'sqlite,postgres,mariadb').split(',').map((s) => s.trim()).filter(Boolean)
  for (const name of names) if (!['sqlite', 'postgres', 'mariadb'].includes(name)) throw new Error(`Unknown engine in TEST_ENGINES: ${name}`)
  return names as TestEngine[]
}

/** The storage engine a test engine runs on. */
export function storageEngine (engine: TestEngine): Engine {
  return engine === 'mariadb' ? 'mysql' : engine
}

const reachable = new Map<TestEngine, Promise<string | undefined>>()

async function probe (engine: TestEngine): Promise<string | undefined> {
  try {
    if (engine === 'postgres') {
      const client = new pg.Client({ connectionString: TEST_POSTGRES_URL, connectionTimeoutMillis: 3000 })
      await client.connect()
      await client.end()
    } else if (engine === 'mariadb') {
      const connection = await createConnection({ uri: TEST_MARIADB_URL, connectTimeout: 3000 })
      await connection.end()
    }
    return undefined
  } catch (error) {
    return `${engine} is unreachable (${engine === 'postgres' ? TEST_POSTGRES_URL : TEST_MARIADB_URL}): ${(error as Error).message}`
  }
}

/**
 * Makes a fresh, empty database on `engine` for one test and drops it after:
 * a SQLite file in `dir`, or a database with a random suffix on the server.
 * An unreachable server fails the test under CI=true and skips it, loudly,
 * otherwise. Returns the URL, or undefined when skipped.
 */
export async function freshDatabaseUrl (t: TestContext, engine: TestEngine, dir: string): Promise<string | undefined> {
  if (engine === 'sqlite') return `sqlite:///${join(dir, 'test.sqlite')}`
  if (!reachable.has(engine)) reachable.set(engine, probe(engine))
  const problem = await reachable.get(engine)
  if (problem !== undefined) {
    if (process.env.CI === 'true') throw new Error(`${problem} (every engine is required when CI=true)`)
    process.stderr.write(`\n!!! SKIPPED on ${engine}: ${problem}\n`)
    t.skip(`SKIPPED: ${problem}`)
    return undefined
  }
  const name = `sk_test_${randomBytes(6).toString('hex')}`
  if (engine === 'postgres') {
    const admin = new pg.Client({ connectionString: TEST_POSTGRES_URL })
    await admin.connect()
    await admin.query(`CREATE DATABASE ${name}`)
    await admin.end()
    deferCleanup(t, async () => {
      const dropper = new pg.Client({ connectionString: TEST_POSTGRES_URL })
      await dropper.connect()
      await dropper.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
      await dropper.end()
    })
    const url = new URL(TEST_POSTGRES_URL)
    url.pathname = `/${name}`
    return url.toString()
  }
  const admin = await createConnection({ uri: TEST_MARIADB_URL })
  // The server's own default collation (case-insensitive), as a CloudKitty
  // deployment would have it; our tables bring their binary collation.
  await admin.query(`CREATE DATABASE ${name}`)
  await admin.end()
  deferCleanup(t, async () => {
    const dropper = await createConnection({ uri: TEST_MARIADB_URL })
    await dropper.query(`DROP DATABASE IF EXISTS ${name}`)
    await dropper.end()
  })
  const url = new URL(TEST_MARIADB_URL)
  url.pathname = `/${name}`
  return url.toString()
}
