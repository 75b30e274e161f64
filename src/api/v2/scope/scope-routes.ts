import type { Readable } from 'node:stream'
import type { FastifyInstance, FastifyReply } from 'fastify'
import { Type } from 'typebox'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { visibleScopeIds } from '../../../auth/policy/scope-access.ts'
import type { ScopeStateService } from '../../../domain/scope-state-service.ts'
import { changeContext } from '../../change-context.ts'
import { absoluteUrl } from '../../proxy-headers.ts'
import {
  AcceptedReply, CreateScopeBody, DryRunQuery, ErrorReply, IdempotentHeaders, IfMatchHeaders, ListScopesQuery, PatchScopeBody, ResetDryRunReply,
  ResetScopesBody, ScopeStateListResponse, ScopeStateResponse, ScopeSummaryQuery, ScopeSummaryReply,
} from './scope-schemas.ts'
import { resetJobLocation } from './reset-job-wire.ts'
import {
  createFromWire, dryRunFromWire, listEtag, listJson, listQueryFromWire, nextLink, patchFromWire, patchOptionsFromWire, resetFromWire,
  resetPreviewJson, scopeEtag, scopeJson, summaryQueryFromWire, summaryToWire,
} from './scope-wire.ts'

const errors = { 400: ErrorReply, 403: ErrorReply, 404: ErrorReply, 405: ErrorReply, 409: ErrorReply }
// The changes also answer 422: an Idempotency-Key already used with another body.
const changeErrors = { ...errors, 422: ErrorReply }

// Already JSON text (or a stream of it), written by scope-wire.ts: Fastify
// sends it as is, past the response schema, which documents it.
async function sendJson (reply: FastifyReply, json: string | Readable): Promise<FastifyReply> {
  return await reply.type('application/json').send(json)
}

/** GET/PUT/PATCH/POST /v2/scope: each a schema, a policy rule and one service call. */
export function registerScopeRoutes (parent: FastifyInstance, scopes: ScopeStateService): void {
  const app = parent.withTypeProvider<TypeBoxTypeProvider>()

  app.get('/v2/scope', {
    schema: { summary: 'List scope states', querystring: ListScopesQuery, response: { 200: ScopeStateListResponse, ...errors } },
    config: { rule: 'scope:get_state' },
  }, async (req, reply) => {
    const { filter, stuck, page } = listQueryFromWire(req.query, scopes.periodSeconds)
    // Only the scopes the policy lets the caller see (an owner rule: their project's).
    const listing = await scopes.list(filter, page, visibleScopeIds(req.scopeAccess), stuck)
    // A full page may continue: point at the next one (OpenStack's marker paging).
    if (listing.nextMarker !== undefined) reply.header('link', nextLink(absoluteUrl(req.origin, '/v2/scope'), req.query, listing.nextMarker, page.limit))
    // One row of a scope_id: its ETag, for a PATCH's If-Match.
    const etag = listEtag(filter, page, listing)
    if (etag !== undefined) reply.header('etag', etag)
    return await sendJson(reply, await listJson(listing))
  })

  // An extension: how far behind rating is, for the scopes the caller sees.
  app.get('/v2/scope/summary', {
    schema: { summary: 'How far behind the matching scopes are rated', querystring: ScopeSummaryQuery, response: { 200: ScopeSummaryReply, ...errors } },
    config: { rule: 'scope:get_summary' },
  }, async (req) => {
    const { filter, stuck, cutoff } = summaryQueryFromWire(req.query, scopes.periodSeconds)
    return summaryToWire(await scopes.summary(filter, visibleScopeIds(req.scopeAccess), { cutoff, stuck }))
  })

  app.put('/v2/scope', {
    schema: {
      summary: 'Reset the state of several scopes (asynchronous)',
      querystring: DryRunQuery,
      headers: IdempotentHeaders,
      body: ResetScopesBody,
      response: { 200: ResetDryRunReply, 202: AcceptedReply, ...changeErrors },
    },
    config: { rule: 'scope:reset_state', idempotent: true },
  }, async (req, reply) => {
    const reset = resetFromWire(req.body)
    const context = changeContext(req, req.body)
    // What the reset would cover; no job is recorded.
    if (dryRunFromWire(req.query)) return await sendJson(reply, resetPreviewJson(await scopes.previewReset(reset)))
    const { jobId } = await scopes.requestReset(reset, context)
    // CloudKitty's `{}` body; where to watch the reset is our addition.
    return await reply.code(202).header('location', resetJobLocation(req.origin, jobId)).send({})
  })

  app.patch('/v2/scope', {
    schema: {
      summary: 'Update one scope',
      querystring: DryRunQuery,
      headers: Type.Object({ ...IfMatchHeaders.properties, ...IdempotentHeaders.properties }),
      body: PatchScopeBody,
      response: { 200: ScopeStateResponse, ...changeErrors, 412: ErrorReply },
    },
    config: { rule: 'scope:patch_state', idempotent: true },
  }, async (req, reply) => {
    const { scopeId, changes } = patchFromWire(req.body)
    const context = changeContext(req, req.body)
    // If-Match: compared by the service on the row it reads (RFC 9110 §13.1.1).
    const options = patchOptionsFromWire(req.headers['if-match'])
    // A dry run's row is not stored: no ETag, which If-Match could never match.
    if (dryRunFromWire(req.query)) return await sendJson(reply, scopeJson(await scopes.previewPatch(scopeId, changes, options)))
    const changed = await scopes.patch(scopeId, changes, context, options)
    return await sendJson(reply.header('etag', scopeEtag(changed)), scopeJson(changed))
  })

  app.post('/v2/scope', {
    schema: {
      summary: 'Create a scope ahead of discovery',
      querystring: DryRunQuery,
      headers: IdempotentHeaders,
      body: CreateScopeBody,
      response: { 200: ScopeStateResponse, ...changeErrors },
    },
    config: { rule: 'scope:post_state', idempotent: true },
  }, async (req, reply) => {
    const scope = createFromWire(req.body)
    const context = changeContext(req, req.body)
    if (dryRunFromWire(req.query)) return await sendJson(reply, scopeJson(await scopes.previewCreate(scope)))
    const created = await scopes.create(scope, context)
    return await sendJson(reply.header('etag', scopeEtag(created)), scopeJson(created))
  })
}
