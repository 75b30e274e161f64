/**
 * Glossary.
 *
 * - **scope**: the unit a rating processor rates period by period, usually
 *   one Keystone project. Identified on the wire by `scope_id`.
 * - **scope_key**: what kind of id `scope_id` is (`project_id`, …).
 * - **fetcher**: what discovered the scope (`keystone`, `gnocchi`, …).
 * - **collector**: where the scope's metrics come from (`gnocchi`, …).
 * - **scope state**: one row of `cloudkitty_storage_states`, identified by
 *   (scopeId, scopeKey, fetcher, collector); one scope id may have several.
 * - **last processed timestamp**: the start of the last period rated; rating
 *   resumes one period later. `state` is its deprecated wire alias.
 * - **active**: whether the processor rates the scope at all.
 * - **rated through**: last processed timestamp + period (`[collect]
 *   period`): the end of the last period rated.
 * - **lag**: now minus the rated-through time; 0 to 1 period is on time.
 * - **stuck**: active, and lagging more than `[collect] stuck_after_periods`
 *   periods behind the median active scope the caller can see.
 * - **reset**: moving a scope's last processed timestamp back (or forward) to
 *   T and discarding the rated data after it; always applied asynchronously.
 */

/**
 * One scope state as the domain sees it. `scopeKey`, `fetcher` and
 * `collector` are null on rows CloudKitty wrote without them.
 */
export interface ScopeState {
  id: number
  scopeId: string
  scopeKey: string | null
  fetcher: string | null
  collector: string | null
  lastProcessedTimestamp: Date
  active: boolean
  activationToggleDate: Date
}

/**
 * Which scope states a list or a reset is about. Each present field is a set
 * of accepted values (any matches); fields combine with AND. An absent field
 * does not filter.
 */
export interface ScopeFilter {
  scopeIds?: string[]
  scopeKeys?: string[]
  fetchers?: string[]
  collectors?: string[]
  active?: boolean[]
  /** Only rows whose last processed timestamp is before this instant. */
  lastProcessedBefore?: Date
  /** Only rows whose last processed timestamp is at or after this instant. */
  lastProcessedAtOrAfter?: Date
  /**
   * Leaves out the active rows whose last processed timestamp is before
   * this instant (inactive rows stay): the complement of `active: [true]`
   * with {@link ScopeFilter.lastProcessedBefore}, as "not stuck" needs.
   */
  exceptActiveLastProcessedBefore?: Date
}

/** The columns a PATCH may change; absent ones keep their value. */
export interface ScopeChanges {
  scopeKey?: string
  fetcher?: string
  collector?: string
  active?: boolean
}

/**
 * `scope` with `changes` applied: the one way a change is applied, for the
 * row written and the row answered alike. The activation toggle date moves
 * to `now` only when `active` really flips.
 */
export function applyChanges (scope: ScopeState, changes: ScopeChanges, now: Date): ScopeState {
  const flips = changes.active !== undefined && changes.active !== scope.active
  return {
    ...scope,
    scopeKey: changes.scopeKey ?? scope.scopeKey,
    fetcher: changes.fetcher ?? scope.fetcher,
    collector: changes.collector ?? scope.collector,
    active: changes.active ?? scope.active,
    activationToggleDate: flips ? now : scope.activationToggleDate,
  }
}

/** What POST needs; absent fields take the configured defaults. */
export interface NewScope {
  scopeId: string
  scopeKey?: string
  fetcher?: string
  collector?: string
  active?: boolean
  lastProcessedTimestamp?: Date
}

/**
 * A page: offset paging as CloudKitty does it (defaults: limit 100, offset 0),
 * or, OpenStack's convention, the rows after `marker` (the id of the last row
 * of the previous page).
 */
export interface Page {
  limit: number
  offset: number
  marker?: number
}

/** CloudKitty's page size when the client names none. */
export const DEFAULT_PAGE_SIZE = 100

/** Defaults applied to a scope created without them (CloudKitty's, configurable). */
export interface ScopeDefaults {
  scopeKey: string
  fetcher: string
  collector: string
}
