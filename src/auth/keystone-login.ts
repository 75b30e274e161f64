import { ScopeKeeperError } from '../domain/errors.ts'
import { v3Url } from './keystone-session.ts'
import { keystoneFetch, type KeystoneTls } from './keystone-tls.ts'

/** What the console's login form sends: a user's own password credentials, for a project-scoped token. */
export interface LoginCredentials {
  username: string
  password: string
  project: string
  userDomain: string
  projectDomain: string
}

export interface LoginToken {
  token: string
  expiresAt: string
  userName: string
  projectName: string
  roles: string[]
}

interface TokenBody {
  token?: { expires_at?: string, user?: { name?: string }, project?: { name?: string }, roles?: Array<{ name?: string }> }
}

/**
 * Exchanges an operator's password for a token with Keystone (POST
 * /v3/auth/tokens, the password method, scoped to a project), for the
 * operator console. The password goes to Keystone and nowhere else: it is
 * neither kept nor logged. The token is the user's own, so every API call
 * the console makes is checked by the policy as that user.
 */
export class KeystoneLogin {
  private readonly fetch: typeof fetch
  constructor (private readonly authUrl: string, tls: KeystoneTls | undefined, private readonly timeoutMs: number) {
    this.fetch = tls === undefined ? globalThis.fetch : keystoneFetch(tls).fetch
  }

  async login (credentials: LoginCredentials): Promise<LoginToken> {
    const domain = (name: string) => ({ name })
    let response: Response
    try {
      response = await this.fetch(`${v3Url(this.authUrl)}/auth/tokens?nocatalog`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json' },
        body: JSON.stringify({
          auth: {
            identity: { methods: ['password'], password: { user: { name: credentials.username, domain: domain(credentials.userDomain), password: credentials.password } } },
            scope: { project: { name: credentials.project, domain: domain(credentials.projectDomain) } },
          },
        }),
        signal: AbortSignal.timeout(this.timeoutMs),
      })
    } catch {
      throw new ScopeKeeperError('IDENTITY_UNAVAILABLE', 'Keystone does not answer; try again later.')
    }
    const token = response.headers.get('x-subject-token')
    const body = await response.json().catch(() => ({})) as TokenBody
    if (response.status === 401 || response.status === 404) {
      throw new ScopeKeeperError('UNAUTHENTICATED', 'Keystone refused these credentials: check the user name, password, project and domains.')
    }
    if (response.status !== 201 || token === null || body.token?.expires_at === undefined) {
      throw new ScopeKeeperError('IDENTITY_UNAVAILABLE', `Keystone answered ${response.status} to the login.`)
    }
    return {
      token,
      expiresAt: body.token.expires_at,
      userName: body.token.user?.name ?? credentials.username,
      projectName: body.token.project?.name ?? credentials.project,
      roles: (body.token.roles ?? []).map((r) => r.name ?? '').filter(Boolean),
    }
  }
}
