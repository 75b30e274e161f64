/** Who is calling, as authentication established it. */
export interface Credentials {
  userId: string | null
  projectId: string | null
  roles: string[]
  isAdmin: boolean
}

/** Turns a request's headers into {@link Credentials}; throws UNAUTHENTICATED when it cannot. */
export interface Authenticator {
  authenticate: (headers: Record<string, string | string[] | undefined>) => Promise<Credentials>
}
