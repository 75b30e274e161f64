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

/** How many scope states share one active flag and last processed timestamp. */
export interface LastProcessedCount {
  active: boolean
  lastProcessed: Date
  count: number
}

/** The lag figures of a set of scope states, computed from their {@link LastProcessedCount}s. */
export interface LagFigures {
  active: number
  inactive: number
  /** The earliest and the lower median last processed timestamp of the active ones; undefined when none. */
  oldestLastProcessed?: Date
  medianLastProcessed?: Date
  /** Per {@link LAG_BUCKET_PERIODS}, k: the active ones lagging at most k periods (cumulative, as a histogram's buckets). */
  withinPeriods: number[]
  /** The sum of the active ones' lags, in seconds (negative for a scope rated into the future). */
  lagSecondsSum: number
  /** The active ones last processed before `stuckBefore`; 0 without it. */
  stuck: number
  /** The active ones rated through `cutoff` (rated through it or later); 0 without it. */
  ratedThroughCutoff: number
}

/**
 * The lag figures at `now` of the scope states counted in `counts` (any
 * order), with the stuck bound and the cut-off when given. Lag is now
 * minus the rated-through time; a bucket's bound is inclusive.
 */
export function lagFigures (counts: readonly LastProcessedCount[], now: Date, periodSeconds: number, options: { stuckBefore?: Date, cutoff?: Date } = {}): LagFigures {
  const period = periodMs(periodSeconds)
  const active = counts.filter((c) => c.active).sort((a, b) => a.lastProcessed.getTime() - b.lastProcessed.getTime())
  const floors = LAG_BUCKET_PERIODS.map((k) => now.getTime() - (k + 1) * period)
  const cutoffFloor = options.cutoff === undefined ? undefined : options.cutoff.getTime() - period
  const figures: LagFigures = {
    active: 0, inactive: 0, withinPeriods: floors.map(() => 0), lagSecondsSum: 0, stuck: 0, ratedThroughCutoff: 0,
  }
  for (const c of counts) if (!c.active) figures.inactive += c.count
  for (const { lastProcessed, count } of active) {
    const at = lastProcessed.getTime()
    figures.active += count
    floors.forEach((floor, i) => { if (at >= floor) figures.withinPeriods[i] += count })
    figures.lagSecondsSum += count * (now.getTime() - period - at) / 1000
    if (options.stuckBefore !== undefined && at < options.stuckBefore.getTime()) figures.stuck += count
    if (cutoffFloor !== undefined && at >= cutoffFloor) figures.ratedThroughCutoff += count
  }
  figures.oldestLastProcessed = active[0]?.lastProcessed
  figures.medianLastProcessed = lowerMedian(active)
  return figures
}

/** The timestamp at rank ⌊(n − 1) / 2⌋ of `sorted` (ascending) weighted by count: a row's own value; undefined when empty. */
function lowerMedian (sorted: readonly LastProcessedCount[]): Date | undefined {
  const total = sorted.reduce((sum, c) => sum + c.count, 0)
  let rank = Math.floor((total - 1) / 2)
  for (const c of sorted) {
    if (rank < c.count) return c.lastProcessed
    rank -= c.count
  }
  return undefined
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

/** The non-cumulative buckets of a summary from the figures' cumulative counts. */
export function lagBuckets (figures: LagFigures): ScopeSummary['lagBuckets'] {
  const [w1, w2, w6, w24] = figures.withinPeriods
  return { '0-1': w1, '1-2': w2 - w1, '2-6': w6 - w2, '6-24': w24 - w6, '24+': figures.active - w24 }
}
