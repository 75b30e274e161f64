import { findScopes, insertNewScopes, scopeIdsPresent } from '../storage/scope-state-repository.ts'
import { recordEvents } from '../storage/event-repository.ts'
import { inTransaction, type Store } from '../storage/store.ts'
import type { ChangeContext } from './change-context.ts'
import { ScopeKeeperError } from './errors.ts'
import type { NewEvent } from './scope-event.ts'
import type { ScopeStateService } from './scope-state-service.ts'
import type { ScopeDefaults, ScopeState } from './scope-state.ts'
import { formatTimestamp, startOfMonth } from './timestamps.ts'

/**
 * One Keystone project, as the reconciliation reads it. `rated` is whether
 * CloudKitty's keystone fetcher would rate it (`cloudkitty/fetcher/keystone.py`
 * `KeystoneFetcher._do_get_tenants`): its user has the `rating` role on the
 * project, or `[fetcher_keystone] ignore_rating_role` is set; and the project
 * is enabled, or `ignore_disabled_tenants` is not set (CloudKitty's default
 * rates disabled projects too).
 */
export interface KeystoneProject {
  id: string
  name: string
  domainId: string
  enabled: boolean
  rated: boolean
}

/**
 * Where the reconciliation reads every Keystone project: implemented in
 * `auth/keystone-projects.ts`. Throws IDENTITY_UNAVAILABLE when Keystone
 * cannot be reached and IDENTITY_REFUSED when it refuses.
 */
export interface ProjectDirectory {
  listProjects: () => Promise<KeystoneProject[]>
}

/**
 * The scope_key whose scope_id is a Keystone project id, and the only one
 * compared with Keystone's projects: CloudKitty's default `[collect]
 * scope_key`, whatever fetcher found the scope (a gnocchi- or
 * prometheus-fetched scope keyed by `project_id` still names a project).
 * States with another scope_key (a domain, a user) or none are skipped.
 */
export const PROJECT_SCOPE_KEY = 'project_id'

/** What a reconciliation is asked to do besides reporting. */
export interface ReconcileRequest {
  /** Report only (the default): nothing is written, whatever else is asked. */
  dryRun: boolean
  /** Deactivate the active states of deleted or disabled projects. */
  deactivateMissing: boolean
  /** Create a state, with the configured defaults, for each project the fetcher rates that has none. */
  registerNew: boolean
  /** With registerNew: create them inactive (the processor then skips them until activated). */
  inactive: boolean
}

/** An active scope state whose project Keystone lists as disabled, with that project. */
export interface DisabledScope {
  scope: ScopeState
  project: KeystoneProject
}

/** What a reconciliation found, and what it did. */
export interface ReconcileReport {
  dryRun: boolean
  /** Projects Keystone lists (every domain), and how many of them the fetcher rates. */
  projectsTotal: number
  projectsRated: number
  /** States compared with Keystone (scope_key `project_id`), and the others, skipped. */
  scopesCompared: number
  scopesSkipped: number
  /** Active states whose scope_id is no Keystone project. */
  deleted: ScopeState[]
  /** Active states whose project is disabled. */
  disabled: DisabledScope[]
  /** Enabled projects the fetcher rates that no state names. */
  new: KeystoneProject[]
  /** States deactivated (0 in a dry run). */
  deactivated: number
  /** States created for new projects (none in a dry run); a project created meanwhile by someone else is skipped. */
  registered: Array<Omit<ScopeState, 'id'>>
}

export interface ScopeReconciliationDeps {
  store: Store
  scopes: ScopeStateService
  defaults: ScopeDefaults
  /** Undefined when no Keystone credentials are configured: a reconciliation is then IDENTITY_NOT_CONFIGURED. */
  directory: ProjectDirectory | undefined
  clock?: () => Date
}

/** States read per query while comparing; bounds memory at any table size. */
const SCAN_CHUNK = 1000
/** Rows per INSERT of new scopes, and scope ids per bulk deactivation. */
const WRITE_CHUNK = 500

/** The reason recorded with every change of a reconciliation, followed by the caller's own when given. */
export const RECONCILE_REASON = 'reconcile'

function reconcileContext (context: ChangeContext): ChangeContext {
  return { ...context, reason: context.reason === null ? RECONCILE_REASON : `${RECONCILE_REASON}: ${context.reason}` }
}

/**
 * Compares the scope states with Keystone's projects, as CloudKitty's
 * keystone fetcher sees them, and on request acts on the difference.
 */
export class ScopeReconciliation {
  private readonly now: () => Date

  constructor (private readonly deps: ScopeReconciliationDeps) {
    this.now = deps.clock ?? (() => new Date())
  }

  /**
   * Reports the active states of deleted projects and of disabled ones, and
   * the enabled projects the fetcher rates that have no state yet. Inactive
   * states are left out of the report: there is nothing left to do with
   * them, so a reconciliation that acted on everything reports nothing the
   * next time.
   *
   * Unless `dryRun`:
   * - `deactivateMissing` deactivates the reported states through
   *   {@link ScopeStateService.setActivation} (one transaction per
   *   {@link WRITE_CHUNK} scope ids; toggle date and `deactivated` events
   *   only on rows that flip);
   * - `registerNew` creates one state per new project with the configured
   *   scope_key, fetcher and collector, starting at the month's start, in
   *   one transaction of multi-row INSERTs with their `created` events. A
   *   project that gained a state meanwhile (CloudKitty's processor, a
   *   POST) is skipped, never an error.
   *
   * Every change records the reason `reconcile` (`reconcile: <the caller's>`).
   * Keystone is read before anything is written: if it cannot be read
   * (IDENTITY_UNAVAILABLE, IDENTITY_REFUSED) nothing changes.
   */
  async reconcile (request: ReconcileRequest, context: ChangeContext): Promise<ReconcileReport> {
    const { directory, store } = this.deps
    if (directory === undefined) {
      throw new ScopeKeeperError('IDENTITY_NOT_CONFIGURED', 'Reconciliation needs Keystone credentials: set [fetcher_keystone] auth_type, auth_url, username, password and project_name, or [keystone_authtoken]\'s.')
    }
    const projects = await directory.listProjects()
    const byId = new Map(projects.map((p) => [p.id, p]))
    const named = new Set<string>()
    const deleted: ScopeState[] = []
    const disabled: DisabledScope[] = []
    let compared = 0
    let skipped = 0
    for (let marker: number | undefined; ;) {
      const chunk = await findScopes(store, {}, { limit: SCAN_CHUNK, marker })
      for (const scope of chunk) {
        // A state of any scope_key names its scope_id: a project with one is
        // not new. Only project ids are kept: bounded by Keystone's list.
        if (byId.has(scope.scopeId)) named.add(scope.scopeId)
        if (scope.scopeKey !== PROJECT_SCOPE_KEY) { skipped++; continue }
        compared++
        if (!scope.active) continue
        const project = byId.get(scope.scopeId)
        if (project === undefined) deleted.push(scope)
        else if (!project.enabled) disabled.push({ scope, project })
      }
      if (chunk.length < SCAN_CHUNK) break
      marker = chunk[chunk.length - 1].id
    }
    // A disabled project is never new: registered, it would be reported disabled at once.
    const fresh = projects.filter((p) => p.rated && p.enabled && !named.has(p.id))
    const report: ReconcileReport = {
      dryRun: request.dryRun,
      projectsTotal: projects.length,
      projectsRated: projects.filter((p) => p.rated).length,
      scopesCompared: compared,
      scopesSkipped: skipped,
      deleted,
      disabled,
      new: fresh,
      deactivated: 0,
      registered: [],
    }
    if (request.dryRun) return report
    const changeContext = reconcileContext(context)
    if (request.deactivateMissing) report.deactivated = await this.deactivate([...deleted, ...disabled.map((d) => d.scope)], changeContext)
    if (request.registerNew) report.registered = await this.register(fresh, !request.inactive, changeContext)
    return report
  }

  private async deactivate (states: ScopeState[], context: ChangeContext): Promise<number> {
    const ids = [...new Set(states.map((s) => s.scopeId))]
    let flipped = 0
    for (let i = 0; i < ids.length; i += WRITE_CHUNK) {
      try {
        // Only the project-keyed states the report named: another state of
        // the same scope_id (another scope_key) is not a project's.
        const result = await this.deps.scopes.setActivation({ scopeIds: ids.slice(i, i + WRITE_CHUNK), scopeKeys: [PROJECT_SCOPE_KEY], active: [true] }, false, context)
        flipped += result.scopesFlipped
      } catch (error) {
        // Every one of them was deactivated or deleted meanwhile: nothing left to do.
        if (error instanceof ScopeKeeperError && error.code === 'SCOPE_NOT_FOUND') continue
        throw error
      }
    }
    return flipped
  }

  private async register (projects: KeystoneProject[], active: boolean, context: ChangeContext): Promise<Array<Omit<ScopeState, 'id'>>> {
    if (projects.length === 0) return []
    const { defaults } = this.deps
    const now = new Date(Math.floor(this.now().getTime() / 1000) * 1000)
    return await inTransaction(this.deps.store, async (trx) => {
      const created: Array<Omit<ScopeState, 'id'>> = []
      for (let i = 0; i < projects.length; i += WRITE_CHUNK) {
        const ids = projects.slice(i, i + WRITE_CHUNK).map((p) => p.id)
        // Named since the scan (CloudKitty's processor, a POST): no longer new.
        const present = await scopeIdsPresent(trx, ids)
        const rows = ids.filter((id) => !present.has(id)).map((scopeId) => ({
          scopeId,
          scopeKey: defaults.scopeKey,
          fetcher: defaults.fetcher,
          collector: defaults.collector,
          lastProcessedTimestamp: startOfMonth(now),
          active,
          activationToggleDate: now,
        }))
        const inserted = await insertNewScopes(trx, rows)
        await recordEvents(trx, inserted.map((scope): NewEvent => ({
          kind: 'created',
          scopeId: scope.scopeId,
          details: {
            scope_key: scope.scopeKey, fetcher: scope.fetcher, collector: scope.collector, active: scope.active,
            last_processed_timestamp: formatTimestamp(scope.lastProcessedTimestamp),
          },
          context,
          at: now,
        })))
        created.push(...inserted)
      }
      return created
    })
  }
}
