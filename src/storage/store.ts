import type { Kysely } from 'kysely'
import type { Database } from './database.ts'
import { isDeadlock } from './driver-errors.ts'
import type { EngineTraits } from './engine-traits.ts'

/**
 * What every storage function works on: the query builder and what its
 * engine can do, always together, so that a caller outside `storage/` hands
 * over one object and never needs to know the engine. An
 * {@link OpenDatabase} is one; {@link inTransaction} hands out another,
 * bound to its transaction.
 */
export interface Store {
  readonly db: Kysely<Database>
  readonly traits: EngineTraits
}

/** Attempts a transaction gets when it keeps being a deadlock's victim. */
const DEADLOCK_ATTEMPTS = 4

/**
 * Runs `work` in one transaction, committed when it resolves and rolled back
 * when it throws. A transaction rolled back as a deadlock's victim runs
 * again, a bounded number of times, so `work` must do nothing outside the
 * transaction that cannot be repeated.
 */
export async function inTransaction<T> (store: Store, work: (trx: Store) => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      // `traits` is read through the store: probing a server refines it in place.
      return await store.db.transaction().execute(async (db) => await work({ db, get traits () { return store.traits } }))
    } catch (error) {
      if (attempt >= DEADLOCK_ATTEMPTS || !isDeadlock(error)) throw error
      await new Promise((resolve) => setTimeout(resolve, attempt * 5 + Math.random() * 10))
    }
  }
}

/**
 * {@link inTransaction} for one batch of a reset job, whose loss in a crash
 * only repeats it (its resume point is lost with it): the commit does not
 * wait for the log to reach the disk where the engine allows that
 * ({@link EngineTraits.asyncCommit}: PostgreSQL, 23k → 39k scopes/s). The
 * job's ordinary final commit flushes every batch before the job reads done.
 */
export async function inBatchTransaction<T> (store: Store, work: (trx: Store) => Promise<T>): Promise<T> {
  return await inTransaction(store, async (trx) => {
    if (trx.traits.asyncCommit !== undefined) await trx.traits.asyncCommit.execute(trx.db)
    return await work(trx)
  })
}
