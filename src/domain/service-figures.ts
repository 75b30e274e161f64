import type { ResetJobStatus } from './reset-job.ts'
import type { LastProcessedCount } from './scope-lag.ts'

/**
 * What the service's metrics read from its database: counts across every
 * project, for Prometheus. Storage answers them (`storage/service-figures.ts`);
 * the metrics never see a table.
 */
export interface ServiceFigures {
  /** Reset jobs by status, every status present (0 when none). */
  resetJobCounts: () => Promise<Record<ResetJobStatus, number>>
  /** When the oldest job that has yet to take effect was accepted; undefined when none is left. */
  oldestUnfinishedResetJob: () => Promise<Date | undefined>
  /** Scope states by active flag. */
  scopeCounts: () => Promise<{ active: number, inactive: number }>
  /** Every scope state counted by active flag and last processed timestamp: what the lag figures are computed from. */
  lastProcessedCounts: () => Promise<LastProcessedCount[]>
  /** Database connections in use and idle. */
  poolStats: () => { inUse: number, idle: number }
}
