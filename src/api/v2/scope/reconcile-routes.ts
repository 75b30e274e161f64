import type { FastifyInstance, FastifyReply } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { ScopeReconciliation } from '../../../domain/scope-reconciliation.ts'
import { changeContext } from '../../change-context.ts'
import { ReconcileBody, ReconcileReply } from './reconcile-schemas.ts'
import { reconcileFromWire, reconcileReportJson } from './reconcile-wire.ts'
import { ErrorReply, ReasonHeader } from './scope-schemas.ts'

const errors = { 400: ErrorReply, 403: ErrorReply, 502: ErrorReply, 503: ErrorReply }

/**
 * POST /v2/scope/reconcile (an extension): the scope states against
 * Keystone's projects. A dry run unless the body says `dry_run: false`.
 */
export function registerReconcileRoutes (parent: FastifyInstance, reconciliation: ScopeReconciliation): void {
  const app = parent.withTypeProvider<TypeBoxTypeProvider>()

  app.post('/v2/scope/reconcile', {
    schema: {
      summary: 'Compare the scope states with Keystone\'s projects; deactivate or register scopes on request',
      headers: ReasonHeader,
      body: ReconcileBody,
      response: { 200: ReconcileReply, ...errors },
    },
    config: { rule: 'scope:reconcile' },
  }, async (req, reply) => {
    const request = reconcileFromWire(req.body)
    const report = await reconciliation.reconcile(request, changeContext(req, req.body))
    // Already JSON text, written by reconcile-wire.ts: sent as is, past the response schema, which documents it.
    return await (reply as FastifyReply).type('application/json').send(reconcileReportJson(report))
  })
}
