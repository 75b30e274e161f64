import { COLUMN_WIDTHS } from '../domain/scope-fields.ts'

/**
 * Who scopekeeper is to Keystone: a password user scoped to a project, as
 * keystoneauth1's `password` plugin is configured in `[keystone_authtoken]`
 * and in `[fetcher_keystone]`.
 */
export interface KeystoneCredentials {
  authUrl: string
  username: string
  password: string
  projectName: string
  userDomainName: string
  projectDomainName: string
  /** Alternatives to the domain names (kolla-ansible writes the ids) that win over them when set (keystoneauth1's rule); empty: use the name. */
  userDomainId: string
  projectDomainId: string
}

/** TLS towards Keystone: a private CA, a client certificate, or no verification. */
export interface KeystoneTlsSettings {
  cafile: string
  certfile: string
  keyfile: string
  insecure: boolean
}

/** The whole configuration, merged and validated once, then frozen. */
export interface Config {
  api: {
    host: string
    port: number
    /** Seconds a client may take to send a whole request (headers and body). */
    requestTimeout: number
    /** Seconds SIGTERM waits for requests in flight before closing their connections. */
    shutdownTimeout: number
    /** oslo.middleware's http_proxy_to_wsgi: trust Forwarded and X-Forwarded-* from the load balancer. */
    enableProxyHeadersParsing: boolean
    /** Seconds an Idempotency-Key and its answer are kept: a repeat within them is answered as the first. */
    idempotencyTtl: number
    /** The most scope states one POST /v2/scope/activation may flip: its one transaction holds their row locks until it commits. */
    activationMaxScopes: number
  }
  database: {
    url: string
    maxPoolSize: number
    poolTimeout: number
    connectTimeout: number
    statementTimeout: number
    connectionRecycleTime: number
    /** Connection attempts at start; -1: keep trying. */
    maxRetries: number
    retryInterval: number
  }
  auth: { strategy: 'noauth' | 'keystone' }
  keystone: KeystoneCredentials & KeystoneTlsSettings & {
    wwwAuthenticateUri: string
    authType: 'password'
    regionName: string
    interface: 'public' | 'internal' | 'admin'
    serviceTokenRoles: string
    serviceTokenRolesRequired: boolean
    tokenCacheTime: number
    tokenCacheSize: number
    negativeCacheTime: number
    httpConnectTimeout: number
  }
  /**
   * CloudKitty's keystone fetcher (`cloudkitty/fetcher/keystone.py`): the
   * credentials and rules with which the reconciliation reads Keystone's
   * projects. No `authType` (and no `authSection`): `[keystone_authtoken]`'s
   * credentials are used instead.
   */
  fetcherKeystone: KeystoneCredentials & KeystoneTlsSettings & {
    authType: '' | 'password' | 'v3password'
    /** keystoneauth1's `auth_section`: only `keystone_authtoken`, kolla-ansible's. */
    authSection: '' | 'keystone_authtoken'
    /** Seconds one request to Keystone may take. */
    timeout: number
    keystoneVersion: string
    ignoreRatingRole: boolean
    ignoreDisabledTenants: boolean
  }
  policy: { file: string }
  collect: { period: number, stuckAfterPeriods: number, collector: string, scopeKey: string }
  fetcher: { backend: string }
  orchestrator: { coordinationUrl: string }
  messaging: { transportUrl: string, controlExchange: string, topic: string }
  reset: {
    worker: boolean
    concurrency: number
    dispatcher: 'local' | 'oslo_messaging'
    pollInterval: number
    leaseSeconds: number
    maxAttempts: number
    batchSize: number
  }
  /** The audit history of changes made through scopekeeper. */
  audit: {
    /** Days an event is kept; 0 keeps every event. */
    retentionDays: number
  }
  log: {
    level: string
    /** oslo.log's [DEFAULT] debug: the level is at most debug. */
    debug: boolean
    /** oslo.log's log_file and log_dir (empty: unset); see logFilePath. */
    file: string
    dir: string
    useStderr: boolean
  }
  metrics: {
    enabled: boolean
    /** A second listener serving only /metrics, without authentication; port 0: none. */
    host: string
    port: number
  }
  /** oslo.middleware's healthcheck. */
  healthcheck: { disableByFilePath: string, detailed: boolean }
}

/** One setting: where it lives in each source, its default and how to read it. */
export interface Setting {
  /** Dotted path in {@link Config}. */
  path: string
  /** Section and key in a cloudkitty.conf-style INI file. */
  section: string
  key: string
  env: string
  /** The `serve` flag that sets it, if any. */
  flag?: string
  default: string | number | boolean
  /** Holds a credential (oslo.config's `secret=True`): its value is never shown in a message. */
  secret?: boolean
  /** Turns a raw string into the typed value; throws a message on a bad one. */
  parse: (raw: string) => string | number | boolean
  description: string
}

function integer (min: number, max: number) {
  return (raw: string): number => {
    if (!/^-?\d+$/.test(raw.trim()) || Number(raw) < min || Number(raw) > max) throw new Error(`must be an integer from ${min} to ${max}`)
    return Number(raw)
  }
}

function positiveNumber (raw: string): number {
  const n = Number(raw)
  if (raw.trim() === '' || !Number.isFinite(n) || n <= 0) throw new Error('must be a positive number')
  return n
}

function boolean (raw: string): boolean {
  const v = raw.trim().toLowerCase()
  if (['true', '1', 'yes', 'on'].includes(v)) return true
  if (['false', '0', 'no', 'off'].includes(v)) return false
  throw new Error('must be true or false')
}

function text (maxLength: number) {
  return (raw: string): string => {
    const v = raw.trim()
    if (v === '' || [...v].length > maxLength) throw new Error(`must be a non-empty string of at most ${maxLength} characters`)
    return v
  }
}

function secondsUpTo (max: number) {
  return (raw: string): number => {
    const n = positiveNumber(raw)
    if (n > max) throw new Error(`must be a positive number of seconds, at most ${max}`)
    return n
  }
}

function optionalText (maxLength: number) {
  return (raw: string): string => {
    const v = raw.trim()
    if ([...v].length > maxLength) throw new Error(`must be at most ${maxLength} characters`)
    return v
  }
}

function optionalHttpUrl (raw: string): string {
  const v = raw.trim()
  if (v === '') return v
  let url: URL
  try { url = new URL(v) } catch { throw new Error('must be an http:// or https:// URL') }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('must be an http:// or https:// URL')
  return v
}

function oneOf (...values: string[]) {
  return (raw: string): string => {
    const v = raw.trim()
    if (!values.includes(v)) throw new Error(`must be one of: ${values.join(', ')}`)
    return v
  }
}

function keystoneVersion (raw: string): string {
  const v = raw.trim()
  // keystoneclient's discover.normalize_version_number forms of 3; v2 was removed from Keystone in Queens.
  if (!/^v?3(\.\d+)?$/.test(v)) throw new Error('must be 3: scopekeeper reads Keystone v3 only')
  return v
}

/**
 * `[fetcher_keystone]`: keystoneauth1's auth options of the `password`
 * plugin (`loading/conf.py` auth_type and auth_section,
 * `loading/identity.py` and `_plugins/identity/generic.py` for the rest),
 * its session options (`loading/session.py`: cafile, certfile, keyfile,
 * insecure, timeout), and the fetcher's own (`cloudkitty/fetcher/keystone.py`
 * `fetcher_keystone_opts`), with CloudKitty's defaults.
 */
function fetcherKeystoneSettings (): Setting[] {
  const row = (key: string, path: string, parse: Setting['parse'], defaultValue: Setting['default'], description: string, secret = false): Setting => ({
    path: `fetcherKeystone.${path}`, section: 'fetcher_keystone', key, env: `SCOPEKEEPER_FETCHER_KEYSTONE_${key.toUpperCase()}`, default: defaultValue, parse, description, ...(secret ? { secret } : {}),
  })
  return [
    row('auth_type', 'authType', (raw) => raw.trim() === '' ? '' : oneOf('password', 'v3password')(raw), '', 'password or v3password: the reconciliation reads Keystone with these credentials; empty: with [keystone_authtoken]\'s.'),
    row('auth_section', 'authSection', (raw) => raw.trim() === '' ? '' : oneOf('keystone_authtoken')(raw), '', 'keystone_authtoken (as kolla-ansible writes it): take the credentials from [keystone_authtoken].'),
    row('auth_url', 'authUrl', optionalHttpUrl, '', 'Keystone URL of those credentials.'),
    row('username', 'username', optionalText(255), '', 'The user CloudKitty\'s fetcher lists projects as (needs admin to list them, and the rating role on each project to rate).'),
    row('password', 'password', optionalText(4096), '', 'That user\'s password.', true),
    row('project_name', 'projectName', optionalText(255), '', 'That user\'s project.'),
    row('user_domain_name', 'userDomainName', text(255), 'Default', 'That user\'s domain.'),
    row('project_domain_name', 'projectDomainName', text(255), 'Default', 'That project\'s domain.'),
    row('user_domain_id', 'userDomainId', optionalText(255), '', 'That user\'s domain id; wins over user_domain_name.'),
    row('project_domain_id', 'projectDomainId', optionalText(255), '', 'That project\'s domain id; wins over project_domain_name.'),
    row('cafile', 'cafile', optionalText(4096), '', 'PEM CA file for Keystone; with no TLS setting here, [keystone_authtoken]\'s apply.'),
    row('certfile', 'certfile', optionalText(4096), '', 'PEM client certificate presented to Keystone.'),
    row('keyfile', 'keyfile', optionalText(4096), '', 'PEM key of certfile.'),
    row('insecure', 'insecure', boolean, false, 'Do not verify Keystone\'s certificate.'),
    row('timeout', 'timeout', secondsUpTo(3600), 60, 'Seconds one request to Keystone may take during a reconciliation.'),
    row('keystone_version', 'keystoneVersion', keystoneVersion, '3', 'Keystone API version; only 3.'),
    row('ignore_rating_role', 'ignoreRatingRole', boolean, false, 'Every project is rated, not only those where the fetcher\'s user has the rating role.'),
    row('ignore_disabled_tenants', 'ignoreDisabledTenants', boolean, false, 'CloudKitty does not rate disabled projects (projects_rated then leaves them out; they are never new either way).'),
  ]
}

/** Every setting scopekeeper reads. README's configuration table lists the same. */
export const SETTINGS: Setting[] = [
  { path: 'api.host', section: 'api', key: 'host_ip', env: 'SCOPEKEEPER_API_HOST_IP', flag: 'host', default: '127.0.0.1', parse: text(255), description: 'Address the API listens on.' },
  { path: 'api.port', section: 'api', key: 'port', env: 'SCOPEKEEPER_API_PORT', flag: 'port', default: 8889, parse: integer(0, 65535), description: "Port the API listens on (CloudKitty's)." },
  { path: 'database.url', section: 'database', key: 'connection', env: 'SCOPEKEEPER_DATABASE_URL', flag: 'database', secret: true, default: 'sqlite:///data/scopekeeper.sqlite', parse: text(4096), description: 'Database URL; SQLAlchemy forms as in cloudkitty.conf (sqlite:////abs/path, postgresql+psycopg2://…, mysql+pymysql://…).' },
  { path: 'database.maxPoolSize', section: 'database', key: 'max_pool_size', env: 'SCOPEKEEPER_DATABASE_MAX_POOL_SIZE', default: 5, parse: integer(1, 1000), description: 'Connections per process (PostgreSQL, MySQL); oslo.db\'s name.' },
  { path: 'database.poolTimeout', section: 'database', key: 'pool_timeout', env: 'SCOPEKEEPER_DATABASE_POOL_TIMEOUT', default: 10, parse: positiveNumber, description: 'Seconds a request waits for a free connection before a 503; oslo.db\'s name.' },
  { path: 'database.connectTimeout', section: 'database', key: 'connect_timeout', env: 'SCOPEKEEPER_DATABASE_CONNECT_TIMEOUT', default: 5, parse: positiveNumber, description: 'Seconds to open a connection.' },
  { path: 'database.connectionRecycleTime', section: 'database', key: 'connection_recycle_time', env: 'SCOPEKEEPER_DATABASE_CONNECTION_RECYCLE_TIME', default: 3600, parse: integer(1, 31_622_400), description: 'Seconds after which a pooled connection is replaced by a new one (oslo.db).' },
  { path: 'database.maxRetries', section: 'database', key: 'max_retries', env: 'SCOPEKEEPER_DATABASE_MAX_RETRIES', default: 10, parse: integer(-1, 1_000_000), description: 'Attempts to open the first connection at start before giving up; -1: keep trying (oslo.db).' },
  { path: 'database.retryInterval', section: 'database', key: 'retry_interval', env: 'SCOPEKEEPER_DATABASE_RETRY_INTERVAL', default: 10, parse: integer(1, 3600), description: 'Seconds between those attempts (oslo.db).' },
  { path: 'database.statementTimeout', section: 'database', key: 'statement_timeout', env: 'SCOPEKEEPER_DATABASE_STATEMENT_TIMEOUT', default: 30, parse: positiveNumber, description: 'Seconds one statement may run, enforced by the server.' },
  { path: 'auth.strategy', section: 'DEFAULT', key: 'auth_strategy', env: 'SCOPEKEEPER_DEFAULT_AUTH_STRATEGY', flag: 'auth', default: 'keystone', parse: oneOf('noauth', 'keystone'), description: 'Authentication: noauth (every request is an admin) or keystone (X-Auth-Token validated by Keystone).' },
  { path: 'keystone.wwwAuthenticateUri', section: 'keystone_authtoken', key: 'www_authenticate_uri', env: 'SCOPEKEEPER_KEYSTONE_AUTHTOKEN_WWW_AUTHENTICATE_URI', default: '', parse: optionalHttpUrl, description: 'Keystone URL that 401 answers send clients to (WWW-Authenticate); defaults to auth_url.' },
  { path: 'keystone.authUrl', section: 'keystone_authtoken', key: 'auth_url', env: 'SCOPEKEEPER_KEYSTONE_AUTHTOKEN_AUTH_URL', default: '', parse: optionalHttpUrl, description: "Keystone URL where scopekeeper gets its own token (required with keystone)." },
  { path: 'keystone.authType', section: 'keystone_authtoken', key: 'auth_type', env: 'SCOPEKEEPER_KEYSTONE_AUTHTOKEN_AUTH_TYPE', default: 'password', parse: oneOf('password'), description: 'How scopekeeper authenticates to Keystone: password.' },
  { path: 'keystone.username', section: 'keystone_authtoken', key: 'username', env: 'SCOPEKEEPER_KEYSTONE_AUTHTOKEN_USERNAME', default: '', parse: optionalText(255), description: 'Service user (required with keystone).' },
  { path: 'keystone.password', section: 'keystone_authtoken', key: 'password', env: 'SCOPEKEEPER_KEYSTONE_AUTHTOKEN_PASSWORD', secret: true, default: '', parse: optionalText(4096), description: "Service user's password (required with keystone)." },
  { path: 'keystone.projectName', section: 'keystone_authtoken', key: 'project_name', env: 'SCOPEKEEPER_KEYSTONE_AUTHTOKEN_PROJECT_NAME', default: '', parse: optionalText(255), description: "Service user's project, usually service (required with keystone)." },
  { path: 'keystone.userDomainName', section: 'keystone_authtoken', key: 'user_domain_name', env: 'SCOPEKEEPER_KEYSTONE_AUTHTOKEN_USER_DOMAIN_NAME', default: 'Default', parse: text(255), description: "Service user's domain." },
  { path: 'keystone.projectDomainName', section: 'keystone_authtoken', key: 'project_domain_name', env: 'SCOPEKEEPER_KEYSTONE_AUTHTOKEN_PROJECT_DOMAIN_NAME', default: 'Default', parse: text(255), description: "Service project's domain." },
  { path: 'keystone.userDomainId', section: 'keystone_authtoken', key: 'user_domain_id', env: 'SCOPEKEEPER_KEYSTONE_AUTHTOKEN_USER_DOMAIN_ID', default: '', parse: optionalText(255), description: "Service user's domain id; wins over user_domain_name." },
  { path: 'keystone.projectDomainId', section: 'keystone_authtoken', key: 'project_domain_id', env: 'SCOPEKEEPER_KEYSTONE_AUTHTOKEN_PROJECT_DOMAIN_ID', default: '', parse: optionalText(255), description: "Service project's domain id; wins over project_domain_name." },
  { path: 'keystone.cafile', section: 'keystone_authtoken', key: 'cafile', env: 'SCOPEKEEPER_KEYSTONE_AUTHTOKEN_CAFILE', default: '', parse: optionalText(4096), description: 'PEM file of the CA(s) that sign Keystone\'s certificate; empty: the system CAs.' },
  { path: 'keystone.certfile', section: 'keystone_authtoken', key: 'certfile', env: 'SCOPEKEEPER_KEYSTONE_AUTHTOKEN_CERTFILE', default: '', parse: optionalText(4096), description: 'PEM client certificate presented to Keystone.' },
  { path: 'keystone.keyfile', section: 'keystone_authtoken', key: 'keyfile', env: 'SCOPEKEEPER_KEYSTONE_AUTHTOKEN_KEYFILE', default: '', parse: optionalText(4096), description: 'PEM key of certfile.' },
  { path: 'keystone.insecure', section: 'keystone_authtoken', key: 'insecure', env: 'SCOPEKEEPER_KEYSTONE_AUTHTOKEN_INSECURE', default: false, parse: boolean, description: "Do not verify Keystone's certificate (keystonemiddleware's name)." },
  { path: 'keystone.regionName', section: 'keystone_authtoken', key: 'region_name', env: 'SCOPEKEEPER_KEYSTONE_AUTHTOKEN_REGION_NAME', default: '', parse: optionalText(255), description: 'Region of the identity endpoint taken from the catalog; empty: any region.' },
  { path: 'keystone.interface', section: 'keystone_authtoken', key: 'interface', env: 'SCOPEKEEPER_KEYSTONE_AUTHTOKEN_INTERFACE', default: 'internal', parse: oneOf('public', 'internal', 'admin'), description: 'Interface of the identity endpoint taken from the catalog to validate tokens.' },
  { path: 'keystone.serviceTokenRoles', section: 'keystone_authtoken', key: 'service_token_roles', env: 'SCOPEKEEPER_KEYSTONE_AUTHTOKEN_SERVICE_TOKEN_ROLES', default: 'service', parse: text(1024), description: 'Comma-separated roles, one of which an X-Service-Token must carry to count as a service.' },
  { path: 'keystone.serviceTokenRolesRequired', section: 'keystone_authtoken', key: 'service_token_roles_required', env: 'SCOPEKEEPER_KEYSTONE_AUTHTOKEN_SERVICE_TOKEN_ROLES_REQUIRED', default: false, parse: boolean, description: 'Refuse (401) an X-Service-Token without one of service_token_roles.' },
  { path: 'keystone.tokenCacheTime', section: 'keystone_authtoken', key: 'token_cache_time', env: 'SCOPEKEEPER_KEYSTONE_AUTHTOKEN_TOKEN_CACHE_TIME', default: 300, parse: integer(0, 3600), description: 'Seconds a validated token is trusted without asking Keystone again (never past its expiry; 0: always ask).' },
  { path: 'keystone.tokenCacheSize', section: 'keystone_authtoken', key: 'token_cache_size', env: 'SCOPEKEEPER_KEYSTONE_AUTHTOKEN_TOKEN_CACHE_SIZE', default: 10_000, parse: integer(1, 1_000_000), description: 'Validated tokens kept in the cache (least recently used go first).' },
  { path: 'keystone.negativeCacheTime', section: 'keystone_authtoken', key: 'negative_cache_time', env: 'SCOPEKEEPER_KEYSTONE_AUTHTOKEN_NEGATIVE_CACHE_TIME', default: 10, parse: integer(0, 300), description: 'Seconds a token Keystone refused is refused without asking again.' },
  { path: 'keystone.httpConnectTimeout', section: 'keystone_authtoken', key: 'http_connect_timeout', env: 'SCOPEKEEPER_KEYSTONE_AUTHTOKEN_HTTP_CONNECT_TIMEOUT', default: 5, parse: secondsUpTo(300), description: 'Seconds one request to Keystone may take before the API answers 503.' },
  ...fetcherKeystoneSettings(),
  { path: 'policy.file', section: 'oslo_policy', key: 'policy_file', env: 'SCOPEKEEPER_OSLO_POLICY_POLICY_FILE', default: '', parse: optionalText(4096), description: 'YAML or JSON policy file overriding the default rules by name; empty: the defaults.' },
  { path: 'collect.period', section: 'collect', key: 'period', env: 'SCOPEKEEPER_COLLECT_PERIOD', default: 3600, parse: integer(1, 31_622_400), description: 'Rating period in seconds; a reset to T discards rated data from T + period.' },
  { path: 'collect.stuckAfterPeriods', section: 'collect', key: 'stuck_after_periods', env: 'SCOPEKEEPER_COLLECT_STUCK_AFTER_PERIODS', default: 3, parse: integer(1, 1_000_000), description: 'An active scope lagging more than this many periods behind the median active scope is stuck (GET /v2/scope?stuck=true, the summary, scopekeeper_scopes_stuck).' },
  { path: 'collect.collector', section: 'collect', key: 'collector', env: 'SCOPEKEEPER_COLLECT_COLLECTOR', default: 'gnocchi', parse: text(COLUMN_WIDTHS.collector), description: 'collector of a scope created without one.' },
  { path: 'collect.scopeKey', section: 'collect', key: 'scope_key', env: 'SCOPEKEEPER_COLLECT_SCOPE_KEY', default: 'project_id', parse: text(COLUMN_WIDTHS.scope_key), description: 'scope_key of a scope created without one.' },
  { path: 'fetcher.backend', section: 'fetcher', key: 'backend', env: 'SCOPEKEEPER_FETCHER_BACKEND', default: 'keystone', parse: text(COLUMN_WIDTHS.fetcher), description: 'fetcher of a scope created without one.' },
  { path: 'orchestrator.coordinationUrl', section: 'orchestrator', key: 'coordination_url', env: 'SCOPEKEEPER_ORCHESTRATOR_COORDINATION_URL', flag: 'coordinationUrl', secret: true, default: 'file:///var/lib/cloudkitty/locks', parse: text(4096), description: "tooz URL where CloudKitty's processors take each scope's processing lock; resets take the same lock (file://, mysql://, postgresql://, redis://)." },
  { path: 'reset.worker', section: 'reset', key: 'worker', env: 'SCOPEKEEPER_RESET_WORKER', flag: 'worker', default: true, parse: boolean, description: 'Run the reset worker inside `serve` (--no-worker turns it off).' },
  { path: 'reset.concurrency', section: 'reset', key: 'concurrency', env: 'SCOPEKEEPER_RESET_CONCURRENCY', flag: 'concurrency', default: 1, parse: integer(1, 64), description: 'Reset jobs one worker process works on at once.' },
  { path: 'reset.dispatcher', section: 'reset', key: 'dispatcher', env: 'SCOPEKEEPER_RESET_DISPATCHER', default: 'local', parse: oneOf('local', 'oslo_messaging'), description: "local: apply resets here; oslo_messaging: cast CloudKitty's reset_state to its processors over RabbitMQ." },
  { path: 'messaging.transportUrl', section: 'DEFAULT', key: 'transport_url', env: 'SCOPEKEEPER_DEFAULT_TRANSPORT_URL', secret: true, default: 'rabbit://guest:guest@127.0.0.1:5672/', parse: text(4096), description: 'oslo.messaging transport URL of the RabbitMQ CloudKitty listens on.' },
  { path: 'messaging.controlExchange', section: 'DEFAULT', key: 'control_exchange', env: 'SCOPEKEEPER_DEFAULT_CONTROL_EXCHANGE', default: 'cloudkitty', parse: text(255), description: "Exchange of the cast (CloudKitty sets oslo.messaging's control exchange to cloudkitty)." },
  { path: 'messaging.topic', section: 'reset', key: 'topic', env: 'SCOPEKEEPER_RESET_TOPIC', default: 'cloudkitty', parse: text(255), description: 'Routing key of the cast: cloudkitty reaches any processor, cloudkitty.<host> one.' },
  { path: 'reset.pollInterval', section: 'reset', key: 'poll_interval', env: 'SCOPEKEEPER_RESET_POLL_INTERVAL', default: 0.5, parse: positiveNumber, description: 'Seconds between looks at the reset queue when it is empty.' },
  { path: 'reset.leaseSeconds', section: 'reset', key: 'lease_seconds', env: 'SCOPEKEEPER_RESET_LEASE_SECONDS', default: 30, parse: positiveNumber, description: "Seconds after which a job claimed by a worker that stopped renewing it is taken over." },
  { path: 'reset.maxAttempts', section: 'reset', key: 'max_attempts', env: 'SCOPEKEEPER_RESET_MAX_ATTEMPTS', default: 10, parse: integer(1, 1000), description: 'Attempts a reset job gets before it is marked failed.' },
  { path: 'audit.retentionDays', section: 'audit', key: 'retention_days', env: 'SCOPEKEEPER_AUDIT_RETENTION_DAYS', default: 0, parse: integer(0, 36_500), description: 'Days the audit history (GET /v2/scope/events) keeps an event; the reset worker purges older ones in bounded batches. 0 keeps every event.' },
  { path: 'reset.batchSize', section: 'reset', key: 'batch_size', env: 'SCOPEKEEPER_RESET_BATCH_SIZE', default: 500, parse: integer(1, 100_000), description: 'Scopes applied per transaction; progress is saved after each batch.' },
  { path: 'api.requestTimeout', section: 'api', key: 'request_timeout', env: 'SCOPEKEEPER_API_REQUEST_TIMEOUT', default: 60, parse: secondsUpTo(3600), description: 'Seconds a client may take to send a whole request, headers and body; a slower one gets 408.' },
  { path: 'api.idempotencyTtl', section: 'api', key: 'idempotency_ttl', env: 'SCOPEKEEPER_API_IDEMPOTENCY_TTL', default: 86_400, parse: integer(1, 31_622_400), description: 'Seconds an Idempotency-Key of PUT, PATCH or POST /v2/scope is remembered with its answer: a repeat with the same key and body within them gets that answer back and acts no more.' },
  { path: 'api.activationMaxScopes', section: 'api', key: 'activation_max_scopes', env: 'SCOPEKEEPER_API_ACTIVATION_MAX_SCOPES', default: 100_000, parse: integer(1, 100_000_000), description: 'The most scope states one POST /v2/scope/activation may switch: it is one transaction, whose row locks hold up CloudKitty\'s processor writing those rows until it commits (about 2 s per 100 000 on PostgreSQL). A larger set is a 400; a dry run still counts it.' },
  { path: 'api.shutdownTimeout', section: 'api', key: 'shutdown_timeout', env: 'SCOPEKEEPER_API_SHUTDOWN_TIMEOUT', default: 30, parse: secondsUpTo(3600), description: 'Seconds SIGTERM lets requests in flight finish before their connections are closed.' },
  { path: 'api.enableProxyHeadersParsing', section: 'oslo_middleware', key: 'enable_proxy_headers_parsing', env: 'SCOPEKEEPER_OSLO_MIDDLEWARE_ENABLE_PROXY_HEADERS_PARSING', default: false, parse: boolean, description: "Behind a load balancer: take the scheme, host and client address from Forwarded or X-Forwarded-*, as oslo.middleware's http_proxy_to_wsgi does." },
  { path: 'healthcheck.disableByFilePath', section: 'healthcheck', key: 'disable_by_file_path', env: 'SCOPEKEEPER_HEALTHCHECK_DISABLE_BY_FILE_PATH', default: '', parse: optionalText(4096), description: 'While this file exists, /healthcheck answers 503 DISABLED BY FILE: drains the node from its load balancer.' },
  { path: 'healthcheck.detailed', section: 'healthcheck', key: 'detailed', env: 'SCOPEKEEPER_HEALTHCHECK_DETAILED', default: false, parse: boolean, description: "/healthcheck's JSON and HTML answers give each check's details, as oslo.middleware's detailed mode." },
  { path: 'log.debug', section: 'DEFAULT', key: 'debug', env: 'SCOPEKEEPER_DEFAULT_DEBUG', flag: 'debug', default: false, parse: boolean, description: "oslo.log's debug: log at debug level (re-read on SIGHUP)." },
  { path: 'log.file', section: 'DEFAULT', key: 'log_file', env: 'SCOPEKEEPER_DEFAULT_LOG_FILE', default: '', parse: optionalText(4096), description: 'Write the log to this file (under log_dir when both are set), reopened when logrotate moves it; empty: standard output.' },
  { path: 'log.dir', section: 'DEFAULT', key: 'log_dir', env: 'SCOPEKEEPER_DEFAULT_LOG_DIR', default: '', parse: optionalText(4096), description: 'Folder of log_file; alone, the log goes to scopekeeper-api.log or scopekeeper-worker.log there.' },
  { path: 'log.useStderr', section: 'DEFAULT', key: 'use_stderr', env: 'SCOPEKEEPER_DEFAULT_USE_STDERR', default: false, parse: boolean, description: 'Log to standard error (as well as to the log file, if any) instead of standard output.' },
  { path: 'log.level', section: 'log', key: 'level', env: 'SCOPEKEEPER_LOG_LEVEL', default: 'info', parse: oneOf('fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'), description: 'Log level (pino).' },
  { path: 'metrics.enabled', section: 'metrics', key: 'enabled', env: 'SCOPEKEEPER_METRICS_ENABLED', default: true, parse: boolean, description: 'Serve Prometheus metrics at GET /metrics.' },
  { path: 'metrics.host', section: 'metrics', key: 'host', env: 'SCOPEKEEPER_METRICS_HOST', default: '127.0.0.1', parse: text(255), description: 'Address of the metrics listener (when [metrics] port is set).' },
  { path: 'metrics.port', section: 'metrics', key: 'port', env: 'SCOPEKEEPER_METRICS_PORT', default: 0, parse: integer(0, 65535), description: 'Port of a listener serving only GET /metrics, without a token, for Prometheus; 0: none (on the API port, /metrics needs a token allowed by scopekeeper:get_metrics).' },
]

/** Sections that belong to scopekeeper alone: an unknown key there is a mistake. */
export const OWN_SECTIONS = ['reset', 'log', 'metrics', 'audit']
