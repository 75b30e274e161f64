import type { Actor, ChangeContext } from './change-context.ts'

/**
 * What a change made through scopekeeper was, as the audit history records
 * it. Changes CloudKitty's own processor makes to a shared database are not
 * seen: it writes the table directly.
 * - `created`: a scope registered; details are its initial fields.
 * - `patched`: scope_key, fetcher or collector changed; details
 *   `{changes: {field: {old, new}}}`.
 * - `activated` / `deactivated`: the active flag flipped; details
 *   `{active: {old, new}}`.
 * - `reset_requested`: a PUT accepted; details its filter, timestamp and
 *   scope count.
 * - `reset_applied`: one scope moved by a reset job; details its old and new
 *   timestamp.
 * - `reset_cancelled`: a reset job cancelled; details how many scopes it had
 *   applied.
 */
export const EVENT_KINDS = ['created', 'patched', 'activated', 'deactivated', 'reset_requested', 'reset_applied', 'reset_cancelled'] as const
export type EventKind = typeof EVENT_KINDS[number]

/** One entry of a scope's history, as GET /v2/scope/events lists it. */
export interface ScopeEvent {
  id: number
  kind: EventKind
  /** The scope it is about; null for a reset of several scopes, or a batch listed without a scope filter. */
  scopeId: string | null
  jobId: number | null
  createdAt: Date
  actor: Actor
  requestId: string | null
  reason: string | null
  details: Record<string, unknown>
}

/** A change to record: its kind, what it is about, and who made it. */
export interface NewEvent {
  kind: EventKind
  scopeId: string | null
  jobId?: number | null
  details: Record<string, unknown>
  context: ChangeContext
  at: Date
}

/** Which events a listing is about; each present field is a set of accepted values, fields ANDed. */
export interface EventFilter {
  scopeIds?: string[]
  kinds?: EventKind[]
  userIds?: string[]
  /** Inclusive bounds on when the change was made. */
  since?: Date
  until?: Date
}

/** One scope state a reset moved, and the timestamp it had before. */
export interface MovedScope {
  id: number
  scopeId: string
  old: Date
}

/** One scope state a bulk activation flipped. */
export interface FlippedScope {
  id: number
  scopeId: string
}
