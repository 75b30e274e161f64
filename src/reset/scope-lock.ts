import { createHash } from 'node:crypto'
import { sql, type Kysely } from 'kysely'
import type { Database } from '../storage/database.ts'
import type { EngineTraits } from '../storage/engine-traits.ts'

/**
 * The per-scope processing lock a reset holds while it touches a scope, so
 * it never interleaves with the rating of that scope. A rating processor
 * takes the same lock: on PostgreSQL the advisory lock {@link advisoryLockKey},
 * on MySQL/MariaDB the named lock {@link namedLockName}.
 */
export interface ScopeLock {
  /**
   * Runs `work` in one transaction while holding the lock of every scope id
   * in `scopeIds`; the locks are released once the transaction has ended.
   * Locks are taken in a fixed order, so two holders cannot deadlock.
   */
  withScopes: <T>(db: Kysely<Database>, scopeIds: string[], work: (trx: Kysely<Database>) => Promise<T>) => Promise<T>
}

function digest (scopeId: string): Buffer {
  return createHash('sha1').update(`cloudkitty-scope:${scopeId}`).digest()
}

/** The PostgreSQL advisory lock key of a scope: the first 8 bytes of SHA-1("cloudkitty-scope:" + scope_id), signed. */
export function advisoryLockKey (scopeId: string): bigint {
  return digest(scopeId).readBigInt64BE(0)
}

/** The MySQL/MariaDB GET_LOCK name of a scope (named locks are at most 64 characters). */
export function namedLockName (scopeId: string): string {
  return `ck_scope_${digest(scopeId).toString('hex')}`
}

/** An in-process lock, enough on SQLite where one process writes the file at a time. */
export class InProcessScopeLock implements ScopeLock {
  private readonly tails = new Map<string, Promise<void>>()

  async withScopes<T> (db: Kysely<Database>, scopeIds: string[], work: (trx: Kysely<Database>) => Promise<T>): Promise<T> {
    const release = await this.hold(scopeIds)
    try {
      return await db.transaction().execute(work)
    } finally {
      release()
    }
  }

  /** Takes the locks of `scopeIds` outside any transaction, as a processor in this process does; returns their release. */
  async hold (scopeIds: string[]): Promise<() => void> {
    const releases: Array<() => void> = []
    for (const id of [...new Set(scopeIds)].sort()) releases.push(await this.acquire(id))
    return () => { for (const release of releases.reverse()) release() }
  }

  private async acquire (id: string): Promise<() => void> {
    const previous = this.tails.get(id) ?? Promise.resolve()
    let release!: () => void
    const held = new Promise<void>((resolve) => { release = resolve })
    const tail = previous.then(() => held)
    this.tails.set(id, tail)
    await previous
    return () => {
      release()
      if (this.tails.get(id) === tail) this.tails.delete(id)
    }
  }
}

/** PostgreSQL: transaction-scoped advisory locks, released by the commit itself. */
export class AdvisoryScopeLock implements ScopeLock {
  async withScopes<T> (db: Kysely<Database>, scopeIds: string[], work: (trx: Kysely<Database>) => Promise<T>): Promise<T> {
    const keys = [...new Set(scopeIds.map(advisoryLockKey))].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)).map(String)
    return await db.transaction().execute(async (trx) => {
      // One round trip, in key order (WITH ORDINALITY keeps the sorted order).
      await sql`SELECT pg_advisory_xact_lock(k) FROM unnest(${keys}::bigint[]) WITH ORDINALITY AS t(k, n) ORDER BY n`.execute(trx)
      return await work(trx)
    })
  }
}

const LOCKS_PER_STATEMENT = 500

/** MySQL/MariaDB: session named locks on one pinned connection, released after the commit. */
export class NamedScopeLock implements ScopeLock {
  constructor (private readonly waitSeconds = 30) {}

  async withScopes<T> (db: Kysely<Database>, scopeIds: string[], work: (trx: Kysely<Database>) => Promise<T>): Promise<T> {
    const names = [...new Set(scopeIds.map(namedLockName))].sort()
    return await db.connection().execute(async (connection) => {
      try {
        // A batch's locks in one round trip (100 at a time cost twice the
        // CPU). CONCAT evaluates left to right, so the sorted order (no
        // deadlocks) holds, and answers one column: a select list of 500
        // columns sent V8 into minutes of compiling mysql2's row parser.
        for (let i = 0; i < names.length; i += LOCKS_PER_STATEMENT) {
          const chunk = names.slice(i, i + LOCKS_PER_STATEMENT)
          const calls = sql.join(chunk.map((name) => sql`GET_LOCK(${name}, ${this.waitSeconds})`))
          const { rows } = await sql<{ got: string | null }>`SELECT CONCAT(${calls}) AS got`.execute(connection)
          // One '1' per lock taken; a timeout (0) or an error (NULL) stops there.
          const got = String(rows[0]?.got ?? '')
          const missed = chunk.findIndex((_, j) => got[j] !== '1')
          if (missed >= 0) throw new Error(`Timed out waiting for the processing lock of a scope (${chunk[missed]})`)
        }
        return await connection.transaction().execute(work)
      } finally {
        await sql`SELECT RELEASE_ALL_LOCKS()`.execute(connection).catch(() => {})
      }
    })
  }
}

/** The scope lock that fits the engine. */
export function scopeLockFor (traits: EngineTraits): ScopeLock {
  switch (traits.scopeLock) {
    case 'advisory': return new AdvisoryScopeLock()
    case 'named': return new NamedScopeLock()
    case 'in-process': return new InProcessScopeLock()
  }
}
