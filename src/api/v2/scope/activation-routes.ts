import type { FastifyInstance, FastifyReply } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { ScopeStateService } from '../../../domain/scope-state-service.ts'
import { changeContext } from '../../change-context.ts'
import { ActivationBody, ActivationReply, DryRunQuery, ErrorReply, IdempotentHeaders } from './scope-schemas.ts'
import { activationFromWire, activationJson } from './scope-wire.ts'

// Already JSON text, written by scope-wire.ts: sent as is, past the response schema, which documents it.
async function sendJson (reply: FastifyReply, json: string): Promise<FastifyReply> {
  return await reply.type('application/json').send(json)
}

/**
 * POST /v2/scope/activation (an extension): switches `active` on every
 * scope state the body's filters match, in one transaction, audited; a
 * schema, a policy rule and one service call.
 */
export function registerActivationRoutes (parent: FastifyInstance, scopes: ScopeStateService): void {
  const app = parent.withTypeProvider<TypeBoxTypeProvider>()

  app.post('/v2/scope/activation', {
    schema: {
      summary: 'Activate or deactivate every matching scope (scopekeeper extension)',
      querystring: DryRunQuery,
      headers: IdempotentHeaders,
      body: ActivationBody,
      response: { 200: ActivationReply, 400: ErrorReply, 403: ErrorReply, 404: ErrorReply, 409: ErrorReply, 422: ErrorReply },
    },
    // `scopeFilter`: the body's scope_id is a filter, comma-separated values included, as PUT's is.
    config: { rule: 'scope:post_activation', idempotent: true, scopeFilter: true },
  }, async (req, reply) => {
    const { filter, stuck, active, dryRun } = activationFromWire(req.body, req.query, scopes.periodSeconds)
    const context = changeContext(req, req.body)
    const result = dryRun ? await scopes.previewActivation(filter, active, stuck) : await scopes.setActivation(filter, active, context, stuck)
    return await sendJson(reply, activationJson(active, result))
  })
}
