import { mkdirSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import BetterSqlite3 from 'better-sqlite3'
import { CompiledQuery, Kysely, SqliteAdapter, SqliteDialect, type DatabaseConnection, type DialectAdapter, type Driver } from 'kysely'
import type { Database } from './database.ts'
import { SQLITE_TRAITS, type EngineTraits } from './engine-traits.ts'

/** An open database: the query builder, what its engine can do, and how to close it. */
export interface OpenDatabase {
  db: Kysely<Database>
  traits: EngineTraits
  /** A printable form of the URL, without credentials. */
  description: string
  close: () => Promise<void>
}

/** What a SQLite URL names: a file path, or an in-memory database. */
export function sqlitePathFromUrl (url: string): string {
  // SQLAlchemy's forms, as cloudkitty.conf writes them: sqlite:///relative,
  // sqlite:////absolute, and sqlite:// (or sqlite:///:memory:) for memory.
  const m = /^sqlite(?:\+\w+)?:\/\/(\/?)(.*)$/.exec(url)
  if (m === null) throw new Error(`Not a SQLite URL: ${url}`)
  const rest = m[2].replace(/\?.*$/, '')
  if (rest === '' || rest === ':memory:') return ':memory:'
  return m[1] === '/' ? rest : rest
}

// Kysely's SQLite driver opens transactions with a deferred BEGIN; a read
// followed by a write in WAL mode can then fail with SQLITE_BUSY when another
// process wrote meanwhile. BEGIN IMMEDIATE takes the write lock up front and
// waits for it under busy_timeout instead.
//
// The adapter also declares SQLite's DDL transactional (it is), so the
// migrator runs inside one BEGIN IMMEDIATE: Kysely has no migration lock on
// SQLite, and two processes starting at once would otherwise both migrate.
class TransactionalDdlSqliteAdapter extends SqliteAdapter {
  override get supportsTransactionalDdl (): boolean { return true }
}

class ImmediateSqliteDialect extends SqliteDialect {
  override createAdapter (): DialectAdapter {
    return new TransactionalDdlSqliteAdapter()
  }

  override createDriver (): Driver {
    const driver = super.createDriver()
    driver.beginTransaction = async (connection: DatabaseConnection) => {
      await connection.executeQuery(CompiledQuery.raw('begin immediate'))
    }
    return driver
  }
}

function openSqlite (url: string): OpenDatabase {
  const path = sqlitePathFromUrl(url)
  if (path !== ':memory:') mkdirSync(dirname(resolve(path)), { recursive: true })
  const sqlite = new BetterSqlite3(path)
  sqlite.pragma('journal_mode = WAL')
  sqlite.pragma('busy_timeout = 5000')
  const db = new Kysely<Database>({ dialect: new ImmediateSqliteDialect({ database: sqlite }) })
  return { db, traits: SQLITE_TRAITS, description: `sqlite:${path}`, close: async () => { await db.destroy() } }
}

/**
 * Opens the database a URL names. SQLite URLs follow SQLAlchemy
 * (`sqlite:///relative/path`, `sqlite:////absolute/path`); the file and its
 * folder are created when missing, and WAL mode is switched on.
 *
 * This is the only place that switches on the engine.
 */
export function openDatabase (url: string): OpenDatabase {
  if (/^sqlite(\+\w+)?:/.test(url)) return openSqlite(url)
  throw new Error(`Unsupported database URL scheme in '${url.replace(/\/\/[^@/]*@/, '//***@')}': only sqlite:// is supported so far`)
}
