import { createHash } from 'node:crypto'
import { CompiledQuery, sql, type ExpressionBuilder, type Kysely } from 'kysely'
import { ScopeKeeperError } from '../domain/errors.ts'
import type { ScopeFilter, ScopeState } from '../domain/scope-state.ts'
import type { LastProcessedCount } from '../domain/scope-lag.ts'
import { fromStored, toStoredBound, toStoredText } from '../domain/timestamps.ts'
import type { Database, StorageStateRow, StorageStateUpdate } from './database.ts'
import { booleanFromDb, booleanToDb, type EngineTraits } from './engine-traits.ts'
import { insertReturningId } from './insert-returning-id.ts'
import type { FlippedScope, MovedScope } from '../domain/scope-event.ts'
import { inTransaction, type Store } from './store.ts'
import { isUniqueViolation, translateUniqueViolation } from './unique-violation.ts'

const STATES = 'cloudkitty_storage_states'

/** Maps a row to the domain object; the only place `identifier` becomes `scopeId`. */
export function toScopeState (row: StorageStateRow): ScopeState {
  return {
    id: row.id,
    scopeId: row.identifier,
    scopeKey: row.scope_key,
    fetcher: row.fetcher,
    collector: row.collector,
    lastProcessedTimestamp: fromStored(row.last_processed_timestamp),
    active: booleanFromDb(row.active),
    activationToggleDate: fromStored(row.scope_activation_toggle_date),
  }
}

// The text filters in the order the WHERE clause lists them; the
// parameters of a cached find follow the same order.
function textTerms (filter: ScopeFilter) {
  return [
    ['identifier', filter.scopeIds], ['scope_key', filter.scopeKeys], ['fetcher', filter.fetchers], ['collector', filter.collectors],
  ] as const
}

/**
 * The WHERE clause of a {@link ScopeFilter}: each present field is an IN over
 * its values, fields are ANDed; an empty filter matches every row.
 */
export function matchesFilter (traits: EngineTraits, filter: ScopeFilter) {
  return (eb: ExpressionBuilder<Database, typeof STATES>) => {
    const terms = []
    for (const [column, values] of textTerms(filter)) {
      if (values === undefined) continue
      terms.push(eb(column, 'in', values))
      // MySQL/MariaDB: a CloudKitty-created table compares case-insensitively;
      // the IN above still uses the index, this keeps `AAAA` from matching `aaaa`.
      if (traits.mayCompareCaseInsensitively) terms.push(eb(sql<string>`binary ${sql.ref(column)}`, 'in', values))
    }
    if (filter.active !== undefined) terms.push(eb('active', 'in', filter.active.map((a) => booleanToDb(traits, a))))
    // Bounds on the column itself, compared with constants: an index on it serves them.
    for (const [operator, at] of timeTerms(filter)) terms.push(eb('last_processed_timestamp', operator, toStoredBound(at)))
    if (filter.exceptActiveLastProcessedBefore !== undefined) {
      terms.push(eb.or([
        eb('active', '=', booleanToDb(traits, false)),
        eb('last_processed_timestamp', '>=', toStoredBound(filter.exceptActiveLastProcessedBefore)),
      ]))
    }
    return eb.and(terms)
  }
}

// The bounds on last_processed_timestamp in the order the WHERE clause lists them.
function timeTerms (filter: ScopeFilter): Array<readonly ['<' | '>=', Date]> {
  const terms: Array<readonly ['<' | '>=', Date]> = []
  if (filter.lastProcessedBefore !== undefined) terms.push(['<', filter.lastProcessedBefore])
  if (filter.lastProcessedAtOrAfter !== undefined) terms.push(['>=', filter.lastProcessedAtOrAfter])
  return terms
}

interface FindOptions { limit: number, offset?: number, marker?: number, forUpdate?: boolean }

/**
 * Reads up to `limit` matching scope states in creation order (ascending id),
 * starting `offset` rows in, or just after the row `marker` when given.
 * `forUpdate` locks the rows until the caller's transaction ends (a no-op on
 * SQLite, whose write transactions are exclusive).
 */
export async function findScopes ({ db, traits }: Store, filter: ScopeFilter, options: FindOptions): Promise<ScopeState[]> {
  const rows = options.forUpdate === true ? await findQuery(db, traits, filter, options).execute() : await findCompiled(db, traits, filter, options)
  return rows.map(toScopeState)
}

function findQuery (db: Kysely<Database>, traits: EngineTraits, filter: ScopeFilter, { limit, offset = 0, marker, forUpdate = false }: FindOptions) {
  let query = db.selectFrom(STATES).selectAll().where(matchesFilter(traits, filter))
  if (marker !== undefined) query = query.where('id', '>', marker)
  // A scope_id filter matches a few rows through the unique index: sort
  // those. Ordered by the bare id, PostgreSQL without fresh statistics (a
  // table just loaded, or made sparser by its fillfactor) walked the primary
  // key through every row looking for a second match of a PATCH's LIMIT 2:
  // 5 PATCHes/s at 1 000 000 scopes instead of ~1 000.
  query = query.orderBy(filter.scopeIds === undefined ? sql.ref('id') : sql`${sql.ref('id')} + 0`).limit(limit)
  if (offset > 0) query = query.offset(offset)
  if (forUpdate && traits.supportsRowLocks) query = query.forUpdate()
  return query
}

// Building and compiling a find costs Kysely about as much as SQLite takes
// to answer a one-row lookup (GET ?scope_id=X spent about a tenth of its CPU
// there). Its SQL depends only on which filters are present, how many values
// each lists, and whether marker and offset are given: it is compiled once
// per such shape and database (bounded: cleared when full), and each call
// lists only its parameters. Locking reads are rare and stay uncached.
const MAX_SHAPES = 256
const compiledFinds = new WeakMap<Kysely<Database>, Map<string, string>>()

async function findCompiled (db: Kysely<Database>, traits: EngineTraits, filter: ScopeFilter, options: FindOptions): Promise<StorageStateRow[]> {
  const { limit, offset = 0, marker } = options
  const parameters: unknown[] = []
  let shape = ''
  for (const [, values] of textTerms(filter)) {
    shape += `${values?.length ?? '-'},`
    if (values === undefined) continue
    parameters.push(...values)
    if (traits.mayCompareCaseInsensitively) parameters.push(...values)
  }
  if (filter.active !== undefined) parameters.push(...filter.active.map((a) => booleanToDb(traits, a)))
  for (const [operator, at] of timeTerms(filter)) {
    parameters.push(toStoredBound(at))
    shape += operator
  }
  const except = filter.exceptActiveLastProcessedBefore
  if (except !== undefined) parameters.push(booleanToDb(traits, false), toStoredBound(except))
  if (marker !== undefined) parameters.push(marker)
  parameters.push(limit)
  if (offset > 0) parameters.push(offset)
  shape += `,${except !== undefined},${filter.active?.length ?? '-'},${marker !== undefined},${offset > 0}`

  let shapes = compiledFinds.get(db)
  if (shapes === undefined) compiledFinds.set(db, shapes = new Map())
  let text = shapes.get(shape)
  if (text === undefined) {
    const compiled = findQuery(db, traits, filter, options).compile()
    // The list above must bind in Kysely's order: a change to findQuery
    // that it does not follow fails here, in every test that lists.
    if (compiled.parameters.length !== parameters.length || compiled.parameters.some((p, i) => p !== parameters[i])) {
      throw new Error(`findScopes: parameters out of step with the compiled query (shape ${shape})`)
    }
    if (shapes.size >= MAX_SHAPES) shapes.clear()
    shapes.set(shape, text = compiled.sql)
  }
  return (await db.executeQuery<StorageStateRow>(CompiledQuery.raw(text, parameters))).rows
}

/**
 * How many scope states match `filter`, and how many of those are
 * inactive: one aggregate query, no row read (a PUT dry run at a million
 * scopes costs one index or table scan, not a million rows sent).
 */
export async function countScopes ({ db, traits }: Store, filter: ScopeFilter): Promise<{ total: number, inactive: number }> {
  const inactive = booleanToDb(traits, false)
  const row = await db.selectFrom(STATES)
    .select((eb) => [
      eb.fn.countAll().as('total'),
      // COUNT of a CASE without ELSE counts the rows it names; never NULL, unlike SUM.
      eb.fn.count(eb.case().when('active', '=', inactive).then(1).end()).as('inactive'),
    ])
    .where(matchesFilter(traits, filter)).executeTakeFirstOrThrow()
  return { total: Number(row.total), inactive: Number(row.inactive) }
}

/**
 * How many rows matching `filter` share each (active, last processed
 * timestamp), in no particular order: one aggregate query, whose groups are the
 * distinct timestamps rather than the rows. CloudKitty's processor moves
 * every scope by whole periods from period-aligned starts, so a table of a
 * million scopes holds a handful of distinct timestamps per period of lag;
 * an index on (active, last_processed_timestamp) hands them over grouped
 * and in order, with no sort.
 */
export async function lastProcessedCounts ({ db, traits }: Store, filter: ScopeFilter): Promise<LastProcessedCount[]> {
  // Narrowed by a text filter, grouped by (timestamp, active), an order no
  // index gives: MariaDB, offered the (active, timestamp) index's order,
  // walked all of it, reading every row to test the filter (2.5 s at
  // 1 000 000 scopes for collector=c1), instead of using the filter's index.
  const narrowed = textTerms(filter).some(([, values]) => values !== undefined)
  const rows = await db.selectFrom(STATES)
    .select(['active', 'last_processed_timestamp', (eb) => eb.fn.countAll().as('n')])
    .where(matchesFilter(traits, filter))
    .groupBy(narrowed ? ['last_processed_timestamp', 'active'] : ['active', 'last_processed_timestamp'])
    .execute()
  return rows.map((row) => ({ active: booleanFromDb(row.active), lastProcessed: fromStored(row.last_processed_timestamp), count: Number(row.n) }))
}

/** The 409 message of a change that collides with another row's (identifier, key, collector, fetcher). */
function collisionMessage (scopeId: string): string {
  return `Another scope state of ${scopeId} already has this scope_key, fetcher and collector.`
}

/**
 * Throws SCOPE_CONFLICT, as {@link updateScope} would, when writing `after`
 * over `before` would collide with another row's (identifier, key,
 * collector, fetcher); writes nothing. Like the unique constraint: only a
 * change of those columns can collide, a NULL never collides, and the
 * columns compare as the index does (so case-insensitively on a
 * CloudKitty-created MySQL table).
 */
export async function checkUpdateFits ({ db }: Store, before: ScopeState, after: ScopeState): Promise<void> {
  if (after.scopeKey === before.scopeKey && after.fetcher === before.fetcher && after.collector === before.collector) return
  if (after.scopeKey === null || after.fetcher === null || after.collector === null) return
  const other = await db.selectFrom(STATES).select('id')
    .where('identifier', '=', before.scopeId).where('scope_key', '=', after.scopeKey)
    .where('fetcher', '=', after.fetcher).where('collector', '=', after.collector)
    .where('id', '<>', before.id).limit(1).executeTakeFirst()
  if (other !== undefined) throw new ScopeKeeperError('SCOPE_CONFLICT', collisionMessage(before.scopeId))
}

/** True when at least one scope state matches. */
export async function anyScopeMatches ({ db, traits }: Store, filter: ScopeFilter): Promise<boolean> {
  const row = await db.selectFrom(STATES).select('id').where(matchesFilter(traits, filter)).limit(1).executeTakeFirst()
  return row !== undefined
}

// The creation lock of a scope_id lives in key spaces of its own, apart
// from every lock CloudKitty takes through tooz: its pgsql driver locks
// pg_advisory_lock(int, int), a key space PostgreSQL keeps apart from the
// one-bigint form used here, and its mysql driver's GET_LOCK names are 64
// hex digits, which a name with ':' never is.
function creationDigest (scopeId: string): Buffer {
  return createHash('sha256').update(`scopekeeper-create:${scopeId}`).digest()
}

/** The PostgreSQL advisory key (one-bigint form) of the creation lock of `scopeId`: SHA-256's first 8 bytes, signed. */
export function creationLockKey (scopeId: string): bigint {
  return creationDigest(scopeId).readBigInt64BE(0)
}

/** The MySQL/MariaDB GET_LOCK name of the creation lock of `scopeId`: `scopekeeper-create:` and 40 hex digits (named locks hold 64 characters). */
export function creationLockName (scopeId: string): string {
  return `scopekeeper-create:${creationDigest(scopeId).toString('hex').slice(0, 40)}`
}

/** How long a creation waits for another creation of its scope_id (MySQL/MariaDB); a holder keeps it for one insert. */
const CREATION_LOCK_WAIT_SECONDS = 10

/**
 * Runs `create` while no other creation of `scopeId` runs, in this process
 * or in any other API process on the database, so that its existence check
 * and its insert are one step: of concurrent creations of one scope_id, the
 * first inserts and the others find its row. The exclusion is the engine's
 * {@link EngineTraits.creationLock}, and it decides the transaction:
 * - SQLite: one transaction, whose BEGIN IMMEDIATE is the exclusion.
 * - PostgreSQL: one transaction holding `pg_advisory_xact_lock`, which its
 *   end releases (even when the connection is lost).
 * - MySQL/MariaDB: one connection holding a `GET_LOCK` lock around one
 *   transaction, which commits before the lock is released.
 *
 * Unlike the other functions here it opens the transaction itself, since
 * the engine's lock decides where it starts. Waiting for the holder past 10 s
 * (MySQL/MariaDB) or the statement timeout (PostgreSQL) throws
 * DATABASE_UNAVAILABLE.
 */
export async function excludingOtherCreations<T> (store: Store, scopeId: string, create: (store: Store) => Promise<T>): Promise<T> {
  switch (store.traits.creationLock) {
    case 'write-transaction':
      return await inTransaction(store, create)
    case 'transaction-advisory':
      return await inTransaction(store, async (trx) => {
        // PostgreSQL: a statement of its own, before the check, since the
        // check's snapshot must be taken once the lock is held.
        await sql`SELECT pg_advisory_xact_lock(${String(creationLockKey(scopeId))}::bigint) AS locked`.execute(trx.db)
        return await create(trx)
      })
    case 'named':
      return await store.db.connection().execute(async (connection) => {
        // MySQL/MariaDB. Aliased columns: one named after its expression,
        // which holds the lock name, would make mysql2 compile a new row
        // parser for every scope_id.
        const name = creationLockName(scopeId)
        const { rows } = await sql<{ got: number | string | null }>`SELECT GET_LOCK(${name}, ${CREATION_LOCK_WAIT_SECONDS}) AS got`.execute(connection)
        if (Number(rows[0]?.got) !== 1) {
          throw new ScopeKeeperError('DATABASE_UNAVAILABLE', `Another creation of scope ${scopeId} is taking too long; retry later.`)
        }
        try {
          return await inTransaction({ db: connection, traits: store.traits }, create)
        } finally {
          // A release that fails means a lost connection, whose named locks
          // the server drops with its session.
          await sql`SELECT RELEASE_LOCK(${name}) AS released`.execute(connection).catch(() => {})
        }
      })
  }
}

/** Inserts a scope state; a duplicate (identifier, key, collector, fetcher) throws SCOPE_CONFLICT. */
export async function insertScope ({ db, traits }: Store, scope: Omit<ScopeState, 'id'>): Promise<ScopeState> {
  const id = await translateUniqueViolation(
    async () => await insertReturningId({ db, traits }, STATES, stateRow(traits, scope)),
    `Scope ${scope.scopeId} already exists.`,
  )
  // What was written is what a read would return: whole seconds, no defaults.
  return { ...scope, id }
}

/** Which of `scopeIds` at least one scope state names (any scope_key, fetcher or collector): one query. */
export async function scopeIdsPresent ({ db, traits }: Store, scopeIds: readonly string[]): Promise<Set<string>> {
  if (scopeIds.length === 0) return new Set()
  const rows = await db.selectFrom(STATES).select('identifier').where(matchesFilter(traits, { scopeIds: [...scopeIds] })).execute()
  return new Set(rows.map((r) => r.identifier))
}

function stateRow (traits: EngineTraits, scope: Omit<ScopeState, 'id'>) {
  return {
    identifier: scope.scopeId,
    scope_key: scope.scopeKey,
    fetcher: scope.fetcher,
    collector: scope.collector,
    last_processed_timestamp: toStoredText(scope.lastProcessedTimestamp),
    scope_activation_toggle_date: toStoredText(scope.activationToggleDate),
    active: booleanToDb(traits, scope.active),
  }
}

/**
 * Runs `write` in a savepoint of the caller's transaction, and rolls back
 * to it (the transaction stays usable, PostgreSQL's included) when `write`
 * hits a unique violation: then returns false. Savepoints are the same SQL
 * on the three engines.
 */
async function unlessDuplicate (db: Kysely<Database>, write: () => Promise<unknown>): Promise<boolean> {
  await sql`SAVEPOINT scopekeeper_insert`.execute(db)
  try {
    await write()
  } catch (error) {
    if (!isUniqueViolation(error)) throw error
    await sql`ROLLBACK TO SAVEPOINT scopekeeper_insert`.execute(db)
    return false
  }
  await sql`RELEASE SAVEPOINT scopekeeper_insert`.execute(db)
  return true
}

/**
 * Inserts `scopes` in the caller's transaction with one multi-row INSERT,
 * and returns those written. One that collides with an existing row's
 * (identifier, key, collector, fetcher), written meanwhile by CloudKitty's
 * processor or another request, is skipped, not an error: the INSERT is
 * then undone and the rows go in one by one, each skipped on its own
 * violation (the rare case pays one statement per row).
 */
export async function insertNewScopes ({ db, traits }: Store, scopes: ReadonlyArray<Omit<ScopeState, 'id'>>): Promise<Array<Omit<ScopeState, 'id'>>> {
  if (scopes.length === 0) return []
  if (await unlessDuplicate(db, () => db.insertInto(STATES).values(scopes.map((s) => stateRow(traits, s))).execute())) return [...scopes]
  const written: Array<Omit<ScopeState, 'id'>> = []
  for (const scope of scopes) {
    if (await unlessDuplicate(db, () => db.insertInto(STATES).values(stateRow(traits, scope)).execute())) written.push(scope)
  }
  return written
}

/**
 * Writes the columns in which `after` differs from `before`, the row as it
 * was read (nothing when none does). A change that collides with another
 * row's (identifier, key, collector, fetcher) throws SCOPE_CONFLICT.
 */
export async function updateScope ({ db, traits }: Store, before: ScopeState, after: ScopeState): Promise<void> {
  const update: StorageStateUpdate = {}
  if (after.scopeKey !== before.scopeKey) update.scope_key = after.scopeKey
  if (after.fetcher !== before.fetcher) update.fetcher = after.fetcher
  if (after.collector !== before.collector) update.collector = after.collector
  if (after.active !== before.active) update.active = booleanToDb(traits, after.active)
  if (after.activationToggleDate.getTime() !== before.activationToggleDate.getTime()) {
    update.scope_activation_toggle_date = toStoredText(after.activationToggleDate)
  }
  if (Object.keys(update).length === 0) return
  await translateUniqueViolation(
    () => db.updateTable(STATES).set(update).where('id', '=', before.id).execute(),
    collisionMessage(before.scopeId),
  )
}

/**
 * Sets the last processed timestamp of the rows `ids` to `at`, and returns
 * each row's timestamp before, read in the caller's transaction (a scope
 * deleted meanwhile is not in it). Idempotent.
 */
export async function moveLastProcessed ({ db }: Store, ids: number[], at: Date): Promise<MovedScope[]> {
  if (ids.length === 0) return []
  const before = await db.selectFrom(STATES).select(['id', 'identifier', 'last_processed_timestamp']).where('id', 'in', ids).execute()
  await db.updateTable(STATES).set({ last_processed_timestamp: toStoredText(at) }).where('id', 'in', ids).execute()
  return before.map((row) => ({ id: row.id, scopeId: row.identifier, old: fromStored(row.last_processed_timestamp) }))
}

/** Ids updated per statement where the flipped rows must be named (MariaDB): well under every engine's bound on parameters. */
const FLIP_BY_ID_CHUNK = 1000

/**
 * Sets `active` on every state matching `filter` whose flag is not
 * `active` yet, and moves their activation toggle date to `now`, in the
 * caller's transaction; returns the rows it flipped, in id order. Rows that
 * already had the flag are neither written nor returned, so their toggle
 * date stays.
 *
 * One UPDATE … RETURNING where the engine has it (SQLite, PostgreSQL): the
 * rows returned are exactly those written, so the audit records no flip
 * that did not happen. MariaDB has no UPDATE … RETURNING: the rows are
 * read and locked first (`SELECT … FOR UPDATE`), then updated by id, so a
 * concurrent PATCH of one of them waits and the same holds. Either way the
 * written rows stay locked until the caller commits; the caller bounds
 * their number (every row returned is held in memory).
 */
export async function flipScopesActive ({ db, traits }: Store, filter: ScopeFilter, active: boolean, now: Date): Promise<FlippedScope[]> {
  const set = { active: booleanToDb(traits, active), scope_activation_toggle_date: toStoredText(now) }
  // `active <> X` as an equality, which the active index serves.
  const flipping = (eb: ExpressionBuilder<Database, typeof STATES>) => eb.and([matchesFilter(traits, filter)(eb), eb('active', '=', booleanToDb(traits, !active))])
  let rows: Array<{ id: number, identifier: string }>
  if (traits.supportsReturning) {
    rows = await db.updateTable(STATES).set(set).where(flipping).returning(['id', 'identifier']).execute()
    // RETURNING lists rows in no promised order.
    rows.sort((a, b) => a.id - b.id)
  } else {
    let query = db.selectFrom(STATES).select(['id', 'identifier']).where(flipping).orderBy('id')
    if (traits.supportsRowLocks) query = query.forUpdate()
    rows = await query.execute()
    for (let i = 0; i < rows.length; i += FLIP_BY_ID_CHUNK) {
      await db.updateTable(STATES).set(set).where('id', 'in', rows.slice(i, i + FLIP_BY_ID_CHUNK).map((r) => r.id)).execute()
    }
  }
  return rows.map((r) => ({ id: r.id, scopeId: r.identifier }))
}
