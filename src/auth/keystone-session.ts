import type { Logger } from 'pino'
import type { KeystoneCredentials } from '../config/config-schema.ts'
import { ScopeKeeperError, type ErrorCode } from '../domain/errors.ts'
import { keystoneFetch, tlsFailure, type KeystoneTls } from './keystone-tls.ts'

/** Who scopekeeper is to Keystone (the credentials of one section) and how it reaches it. */
export interface KeystoneSessionOptions extends KeystoneCredentials {
  /** The configuration section the settings come from, as messages name it: `[keystone_authtoken]`. */
  section: string
  /** The catalog's identity endpoint of this interface and region is used after the first token; else authUrl. */
  interface: string
  /** Empty: any region. */
  regionName: string
  tls?: KeystoneTls
  /** Bound on each request to Keystone. */
  requestTimeoutMs: number
  /**
   * The code of the error thrown when Keystone refuses these credentials:
   * IDENTITY_UNAVAILABLE (503) where the API must look merely unavailable
   * (token validation), IDENTITY_REFUSED (502) where the refusal is the
   * answer (reconciliation).
   */
  refusedCode?: Extract<ErrorCode, 'IDENTITY_UNAVAILABLE' | 'IDENTITY_REFUSED'>
}

export interface KeystoneSessionDeps {
  logger: Pick<Logger, 'warn' | 'error' | 'info'>
  /** Milliseconds since the epoch; tests move it. */
  clock?: () => number
  fetch?: typeof fetch
}

/** scopekeeper's own token, where to use it, and whose it is. */
export interface ServiceToken {
  token: string
  /** Our clock's time after which we ask for a new one. */
  renewAt: number
  /** `…/v3`, from the catalog, else from auth_url. */
  identityUrl: string
  /** The id of the user the token is for (keystoneauth1's `session.get_user_id()`). */
  userId: string
}

interface IssuedTokenBody {
  token?: {
    expires_at?: string
    issued_at?: string
    user?: { id?: string }
    catalog?: Array<{ type?: string, endpoints?: Array<{ interface?: string, region?: string, region_id?: string, url?: string }> }>
  }
}

// Renew our own token this long before it expires (keystoneauth renews 120 s before).
const RENEW_MARGIN_MS = 120_000
// At most one warning per this interval while Keystone stays unreachable.
const WARN_INTERVAL_MS = 10_000

/** `http://host:5000`, `http://host:5000/`, `http://host:5000/v3/` → `http://host:5000/v3`. */
export function v3Url (url: string): string {
  const base = url.replace(/\/+$/, '')
  return /\/v3$/.test(base) ? base : `${base}/v3`
}

function isClosedConnection (error: unknown): boolean {
  const code = (error as { cause?: { code?: string } })?.cause?.code
  return code === 'UND_ERR_SOCKET' || code === 'ECONNRESET' || code === 'EPIPE'
}

/**
 * Reads an unwanted (small, error) body to its end rather than cancelling
 * it: the connection then stays reusable, and a front end that waits for the
 * client to close it (uWSGI's https-socket) is not held up.
 */
export async function discard (response: Response): Promise<void> {
  try { await response.arrayBuffer() } catch { /* the status is what counts */ }
}

/**
 * scopekeeper's authenticated side of Keystone, as a keystoneauth1 session
 * with a password plugin is to an OpenStack service: it takes a project
 * token for the configured user at first use, renews it two minutes before
 * it expires (or at once when told it was refused), and sends requests
 * with a bounded time and the configured TLS. Concurrent callers share one
 * token request.
 *
 * Every failure to reach Keystone is IDENTITY_UNAVAILABLE (503); the
 * operator's reason goes to the log (at most once per 10 s), never the
 * password. A refusal of the credentials is {@link KeystoneSessionOptions.refusedCode}.
 */
export class KeystoneSession {
  private readonly clock: () => number
  private readonly fetch: typeof fetch
  private readonly closeConnections: () => Promise<void>
  private current: ServiceToken | undefined
  private renewing: Promise<ServiceToken> | undefined
  private lastWarning = -Infinity

  constructor (readonly options: KeystoneSessionOptions, private readonly deps: KeystoneSessionDeps) {
    this.clock = deps.clock ?? Date.now
    const tls = options.tls === undefined ? undefined : keystoneFetch(options.tls)
    this.fetch = deps.fetch ?? tls?.fetch ?? globalThis.fetch
    this.closeConnections = tls?.close ?? (async () => {})
  }

  /** Closes the connections kept to Keystone (those of a TLS setting). */
  async close (): Promise<void> {
    await this.closeConnections()
  }

  /** IDENTITY_UNAVAILABLE; `message` goes to the log, at most once per {@link WARN_INTERVAL_MS}. */
  unavailable (message: string, cause?: unknown, level: 'warn' | 'error' = 'warn'): ScopeKeeperError {
    this.log(message, cause, level)
    return new ScopeKeeperError('IDENTITY_UNAVAILABLE', 'The identity service (Keystone) is unavailable; try again later.', { cause })
  }

  /**
   * Keystone refused what scopekeeper asked with these credentials:
   * {@link KeystoneSessionOptions.refusedCode}. `message` goes to the log
   * as an error; `what` (no secret in it) completes the client's message.
   */
  refused (message: string, what: string): ScopeKeeperError {
    if ((this.options.refusedCode ?? 'IDENTITY_UNAVAILABLE') === 'IDENTITY_UNAVAILABLE') return this.unavailable(message, undefined, 'error')
    this.log(message, undefined, 'error')
    return new ScopeKeeperError('IDENTITY_REFUSED', `Keystone refused scopekeeper's request ${what}, made with the credentials of ${this.options.section}; see the server log.`)
  }

  private log (message: string, cause: unknown, level: 'warn' | 'error'): void {
    const now = this.clock()
    if (now - this.lastWarning >= WARN_INTERVAL_MS) {
      this.lastWarning = now
      this.deps.logger[level]({ err: cause }, message)
    }
  }

  /**
   * scopekeeper's own token: the current one until its renewal time, else a
   * new one (one request at a time, shared by every caller). `rejected` is a
   * token Keystone just refused, which is never handed out again.
   */
  async token (rejected?: string): Promise<ServiceToken> {
    const current = this.current
    if (current !== undefined && current.token !== rejected && this.clock() < current.renewAt) return current
    if (this.renewing === undefined) {
      this.renewing = this.issue().finally(() => { this.renewing = undefined })
    }
    return await this.renewing
  }

  private async issue (): Promise<ServiceToken> {
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
        throw this.refused(`Keystone at ${o.authUrl} refused scopekeeper's service credentials (${o.section} username ${o.username} in ${where(o.userDomainId, o.userDomainName)}, password, project_name ${o.projectName} in ${where(o.projectDomainId, o.projectDomainName)})`, 'for a token')
      }
      throw this.unavailable(`Keystone answered ${response.status} when scopekeeper asked for its own token`)
    }
    const body = await this.readJson<IssuedTokenBody>(response)
    const issuedAt = Date.parse(body.token?.issued_at ?? '')
    const expiresAt = Date.parse(body.token?.expires_at ?? '')
    const userId = body.token?.user?.id
    if (!Number.isFinite(issuedAt) || !Number.isFinite(expiresAt) || userId === undefined) throw this.unavailable('Keystone sent a token body scopekeeper cannot read')
    // Lifetime by Keystone's clock, counted on ours: clock skew cannot make us keep an expired token.
    const lifetime = expiresAt - issuedAt
    const issued = {
      token,
      renewAt: this.clock() + lifetime - Math.min(RENEW_MARGIN_MS, lifetime / 2),
      identityUrl: this.identityUrl(body),
      userId,
    }
    this.current = issued
    this.deps.logger.info({ user: o.username, identityUrl: issued.identityUrl, validForSeconds: Math.round(lifetime / 1000) }, `got scopekeeper's own Keystone token (${o.section})`)
    return issued
  }

  /**
   * A domain as Keystone's password method and project scope name it: by id
   * when `*_domain_id` is set, else by name. The id wins when both are set,
   * as in keystoneauth1 (`identity/v3/password.py`
   * `PasswordMethod.get_auth_data` for the user, `identity/v3/base.py`
   * `Auth.get_auth_ref` for the project scope).
   */
  private domain (id: string, name: string): { id: string } | { name: string } {
    return id !== '' ? { id } : { name }
  }

  /** The catalog's identity endpoint for our interface and region, as keystonemiddleware picks it; else auth_url. */
  private identityUrl (body: IssuedTokenBody): string {
    const { interface: wanted, regionName } = this.options
    for (const service of body.token?.catalog ?? []) {
      if (service.type !== 'identity') continue
      const endpoint = service.endpoints?.find((e) => e.interface === wanted && (regionName === '' || e.region_id === regionName || e.region === regionName))
      if (endpoint?.url !== undefined) return v3Url(endpoint.url)
    }
    return v3Url(this.options.authUrl)
  }

  /** One request to Keystone, bounded in time; a failure to get an answer is IDENTITY_UNAVAILABLE. */
  async request (url: string, init: RequestInit): Promise<Response> {
    const signal = AbortSignal.timeout(this.options.requestTimeoutMs)
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.fetch(url, { ...init, redirect: 'manual', signal })
      } catch (error) {
        // A kept-alive connection the server closed meanwhile fails at once:
        // try once more on a new one (every request here is safe to repeat).
        if (attempt === 0 && !signal.aborted && isClosedConnection(error)) continue
        const tls = tlsFailure(error, url, this.options.tls, this.options.section)
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
      ? `; if Keystone requires a client certificate, set ${this.options.section} certfile and keyfile`
      : ''
    return ` (${cause.code}: ${cause.message ?? ''})${hint}`
  }

  /** A response's JSON body; one that does not parse is IDENTITY_UNAVAILABLE. */
  async readJson<T> (response: Response): Promise<T> {
    try {
      return await response.json() as T
    } catch (error) {
      throw this.unavailable('Keystone sent a body scopekeeper cannot read', error)
    }
  }
}
