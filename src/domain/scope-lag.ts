import type { ScopeFilter } from './scope-state.ts'

/**
 * The upper bounds of the lag buckets, in periods: a scope lagging at most
 * 1 period is on time; then at most 2, 6 and 24, and more than 24. The
 * summary's `lag_periods` and the `scopekeeper_scope_lag_seconds`
 * histogram's `le` bounds are these, so a scope exactly on a bound counts
 * in the lower bucket, as Prometheus's `le` (less or equal) counts it.
 */
export const LAG_BUCKET_PERIODS = [1, 2, 6, 24] as const

/** One period in milliseconds. */
const periodMs = (periodSeconds: number) => periodSeconds * 1000

/** When a scope last processed at `lastProcessed` is rated through: one period later. */
export function ratedThrough (lastProcessed: Date, periodSeconds: number): Date {
  return new Date(lastProcessed.getTime() + periodMs(periodSeconds))
}

/**
 * The last processed timestamp of a scope rated through `at`: one period
 * earlier. Rated through before T is last processed before T − period, so
 * a filter on the rated-through time compares the column with a constant
 * (and can use an index) rather than computing on every row.
 */
export function lastProcessedFor (at: Date, periodSeconds: number): Date {
  return new Date(at.getTime() - periodMs(periodSeconds))
}

/**
 * What the one aggregate query counts over the rows of a filter, each bound
 * a last processed timestamp computed here so that the SQL compares the
 * column with constants.
 */
export interface LagTerms {
  /**
   * For each of {@link LAG_BUCKET_PERIODS}, k: the active rows last
   * processed at or after now − (k + 1) periods, i.e. lagging at most k
   * periods (cumulative counts, as a histogram's buckets).
   */
  lastProcessedFloors: Date[]
  /** Count the active rows last processed before this (stuck); absent: none are. */
  stuckBefore?: Date
  /** Count the active rows last processed at or after this (rated through the cut-off). */
  cutoffFloor?: Date
  /** Sum the active rows' lag in seconds, measured from this instant minus their last processed timestamp (now − period). */
  lagFrom?: Date
}

/** What the aggregate query answers for {@link LagTerms}. */
export interface LagAggregate {
  active: number
  inactive: number
  /** The smallest last processed timestamp of the active rows; null when none. */
  oldestLastProcessed: Date | null
  /** Per {@link LagTerms.lastProcessedFloors}: active rows lagging at most that many periods. */
  withinPeriods: number[]
  stuck: number
  /** Active rows rated through the cut-off; undefined without one. */
  ratedThroughCutoff?: number
  /** Sum of the active rows' lag in seconds; undefined unless asked. */
  lagSecondsSum?: number
}

/** The terms of a summary at `now`: the bucket floors, and the stuck and cut-off bounds when known. */
export function lagTerms (now: Date, periodSeconds: number, options: { stuckBefore?: Date, cutoff?: Date, withLagSum?: boolean } = {}): LagTerms {
  return {
    lastProcessedFloors: LAG_BUCKET_PERIODS.map((k) => new Date(now.getTime() - (k + 1) * periodMs(periodSeconds))),
    stuckBefore: options.stuckBefore,
    cutoffFloor: options.cutoff === undefined ? undefined : lastProcessedFor(options.cutoff, periodSeconds),
    lagFrom: options.withLagSum === true ? lastProcessedFor(now, periodSeconds) : undefined,
  }
}

/**
 * The last processed timestamp below which an active scope is stuck: the
 * median's minus `stuckAfterPeriods` periods. Undefined when there is no
 * median (no active scope), and then no scope is stuck.
 */
export function stuckBefore (medianLastProcessed: Date | undefined, periodSeconds: number, stuckAfterPeriods: number): Date | undefined {
  return medianLastProcessed === undefined ? undefined : new Date(medianLastProcessed.getTime() - stuckAfterPeriods * periodMs(periodSeconds))
}

/**
 * `filter` narrowed to its active rows: undefined when it already excludes
 * them (`active: [false]`), so nothing can match.
 */
export function activeOnly (filter: ScopeFilter): ScopeFilter | undefined {
  if (filter.active !== undefined && !filter.active.includes(true)) return undefined
  return { ...filter, active: [true] }
}

/** Whether `filter` narrows nothing. */
export function isEmptyFilter (filter: ScopeFilter): boolean {
  return Object.values(filter).every((value) => value === undefined)
}

/** GET /v2/scope/summary's answer, in domain terms. */
export interface ScopeSummary {
  periodSeconds: number
  now: Date
  active: number
  inactive: number
  /** The oldest and the (lower) median rated-through time of the active scopes matched; null when none. */
  oldestRatedThrough: Date | null
  medianRatedThrough: Date | null
  /** Per bucket of {@link LAG_BUCKET_PERIODS} and beyond: active scopes lagging in (previous bound, bound], then more than 24 periods. */
  lagBuckets: { '0-1': number, '1-2': number, '2-6': number, '6-24': number, '24+': number }
  stuckAfterPeriods: number
  /** Rated through before this is stuck: the median of every active scope the caller sees, minus the stuck periods; null when none is active. */
  stuckRatedThroughBefore: Date | null
  stuck: number
  cutoff?: { at: Date, ratedThrough: number, notRatedThrough: number }
}

/** The non-cumulative buckets of a summary from the aggregate's cumulative counts. */
export function lagBuckets (aggregate: LagAggregate): ScopeSummary['lagBuckets'] {
  const [w1, w2, w6, w24] = aggregate.withinPeriods
  return { '0-1': w1, '1-2': w2 - w1, '2-6': w6 - w2, '6-24': w24 - w6, '24+': aggregate.active - w24 }
}
