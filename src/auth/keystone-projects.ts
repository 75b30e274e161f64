import type { Config } from '../config/config-schema.ts'
import { ConfigError } from '../config/load-config.ts'
import type { KeystoneProject, ProjectDirectory } from '../domain/scope-reconciliation.ts'
import { discard, KeystoneSession, type KeystoneSessionDeps, type KeystoneSessionOptions, type ServiceToken } from './keystone-session.ts'
import { keystoneTls } from './keystone-tls.ts'

/** The role CloudKitty's keystone fetcher looks for on a project (`_do_get_tenants`: `'rating' not in [role.name …]`). */
export const RATING_ROLE = 'rating'

/** Requests sent at once while reading projects one by one (the last resort of {@link KeystoneProjectDirectory}). */
const CONCURRENCY = 8

/**
 * The credentials the reconciliation reads Keystone with, as CloudKitty's
 * keystone fetcher gets them (`cloudkitty/fetcher/keystone.py`
 * `KeystoneFetcher.__init__`: `ks_loading.load_auth_from_conf_options(CONF,
 * 'fetcher_keystone')`):
 * - `[fetcher_keystone] auth_section = keystone_authtoken` (kolla-ansible):
 *   `[keystone_authtoken]`'s auth options;
 * - else `[fetcher_keystone] auth_type` set: `[fetcher_keystone]`'s own,
 *   every one of auth_url, username, password and project_name required
 *   (a {@link ConfigError} naming those missing otherwise);
 * - else (keystoneauth1's `load_from_conf_options` loads no plugin without
 *   an auth_type): `[keystone_authtoken]`'s, as a fallback, when they are
 *   complete; undefined when they are not (reconciliation is then not
 *   configured, and nothing else is affected).
 *
 * TLS: `[fetcher_keystone]`'s session options (cafile, certfile, keyfile,
 * insecure) when it sets one, else `[keystone_authtoken]`'s. Requests use
 * the catalog's public identity endpoint, as keystoneclient's v3 client
 * picks it (`httpclient.py`: interface `default` is `public` for v3),
 * else auth_url.
 */
export function reconcileSessionOptions (config: Pick<Config, 'keystone' | 'fetcherKeystone'>): KeystoneSessionOptions | undefined {
  const fk = config.fetcherKeystone
  const ks = config.keystone
  // Read only once credentials are there to use them: a noauth API with a stale
  // [keystone_authtoken] cafile and no reconciliation starts as before.
  const common = () => {
    const ownTls = fk.cafile !== '' || fk.certfile !== '' || fk.insecure
    const tls = ownTls ? keystoneTls(fk, { name: 'fetcher_keystone', envPrefix: 'SCOPEKEEPER_FETCHER_KEYSTONE_' }) : keystoneTls(ks)
    return { interface: 'public', regionName: '', tls, requestTimeoutMs: fk.timeout * 1000, refusedCode: 'IDENTITY_REFUSED' as const }
  }
  if (fk.authSection === '' && fk.authType !== '') {
    const missing = ([['auth_url', fk.authUrl], ['username', fk.username], ['password', fk.password], ['project_name', fk.projectName]] as const)
      .filter(([, value]) => value === '').map(([key]) => `${key} (SCOPEKEEPER_FETCHER_KEYSTONE_${key.toUpperCase()})`)
    if (missing.length > 0) throw new ConfigError(`[fetcher_keystone] auth_type = ${fk.authType} needs [fetcher_keystone] ${missing.join(', ')}`)
    return {
      ...common(),
      section: '[fetcher_keystone]',
      authUrl: fk.authUrl,
      username: fk.username,
      password: fk.password,
      projectName: fk.projectName,
      userDomainName: fk.userDomainName,
      projectDomainName: fk.projectDomainName,
      userDomainId: fk.userDomainId,
      projectDomainId: fk.projectDomainId,
    }
  }
  if (ks.authUrl === '' || ks.username === '' || ks.password === '' || ks.projectName === '') return undefined
  return {
    ...common(),
    section: '[keystone_authtoken]',
    authUrl: ks.authUrl,
    username: ks.username,
    password: ks.password,
    projectName: ks.projectName,
    userDomainName: ks.userDomainName,
    projectDomainName: ks.projectDomainName,
    userDomainId: ks.userDomainId,
    projectDomainId: ks.projectDomainId,
  }
}

interface ProjectBody { id: string, name: string, domain_id: string, enabled: boolean }
interface ProjectListBody { projects?: ProjectBody[], truncated?: boolean }
interface DomainListBody { domains?: Array<{ id: string }>, truncated?: boolean }
interface RoleAssignmentsBody {
  role_assignments?: Array<{ role?: { name?: string }, scope?: { project?: { id?: string }, 'OS-INHERIT:inherited_to'?: string } }>
}
/** `subtree_as_ids`: each project id maps to its own subtree, or null for a leaf. */
interface SubtreeIds { [id: string]: SubtreeIds | null }

function flattenSubtree (tree: SubtreeIds | null | undefined, into: Set<string>): Set<string> {
  for (const [id, children] of Object.entries(tree ?? {})) {
    into.add(id)
    flattenSubtree(children, into)
  }
  return into
}

/**
 * Every Keystone project, through the Identity v3 API, and whether
 * CloudKitty's keystone fetcher would rate it.
 *
 * Keystone has no paging for `GET /v3/projects`: `[DEFAULT]` or
 * `[resource] list_limit` cuts the list at that many projects and says
 * `"truncated": true`, with no marker or next link
 * (`keystone/server/flask/common.py` `wrap_collection` and `limit`;
 * `build_driver_hints`: "If we were to support pagination, we would pull
 * any pagination directives out of the query_dict here"; the SQL driver's
 * `_limit` has no ORDER BY either, so repeating a request gives no second
 * page). So a truncated list is split by filters Keystone applies before
 * it cuts, each request repeated until its part fits:
 * 1. `GET /v3/projects`; if it is whole, that is all;
 * 2. else per domain (`GET /v3/domains`), `?domain_id=D`;
 * 3. a domain still truncated: `?domain_id=D&enabled=true` and `…=false`;
 * 4. still truncated: the domain's complete id list, which Keystone does
 *    not cut (`GET /v3/projects/D?subtree_as_ids`: `list_projects_in_subtree`
 *    takes no hints), and `GET /v3/projects/{id}` for each id not seen yet,
 *    8 at a time.
 * A truncated domain list is IDENTITY_REFUSED, naming the setting.
 *
 * The rating role is read in one request, `GET /v3/role_assignments?user.id=U&include_names`,
 * never truncated (`keystone/api/role_assignments.py` wraps it without
 * hints), keeping the direct assignments on projects: what CloudKitty asks
 * project by project with `roles.list(user=…, project=…)`
 * (`GET /v3/projects/{p}/users/{u}/roles`: `list_grants`, direct and not
 * inherited). With `ignoreRatingRole` every project is rated; with
 * `ignoreDisabledTenants` (CloudKitty's default: false) no disabled one is.
 */
export class KeystoneProjectDirectory implements ProjectDirectory {
  private readonly session: KeystoneSession

  constructor (options: KeystoneSessionOptions, private readonly rules: { ignoreRatingRole: boolean, ignoreDisabledTenants: boolean }, deps: KeystoneSessionDeps) {
    this.session = new KeystoneSession(options, deps)
  }

  async close (): Promise<void> {
    await this.session.close()
  }

  async listProjects (): Promise<KeystoneProject[]> {
    const projects = await this.allProjects()
    const rated = this.rules.ignoreRatingRole ? undefined : await this.ratedProjectIds()
    // As _do_get_tenants filters: disabled projects out with ignore_disabled_tenants, then those without the rating role.
    const rates = (p: ProjectBody) => (p.enabled || !this.rules.ignoreDisabledTenants) && (rated === undefined || rated.has(p.id))
    return [...projects.values()].map((p) => ({ id: p.id, name: p.name, domainId: p.domain_id, enabled: p.enabled, rated: rates(p) }))
  }

  private async allProjects (): Promise<Map<string, ProjectBody>> {
    const seen = new Map<string, ProjectBody>()
    const add = (list: ProjectListBody) => { for (const p of list.projects ?? []) seen.set(p.id, p) }
    const all = await this.get<ProjectListBody>('/projects', 'to list projects')
    add(all)
    if (all.truncated !== true) return seen
    const domains = await this.get<DomainListBody>('/domains', 'to list domains')
    if (domains.truncated === true) {
      throw this.session.refused('Keystone truncates its domain list ([resource] list_limit); scopekeeper cannot list every project', 'to list every domain (its list_limit truncates the list)')
    }
    for (const { id: domain } of domains.domains ?? []) {
      const inDomain = await this.get<ProjectListBody>(`/projects?domain_id=${encodeURIComponent(domain)}`, 'to list projects')
      add(inDomain)
      if (inDomain.truncated !== true) continue
      let whole = true
      for (const enabled of ['true', 'false']) {
        const part = await this.get<ProjectListBody>(`/projects?domain_id=${encodeURIComponent(domain)}&enabled=${enabled}`, 'to list projects')
        add(part)
        whole &&= part.truncated !== true
      }
      if (whole) continue
      const tree = await this.get<{ project?: { subtree?: SubtreeIds | null } }>(`/projects/${encodeURIComponent(domain)}?subtree_as_ids`, 'to list projects')
      const unseen = [...flattenSubtree(tree.project?.subtree, new Set())].filter((id) => !seen.has(id))
      for (let i = 0; i < unseen.length; i += CONCURRENCY) {
        const read = await Promise.all(unseen.slice(i, i + CONCURRENCY).map(async (id) => await this.get<{ project?: ProjectBody }>(`/projects/${encodeURIComponent(id)}`, 'to read a project', [404])))
        // 404: deleted since the subtree was read.
        for (const body of read) if (body?.project !== undefined) seen.set(body.project.id, body.project)
      }
    }
    return seen
  }

  private async ratedProjectIds (): Promise<Set<string>> {
    const { userId } = await this.session.token()
    const body = await this.get<RoleAssignmentsBody>(`/role_assignments?user.id=${encodeURIComponent(userId)}&include_names`, 'to list the role assignments of its user')
    const rated = new Set<string>()
    for (const a of body.role_assignments ?? []) {
      const project = a.scope?.project?.id
      if (project !== undefined && a.scope?.['OS-INHERIT:inherited_to'] === undefined && a.role?.name === RATING_ROLE) rated.add(project)
    }
    return rated
  }

  /**
   * A GET of Keystone's v3 API with scopekeeper's token, renewed once if
   * Keystone no longer accepts it. `allowed` statuses answer undefined.
   * 403 is IDENTITY_REFUSED (`what` says what was refused); another status,
   * IDENTITY_UNAVAILABLE.
   */
  private async get<T> (path: string, what: string, allowed: number[] = []): Promise<T> {
    const session = this.session
    let rejected: string | undefined
    for (let attempt = 0; ; attempt++) {
      const token: ServiceToken = await session.token(rejected)
      const response = await session.request(`${token.identityUrl}${path}`, { method: 'GET', headers: { 'x-auth-token': token.token, accept: 'application/json' } })
      if (response.status === 200) return await session.readJson<T>(response)
      await discard(response)
      if (allowed.includes(response.status)) return undefined as T
      if (response.status === 401 && attempt === 0) {
        rejected = token.token
        continue
      }
      const { username, section } = session.options
      if (response.status === 401 || response.status === 403) {
        throw session.refused(`Keystone answered ${response.status} to GET ${path.split('?')[0]}: it does not let ${section} user ${username} ${what.replace(/^to /, '')} (it needs the admin role)`, `${what} (the user needs the admin role)`)
      }
      throw session.unavailable(`Keystone answered ${response.status} to GET ${path.split('?')[0]}`)
    }
  }
}
