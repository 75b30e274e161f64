import type { EventFilter, EventKind, ScopeEvent } from '../../../domain/scope-event.ts'
import { DEFAULT_PAGE_SIZE, type Page } from '../../../domain/scope-state.ts'
import { formatTimestamp, parseTimestamp } from '../../../domain/timestamps.ts'
import type { EventReply, ListEventsQuery } from './event-schemas.ts'
import { filterFromWire, splitFilterValues } from './scope-wire.ts'

/** An event as the API returns it; the only serializer of events. */
export function eventToWire (event: ScopeEvent): EventReply {
  return {
    id: event.id,
    kind: event.kind,
    scope_id: event.scopeId,
    job_id: event.jobId,
    created_at: formatTimestamp(event.createdAt),
    auth: event.actor.auth,
    user_id: event.actor.userId,
    user_name: event.actor.userName,
    project_id: event.actor.projectId,
    roles: event.actor.roles,
    request_id: event.requestId,
    reason: event.reason,
    details: event.details,
  }
}

/** GET /v2/scope/events query → filter and page. */
export function eventQueryFromWire (query: ListEventsQuery): { filter: EventFilter, page: Pick<Page, 'limit' | 'marker'> } {
  return {
    filter: {
      scopeIds: filterFromWire('scope_id', 'query string', query.scope_id),
      // The schema admits only kind words, so a split kind list is never empty.
      kinds: query.kind === undefined ? undefined : [...new Set(splitFilterValues(query.kind))] as EventKind[],
      userIds: filterFromWire('user_id', 'query string', query.user_id),
      since: query.since === undefined ? undefined : parseTimestamp(query.since, 'since'),
      until: query.until === undefined ? undefined : parseTimestamp(query.until, 'until'),
    },
    page: { limit: query.limit ?? DEFAULT_PAGE_SIZE, marker: query.marker },
  }
}
