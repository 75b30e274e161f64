/** The service that sent an `X-Service-Token` along with the user's token, as Keystone validated it. */
export interface ServiceCredentials {
  userId: string
  userDomainId: string | null
  projectId: string | null
  projectDomainId: string | null
  roles: string[]
}

/** Who is calling, as authentication established it. */
export interface Credentials {
  userId: string | null
  /** The user's name as Keystone gave it with the token; null under noauth. */
  userName?: string | null
  projectId: string | null
  roles: string[]
  /** noauth: always; Keystone: the caller passes the `context_is_admin` rule. */
  isAdmin: boolean
  userDomainId?: string | null
  projectDomainId?: string | null
  /** Set for a domain-scoped token. */
  domainId?: string | null
  /** `all` for a system-scoped token. */
  systemScope?: string | null
  /** Keystone's `is_admin_project`; true when Keystone does not say (as keystonemiddleware assumes). */
  isAdminProject?: boolean
  service?: ServiceCredentials | null
}

/** Turns a request's headers into {@link Credentials}; throws UNAUTHENTICATED when it cannot. */
export interface Authenticator {
  authenticate: (headers: Record<string, string | string[] | undefined>) => Promise<Credentials>
  /** Releases what it holds (connections to Keystone); called when the app closes. */
  close?: () => Promise<void>
}
