/** A scope as GET /v2/scope lists it. */
export interface Scope {
  scope_id: string
  scope_key: string
  fetcher: string
  collector: string
  state: string
  last_processed_timestamp: string
  active: boolean
  scope_activation_toggle_date: string
}

/** Seconds behind: now minus rated-through (the timestamp plus one period). */
export function lagSeconds (scope: Pick<Scope, 'last_processed_timestamp'>, periodSeconds: number, now: number): number {
  return (now - Date.parse(scope.last_processed_timestamp)) / 1000 - periodSeconds
}

export function duration (seconds: number): string {
  if (seconds <= 0) return 'on time'
  const days = Math.floor(seconds / 86400)
  const hours = Math.floor((seconds % 86400) / 3600)
  const minutes = Math.floor((seconds % 3600) / 60)
  if (days > 0) return hours > 0 ? `${days} d ${hours} h` : `${days} d`
  if (hours > 0) return minutes > 0 ? `${hours} h ${minutes} min` : `${hours} h`
  return `${Math.max(minutes, 1)} min`
}

/** An instant as the API writes it, shown explicitly in UTC. */
export function utc (iso: string | null | undefined): string {
  if (iso === null || iso === undefined) return '—'
  const at = new Date(iso)
  if (Number.isNaN(at.getTime())) return iso
  return at.toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC')
}

/** The first day of this month, midnight UTC: the usual billing cut-off. */
export function monthStart (now = new Date()): string {
  return `${now.toISOString().slice(0, 8)}01T00:00:00Z`
}
