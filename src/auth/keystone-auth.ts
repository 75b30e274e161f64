import { createHash } from 'node:crypto'
import type { Logger } from 'pino'
import type { Config } from '../config/config-schema.ts'
import { ConfigError } from '../config/load-config.ts'
import { ScopeKeeperError } from '../domain/errors.ts'
import type { Authenticator, Credentials, ServiceCredentials } from './credentials.ts'
import { discard, KeystoneSession } from './keystone-session.ts'
import { keystoneTls, type KeystoneTls } from './keystone-tls.ts'
import { ExpiringLru } from './token-cache.ts'

/**
 * How scopekeeper reaches Keystone and trusts its answers: the settings of
 * `[keystone_authtoken]` (see config-schema.ts), with the lists split and
 * the durations in milliseconds. `wwwAuthenticateUri` is where a 401 sends
 * clients; `regionName` empty means any region.
 */
export type KeystoneAuthOptions = Pick<Config['keystone'],
  'wwwAuthenticateUri' | 'authUrl' | 'username' | 'password' | 'projectName' | 'userDomainName' |
  'projectDomainName' | 'userDomainId' | 'projectDomainId' | 'regionName' | 'interface' |
  'serviceTokenRolesRequired' | 'tokenCacheSize'> & {
  serviceTokenRoles: string[]
  /** A private CA, a client certificate or `insecure`; undefined: Node's defaults. */
  tls?: KeystoneTls
  /** How long a validated token is trusted; 0 asks Keystone every time. */
  tokenCacheMs: number
  /** How long a refused token is refused without asking Keystone. */
  negativeCacheMs: number
  /** Bound on each request to Keystone. */
  requestTimeoutMs: number
}

export interface KeystoneAuthDeps {
  logger: Pick<Logger, 'warn' | 'error' | 'info'>
  /** The caller's `is_admin` (the policy's `context_is_admin`). */
  isAdmin: (credentials: Omit<Credentials, 'isAdmin'>) => boolean
  /** Milliseconds since the epoch; tests move it. */
  clock?: () => number
  fetch?: typeof fetch
}

/**
 * The Keystone options from `[keystone_authtoken]`, or a {@link ConfigError}
 * naming every required setting that is missing, or a TLS file that cannot
 * be read (see {@link keystoneTls}). Settings scopekeeper does not use
 * (`memcached_servers`, `memcache_*`, `service_type`, …) never reach here:
 * the config loader skips them.
 */
export function keystoneAuthOptions (settings: Config['keystone']): KeystoneAuthOptions {
  const required: Array<[string, string, string]> = [
    ['auth_url', settings.authUrl, 'AUTH_URL'],
    ['username', settings.username, 'USERNAME'],
    ['password', settings.password, 'PASSWORD'],
    ['project_name', settings.projectName, 'PROJECT_NAME'],
  ]
  const missing = required.filter(([, value]) => value === '')
  if (missing.length > 0) {
    const names = missing.map(([key, , env]) => `${key} (SCOPEKEEPER_KEYSTONE_AUTHTOKEN_${env})`).join(', ')
    throw new ConfigError(`[DEFAULT] auth_strategy = keystone needs [keystone_authtoken] ${names}; set them, or set [DEFAULT] auth_strategy (SCOPEKEEPER_DEFAULT_AUTH_STRATEGY, --auth) to noauth`)
  }
  return {
    wwwAuthenticateUri: settings.wwwAuthenticateUri === '' ? settings.authUrl : settings.wwwAuthenticateUri,
    authUrl: settings.authUrl,
    username: settings.username,
    password: settings.password,
    projectName: settings.projectName,
    userDomainName: settings.userDomainName,
    projectDomainName: settings.projectDomainName,
    userDomainId: settings.userDomainId,
    projectDomainId: settings.projectDomainId,
    tls: keystoneTls(settings),
    regionName: settings.regionName,
    interface: settings.interface,
    serviceTokenRoles: settings.serviceTokenRoles.split(',').map((r) => r.trim()).filter(Boolean),
    serviceTokenRolesRequired: settings.serviceTokenRolesRequired,
    tokenCacheMs: settings.tokenCacheTime * 1000,
    tokenCacheSize: settings.tokenCacheSize,
    negativeCacheMs: settings.negativeCacheTime * 1000,
    requestTimeoutMs: settings.httpConnectTimeout * 1000,
  }
}

/** What Keystone says about a valid token, before `is_admin` is decided. */
type TokenCredentials = Omit<Credentials, 'isAdmin' | 'service'>

interface ValidToken {
  credentials: TokenCredentials
  expiresAt: number
}

interface KeystoneTokenBody {
  token?: {
    expires_at?: string
    user?: { id?: string, name?: string, domain?: { id?: string } }
    project?: { id?: string, domain?: { id?: string } }
    domain?: { id?: string }
    system?: { all?: boolean }
    roles?: Array<{ name?: string }>
    is_admin_project?: boolean
  }
}

// Fernet tokens are under 255 characters and JWS ones under 1000; anything
// much longer, or with characters a header cannot carry to Keystone, is no
// token (and a long one would make some Keystone front ends drop the
// connection, which must not turn into a 503).
const MAX_TOKEN_LENGTH = 2048
const TOKEN_CHARS = /^[\x21-\x7e]+$/

function firstHeader (value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value
}

function tokenKey (token: string): string {
  return createHash('sha256').update(token).digest('base64url')
}

/**
 * `auth_strategy = keystone`: validates each request's `X-Auth-Token` with
 * Keystone v3 (`GET /v3/auth/tokens`, `X-Subject-Token`), as
 * keystonemiddleware's auth_token does.
 *
 * - scopekeeper authenticates with its own service user's token, taken at
 *   the first request and renewed before it expires, or at once when
 *   Keystone stops accepting it;
 * - a validated token is cached in a bounded LRU for `tokenCacheMs`, never
 *   past its expiry; a refused one for `negativeCacheMs`; concurrent
 *   requests with the same token share one validation;
 * - a missing, malformed, invalid, expired or revoked token is
 *   UNAUTHENTICATED (401, `WWW-Authenticate: Keystone uri="…"`); Keystone
 *   unreachable, slow or refusing scopekeeper's own credentials is
 *   IDENTITY_UNAVAILABLE (503): a request is never let through unchecked.
 *
 * An `X-Service-Token` is validated the same way; when it carries one of
 * `serviceTokenRoles` it becomes {@link Credentials.service}, otherwise it
 * is ignored, or refused when `serviceTokenRolesRequired`.
 */
export class KeystoneAuth implements Authenticator {
  private readonly valid: ExpiringLru<ValidToken>
  private readonly invalid: ExpiringLru<true>
  private readonly pending = new Map<string, Promise<ValidToken>>()
  private readonly clock: () => number
  private readonly session: KeystoneSession

  constructor (private readonly options: KeystoneAuthOptions, private readonly deps: KeystoneAuthDeps) {
    this.clock = deps.clock ?? Date.now
    this.session = new KeystoneSession({ ...options, section: '[keystone_authtoken]' }, deps)
    this.valid = new ExpiringLru(options.tokenCacheSize, this.clock)
    this.invalid = new ExpiringLru(options.tokenCacheSize, this.clock)
  }

  /** Closes the connections kept to Keystone (those of a TLS {@link KeystoneAuthOptions.tls} setting). */
  async close (): Promise<void> {
    await this.session.close()
  }

  async authenticate (headers: Record<string, string | string[] | undefined>): Promise<Credentials> {
    const token = firstHeader(headers['x-auth-token'])
    if (token === undefined || token === '') throw this.unauthenticated('no X-Auth-Token')
    const user = await this.validate(token)
    let service: ServiceCredentials | null = null
    const serviceToken = firstHeader(headers['x-service-token'])
    if (serviceToken !== undefined && serviceToken !== '') {
      const validated = (await this.validate(serviceToken)).credentials
      const wanted = this.options.serviceTokenRoles.map((r) => r.toLowerCase())
      if (validated.roles.some((r) => wanted.includes(r.toLowerCase()))) {
        service = {
          userId: validated.userId ?? '',
          userDomainId: validated.userDomainId ?? null,
          projectId: validated.projectId,
          projectDomainId: validated.projectDomainId ?? null,
          roles: validated.roles,
        }
      } else if (this.options.serviceTokenRolesRequired) {
        throw this.unauthenticated('X-Service-Token lacks a service role')
      }
    }
    const credentials = { ...user.credentials, service }
    return { ...credentials, isAdmin: this.deps.isAdmin(credentials) }
  }

  private unauthenticated (reason: string): ScopeKeeperError {
    return new ScopeKeeperError('UNAUTHENTICATED', 'The request you have made requires authentication.', {
      wwwAuthenticate: `Keystone uri="${this.options.wwwAuthenticateUri}"`,
      cause: reason,
    })
  }

  /** The credentials behind `token`, from the cache or from Keystone. */
  private async validate (token: string): Promise<ValidToken> {
    if (token.length > MAX_TOKEN_LENGTH || !TOKEN_CHARS.test(token)) throw this.unauthenticated('malformed token')
    const key = tokenKey(token)
    const cached = this.valid.get(key)
    if (cached !== undefined) return cached
    if (this.invalid.get(key) === true) throw this.unauthenticated('token refused recently')
    let pending = this.pending.get(key)
    if (pending === undefined) {
      pending = this.askKeystone(token, key).finally(() => this.pending.delete(key))
      this.pending.set(key, pending)
    }
    return await pending
  }

  private async askKeystone (token: string, key: string): Promise<ValidToken> {
    const session = this.session
    let rejected: string | undefined
    for (let attempt = 0; attempt < 2; attempt++) {
      const service = await session.token(rejected)
      const response = await session.request(`${service.identityUrl}/auth/tokens?nocatalog`, {
        method: 'GET',
        headers: { 'x-auth-token': service.token, 'x-subject-token': token, accept: 'application/json' },
      })
      if (response.status === 200) {
        const body = await session.readJson<KeystoneTokenBody>(response)
        const validated = this.fromTokenBody(body)
        if (validated === undefined) {
          this.invalid.set(key, true, this.clock() + this.options.negativeCacheMs)
          throw this.unauthenticated('token expired')
        }
        this.valid.set(key, validated, Math.min(validated.expiresAt, this.clock() + this.options.tokenCacheMs))
        return validated
      }
      await discard(response)
      // 404: Keystone does not know the token (invalid, expired or revoked).
      if (response.status === 404 || response.status === 400) {
        this.invalid.set(key, true, this.clock() + this.options.negativeCacheMs)
        throw this.unauthenticated(`Keystone answered ${response.status}`)
      }
      // 401: our own token is no longer accepted (revoked, or Keystone's keys rotated): renew it once.
      if (response.status === 401 && attempt === 0) {
        rejected = service.token
        continue
      }
      if (response.status === 401 || response.status === 403) {
        throw session.unavailable(`Keystone answered ${response.status}: it does not let scopekeeper's service user ${this.options.username} validate tokens (it needs the admin role on its project)`, undefined, 'error')
      }
      throw session.unavailable(`Keystone answered ${response.status} to a token validation`)
    }
    throw session.unavailable('Keystone keeps refusing scopekeeper\'s own token')
  }

  private fromTokenBody (body: KeystoneTokenBody): ValidToken | undefined {
    const token = body.token
    const expiresAt = Date.parse(token?.expires_at ?? '')
    if (token?.user?.id === undefined || !Number.isFinite(expiresAt)) throw this.session.unavailable('Keystone sent a token body scopekeeper cannot read')
    if (expiresAt <= this.clock()) return undefined
    return {
      expiresAt,
      credentials: {
        userId: token.user.id,
        userName: token.user.name ?? null,
        userDomainId: token.user.domain?.id ?? null,
        projectId: token.project?.id ?? null,
        projectDomainId: token.project?.domain?.id ?? null,
        domainId: token.domain?.id ?? null,
        systemScope: token.system?.all === true ? 'all' : null,
        roles: (token.roles ?? []).map((r) => r.name).filter((n): n is string => typeof n === 'string'),
        // keystonemiddleware's default when Keystone has no admin project configured.
        isAdminProject: token.is_admin_project ?? true,
      },
    }
  }
}
