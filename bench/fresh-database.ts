/**
 * An empty database of its own for one benchmark run on `engine` (sqlite,
 * postgres, anything else: mariadb), on the test servers of
 * TEST_POSTGRES_URL / TEST_MARIADB_URL; `drop` removes it. SQLite's file is
 * in a new temporary directory named after `dirPrefix`.
 */
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createConnection } from 'mysql2/promise'
import pg from 'pg'

const PG_URL = process.env.TEST_POSTGRES_URL ?? 'postgresql://postgres@127.0.0.1:5432/test'
const MARIADB_URL = process.env.TEST_MARIADB_URL ?? 'mysql://root@127.0.0.1:3306/test'

export async function freshDatabase (engine: string, dirPrefix = 'sk-bench-'): Promise<{ url: string, drop: () => Promise<void> }> {
  const name = `sk_bench_${randomBytes(4).toString('hex')}`
  if (engine === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), dirPrefix))
    return { url: `sqlite:///${join(dir, 'bench.sqlite')}`, drop: async () => { rmSync(dir, { recursive: true, force: true }) } }
  }
  if (engine === 'postgres') {
    const admin = new pg.Client({ connectionString: PG_URL })
    await admin.connect(); await admin.query(`CREATE DATABASE ${name}`); await admin.end()
    const url = new URL(PG_URL); url.pathname = `/${name}`
    return { url: url.toString(), drop: async () => { const c = new pg.Client({ connectionString: PG_URL }); await c.connect(); await c.query(`DROP DATABASE ${name} WITH (FORCE)`); await c.end() } }
  }
  const admin = await createConnection({ uri: MARIADB_URL })
  await admin.query(`CREATE DATABASE ${name}`); await admin.end()
  const url = new URL(MARIADB_URL); url.pathname = `/${name}`
  return { url: url.toString(), drop: async () => { const c = await createConnection({ uri: MARIADB_URL }); await c.query(`DROP DATABASE ${name}`); await c.end() } }
}
