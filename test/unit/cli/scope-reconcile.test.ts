import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { Command } from 'commander'
import { DisabledScopeReply, ProjectReply, ReconcileBody, ReconcileReply } from '../../../src/api/v2/scope/reconcile-schemas.ts'
import { flagOf, formatReconcile, registerScopeCommands } from '../../../src/cli/scope-commands.ts'
import { RECONCILE_DISABLED_FIELDS, RECONCILE_FIELDS, RECONCILE_PROJECT_FIELDS, RECONCILE_REPLY_FIELDS, type ReconcileReply as CliReconcileReply } from '../../../src/cli/wire.ts'

const SCOPE = {
  scope_id: 'p-gone', scope_key: 'project_id', fetcher: 'keystone', collector: 'gnocchi',
  state: '2026-12-01T00:00:00+00:00', last_processed_timestamp: '2026-12-01T00:00:00+00:00', active: true, scope_activation_toggle_date: '2026-12-01T00:00:00+00:00',
}

const REPORT: CliReconcileReply = {
  dry_run: true, projects_total: 3, projects_rated: 2, scopes_compared: 2, scopes_skipped: 0,
  deleted: { count: 1, results: [SCOPE] },
  disabled: { count: 1, results: [{ ...SCOPE, scope_id: 'p-off', project_name: 'off', domain_id: 'default' }] },
  new: { count: 1, results: [{ project_id: 'p-new', project_name: 'fresh', domain_id: 'default' }] },
  deactivated: 0,
  registered: { count: 0, results: [] },
}

describe('scope reconcile', () => {
  it('reads every field of the server\'s report, in its order, and offers a flag for every body field', () => {
    assert.deepEqual([...RECONCILE_REPLY_FIELDS], Object.keys(ReconcileReply.properties))
    assert.deepEqual([...RECONCILE_PROJECT_FIELDS], Object.keys(ProjectReply.properties))
    assert.deepEqual([...RECONCILE_DISABLED_FIELDS], Object.keys(DisabledScopeReply.properties))
    assert.deepEqual([...RECONCILE_FIELDS], Object.keys(ReconcileBody.properties))
    const root = new Command('scopekeeper')
    registerScopeCommands(root, { stdout: { write: () => true }, stderr: { write: () => true }, env: {}, cwd: '/' })
    const reconcile = root.commands.find((c) => c.name() === 'scope')!.commands.find((c) => c.name() === 'reconcile')!
    const flags = reconcile.options.map((o) => o.long)
    for (const field of RECONCILE_FIELDS) assert.ok(flags.includes(flagOf(field)), flagOf(field))
  })

  it('prints the figures, then each list under its title and count', () => {
    const text = formatReconcile(REPORT, { format: 'table' })
    assert.match(text, /^\+-+\+-+\+\n\| Field +\| Value +\|/)
    assert.match(text, /\| Projects Rated +\| 2 +\|/)
    assert.match(text, /\nScopes of deleted projects: 1\n\+[-+]+\+\n\| Scope ID +\| Scope Key .*\n\+[-+]+\+\n\| p-gone /)
    assert.match(text, /\nScopes of disabled projects: 1\n[^]*\| Project Name \| Domain ID \|\n[^]*\| p-off [^\n]*\| off +\| default +\|/)
    assert.match(text, /\nProjects with no scope: 1\n[^]*\| p-new +\| fresh +\| default +\|/)
    assert.match(text, /\nScopes registered: 0\n$/)
    assert.doesNotMatch(text, /State \|/)
  })

  it('prints JSON as one object, each list its Count and Results keyed by heading', () => {
    const json = JSON.parse(formatReconcile(REPORT, { format: 'json' }))
    assert.equal(json['Projects Total'], 3)
    assert.deepEqual(json.New, { Count: 1, Results: [{ 'Project ID': 'p-new', 'Project Name': 'fresh', 'Domain ID': 'default' }] })
    assert.equal(json.Deleted.Results[0]['Scope ID'], 'p-gone')
    assert.equal(json.Disabled.Results[0]['Project Name'], 'off')
    assert.deepEqual(json.Registered, { Count: 0, Results: [] })
  })
})
