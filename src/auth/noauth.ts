import type { Authenticator, Credentials } from './credentials.ts'

const ADMIN: Credentials = Object.freeze({ userId: null, projectId: null, roles: ['admin'], isAdmin: true, isAdminProject: true })

/** `auth_strategy = noauth`: every request acts as an admin, as in CloudKitty. */
export const noAuth: Authenticator = {
  async authenticate () { return ADMIN },
}
