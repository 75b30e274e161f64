import { findEvents } from '../storage/event-repository.ts'
import type { Store } from '../storage/store.ts'
import { ScopeKeeperError } from './errors.ts'
import type { EventFilter, ScopeEvent } from './scope-event.ts'
import type { Page } from './scope-state.ts'

/**
 * The audit history of changes made through scopekeeper, newest first.
 * `visibleScopeIds` is what the caller may see (undefined: everything): an
 * event about other scopes, or about several at once, is then left out.
 */
export class EventService {
  constructor (private readonly store: Store) {}

  /** One page of events and the next page's marker; an empty page is SCOPE_NOT_FOUND, as GET /v2/scope answers. */
  async list (filter: EventFilter, page: Pick<Page, 'limit' | 'marker'>, visibleScopeIds?: readonly string[]): Promise<{ events: ScopeEvent[], nextMarker?: number }> {
    let scopeIds = filter.scopeIds
    if (visibleScopeIds !== undefined) scopeIds = (scopeIds ?? [...visibleScopeIds]).filter((id) => visibleScopeIds.includes(id))
    const found = scopeIds?.length === 0 ? { events: [] } : await findEvents(this.store, { ...filter, scopeIds }, page)
    if (found.events.length === 0) throw new ScopeKeeperError('SCOPE_NOT_FOUND', 'No resource found for provided filters.')
    return found
  }
}
