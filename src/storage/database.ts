import type { ColumnType, Generated, Insertable, Selectable, Updateable } from 'kysely'
import type { Actor } from '../domain/change-context.ts'
import type { EventKind } from '../domain/scope-event.ts'
import type { ResetJobStatus } from '../domain/reset-job.ts'

/** A datetime column: written as naive-UTC text, read back as text or a driver Date. */
type DateTimeColumn = ColumnType<string | Date, string, string>
/** A boolean column: SQLite and MySQL hand back 0/1, PostgreSQL a boolean. */
type BooleanColumn = ColumnType<number | boolean, number | boolean, number | boolean>

/**
 * CloudKitty's `cloudkitty_storage_states`, column for column: its names and
 * types are kept so a CloudKitty deployment can share the table (CONTRACT.md
 * "Storage schema").
 */
export interface StorageStatesTable {
  id: Generated<number>
  identifier: string
  scope_key: string | null
  fetcher: string | null
  collector: string | null
  last_processed_timestamp: DateTimeColumn
  scope_activation_toggle_date: ColumnType<string | Date, string | undefined, string>
  active: BooleanColumn
}

/** One accepted PUT /v2/scope: the reset of its matched scopes to `last_processed_timestamp`. */
export interface ResetJobsTable {
  id: Generated<number>
  status: ResetJobStatus
  last_processed_timestamp: DateTimeColumn
  scopes_total: number
  scopes_applied: Generated<number>
  /** Scope states skipped while CloudKitty's processor held their lock, listed in `scopekeeper_reset_job_waits`. */
  scopes_waiting: Generated<number>
  /** The highest `cloudkitty_storage_states.id` already applied: the resume point. */
  cursor_state_id: Generated<number>
  /**
   * Set for a reset of every scope: the job covers each state whose id is at
   * most this (the highest at acceptance) and lists none of them. Null when
   * the job's states are listed in `scopekeeper_reset_job_scopes`.
   */
  through_state_id: ColumnType<number | null, number | null | undefined, number | null>
  attempts: Generated<number>
  max_attempts: number
  run_at: DateTimeColumn
  locked_by: string | null
  locked_at: DateTimeColumn | null
  last_error: string | null
  request_id: string | null
  /** Who requested the reset ({@link Actor} as JSON), null on jobs older than the audit history. */
  requested_by: ColumnType<string | null, string | null | undefined, string | null>
  reason: ColumnType<string | null, string | null | undefined, string | null>
  created_at: DateTimeColumn
  started_at: DateTimeColumn | null
  finished_at: DateTimeColumn | null
  /** When DELETE /v2/scope/resets/{id} asked a running job to stop; the worker reads it in each batch's transaction. */
  cancel_requested_at: ColumnType<string | Date | null, string | null | undefined, string | null>
}

/** The scope states a reset job matched when it was accepted. */
export interface ResetJobScopesTable {
  job_id: number
  state_id: number
}

/** The scope states a job still has to apply once their processing lock is free. */
export interface ResetJobWaitsTable {
  job_id: number
  state_id: number
}

/** The audit history: one change made through scopekeeper (a reset batch: one row for its range of scope states). */
export interface EventsTable {
  id: Generated<number>
  kind: EventKind
  scope_id: string | null
  job_id: number | null
  first_state_id: number | null
  last_state_id: number | null
  created_at: DateTimeColumn
  auth: Actor['auth']
  user_id: string | null
  user_name: string | null
  project_id: string | null
  /** JSON array of role names. */
  roles: string
  request_id: string | null
  reason: string | null
  /** JSON object: what changed (see `EventKind`). */
  details: string
}

/**
 * One Idempotency-Key of one caller: the request it came with, and once that
 * request is answered (`status` not null) the answer replayed to its repeats.
 */
export interface IdempotencyKeysTable {
  caller: string
  idempotency_key: string
  method: string
  path: string
  request_hash: string
  claim_token: string
  status: number | null
  response_headers: string | null
  response_body: string | null
  created_at: DateTimeColumn
  completed_at: DateTimeColumn | null
}

/** Every table scopekeeper reads or writes. */
export interface Database {
  cloudkitty_storage_states: StorageStatesTable
  scopekeeper_reset_jobs: ResetJobsTable
  scopekeeper_reset_job_scopes: ResetJobScopesTable
  scopekeeper_reset_job_waits: ResetJobWaitsTable
  scopekeeper_events: EventsTable
  scopekeeper_idempotency_keys: IdempotencyKeysTable
}

export type StorageStateRow = Selectable<StorageStatesTable>
export type NewStorageStateRow = Insertable<StorageStatesTable>
export type StorageStateUpdate = Updateable<StorageStatesTable>
export type ResetJobRow = Selectable<ResetJobsTable>
