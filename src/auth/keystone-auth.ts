import { createHash } from 'node:crypto'
import type { Logger } from 'pino'
import type { Config } from '../config/config-schema.ts'
import { ConfigError } from '../config/load-config.ts'
import { ScopeKeeperError } from '../domain/errors.ts'
import type { Authenticator, Credentials, ServiceCredentials } from './credentials.ts'
import { keystoneFetch, keystoneTls, tlsFailure, type KeystoneTls } from './keystone-tls.ts'
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

interface ServiceToken {
  token: string
  /** Our clock's time after which we ask for a new one. */
  renewAt: number
  /** `…/v3`, from the catalog, else from auth_url. */
  identityUrl: string
}

interface KeystoneTokenBody {
  token?: {
    expires_at?: string
    issued_at?: string
    user?: { id?: string, name?: string, domain?: { id?: string } }
    project?: { id?: string, domain?: { id?: string } }
    domain?: { id?: string }
    system?: { all?: boolean }
    roles?: Array<{ name?: string }>
    is_admin_project?: boolean
    catalog?: Array<{ type?: string, endpoints?: Array<{ interface?: string, region?: string, region_id?: string, url?: string }> }>
  }
}

// Fernet tokens are under 255 characters and JWS ones under 1000; anything
// much longer, or with characters a header cannot carry to Keystone, is no
// token (and a long one would make some Keystone front ends drop the
// connection, which must not turn into a 503).
const MAX_TOKEN_LENGTH = 2048
const TOKEN_CHARS = /^[\x21-\x7e]+$/
// Renew our own token this long before it expires (keystoneauth renews 120 s before).
const RENEW_MARGIN_MS = 120_000
// At most one warning per this interval while Keystone stays unreachable.
const WARN_INTERVAL_MS = 10_000

/** `http://host:5000`, `http://host:5000/`, `http://host:5000/v3/` → `http://host:5000/v3`. */
function v3Url (url: string): string {
  const base = url.replace(/\/+$/, '')
  return /\/v3$/.test(base) ? base : `${base}/v3`
}

function firstHeader (value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value
}

function isClosedConnection (error: unknown): boolean {
  const code = (error as { cause?: { code?: string } })?.cause?.code
  return code === 'UND_ERR_SOCKET' || code === 'ECONNRESET' || code === 'EPIPE'
}

// Reads an unwanted (small, error) body to its end rather than cancelling
// it: the connection then stays reusable, and a front end that waits for the
// client to close it (uWSGI's https-socket) is not held up.
async function discard (response: Response): Promise<void> {
  try { await response.arrayBuffer() } catch { /* the status is what counts */ }
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
  private readonly fetch: typeof fetch
  private readonly closeConnections: () => Promise<void>
  private service: ServiceToken | undefined
  private renewing: Promise<ServiceToken> | undefined
  private lastWarning = -Infinity

  constructor (private readonly options: KeystoneAuthOptions, private readonly deps: KeystoneAuthDeps) {
    this.clock = deps.clock ?? Date.now
    const tls = options.tls === undefined ? undefined : keystoneFetch(options.tls)
    this.fetch = deps.fetch ?? tls?.fetch ?? globalThis.fetch
    this.closeConnections = tls?.close ?? (async () => {})
    this.valid = new ExpiringLru(options.tokenCacheSize, this.clock)
    this.invalid = new ExpiringLru(options.tokenCacheSize, this.clock)
  }

  /** Closes the connections kept to Keystone (those of a TLS {@link KeystoneAuthOptions.tls} setting). */
  async close (): Promise<void> {
    await this.closeConnections()
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

  /** IDENTITY_UNAVAILABLE; `message` goes to the log, at most once per {@link WARN_INTERVAL_MS}. */
  private unavailable (message: string, cause?: unknown, level: 'warn' | 'error' = 'warn'): ScopeKeeperError {
    const now = this.clock()
    if (now - this.lastWarning >= WARN_INTERVAL_MS) {
      this.lastWarning = now
      this.deps.logger[level]({ err: cause }, message)
    }
    return new ScopeKeeperError('IDENTITY_UNAVAILABLE', 'The identity service (Keystone) is unavailable; try again later.', { cause })
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
    let rejected: string | undefined
    for (let attempt = 0; attempt < 2; attempt++) {
      const service = await this.serviceToken(rejected)
      const response = await this.request(`${service.identityUrl}/auth/tokens?nocatalog`, {
        method: 'GET',
        headers: { 'x-auth-token': service.token, 'x-subject-token': token, accept: 'application/json' },
      })
      if (response.status === 200) {
        const body = await this.readJson<KeystoneTokenBody>(response)
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
        throw this.unavailable(`Keystone answered ${response.status}: it does not let scopekeeper's service user ${this.options.username} validate tokens (it needs the admin role on its project)`, undefined, 'error')
      }
      throw this.unavailable(`Keystone answered ${response.status} to a token validation`)
    }
    throw this.unavailable('Keystone keeps refusing scopekeeper\'s own token')
  }

  private fromTokenBody (body: KeystoneTokenBody): ValidToken | undefined {
    const token = body.token
    const expiresAt = Date.parse(token?.expires_at ?? '')
    if (token?.user?.id === undefined || !Number.isFinite(expiresAt)) throw this.unavailable('Keystone sent a token body scopekeeper cannot read')
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

  /**
   * scopekeeper's own token: the current one until its renewal time, else a
   * new one (one request at a time, shared by every caller). `rejected` is a
   * token Keystone just refused, which is never handed out again.
   */
  private async serviceToken (rejected?: string): Promise<ServiceToken> {
    const current = this.service
    if (current !== undefined && current.token !== rejected && this.clock() < current.renewAt) return current
    if (this.renewing === undefined) {
      this.renewing = this.issueServiceToken().finally(() => { this.renewing = undefined })
    }
    return await this.renewing
  }

  private async issueServiceToken (): Promise<ServiceToken> {
    const o = this.options
    const response = await this.request(`${v3Url(o.authUrl)}/auth/tokens`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify({
        auth: {
          identity: { methods: ['password'], password: { user: { name: o.username, domain: this.domain(o.userDomainId, o.userDomainName), password: o.password } } },
          scope: { project: { name: o.projectName, domain: this.domain(o.projectDomainId, o.projectDomainName) } },
        },
      }),
    })
    const token = response.headers.get('x-subject-token')
    if (response.status !== 201 || token === null) {
      await discard(response)
      if (response.status === 401) {
        const where = (id: string, name: string) => id !== '' ? `domain id ${id}` : `domain ${name}`
        throw this.unavailable(`Keystone at ${o.authUrl} refused scopekeeper's service credentials ([keystone_authtoken] username ${o.username} in ${where(o.userDomainId, o.userDomainName)}, password, project_name ${o.projectName} in ${where(o.projectDomainId, o.projectDomainName)})`, undefined, 'error')
      }
      throw this.unavailable(`Keystone answered ${response.status} when scopekeeper asked for its own token`)
    }
    const body = await this.readJson<KeystoneTokenBody>(response)
    const issuedAt = Date.parse(body.token?.issued_at ?? '')
    const expiresAt = Date.parse(body.token?.expires_at ?? '')
    if (!Number.isFinite(issuedAt) || !Number.isFinite(expiresAt)) throw this.unavailable('Keystone sent a token body scopekeeper cannot read')
    // Lifetime by Keystone's clock, counted on ours: clock skew cannot make us keep an expired token.
    const lifetime = expiresAt - issuedAt
    const service = {
      token,
      renewAt: this.clock() + lifetime - Math.min(RENEW_MARGIN_MS, lifetime / 2),
      identityUrl: this.identityUrl(body),
    }
    this.service = service
    this.deps.logger.info({ user: o.username, identityUrl: service.identityUrl, validForSeconds: Math.round(lifetime / 1000) }, 'got scopekeeper\'s own Keystone token')
    return service
  }

  /**
   * A domain as Keystone's password method and project scope name it: by id
   * when `[keystone_authtoken] *_domain_id` is set, else by name. The id wins
   * when both are set, as in keystoneauth1 (`identity/v3/password.py`
   * `PasswordMethod.get_auth_data` for the user, `identity/v3/base.py`
   * `Auth.get_auth_ref` for the project scope).
   */
  private domain (id: string, name: string): { id: string } | { name: string } {
    return id !== '' ? { id } : { name }
  }

  /** The catalog's identity endpoint for our interface and region, as keystonemiddleware picks it; else auth_url. */
  private identityUrl (body: KeystoneTokenBody): string {
    const { interface: wanted, regionName } = this.options
    for (const service of body.token?.catalog ?? []) {
      if (service.type !== 'identity') continue
      const endpoint = service.endpoints?.find((e) => e.interface === wanted && (regionName === '' || e.region_id === regionName || e.region === regionName))
      if (endpoint?.url !== undefined) return v3Url(endpoint.url)
    }
    return v3Url(this.options.authUrl)
  }

  private async request (url: string, init: RequestInit): Promise<Response> {
    const signal = AbortSignal.timeout(this.options.requestTimeoutMs)
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.fetch(url, { ...init, redirect: 'manual', signal })
      } catch (error) {
        // A kept-alive connection the server closed meanwhile fails at once:
        // try once more on a new one (both requests are safe to repeat).
        if (attempt === 0 && !signal.aborted && isClosedConnection(error)) continue
        const tls = tlsFailure(error, url, this.options.tls)
        if (tls !== undefined) throw this.unavailable(tls, error, 'error')
        throw this.unavailable(`Keystone at ${new URL(url).origin} cannot be reached${this.reason(error, url)}`, error)
      }
    }
  }

  /** What a failed request's cause says, for the log line; and a hint when an https Keystone hangs up on a client without a certificate. */
  private reason (error: unknown, url: string): string {
    const cause = (error as { cause?: { code?: string, message?: string } })?.cause
    if (cause?.code === undefined) return ''
    const hint = isClosedConnection(error) && url.startsWith('https:') && this.options.tls?.cert === undefined
      ? '; if Keystone requires a client certificate, set [keystone_authtoken] certfile and keyfile'
      : ''
    return ` (${cause.code}: ${cause.message ?? ''})${hint}`
  }

  private async readJson<T> (response: Response): Promise<T> {
    try {
      return await response.json() as T
    } catch (error) {
      throw this.unavailable('Keystone sent a body scopekeeper cannot read', error)
    }
  }
}
