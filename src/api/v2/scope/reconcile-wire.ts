import { invalidInput } from '../../../domain/errors.ts'
import type { KeystoneProject, ReconcileReport, ReconcileRequest } from '../../../domain/scope-reconciliation.ts'
import type { ReconcileBody } from './reconcile-schemas.ts'
import { scopeJson } from './scope-wire.ts'

/** The body → the request: a dry run unless `dry_run` is false; `inactive` only with `register_new`. */
export function reconcileFromWire (body: ReconcileBody): ReconcileRequest {
  if (body.inactive === true && body.register_new !== true) {
    throw invalidInput('Invalid inactive in the request body: must come with register_new: true, the scopes it creates being what it makes inactive.')
  }
  return {
    dryRun: body.dry_run ?? true,
    deactivateMissing: body.deactivate_missing ?? false,
    registerNew: body.register_new ?? false,
    inactive: body.inactive ?? false,
  }
}

function projectJson (p: KeystoneProject): string {
  return JSON.stringify({ project_id: p.id, project_name: p.name, domain_id: p.domainId })
}

function list (items: string[]): string {
  return `{"count":${items.length},"results":[${items.join(',')}]}`
}

/** The report (`ReconcileReply`) as JSON text; its scope states written by {@link scopeJson}. */
export function reconcileReportJson (report: ReconcileReport): string {
  const disabled = report.disabled.map(({ scope, project }) =>
    `${scopeJson(scope).slice(0, -1)},"project_name":${JSON.stringify(project.name)},"domain_id":${JSON.stringify(project.domainId)}}`)
  return `{"dry_run":${report.dryRun ? 'true' : 'false'},"projects_total":${report.projectsTotal},"projects_rated":${report.projectsRated},` +
    `"scopes_compared":${report.scopesCompared},"scopes_skipped":${report.scopesSkipped},` +
    `"deleted":${list(report.deleted.map(scopeJson))},"disabled":${list(disabled)},"new":${list(report.new.map(projectJson))},` +
    `"deactivated":${report.deactivated},"registered":${list(report.registered.map(scopeJson))}}`
}
