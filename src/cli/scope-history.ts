import type { Column } from './output-format.ts'
import type { ChangeAuthor, ScopeEventReply } from './wire.ts'

/** `scope history` columns: when, what, who, and a short text of the change made from the event's `details`. */
export const HISTORY_COLUMNS: Column[] = [
  { key: 'created_at', label: 'Created At' },
  { key: 'kind', label: 'Kind' },
  { key: 'user', label: 'User' },
  { key: 'project_id', label: 'Project ID' },
  { key: 'request_id', label: 'Request ID' },
  { key: 'reason', label: 'Reason' },
  { key: 'change', label: 'Change' },
]

/** A value in a change text: strings bare, `true`/`false`, `null`, anything else as compact JSON. */
function valueText (value: unknown): string {
  if (typeof value === 'string') return value
  if (value === undefined) return 'null'
  return JSON.stringify(value)
}

function isRecord (value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
}

/** `{"collector": {"old": "gnocchi", "new": "prometheus"}}` → `collector gnocchi → prometheus`. */
function changesText (changes: Record<string, unknown>): string {
  return Object.entries(changes).map(([field, change]) => isRecord(change) && ('old' in change || 'new' in change)
    ? `${field} ${valueText(change.old)} → ${valueText(change.new)}`
    : `${field} ${valueText(change)}`).join(', ')
}

/** The fields of a `created` event, the usual ones first: `scope_key project_id, fetcher keystone, …`. */
const CREATED_ORDER = ['scope_key', 'fetcher', 'collector', 'active', 'last_processed_timestamp']

function fieldsText (details: Record<string, unknown>): string {
  const keys = [...CREATED_ORDER.filter((k) => k in details), ...Object.keys(details).filter((k) => !CREATED_ORDER.includes(k))]
  return keys.map((k) => `${k} ${valueText(details[k])}`).join(', ')
}

/** A reset's filter: `all scopes`, or `scope_id a,b; collector gnocchi`. */
function filterText (filter: unknown): string {
  if (!isRecord(filter)) return ''
  if (filter.all_scopes === true && Object.keys(filter).every((k) => k === 'all_scopes' || filter[k] === undefined || filter[k] === null)) return 'all scopes'
  const parts = Object.entries(filter)
    .filter(([k, v]) => k !== 'all_scopes' && v !== undefined && v !== null)
    .map(([k, v]) => `${k} ${Array.isArray(v) ? v.map(valueText).join(',') : valueText(v)}`)
  return parts.length === 0 ? 'all scopes' : parts.join('; ')
}

function plural (count: unknown, word: string): string {
  return `${valueText(count)} ${word}${count === 1 ? '' : 's'}`
}

/**
 * A short text of what an event changed, made from its `details`:
 * `collector gnocchi → prometheus`, `active true → false`,
 * `reset to 2019-07-01T00:00:00+00:00 (from 2024-03-01T00:00:00+00:00)`.
 * An unknown kind (a newer server's) shows its details as compact JSON.
 */
export function changeText (event: Pick<ScopeEventReply, 'kind' | 'details' | 'job_id'>): string {
  const details = isRecord(event.details) ? event.details : {}
  const job = event.job_id === null || event.job_id === undefined ? '' : ` (job ${event.job_id})`
  switch (event.kind) {
    case 'created':
      return fieldsText(details)
    case 'patched':
      return isRecord(details.changes) ? changesText(details.changes) : changesText(details)
    case 'activated':
    case 'deactivated':
      return changesText(details)
    case 'reset_requested': {
      const filter = filterText(details.filter)
      const count = details.scopes_total === undefined ? '' : ` of ${plural(details.scopes_total, 'scope')}`
      return `reset${count} to ${valueText(details.last_processed_timestamp)} requested${filter === '' ? '' : ` (${filter})`}${job}`
    }
    case 'reset_applied':
      return `reset to ${valueText(details.last_processed_timestamp)} (from ${valueText(details.old_last_processed_timestamp)})${job}`
    case 'reset_cancelled':
      return `reset cancelled after ${plural(details.scopes_applied, 'scope')} applied${job}`
    default:
      return Object.keys(details).length === 0 ? '' : JSON.stringify(details)
  }
}

/** Who: the user's name, else their id, else `noauth` for a change made without authentication. */
export function userText (who: Partial<ChangeAuthor> & { auth?: string }): string | null {
  const name = who.user_name ?? who.user_id
  if (name !== null && name !== undefined && name !== '') return name
  return who.auth === undefined || who.auth === 'noauth' ? 'noauth' : null
}

/** One `scope history` row. */
export function historyRow (event: ScopeEventReply): Record<string, unknown> {
  return {
    created_at: event.created_at,
    kind: event.kind,
    user: userText(event),
    project_id: event.project_id,
    request_id: event.request_id,
    reason: event.reason,
    change: changeText(event),
  }
}
