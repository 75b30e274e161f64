import { sql } from 'kysely'
import { RESET_JOB_STATUSES, UNFINISHED_STATUSES, type ResetJobStatus } from '../domain/reset-job.ts'
import type { ServiceFigures } from '../domain/service-figures.ts'
import { fromStored } from '../domain/timestamps.ts'
import { booleanFromDb } from './engine-traits.ts'
import type { OpenDatabase } from './open-database.ts'
import { lastProcessedCounts } from './scope-state-repository.ts'

/** The metrics' figures, read from `database` when asked (each call is one aggregate query). */
export function serviceFigures (database: OpenDatabase): ServiceFigures {
  const { db } = database
  return {
    async resetJobCounts () {
      const rows = await db.selectFrom('scopekeeper_reset_jobs').select(['status', (eb) => eb.fn.countAll<number>().as('n')]).groupBy('status').execute()
      const counts = Object.fromEntries(RESET_JOB_STATUSES.map((status) => [status, 0])) as Record<ResetJobStatus, number>
      for (const row of rows) counts[row.status] = Number(row.n)
      return counts
    },
    async oldestUnfinishedResetJob () {
      const row = await db.selectFrom('scopekeeper_reset_jobs').select((eb) => eb.fn.min('created_at').as('oldest'))
        .where('status', 'in', UNFINISHED_STATUSES).executeTakeFirst()
      const oldest = row?.oldest
      return oldest === null || oldest === undefined ? undefined : fromStored(oldest as string | Date)
    },
    async scopeCounts () {
      const rows = await db.selectFrom('cloudkitty_storage_states').select(['active', sql<number>`count(*)`.as('n')]).groupBy('active').execute()
      const counts = { active: 0, inactive: 0 }
      for (const row of rows) counts[booleanFromDb(row.active) ? 'active' : 'inactive'] += Number(row.n)
      return counts
    },
    lastProcessedCounts: async () => await lastProcessedCounts(database, {}),
    poolStats: () => database.poolStats(),
  }
}
