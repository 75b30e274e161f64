import { recordActivationBatch, recordEvents } from '../storage/event-repository.ts'
import { insertResetJob } from '../storage/reset-job-repository.ts'
import {
  anyScopeMatches, checkUpdateFits, countScopes, excludingOtherCreations, findScopes, flipScopesActive, insertScope, lastProcessedCounts, updateScope,
} from '../storage/scope-state-repository.ts'
import { inTransaction, type Store } from '../storage/store.ts'
import type { ChangeContext } from './change-context.ts'
import { ScopeKeeperError } from './errors.ts'
import type { NewEvent } from './scope-event.ts'
import { discardStart } from './reset-job.ts'
import {
  activeOnly, isEmptyFilter, lagBuckets, lagFigures, ratedThrough, stuckBefore, type ScopeSummary,
} from './scope-lag.ts'
import {
  applyChanges, DEFAULT_PAGE_SIZE, type NewScope, type Page, type ScopeChanges, type ScopeDefaults, type ScopeFilter, type ScopeState,
} from './scope-state.ts'
import { formatTimestamp, startOfMonth } from './timestamps.ts'

/** Rows read per query when a list page is large: bounds memory whatever `limit` asks. */
const LIST_CHUNK = 1000

const NOTHING_FOUND = 'No resource found for provided filters.'

/**
 * `filter` narrowed to the scope ids in `visible` (undefined: no narrowing),
 * or undefined when nothing can match.
 */
function visibleFilter (filter: ScopeFilter, visible: readonly string[] | undefined): ScopeFilter | undefined {
  if (visible === undefined) return filter
  const scopeIds = filter.scopeIds === undefined ? [...visible] : filter.scopeIds.filter((id) => visible.includes(id))
  return scopeIds.length === 0 ? undefined : { ...filter, scopeIds }
}

/**
 * The audit events of a PATCH: one for the fields it changed, one for an
 * activation toggle; none when nothing changed.
 */
function changeEvents (before: ScopeState, after: ScopeState, context: ChangeContext, at: Date): NewEvent[] {
  const events: NewEvent[] = []
  const changes: Record<string, { old: string | null, new: string | null }> = {}
  if (after.scopeKey !== before.scopeKey) changes.scope_key = { old: before.scopeKey, new: after.scopeKey }
  if (after.fetcher !== before.fetcher) changes.fetcher = { old: before.fetcher, new: after.fetcher }
  if (after.collector !== before.collector) changes.collector = { old: before.collector, new: after.collector }
  if (Object.keys(changes).length > 0) events.push({ kind: 'patched', scopeId: before.scopeId, details: { changes }, context, at })
  if (after.active !== before.active) {
    events.push({ kind: after.active ? 'activated' : 'deactivated', scopeId: before.scopeId, details: { active: { old: before.active, new: after.active } }, context, at })
  }
  return events
}

/**
 * The one scope state of `scopeId` among `rows` (a read of at most two):
 * SCOPE_NOT_FOUND when there is none, SCOPE_AMBIGUOUS when the id names
 * several. What a PATCH, real or dry run, may change.
 */
function onlyScope (rows: ScopeState[], scopeId: string): ScopeState {
  if (rows.length === 0) throw new ScopeKeeperError('SCOPE_NOT_FOUND', `No scope found with scope_id ${scopeId}.`)
  if (rows.length > 1) {
    throw new ScopeKeeperError('SCOPE_AMBIGUOUS', `scope_id ${scopeId} names several scope states (different scope_key, fetcher or collector); it cannot be patched by scope_id alone.`)
  }
  return rows[0]
}

/** What a PATCH may require of the row it changes, beyond its scope_id. */
export interface PatchOptions {
  /**
   * Whether the row as read is the one the caller last saw (the API's
   * If-Match against the row's ETag). Evaluated on the locked row, after
   * the 404 and 409-ambiguous checks and before the change (RFC 9110
   * §13.2.2); false throws SCOPE_CHANGED and changes nothing.
   */
  precondition?: (current: ScopeState) => boolean
}

function checkPrecondition (current: ScopeState, options: PatchOptions): void {
  if (options.precondition === undefined || options.precondition(current)) return
  throw new ScopeKeeperError('SCOPE_CHANGED', `Scope ${current.scopeId} has changed since it was read (If-Match does not match its ETag); read it again before changing it.`)
}

/** The row a creation writes: `scope` with the defaults applied; processing starts at the month's start. */
function newScopeState (scope: NewScope, defaults: ScopeDefaults, now: Date): Omit<ScopeState, 'id'> {
  return {
    scopeId: scope.scopeId,
    scopeKey: scope.scopeKey ?? defaults.scopeKey,
    fetcher: scope.fetcher ?? defaults.fetcher,
    collector: scope.collector ?? defaults.collector,
    lastProcessedTimestamp: scope.lastProcessedTimestamp ?? startOfMonth(now),
    active: scope.active ?? true,
    activationToggleDate: now,
  }
}

const alreadyExists = (scopeId: string) => new ScopeKeeperError('SCOPE_CONFLICT', `Scope ${scopeId} already exists.`)

/** What a reset would do, as a PUT dry run answers it; nothing is recorded. */
export interface ResetPreview {
  /** Every matched scope state, active or not. */
  scopesTotal: number
  /** How many of those are inactive (a reset covers them too). */
  scopesInactive: number
  lastProcessedTimestamp: Date
  /** Where rated data would be discarded from: one period after the timestamp. */
  discardFrom: Date
  /** The first {@link DEFAULT_PAGE_SIZE} matched states, in the list's order. */
  first: ScopeState[]
}

/**
 * Flipped states covered by one audit event row of a bulk activation:
 * 100 000 flips are 100 event rows, in the flip's transaction.
 */
export const ACTIVATION_CHUNK = 1000

/** What a bulk activation did, or as a dry run would do. */
export interface ActivationResult {
  /** Every scope state the filter matched, whatever its flag. */
  scopesTotal: number
  /** How many of them had the other flag and were (or would be) flipped; the others are left as they are, toggle date included. */
  scopesFlipped: number
  /** The toggle date written on the flipped states (on a dry run: that would be); null when none flips. */
  activationToggleDate: Date | null
}

/** A bulk activation's dry run: its counts, and the first of the states it would flip. */
export interface ActivationPreview extends ActivationResult {
  /** The first {@link DEFAULT_PAGE_SIZE} states that would flip, in creation order. */
  first: ScopeState[]
}

const tooManyToSwitch = (count: number, max: number) => new ScopeKeeperError('INVALID_INPUT',
  `This would switch ${count} scope states, more than the ${max} one activation may switch ([api] activation_max_scopes): ` +
  'narrow the filters (a dry run counts them), or raise the setting.')

/** Whether a filter lists no value for some field: then it matches nothing (and an SQL `IN ()` is not valid). */
function matchesNothing (filter: ScopeFilter): boolean {
  return Object.values(filter).some((values) => Array.isArray(values) && values.length === 0)
}

/** What the service needs from its surroundings. */
export interface ScopeStateServiceDeps {
  store: Store
  defaults: ScopeDefaults
  /** Attempts a reset job gets before it is failed. */
  resetMaxAttempts: number
  /** The rating period (`[collect] period`, seconds): a reset to T discards rated data from T + period. */
  periodSeconds: number
  /**
   * The most states one {@link ScopeStateService.setActivation} may flip
   * (`[api] activation_max_scopes`): its one transaction holds their row
   * locks until it commits. Unbounded when not given.
   */
  activationMaxScopes?: number
  /** An active scope lagging more than this many periods behind the median is stuck (`[collect] stuck_after_periods`). */
  stuckAfterPeriods: number
  clock?: () => Date
}

/** A reset as PUT /v2/scope asks it: which scopes, and the timestamp to reset them to. */
export interface ResetRequest {
  filter: ScopeFilter
  lastProcessedTimestamp: Date
}

/**
 * A list page as read so far: its first chunk and, when the page goes on
 * past that chunk, the chunks after it, read as they are consumed; and the
 * marker of the next page when this one is full.
 */
export interface ScopeListing {
  first: ScopeState[]
  rest?: AsyncIterable<ScopeState[]>
  /** The id of the page's last row when more rows may follow: the next page's `marker`. */
  nextMarker?: number
}

/**
 * The scope state use cases: list, patch, create, and the recording of a
 * reset. Knows no HTTP. Each mutation is one transaction; business outcomes
 * are thrown as {@link ScopeKeeperError}.
 */
export class ScopeStateService {
  private readonly now: () => Date

  constructor (private readonly deps: ScopeStateServiceDeps) {
    this.now = deps.clock ?? (() => new Date())
  }

  /**
   * Lists matching scope states in creation order, in chunks so that a large
   * `limit` never holds the whole page in memory. Inactive scopes are listed
   * unless the filter excludes them. With `visibleScopeIds` (what the caller
   * may see; undefined: everything), only states of those scope ids are
   * matched, in the query itself, so that pages stay full and offsets and
   * markers count visible rows only. Throws SCOPE_NOT_FOUND when the page is
   * empty, including an offset past the end.
   */
  async list (requested: ScopeFilter, page: Page, visibleScopeIds?: readonly string[], stuck?: boolean): Promise<ScopeListing> {
    const { store } = this.deps
    const visible = visibleFilter(requested, visibleScopeIds)
    const filter = visible === undefined || stuck === undefined ? visible : await this.stuckFilter(visible, stuck, visibleScopeIds)
    if (filter === undefined) throw new ScopeKeeperError('SCOPE_NOT_FOUND', NOTHING_FOUND)
    const first = await findScopes(store, filter, { limit: Math.min(page.limit, LIST_CHUNK), offset: page.offset, marker: page.marker })
    if (first.length === 0) throw new ScopeKeeperError('SCOPE_NOT_FOUND', NOTHING_FOUND)
    // A short chunk is the last of the matches; a chunk of `limit` rows is the whole page.
    if (first.length < LIST_CHUNK || first.length === page.limit) {
      return { first, nextMarker: first.length === page.limit ? first[first.length - 1].id : undefined }
    }
    // The page streams out after its headers, Link included: its last row
    // is found first, by one indexed read.
    const [last] = await findScopes(store, filter, { limit: 1, offset: page.offset + page.limit - 1, marker: page.marker })
    return {
      first,
      nextMarker: last?.id,
      rest: (async function * () {
        let remaining = page.limit - first.length
        let chunk = first
        while (remaining > 0 && chunk.length === LIST_CHUNK) {
          chunk = await findScopes(store, filter, { limit: Math.min(remaining, LIST_CHUNK), marker: chunk[chunk.length - 1].id })
          if (chunk.length === 0) return
          remaining -= chunk.length
          yield chunk
        }
      })(),
    }
  }

  /** The rating period in seconds (`[collect] period`): a scope is rated through its last processed timestamp plus this. */
  get periodSeconds (): number {
    return this.deps.periodSeconds
  }

  /**
   * The last processed timestamp below which an active scope is stuck: the
   * median over every active scope the caller sees (`visibleScopeIds`), not
   * narrowed by a request's other filters, so that a scope is stuck or not
   * whatever else a list or a summary asks. Undefined when none is active.
   */
  private async stuckBound (visibleScopeIds: readonly string[] | undefined): Promise<Date | undefined> {
    const reference = visibleFilter({ active: [true] }, visibleScopeIds)
    if (reference === undefined) return undefined
    // The median from the grouped counts: one aggregate query, cheaper than
    // a count and a row at an offset (PostgreSQL, without an index on the
    // timestamp, sorts for the latter).
    const median = lagFigures(await lastProcessedCounts(this.deps.store, reference), this.now(), this.deps.periodSeconds).medianLastProcessed
    return stuckBefore(median, this.deps.periodSeconds, this.deps.stuckAfterPeriods)
  }

  /**
   * `filter` narrowed to the stuck scopes (`stuck`) or to the others:
   * inactive ones, and active ones within the stuck periods of the median.
   * Undefined when nothing can match.
   */
  private async stuckFilter (filter: ScopeFilter, stuck: boolean, visibleScopeIds: readonly string[] | undefined): Promise<ScopeFilter | undefined> {
    return this.narrowToStuck(filter, stuck, await this.stuckBound(visibleScopeIds))
  }

  /** `filter` narrowed as {@link stuckFilter} says, for the stuck bound `before`. */
  private narrowToStuck (filter: ScopeFilter, stuck: boolean, before: Date | undefined): ScopeFilter | undefined {
    // No active scope: none is stuck.
    if (before === undefined) return stuck ? undefined : filter
    if (!stuck) return { ...filter, exceptActiveLastProcessedBefore: before }
    const active = activeOnly(filter)
    if (active === undefined) return undefined
    const bound = filter.lastProcessedBefore
    return { ...active, lastProcessedBefore: bound === undefined || bound > before ? before : bound }
  }

  /**
   * How far behind the scopes matching `requested` are, as GET
   * /v2/scope/summary answers: computed from one aggregate query, the
   * matched rows counted by active flag and last processed timestamp (see
   * {@link lastProcessedCounts}). When other filters than the caller's
   * visibility narrow them, the stuck bound's median (over every visible
   * active scope) comes first, from the same query over those.
   * With `cutoff`, how many active scopes are rated through it and how
   * many not. Never SCOPE_NOT_FOUND: a filter matching nothing answers zeros.
   */
  async summary (requested: ScopeFilter, visibleScopeIds: readonly string[] | undefined, options: { cutoff?: Date, stuck?: boolean } = {}): Promise<ScopeSummary> {
    const { store, periodSeconds, stuckAfterPeriods } = this.deps
    const { cutoff, stuck } = options
    const now = this.wholeSecondNow()
    const visible = visibleFilter(requested, visibleScopeIds)
    // Unfiltered, the matched scopes are the stuck bound's own: one query answers both.
    const own = isEmptyFilter(requested) && stuck === undefined
    const before = own ? undefined : await this.stuckBound(visibleScopeIds)
    const filter = visible === undefined || stuck === undefined ? visible : this.narrowToStuck(visible, stuck, before)
    const counts = filter === undefined ? [] : await lastProcessedCounts(store, filter)
    const stuckAt = own ? stuckBefore(lagFigures(counts, now, periodSeconds).medianLastProcessed, periodSeconds, stuckAfterPeriods) : before
    const figures = lagFigures(counts, now, periodSeconds, { stuckBefore: stuckAt, cutoff })
    const rated = (at: Date | undefined) => at === undefined ? null : ratedThrough(at, periodSeconds)
    return {
      periodSeconds,
      now,
      active: figures.active,
      inactive: figures.inactive,
      oldestRatedThrough: rated(figures.oldestLastProcessed),
      medianRatedThrough: rated(figures.medianLastProcessed),
      lagBuckets: lagBuckets(figures),
      stuckAfterPeriods,
      stuckRatedThroughBefore: rated(stuckAt),
      stuck: figures.stuck,
      cutoff: cutoff === undefined ? undefined : { at: cutoff, ratedThrough: figures.ratedThroughCutoff, notRatedThrough: figures.active - figures.ratedThroughCutoff },
    }
  }

  /**
   * Changes the one scope state of `scopeId`. Only the given fields change;
   * the activation toggle date moves only when `active` really flips.
   * Throws SCOPE_NOT_FOUND, SCOPE_AMBIGUOUS when the id names several rows,
   * and SCOPE_CONFLICT when the change collides with another row.
   */
  async patch (scopeId: string, changes: ScopeChanges, context: ChangeContext, options: PatchOptions = {}): Promise<ScopeState> {
    return await inTransaction(this.deps.store, async (trx) => {
      // Locked: concurrent toggles then see each other's flip, so the
      // toggle date moves only on a real one.
      const current = onlyScope(await findScopes(trx, { scopeIds: [scopeId] }, { limit: 2, forUpdate: true }), scopeId)
      // Compared on the locked row: of two PATCHes with one If-Match, the second sees the first's change.
      checkPrecondition(current, options)
      const now = this.wholeSecondNow()
      const changed = applyChanges(current, changes, now)
      await updateScope(trx, current, changed)
      await recordEvents(trx, changeEvents(current, changed, context, now))
      return changed
    })
  }

  /**
   * Registers a scope ahead of its discovery. Missing fields take the
   * configured defaults; the timestamp defaults to the start of the current
   * month (UTC), where a processor starts a newly discovered scope. Throws
   * SCOPE_CONFLICT when `scopeId` already exists, whatever its other fields.
   * Of concurrent creations of one scope_id, from any number of API
   * processes, exactly one succeeds: each holds the scope_id's creation lock
   * from its existence check to its commit.
   */
  async create (scope: NewScope, context: ChangeContext): Promise<ScopeState> {
    const { store, defaults } = this.deps
    const now = this.wholeSecondNow()
    // Excluded: CloudKitty's unique constraint spans scope_key, fetcher and
    // collector too, so two creations that differ in those would otherwise
    // both find nothing and both insert. The row and its audit event are
    // one transaction on every engine (see excludingOtherCreations).
    return await excludingOtherCreations(store, scope.scopeId, async (trx) => {
      if (await anyScopeMatches(trx, { scopeIds: [scope.scopeId] })) throw alreadyExists(scope.scopeId)
      const created = await insertScope(trx, newScopeState(scope, defaults, now))
      await recordEvents(trx, [{
        kind: 'created',
        scopeId: created.scopeId,
        details: {
          scope_key: created.scopeKey, fetcher: created.fetcher, collector: created.collector, active: created.active,
          last_processed_timestamp: formatTimestamp(created.lastProcessedTimestamp),
        },
        context,
        at: now,
      }])
      return created
    })
  }

  /**
   * Records a reset of every matching scope state, active or not and without
   * any page limit, as one durable job; the worker applies it later. The job
   * exists once this returns. Throws SCOPE_NOT_FOUND when nothing matches.
   */
  async requestReset (reset: ResetRequest, context: ChangeContext): Promise<{ jobId: number, scopesTotal: number }> {
    return await inTransaction(this.deps.store, async (trx) => {
      const job = await insertResetJob(trx, reset.filter, {
        lastProcessedTimestamp: reset.lastProcessedTimestamp,
        now: this.now(),
        maxAttempts: this.deps.resetMaxAttempts,
        context,
      })
      // Throwing rolls the empty job back.
      if (job.scopesTotal === 0) throw new ScopeKeeperError('SCOPE_NOT_FOUND', NOTHING_FOUND)
      const { scopeIds, scopeKeys, fetchers, collectors } = reset.filter
      await recordEvents(trx, [{
        kind: 'reset_requested',
        scopeId: scopeIds?.length === 1 ? scopeIds[0] : null,
        jobId: job.jobId,
        details: {
          filter: { scope_id: scopeIds ?? null, scope_key: scopeKeys ?? null, fetcher: fetchers ?? null, collector: collectors ?? null },
          last_processed_timestamp: formatTimestamp(reset.lastProcessedTimestamp),
          scopes_total: job.scopesTotal,
        },
        context,
        at: this.wholeSecondNow(),
      }])
      return job
    })
  }

  /**
   * A PATCH dry run: the row as {@link patch} would leave it, with the same
   * SCOPE_NOT_FOUND, SCOPE_AMBIGUOUS, SCOPE_CHANGED and SCOPE_CONFLICT, by
   * reads alone: no transaction, no lock, no write.
   */
  async previewPatch (scopeId: string, changes: ScopeChanges, options: PatchOptions = {}): Promise<ScopeState> {
    const { store } = this.deps
    const current = onlyScope(await findScopes(store, { scopeIds: [scopeId] }, { limit: 2 }), scopeId)
    checkPrecondition(current, options)
    const changed = applyChanges(current, changes, this.wholeSecondNow())
    await checkUpdateFits(store, current, changed)
    return changed
  }

  /**
   * A POST dry run: the row as {@link create} would write it (defaults
   * applied, toggled now; no id), or its SCOPE_CONFLICT, by one read and
   * no write.
   */
  async previewCreate (scope: NewScope): Promise<Omit<ScopeState, 'id'>> {
    const { store, defaults } = this.deps
    const now = this.wholeSecondNow()
    if (await anyScopeMatches(store, { scopeIds: [scope.scopeId] })) throw alreadyExists(scope.scopeId)
    return newScopeState(scope, defaults, now)
  }

  /**
   * A PUT dry run: what {@link requestReset} would cover, by reads alone:
   * the counts from one aggregate query, the first page from one list read.
   * Throws SCOPE_NOT_FOUND when nothing matches, as the reset does.
   */
  async previewReset (reset: ResetRequest): Promise<ResetPreview> {
    const { store, periodSeconds } = this.deps
    const { total, inactive } = await countScopes(store, reset.filter)
    if (total === 0) throw new ScopeKeeperError('SCOPE_NOT_FOUND', NOTHING_FOUND)
    return {
      scopesTotal: total,
      scopesInactive: inactive,
      lastProcessedTimestamp: reset.lastProcessedTimestamp,
      discardFrom: discardStart(reset.lastProcessedTimestamp, periodSeconds),
      first: await findScopes(store, reset.filter, { limit: DEFAULT_PAGE_SIZE }),
    }
  }

  /**
   * Sets `active` on every scope state matching `filter`, in one
   * transaction: either every matching state that had the other flag is
   * flipped, or (on any failure) none is. Only those flips are written:
   * their activation toggle date moves to now, and each is an
   * `activated`/`deactivated` event in `context` (recorded per
   * {@link ACTIVATION_CHUNK} states, expanded per scope in its history);
   * states that already had the flag keep their toggle date and record
   * nothing. An empty filter matches every state: callers that take it
   * from users should ask for it explicitly (the API's `all_scopes`).
   * A field listing no value matches nothing. Throws SCOPE_NOT_FOUND
   * when nothing matches, and INVALID_INPUT, writing nothing, when more
   * than {@link ScopeStateServiceDeps.activationMaxScopes} would flip.
   *
   * The flipped rows stay locked until the commit: CloudKitty's processor,
   * which reads `active` without locking, is never held up, but its commit
   * of a flipped row's timestamp waits for this one (measured in the README,
   * "Bulk activation"). `stuck` narrows `filter` as GET's stuck filter
   * does, against the median of every active scope.
   */
  async setActivation (requested: ScopeFilter, active: boolean, context: ChangeContext, stuck?: boolean): Promise<ActivationResult> {
    const filter = await this.activationFilter(requested, stuck)
    const max = this.deps.activationMaxScopes ?? Infinity
    return await inTransaction(this.deps.store, async (trx) => {
      const { total, inactive } = await countScopes(trx, filter)
      if (total === 0) throw new ScopeKeeperError('SCOPE_NOT_FOUND', NOTHING_FOUND)
      // Refused before any write when the count says so; and, should
      // concurrent changes have added flips since, once past the bound
      // (the throw rolls the flip back).
      const counted = active ? inactive : total - inactive
      if (counted > max) throw tooManyToSwitch(counted, max)
      const now = this.wholeSecondNow()
      const flipped = await flipScopesActive(trx, filter, active, now)
      if (flipped.length > max) throw tooManyToSwitch(flipped.length, max)
      for (let i = 0; i < flipped.length; i += ACTIVATION_CHUNK) {
        await recordActivationBatch(trx, flipped.slice(i, i + ACTIVATION_CHUNK), active, context, now)
      }
      return { scopesTotal: total, scopesFlipped: flipped.length, activationToggleDate: flipped.length > 0 ? now : null }
    })
  }

  /**
   * A bulk activation's dry run: what {@link setActivation} would do, by
   * reads alone (one aggregate query and one list read), with the same
   * SCOPE_NOT_FOUND.
   */
  async previewActivation (requested: ScopeFilter, active: boolean, stuck?: boolean): Promise<ActivationPreview> {
    const { store } = this.deps
    const filter = await this.activationFilter(requested, stuck)
    const { total, inactive } = await countScopes(store, filter)
    if (total === 0) throw new ScopeKeeperError('SCOPE_NOT_FOUND', NOTHING_FOUND)
    const flipping: ScopeFilter = { ...filter, active: [!active] }
    const flipped = active ? inactive : total - inactive
    return {
      scopesTotal: total,
      scopesFlipped: flipped,
      activationToggleDate: flipped > 0 ? this.wholeSecondNow() : null,
      first: filter.active !== undefined && !filter.active.includes(!active) ? [] : await findScopes(store, flipping, { limit: DEFAULT_PAGE_SIZE }),
    }
  }

  /** The states a bulk activation covers: `requested`, narrowed to the stuck ones or the others; SCOPE_NOT_FOUND when none can match. */
  private async activationFilter (requested: ScopeFilter, stuck: boolean | undefined): Promise<ScopeFilter> {
    const filter = stuck === undefined ? requested : await this.stuckFilter(requested, stuck, undefined)
    if (filter === undefined || matchesNothing(filter)) throw new ScopeKeeperError('SCOPE_NOT_FOUND', NOTHING_FOUND)
    return filter
  }

  private wholeSecondNow (): Date {
    return new Date(Math.floor(this.now().getTime() / 1000) * 1000)
  }
}
