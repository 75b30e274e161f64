import { loadCloud, type CloudEntry, type Env } from './clouds-yaml.ts'
import type { HttpResponse, HttpTransport, TransportOptions } from './http-transport.ts'
import { ApiError } from './scope-client.ts'
import { UsageError } from './usage-error.ts'

/** The catalog service type of CloudKitty's API, under which its endpoint is registered. */
export const RATING_SERVICE_TYPE = 'rating'

/** How the CLI authenticates; the OpenStack client's auth type names map onto these. */
export type AuthType = 'none' | 'token_endpoint' | 'password' | 'token' | 'application_credential'

const AUTH_TYPE_NAMES: Record<string, AuthType> = {
  none: 'none',
  noauth: 'none',
  'cloudkitty-noauth': 'none',
  admin_token: 'token_endpoint',
  token_endpoint: 'token_endpoint',
  password: 'password',
  v3password: 'password',
  token: 'token',
  v3token: 'token',
  v3applicationcredential: 'application_credential',
  applicationcredential: 'application_credential',
}

/** Connection flags as commander parses them (`--os-auth-url` → `osAuthUrl`). */
export interface ConnectionFlags {
  osCloud?: string
  osAuthType?: string
  osAuthUrl?: string
  osUsername?: string
  osUserId?: string
  osPassword?: string
  osProjectName?: string
  osProjectId?: string
  osUserDomainName?: string
  osUserDomainId?: string
  osProjectDomainName?: string
  osProjectDomainId?: string
  osDomainName?: string
  osDomainId?: string
  osSystemScope?: string
  osDefaultDomain?: string
  osApplicationCredentialId?: string
  osApplicationCredentialName?: string
  osApplicationCredentialSecret?: string
  osToken?: string
  osEndpoint?: string
  osRegionName?: string
  osInterface?: string
  osCacert?: string
  osCert?: string
  osKey?: string
  insecure?: boolean
  timeout?: string
}

// Each setting: its flag, its environment variables, and its clouds.yaml key
// (looked up under `auth:` first, then at the cloud's top level).
const AUTH_SETTINGS = {
  auth_url: { flag: 'osAuthUrl', env: ['OS_AUTH_URL'] },
  username: { flag: 'osUsername', env: ['OS_USERNAME'] },
  user_id: { flag: 'osUserId', env: ['OS_USER_ID'] },
  password: { flag: 'osPassword', env: ['OS_PASSWORD'] },
  project_name: { flag: 'osProjectName', env: ['OS_PROJECT_NAME', 'OS_TENANT_NAME'] },
  project_id: { flag: 'osProjectId', env: ['OS_PROJECT_ID', 'OS_TENANT_ID'] },
  user_domain_name: { flag: 'osUserDomainName', env: ['OS_USER_DOMAIN_NAME'] },
  user_domain_id: { flag: 'osUserDomainId', env: ['OS_USER_DOMAIN_ID'] },
  project_domain_name: { flag: 'osProjectDomainName', env: ['OS_PROJECT_DOMAIN_NAME'] },
  project_domain_id: { flag: 'osProjectDomainId', env: ['OS_PROJECT_DOMAIN_ID'] },
  domain_name: { flag: 'osDomainName', env: ['OS_DOMAIN_NAME'] },
  domain_id: { flag: 'osDomainId', env: ['OS_DOMAIN_ID'] },
  system_scope: { flag: 'osSystemScope', env: ['OS_SYSTEM_SCOPE'] },
  default_domain: { flag: 'osDefaultDomain', env: ['OS_DEFAULT_DOMAIN'] },
  application_credential_id: { flag: 'osApplicationCredentialId', env: ['OS_APPLICATION_CREDENTIAL_ID'] },
  application_credential_name: { flag: 'osApplicationCredentialName', env: ['OS_APPLICATION_CREDENTIAL_NAME'] },
  application_credential_secret: { flag: 'osApplicationCredentialSecret', env: ['OS_APPLICATION_CREDENTIAL_SECRET'] },
  token: { flag: 'osToken', env: ['OS_TOKEN'] },
} as const satisfies Record<string, { flag: keyof ConnectionFlags, env: string[] }>

/** The Keystone credentials and scope, by openstacksdk's setting names. */
export type AuthSettings = Partial<Record<keyof typeof AUTH_SETTINGS, string>>

/** Everything needed to reach the rating API, merged from flags, environment and clouds.yaml. */
export interface ConnectionSettings {
  authType: AuthType
  auth: AuthSettings
  /** A rating endpoint given directly (`--os-endpoint`): no catalog lookup. */
  endpoint?: string
  regionName?: string
  /** Which catalog endpoint: `public` (the default), `internal` or `admin`. */
  interface: 'public' | 'internal' | 'admin'
  transport: TransportOptions
  /** The clouds.yaml entry used, if any: `name (file)`. */
  cloud?: string
}

/** Where the rating API is and the token to send it (none for a noauth API). */
export interface Session {
  endpoint: string
  token?: string
}

/** Keystone answered, but the catalog has no usable rating endpoint; the CLI exits 1. */
export class CatalogError extends Error {
  override name = 'CatalogError'
}

function nonEmpty (value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined
  const text = String(value)
  return text === '' ? undefined : text
}

function isTrue (value: unknown): boolean {
  return value === true || (typeof value === 'string' && /^(1|true|yes|on)$/i.test(value.trim()))
}

function isFalse (value: unknown): boolean {
  return value === false || (typeof value === 'string' && /^(0|false|no|off)$/i.test(value.trim()))
}

function normalizeInterface (value: string | undefined): ConnectionSettings['interface'] {
  if (value === undefined) return 'public'
  const name = value.trim().toLowerCase().replace(/url$/, '')
  if (name === 'public' || name === 'internal' || name === 'admin') return name
  throw new UsageError(`Unknown interface '${value}': use public, internal or admin.`)
}

function parseTimeout (value: string | undefined): number | undefined {
  if (value === undefined) return undefined
  const seconds = Number(value)
  if (!(seconds > 0) || !Number.isFinite(seconds)) throw new UsageError(`Invalid timeout '${value}': give a positive number of seconds.`)
  return seconds
}

/**
 * Merges the connection settings as the OpenStack client does: a flag wins
 * over its `OS_*` environment variable, which wins over the clouds.yaml
 * entry named by `--os-cloud` or `OS_CLOUD` (see `loadCloud` for where it
 * is looked for). Without an explicit `--os-auth-type`, the type follows
 * from what is set: an application credential secret, then a token (with
 * an auth URL: Keystone token auth; without: the token is sent as is to
 * `--os-endpoint`), then a username or password, then a bare endpoint
 * (no auth). Throws {@link UsageError} when nothing usable is set.
 */
export function resolveConnection (flags: ConnectionFlags, env: Env, cwd: string): ConnectionSettings {
  const cloudName = nonEmpty(flags.osCloud) ?? nonEmpty(env.OS_CLOUD)
  let cloud: CloudEntry = {}
  let cloudLabel: string | undefined
  if (cloudName !== undefined) {
    const loaded = loadCloud(cloudName, env, cwd)
    cloud = loaded.cloud
    cloudLabel = `${cloudName} (${loaded.file})`
  }
  const fromCloud = (key: string): string | undefined => nonEmpty(cloud.auth?.[key]) ?? nonEmpty(cloud[key])
  const fromEnv = (names: readonly string[]): string | undefined => names.map((n) => nonEmpty(env[n])).find((v) => v !== undefined)

  const auth: AuthSettings = {}
  for (const [key, { flag, env: names }] of Object.entries(AUTH_SETTINGS)) {
    const value = nonEmpty(flags[flag]) ?? fromEnv(names) ?? fromCloud(key)
    if (value !== undefined) auth[key as keyof AuthSettings] = value
  }
  const endpoint = nonEmpty(flags.osEndpoint) ?? fromEnv(['OS_ENDPOINT']) ??
    nonEmpty(cloud[`${RATING_SERVICE_TYPE}_endpoint_override`]) ?? nonEmpty(cloud.auth?.endpoint)
  const regions = Array.isArray(cloud.regions) ? cloud.regions : []
  const firstRegion = regions.length === 0 ? undefined : nonEmpty(typeof regions[0] === 'object' ? (regions[0] as { name?: unknown }).name : regions[0])
  const regionName = nonEmpty(flags.osRegionName) ?? fromEnv(['OS_REGION_NAME']) ?? fromCloud('region_name') ?? firstRegion
  const iface = normalizeInterface(nonEmpty(flags.osInterface) ?? fromEnv(['OS_INTERFACE']) ?? fromCloud('interface') ?? fromCloud('endpoint_type'))

  const insecure = flags.insecure === true || isTrue(env.OS_INSECURE) || isTrue(cloud.insecure) || isFalse(cloud.verify)
  const transport: TransportOptions = {
    insecure,
    caFile: nonEmpty(flags.osCacert) ?? fromEnv(['OS_CACERT']) ?? fromCloud('cacert'),
    certFile: nonEmpty(flags.osCert) ?? fromEnv(['OS_CERT']) ?? fromCloud('cert'),
    keyFile: nonEmpty(flags.osKey) ?? fromEnv(['OS_KEY']) ?? fromCloud('key'),
    timeoutSeconds: parseTimeout(nonEmpty(flags.timeout) ?? fromEnv(['OS_API_TIMEOUT']) ?? fromCloud('api_timeout')),
  }

  const typeName = nonEmpty(flags.osAuthType) ?? fromEnv(['OS_AUTH_TYPE']) ?? fromCloud('auth_type')
  let authType: AuthType
  if (typeName !== undefined) {
    const known = AUTH_TYPE_NAMES[typeName.toLowerCase()]
    if (known === undefined) {
      throw new UsageError(`Unsupported auth type '${typeName}': use password, token, v3applicationcredential, admin_token or none.`)
    }
    authType = known
  } else if (auth.application_credential_secret !== undefined) {
    authType = 'application_credential'
  } else if (auth.token !== undefined) {
    authType = auth.auth_url === undefined ? 'token_endpoint' : 'token'
  } else if (auth.username !== undefined || auth.user_id !== undefined || auth.password !== undefined) {
    authType = 'password'
  } else if (endpoint !== undefined) {
    authType = 'none'
  } else {
    throw new UsageError('No API to talk to: give --os-endpoint URL (OS_ENDPOINT) for an API without auth, ' +
      'Keystone credentials (OS_AUTH_URL, OS_USERNAME, OS_PASSWORD, OS_PROJECT_NAME, …), OS_TOKEN, or --os-cloud NAME.')
  }
  checkComplete(authType, auth, endpoint)
  return { authType, auth, endpoint, regionName, interface: iface, transport, cloud: cloudLabel }
}

function checkComplete (authType: AuthType, auth: AuthSettings, endpoint: string | undefined): void {
  const missing = (what: string) => { throw new UsageError(`${authType} authentication needs ${what}.`) }
  if ((authType === 'none' || authType === 'token_endpoint') && endpoint === undefined) missing('--os-endpoint (OS_ENDPOINT)')
  if (authType === 'token_endpoint' && auth.token === undefined) missing('--os-token (OS_TOKEN)')
  if (authType === 'password' || authType === 'token' || authType === 'application_credential') {
    if (auth.auth_url === undefined) missing('--os-auth-url (OS_AUTH_URL)')
  }
  if (authType === 'password') {
    if (auth.username === undefined && auth.user_id === undefined) missing('--os-username (OS_USERNAME) or --os-user-id')
    if (auth.password === undefined) missing('--os-password (OS_PASSWORD)')
  }
  if (authType === 'token' && auth.token === undefined) missing('--os-token (OS_TOKEN)')
  if (authType === 'application_credential') {
    if (auth.application_credential_secret === undefined) missing('--os-application-credential-secret')
    if (auth.application_credential_id === undefined && auth.application_credential_name === undefined) {
      missing('--os-application-credential-id or --os-application-credential-name')
    }
  }
}

/** The Keystone v3 base URL of an auth URL given with or without its version (`…:5000`, `…:5000/v3`, `…/identity/v2.0`). */
export function identityV3Url (authUrl: string): string {
  const url = authUrl.trim().replace(/\/+$/, '')
  if (/\/v3$/.test(url)) return url
  if (/\/v2\.0$/.test(url)) return url.replace(/\/v2\.0$/, '/v3')
  return `${url}/v3`
}

function domainOf (id: string | undefined, name: string | undefined, defaultDomain: string): { id: string } | { name: string } {
  if (id !== undefined) return { id }
  if (name !== undefined) return { name }
  return { id: defaultDomain }
}

// OSC's --os-default-domain (default `default`) stands in for a missing user or project domain.
function userOf (auth: AuthSettings): Record<string, unknown> {
  if (auth.user_id !== undefined) return { id: auth.user_id }
  return { name: auth.username, domain: domainOf(auth.user_domain_id, auth.user_domain_name, auth.default_domain ?? 'default') }
}

/** Keystone's `scope` object: a project, else a domain, else the system; undefined for an unscoped token. */
export function scopeOf (auth: AuthSettings): Record<string, unknown> | undefined {
  if (auth.project_id !== undefined) return { project: { id: auth.project_id } }
  if (auth.project_name !== undefined) {
    return { project: { name: auth.project_name, domain: domainOf(auth.project_domain_id, auth.project_domain_name, auth.default_domain ?? 'default') } }
  }
  if (auth.domain_id !== undefined) return { domain: { id: auth.domain_id } }
  if (auth.domain_name !== undefined) return { domain: { name: auth.domain_name } }
  if (auth.system_scope !== undefined) return { system: { [auth.system_scope]: true } }
  return undefined
}

/** The POST /v3/auth/tokens body for password, token or application credential auth. */
export function tokenRequestBody (authType: AuthType, auth: AuthSettings): unknown {
  let identity: Record<string, unknown>
  let scope = scopeOf(auth)
  if (authType === 'password') {
    identity = { methods: ['password'], password: { user: { ...userOf(auth), password: auth.password } } }
  } else if (authType === 'token') {
    identity = { methods: ['token'], token: { id: auth.token } }
  } else {
    const credential = auth.application_credential_id !== undefined
      ? { id: auth.application_credential_id, secret: auth.application_credential_secret }
      : { name: auth.application_credential_name, secret: auth.application_credential_secret, user: userOf(auth) }
    identity = { methods: ['application_credential'], application_credential: credential }
    scope = undefined // an application credential carries its own scope
  }
  return { auth: { identity, ...(scope === undefined ? {} : { scope }) } }
}

/** One service of a Keystone v3 catalog. */
export interface CatalogService {
  type: string
  name?: string
  endpoints: Array<{ interface: string, region?: string | null, region_id?: string | null, url: string }>
}

/**
 * The URL of the `serviceType` endpoint with `iface` in `region` (any
 * region when none is given; the first listed wins). Throws
 * {@link CatalogError} naming what the catalog does offer.
 */
export function findEndpoint (catalog: CatalogService[], serviceType: string, iface: string, region?: string): string {
  const services = catalog.filter((s) => s.type === serviceType)
  if (services.length === 0) {
    throw new CatalogError(`The Keystone catalog has no service of type '${serviceType}' (it has: ${[...new Set(catalog.map((s) => s.type))].join(', ') || 'nothing'}); give the API's URL with --os-endpoint.`)
  }
  const endpoints = services.flatMap((s) => s.endpoints)
  const match = endpoints.find((e) => e.interface === iface && (region === undefined || e.region_id === region || e.region === region))
  if (match !== undefined) return match.url
  const offered = endpoints.map((e) => `${e.interface} in ${e.region_id ?? e.region ?? 'no region'}`).join(', ')
  throw new CatalogError(`The Keystone catalog has no ${iface} endpoint of service type '${serviceType}'${region === undefined ? '' : ` in region '${region}'`} (it has: ${offered || 'no endpoint'}); set --os-interface or --os-region-name.`)
}

function keystoneError (authUrl: string, response: HttpResponse): ApiError {
  let message = `HTTP ${response.status}`
  try {
    const body = JSON.parse(response.text) as { error?: { message?: string, title?: string } }
    message = body.error?.message ?? body.error?.title ?? message
  } catch { /* keep the status */ }
  return new ApiError(response.status, `Keystone at ${authUrl} refused to authenticate: ${message}`)
}

/**
 * Turns settings into a {@link Session}: without Keystone, the endpoint and
 * token as given; with Keystone, one token request (POST /v3/auth/tokens; a
 * token given without a scope is only validated, GET /v3/auth/tokens, to
 * read its catalog) and, unless `--os-endpoint` is set, the catalog's
 * `rating` endpoint for the interface and region. Keystone's refusal is
 * an `ApiError`; a catalog without the endpoint is a {@link CatalogError}.
 */
export async function openSession (settings: ConnectionSettings, transport: HttpTransport): Promise<Session> {
  const { authType, auth, endpoint } = settings
  if (authType === 'none') return { endpoint: endpoint! }
  if (authType === 'token_endpoint') return { endpoint: endpoint!, token: auth.token }
  const identity = identityV3Url(auth.auth_url!)
  let token: string | undefined
  let response: HttpResponse
  if (authType === 'token' && scopeOf(auth) === undefined) {
    // A token already scoped as the operator wants: keep it, read its catalog.
    if (endpoint !== undefined) return { endpoint, token: auth.token }
    response = await transport.send('GET', `${identity}/auth/tokens`, { headers: { 'x-auth-token': auth.token!, 'x-subject-token': auth.token! } })
    token = auth.token
  } else {
    // With --os-endpoint the catalog is not needed: Keystone's `nocatalog` leaves it out.
    response = await transport.send('POST', `${identity}/auth/tokens${endpoint === undefined ? '' : '?nocatalog'}`, {
      body: tokenRequestBody(authType, auth),
    })
    token = [response.headers['x-subject-token']].flat()[0]
  }
  if (response.status >= 400) throw keystoneError(auth.auth_url!, response)
  if (token === undefined) throw new ApiError(response.status, `Keystone at ${auth.auth_url!} answered without an X-Subject-Token header.`)
  if (endpoint !== undefined) return { endpoint, token }
  let catalog: CatalogService[] | undefined
  try {
    catalog = (JSON.parse(response.text) as { token?: { catalog?: CatalogService[] } }).token?.catalog
  } catch { /* handled below */ }
  if (catalog === undefined) {
    throw new CatalogError('Keystone returned no catalog (the token has no project, domain or system scope): set OS_PROJECT_NAME or OS_PROJECT_ID, or give --os-endpoint.')
  }
  return { endpoint: findEndpoint(catalog, RATING_SERVICE_TYPE, settings.interface, settings.regionName), token }
}
