import type { FastifyInstance } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { visibleScopeIds } from '../../../auth/policy/scope-access.ts'
import { changeContext } from '../../change-context.ts'
import type { ResetJobService } from '../../../domain/reset-job-service.ts'
import {
  CancelResetJobQuery, CancelResetJobReply, ListResetJobsQuery, ResetJobListReply, ResetJobParams, ResetJobReply,
} from './reset-job-schemas.ts'
import { ErrorReply, ReasonHeader } from './scope-schemas.ts'
import { resetJobQueryFromWire, resetJobToWire } from './reset-job-wire.ts'

const errors = { 400: ErrorReply, 403: ErrorReply, 404: ErrorReply }

/**
 * GET /v2/scope/resets and /v2/scope/resets/{id}: the progress of accepted
 * resets (an extension), limited to the jobs whose scopes the caller may
 * see; DELETE /v2/scope/resets/{id} cancels one of those.
 */
export function registerResetJobRoutes (parent: FastifyInstance, jobs: ResetJobService): void {
  const app = parent.withTypeProvider<TypeBoxTypeProvider>()

  app.get('/v2/scope/resets', {
    schema: { summary: 'List reset jobs, newest first', querystring: ListResetJobsQuery, response: { 200: ResetJobListReply, ...errors } },
    config: { rule: 'scope:get_state' },
  }, async (req) => {
    const { filter, page } = resetJobQueryFromWire(req.query)
    return { results: (await jobs.list(filter, page, visibleScopeIds(req.scopeAccess))).map(resetJobToWire) }
  })

  app.get('/v2/scope/resets/:id', {
    schema: { summary: 'One reset job and its progress', params: ResetJobParams, response: { 200: ResetJobReply, ...errors } },
    config: { rule: 'scope:get_state' },
  }, async (req) => resetJobToWire(await jobs.get(req.params.id, visibleScopeIds(req.scopeAccess))))

  app.delete('/v2/scope/resets/:id', {
    schema: {
      summary: 'Cancel a reset job: at once while pending (200), after its current batch while running (202)',
      params: ResetJobParams,
      querystring: CancelResetJobQuery,
      headers: ReasonHeader,
      response: { 200: CancelResetJobReply, 202: CancelResetJobReply, ...errors, 409: ErrorReply },
    },
    config: { rule: 'scope:cancel_reset' },
  }, async (req, reply) => {
    const { job, outcome } = await jobs.cancel(req.params.id, changeContext(req, {}), visibleScopeIds(req.scopeAccess))
    return await reply.code(outcome === 'cancelled' ? 200 : 202).send(resetJobToWire(job))
  })
}
