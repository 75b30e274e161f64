import type { FastifyInstance } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { Static } from 'typebox'
import { visibleScopeIds } from '../../../auth/policy/scope-access.ts'
import type { ScopeStateService } from '../../../domain/scope-state-service.ts'
import { absoluteUrl } from '../../proxy-headers.ts'
import {
  AcceptedReply, CreateScopeBody, ErrorReply, ListScopesQuery, PatchScopeBody, ResetScopesBody,
  ScopeStateListReply, ScopeStateReply,
} from './scope-schemas.ts'
import { resetJobLocation } from './reset-job-wire.ts'
import { createFromWire, listQueryFromWire, listToJson, nextLink, patchFromWire, resetFromWire, toWire } from './scope-wire.ts'

const errors = { 400: ErrorReply, 403: ErrorReply, 404: ErrorReply, 405: ErrorReply, 409: ErrorReply }

/** GET/PUT/PATCH/POST /v2/scope: each a schema, a policy rule and one service call. */
export function registerScopeRoutes (parent: FastifyInstance, scopes: ScopeStateService): void {
  const app = parent.withTypeProvider<TypeBoxTypeProvider>()

  app.get('/v2/scope', {
    schema: { summary: 'List scope states', querystring: ListScopesQuery, response: { 200: ScopeStateListReply, ...errors } },
    config: { rule: 'scope:get_state' },
  }, async (req, reply) => {
    const { filter, page } = listQueryFromWire(req.query)
    // Only the scopes the policy lets the caller see (an owner rule: their project's).
    const visible = visibleScopeIds(req.scopeAccess)
    const list = await listToJson(await scopes.list(filter, page, visible))
    // A full page may continue: point at the next one (OpenStack's marker paging).
    const lastId = list.count === undefined ? await scopes.lastIdOfFullPage(filter, page, visible) : list.count === page.limit ? list.lastId : undefined
    if (lastId !== undefined) reply.header('link', nextLink(absoluteUrl(req.origin, '/v2/scope'), req.query, lastId, page.limit))
    // Already JSON text (or a stream of it): Fastify sends it as is.
    return await reply.type('application/json').send(list.body as unknown as Static<typeof ScopeStateListReply>)
  })

  app.put('/v2/scope', {
    schema: { summary: 'Reset the state of several scopes (asynchronous)', body: ResetScopesBody, response: { 202: AcceptedReply, ...errors } },
    config: { rule: 'scope:reset_state' },
  }, async (req, reply) => {
    const { jobId } = await scopes.requestReset(resetFromWire(req.body, req.id))
    // CloudKitty's `{}` body; where to watch the reset is our addition.
    return await reply.code(202).header('location', resetJobLocation(req.origin, jobId)).send({})
  })

  app.patch('/v2/scope', {
    schema: { summary: 'Update one scope', body: PatchScopeBody, response: { 200: ScopeStateReply, ...errors } },
    config: { rule: 'scope:patch_state' },
  }, async (req) => {
    const { scopeId, changes } = patchFromWire(req.body)
    return toWire(await scopes.patch(scopeId, changes))
  })

  app.post('/v2/scope', {
    schema: { summary: 'Create a scope ahead of discovery', body: CreateScopeBody, response: { 200: ScopeStateReply, ...errors } },
    config: { rule: 'scope:post_state' },
  }, async (req) => toWire(await scopes.create(createFromWire(req.body))))
}
