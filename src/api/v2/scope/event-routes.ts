import type { FastifyInstance } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { visibleScopeIds } from '../../../auth/policy/scope-access.ts'
import type { EventService } from '../../../domain/event-service.ts'
import { absoluteUrl } from '../../proxy-headers.ts'
import { EventListReply, ListEventsQuery } from './event-schemas.ts'
import { eventQueryFromWire, eventToWire } from './event-wire.ts'
import { ErrorReply } from './scope-schemas.ts'
import { nextLink } from './scope-wire.ts'

const errors = { 400: ErrorReply, 403: ErrorReply, 404: ErrorReply }

/**
 * GET /v2/scope/events: the audit history of changes made through
 * scopekeeper (an extension), newest first, limited to the scopes the
 * caller may see.
 */
export function registerEventRoutes (parent: FastifyInstance, events: EventService): void {
  const app = parent.withTypeProvider<TypeBoxTypeProvider>()

  app.get('/v2/scope/events', {
    schema: { summary: 'List the audit history, newest first', querystring: ListEventsQuery, response: { 200: EventListReply, ...errors } },
    config: { rule: 'scope:get_events' },
  }, async (req, reply) => {
    const { filter, page } = eventQueryFromWire(req.query)
    const found = await events.list(filter, page, visibleScopeIds(req.scopeAccess))
    if (found.nextMarker !== undefined) reply.header('link', nextLink(absoluteUrl(req.origin, '/v2/scope/events'), req.query, found.nextMarker, page.limit))
    return { results: found.events.map(eventToWire) }
  })
}
