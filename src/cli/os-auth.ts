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

/** One connection option of the CLI: a flag, its `OS_*` environment variables, and where clouds.yaml holds it. */
export interface ConnectionOption {
  /** The flag's argument in the help (`<url>`); none for a switch. */
  readonly value?: string
  /** What it sets, in the help. The help of an option that takes a value names its first variable after it. */
  readonly help: string
  /** Its environment variables, first set first wins: `OS_TENANT_NAME` is the old name of `OS_PROJECT_NAME`. */
  readonly env: readonly string[]
  /**
   * A Keystone credential or scope: its openstacksdk name (`auth_url`),
   * which is also its clouds.yaml key (under `auth:`, else at the cloud's
   * top level) and its key in {@link AuthSettings}.
   */
  readonly auth?: string
  /** Its clouds.yaml keys, each looked for under `auth:`, then at the cloud's top level; first set first wins. */
  readonly cloud?: readonly string[]
}

/**
 * The connection options, once, in the order the help lists them, keyed as
 * commander parses their flags (`osAuthUrl` is `--os-auth-url`). A flag
 * wins over its variables, which win over clouds.yaml (see
 * {@link resolveConnection}); the help, the flags' type and the lookup all
 * come from here. Where a setting has no `cloud` or `auth` key,
 * `resolveConnection` reads clouds.yaml its own way (`--os-endpoint`:
 * `rating_endpoint_override`, then `auth.endpoint`; `--insecure`:
 * `insecure`, or `verify: false`). `--debug` is no setting of the
 * connection, but the help lists it in this group, so it is here too.
 */
export const CONNECTION_OPTIONS = {
  osCloud: { value: '<name>', help: 'cloud in clouds.yaml', env: ['OS_CLOUD'] },
  osEndpoint: { value: '<url>', help: 'rating API URL, e.g. http://127.0.0.1:8889; no catalog lookup, and no auth unless credentials are set', env: ['OS_ENDPOINT'] },
  osAuthType: { value: '<type>', help: 'password, token, v3applicationcredential, admin_token or none; guessed from what is set', env: ['OS_AUTH_TYPE'], cloud: ['auth_type'] },
  osAuthUrl: { value: '<url>', help: 'Keystone URL, e.g. https://keystone:5000/v3', env: ['OS_AUTH_URL'], auth: 'auth_url' },
  osUsername: { value: '<name>', help: '', env: ['OS_USERNAME'], auth: 'username' },
  osUserId: { value: '<id>', help: '', env: ['OS_USER_ID'], auth: 'user_id' },
  osPassword: { value: '<password>', help: '', env: ['OS_PASSWORD'], auth: 'password' },
  osProjectName: { value: '<name>', help: '', env: ['OS_PROJECT_NAME', 'OS_TENANT_NAME'], auth: 'project_name' },
  osProjectId: { value: '<id>', help: '', env: ['OS_PROJECT_ID', 'OS_TENANT_ID'], auth: 'project_id' },
  osUserDomainName: { value: '<name>', help: '', env: ['OS_USER_DOMAIN_NAME'], auth: 'user_domain_name' },
  osUserDomainId: { value: '<id>', help: '', env: ['OS_USER_DOMAIN_ID'], auth: 'user_domain_id' },
  osProjectDomainName: { value: '<name>', help: '', env: ['OS_PROJECT_DOMAIN_NAME'], auth: 'project_domain_name' },
  osProjectDomainId: { value: '<id>', help: '', env: ['OS_PROJECT_DOMAIN_ID'], auth: 'project_domain_id' },
  osDomainName: { value: '<name>', help: 'domain scope', env: ['OS_DOMAIN_NAME'], auth: 'domain_name' },
  osDomainId: { value: '<id>', help: 'domain scope', env: ['OS_DOMAIN_ID'], auth: 'domain_id' },
  osSystemScope: { value: '<scope>', help: "system scope, e.g. 'all'", env: ['OS_SYSTEM_SCOPE'], auth: 'system_scope' },
  osDefaultDomain: { value: '<id>', help: "domain id of a user or project named without one; 'default' by default", env: ['OS_DEFAULT_DOMAIN'], auth: 'default_domain' },
  osApplicationCredentialId: { value: '<id>', help: '', env: ['OS_APPLICATION_CREDENTIAL_ID'], auth: 'application_credential_id' },
  osApplicationCredentialName: { value: '<name>', help: '', env: ['OS_APPLICATION_CREDENTIAL_NAME'], auth: 'application_credential_name' },
  osApplicationCredentialSecret: { value: '<secret>', help: '', env: ['OS_APPLICATION_CREDENTIAL_SECRET'], auth: 'application_credential_secret' },
  osToken: { value: '<token>', help: 'Keystone token', env: ['OS_TOKEN'], auth: 'token' },
  osRegionName: { value: '<region>', help: 'catalog region', env: ['OS_REGION_NAME'], cloud: ['region_name'] },
  osInterface: { value: '<interface>', help: 'catalog interface: public (default), internal or admin', env: ['OS_INTERFACE'], cloud: ['interface', 'endpoint_type'] },
  osCacert: { value: '<file>', help: 'PEM bundle of the CAs to trust', env: ['OS_CACERT'], cloud: ['cacert'] },
  osCert: { value: '<file>', help: 'PEM client certificate', env: ['OS_CERT'], cloud: ['cert'] },
  osKey: { value: '<file>', help: 'PEM client key', env: ['OS_KEY'], cloud: ['key'] },
  // A switch: OS_INSECURE is read as a yes/no word, and the help does not name it.
  insecure: { help: 'do not verify TLS certificates', env: ['OS_INSECURE'] },
  timeout: { value: '<seconds>', help: 'seconds each request may take; 60 by default', env: ['OS_API_TIMEOUT'], cloud: ['api_timeout'] },
  debug: { help: 'print every request and response on stderr (tokens and passwords redacted)', env: [] },
} as const satisfies Record<string, ConnectionOption>

type ConnectionOptions = typeof CONNECTION_OPTIONS

/** The key of a connection option, as commander names its value: `osAuthUrl`. */
export type ConnectionKey = keyof ConnectionOptions

/** Connection flags as commander parses them (`--os-auth-url` → `osAuthUrl`): a string, or a boolean for a switch. */
export type ConnectionFlags = { [K in ConnectionKey]?: ConnectionOptions[K] extends { value: string } ? string : boolean }

/** `osAuthUrl` → `--os-auth-url`: the flag commander reads into that key. */
export function connectionFlag (key: ConnectionKey): string {
  return `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`
}

/** The help of a connection option: its text, then its first variable when it takes a value (`Keystone token (OS_TOKEN)`). */
export function connectionHelp (option: ConnectionOption): string {
  const variable = option.value === undefined || option.env.length === 0 ? undefined : `(${option.env[0]})`
  return [option.help, variable].filter((part) => part !== undefined && part !== '').join(' ')
}

type AuthKey = { [K in ConnectionKey]: ConnectionOptions[K] extends { auth: infer A extends string } ? A : never }[ConnectionKey]

/** The Keystone credentials and scope, by openstacksdk's setting names. */
export type AuthSettings = Partial<Record<AuthKey, string>>

/** The options that are Keystone credentials or scope, each with its openstacksdk name. */
const AUTH_OPTIONS = Object.entries(CONNECTION_OPTIONS).flatMap(([key, option]: [string, ConnectionOption]) =>
  option.auth === undefined ? [] : [{ key: key as ConnectionKey, auth: option.auth as AuthKey }])

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
  const fromEnv = (names: readonly string[]): string | undefined => names.map((n) => nonEmpty(env[n])).find((v) => v !== undefined)
  const given = (key: ConnectionKey): string | undefined => nonEmpty(flags[key]) ?? fromEnv(CONNECTION_OPTIONS[key].env)

  const cloudName = given('osCloud')
  let cloud: CloudEntry = {}
  let cloudLabel: string | undefined
  if (cloudName !== undefined) {
    const loaded = loadCloud(cloudName, env, cwd)
    cloud = loaded.cloud
    cloudLabel = `${cloudName} (${loaded.file})`
  }
  const fromCloud = (key: string): string | undefined => nonEmpty(cloud.auth?.[key]) ?? nonEmpty(cloud[key])
  // The flag, else its variables, else its clouds.yaml keys.
  const setting = (key: ConnectionKey): string | undefined => {
    const option: ConnectionOption = CONNECTION_OPTIONS[key]
    return given(key) ?? (option.cloud ?? []).map(fromCloud).find((v) => v !== undefined)
  }

  const auth: AuthSettings = {}
  for (const { key, auth: name } of AUTH_OPTIONS) {
    const value = given(key) ?? fromCloud(name)
    if (value !== undefined) auth[name] = value
  }
  const endpoint = given('osEndpoint') ??
    nonEmpty(cloud[`${RATING_SERVICE_TYPE}_endpoint_override`]) ?? nonEmpty(cloud.auth?.endpoint)
  const regions = Array.isArray(cloud.regions) ? cloud.regions : []
  const firstRegion = regions.length === 0 ? undefined : nonEmpty(typeof regions[0] === 'object' ? (regions[0] as { name?: unknown }).name : regions[0])
  const regionName = setting('osRegionName') ?? firstRegion
  const iface = normalizeInterface(setting('osInterface'))

  const insecure = flags.insecure === true || CONNECTION_OPTIONS.insecure.env.some((name) => isTrue(env[name])) ||
    isTrue(cloud.insecure) || isFalse(cloud.verify)
  const transport: TransportOptions = {
    insecure,
    caFile: setting('osCacert'),
    certFile: setting('osCert'),
    keyFile: setting('osKey'),
    timeoutSeconds: parseTimeout(setting('timeout')),
  }

  const typeName = setting('osAuthType')
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
