import type { FastifyRequest } from 'fastify'
import type { Credentials } from '../auth/credentials.ts'
import { REASON_MAX_LENGTH, type Actor, type ChangeContext } from '../domain/change-context.ts'
import { invalidInput } from '../domain/errors.ts'

/** Who the credentials are, for the audit history: under noauth, nobody known. */
export function actorOf (credentials: Credentials, strategy: 'keystone' | 'noauth'): Actor {
  if (strategy === 'noauth') return { auth: 'noauth', userId: null, userName: null, projectId: null, roles: [] }
  return {
    auth: 'keystone',
    userId: credentials.userId,
    userName: credentials.userName ?? null,
    projectId: credentials.projectId,
    roles: [...credentials.roles],
  }
}

/**
 * The context of a change request: its caller, its request id, and its
 * reason, from the body's `reason` or else the `X-Reason` header. An
 * `X-Reason` over the reason's bound is a 400 naming the header, as the
 * body's is one naming the field.
 */
export function changeContext (request: FastifyRequest, body: { reason?: string }): ChangeContext {
  const header = request.headers['x-reason']
  const fromHeader = (Array.isArray(header) ? header.join(', ') : header)?.trim()
  if (fromHeader !== undefined && fromHeader.length > REASON_MAX_LENGTH) {
    throw invalidInput(`Invalid X-Reason header: must be at most ${REASON_MAX_LENGTH} characters.`)
  }
  const reason = body.reason ?? (fromHeader === undefined || fromHeader === '' ? null : fromHeader)
  return { actor: request.actor, requestId: request.id, reason }
}
