/**
 * Who made a change through scopekeeper, as authentication established it:
 * what the audit history records with every change.
 */
export interface Actor {
  /** `noauth` when the API runs without authentication: then no one is known. */
  auth: 'keystone' | 'noauth'
  userId: string | null
  userName: string | null
  projectId: string | null
  roles: string[]
}

/** What a change carries besides its own input: who asked, in which request, and why. */
export interface ChangeContext {
  actor: Actor
  /** The request's x-openstack-request-id. */
  requestId: string
  /** Why, as the caller said it (`X-Reason` or a `reason` field); stored, never required. */
  reason: string | null
}

/** Longest reason kept, in characters: a sentence or two, not a document. */
export const REASON_MAX_LENGTH = 1000
