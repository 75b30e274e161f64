import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { Command } from 'commander'
import { EventReply, ListEventsQuery } from '../../../src/api/v2/scope/event-schemas.ts'
import { ResetJobReply } from '../../../src/api/v2/scope/reset-job-schemas.ts'
import { SCOPE_EVENT_FIELDS } from '../../../src/cli/wire.ts'
import { CreateScopeBody, ListScopesQuery, PatchScopeBody, ResetScopesBody, ScopeStateReply } from '../../../src/api/v2/scope/scope-schemas.ts'
import { flagOf, formatPreview, jobRow, registerScopeCommands, RESET_JOB_COLUMNS, SCOPE_COLUMNS } from '../../../src/cli/scope-commands.ts'

function program (): Command {
  const root = new Command('scopekeeper')
  registerScopeCommands(root, { stdout: { write: () => true }, stderr: { write: () => true }, env: {}, cwd: '/' })
  return root
}

function find (root: Command, path: string[]): Command {
  return path.reduce((command, name) => command.commands.find((c) => c.name() === name)!, root)
}

function flags (command: Command): string[] {
  return command.options.map((o) => o.long!)
}

describe('scope commands', () => {
  it('offers a flag for every field of each request schema, named after the wire field', () => {
    const root = program()
    const list = find(root, ['scope', 'state', 'list'])
    for (const field of Object.keys(ListScopesQuery.properties)) assert.ok(flags(list).includes(flagOf(field)), `list ${flagOf(field)}`)
    assert.ok(flags(list).includes('--inactive'))
    assert.deepEqual(list.aliases(), ['get'])
    const reset = find(root, ['scope', 'state', 'reset'])
    for (const field of Object.keys(ResetScopesBody.properties)) assert.ok(flags(reset).includes(flagOf(field)), `reset ${flagOf(field)}`)
    const patch = find(root, ['scope', 'patch'])
    for (const field of Object.keys(PatchScopeBody.properties)) assert.ok(flags(patch).includes(flagOf(field)), `patch ${flagOf(field)}`)
    const create = find(root, ['scope', 'create'])
    for (const field of Object.keys(CreateScopeBody.properties).filter((f) => f !== 'scope_id')) assert.ok(flags(create).includes(flagOf(field)), `create ${flagOf(field)}`)
    assert.equal(create.registeredArguments[0].name(), 'scope_id')
  })

  it('shows every field of the reply schemas but the deprecated state alias', () => {
    assert.deepEqual(SCOPE_COLUMNS.map((c) => c.key), Object.keys(ScopeStateReply.properties).filter((k) => k !== 'state'))
    assert.deepEqual(RESET_JOB_COLUMNS.map((c) => c.key), Object.keys(ResetJobReply.properties))
    // The history reads every field of an event, in the server's order.
    assert.deepEqual([...SCOPE_EVENT_FIELDS], Object.keys(EventReply.properties))
  })

  it('offers a flag for every filter of the audit history', () => {
    const history = find(program(), ['scope', 'history'])
    for (const field of Object.keys(ListEventsQuery.properties).filter((f) => f !== 'scope_id')) assert.ok(flags(history).includes(flagOf(field)), `history ${flagOf(field)}`)
  })

  it('gives every command the output and connection options of the OpenStack client', () => {
    const root = program()
    for (const path of [['scope', 'state', 'list'], ['scope', 'state', 'reset'], ['scope', 'patch'], ['scope', 'create']]) {
      const command = find(root, path)
      for (const flag of ['--format', '--column', '--noindent', '--quote', '--os-cloud', '--os-endpoint', '--os-auth-url', '--os-token',
        '--os-region-name', '--os-interface', '--os-cacert', '--insecure', '--timeout', '--debug']) {
        assert.ok(flags(command).includes(flag), `${path.join(' ')} ${flag}`)
      }
    }
    assert.ok(flags(find(root, ['scope', 'state', 'list'])).includes('--sort-column'))
  })

  it('gives the issue 14 commands and flags: history, reset jobs, --reason, --idempotency-key, --dry-run, --if-match', () => {
    const root = program()
    for (const path of [['scope', 'history'], ['scope', 'reset', 'list'], ['scope', 'reset', 'show'], ['scope', 'reset', 'cancel']]) {
      const command = find(root, path)
      assert.ok(command !== undefined, path.join(' '))
      for (const flag of ['--format', '--column', '--os-endpoint', '--debug']) assert.ok(flags(command).includes(flag), `${path.join(' ')} ${flag}`)
    }
    for (const flag of ['--kind', '--user-id', '--since', '--until', '--limit', '--marker', '--all']) assert.ok(flags(find(root, ['scope', 'history'])).includes(flag), flag)
    for (const flag of ['--status', '--scope-id', '--limit', '--offset']) assert.ok(flags(find(root, ['scope', 'reset', 'list'])).includes(flag), flag)
    for (const flag of ['--wait', '--poll-interval', '--wait-timeout']) assert.ok(flags(find(root, ['scope', 'reset', 'show'])).includes(flag), flag)
    for (const path of [['scope', 'state', 'reset'], ['scope', 'patch'], ['scope', 'create']]) {
      for (const flag of ['--reason', '--idempotency-key', '--dry-run']) assert.ok(flags(find(root, path)).includes(flag), `${path.join(' ')} ${flag}`)
    }
    assert.ok(flags(find(root, ['scope', 'patch'])).includes('--if-match'))
    // reason is the change's own field, not a filter: one value, no "(repeatable)".
    const reason = find(root, ['scope', 'state', 'reset']).options.filter((o) => o.long === '--reason')
    assert.equal(reason.length, 1)
    assert.doesNotMatch(reason[0].description, /repeatable/)
  })

  it('shows who created a reset job as one text, and leaves it out when an older server sends none', () => {
    const job = {
      id: 1, status: 'done', last_processed_timestamp: 't', scopes_total: 1, scopes_applied: 1, scopes_waiting: 0, attempts: 1, max_attempts: 10,
      last_error: null, request_id: null, created_at: 't', started_at: null, finished_at: null,
    }
    assert.equal(jobRow({ ...job, created_by: { user_id: 'u1', user_name: 'alice', project_id: 'p1' } }).created_by, 'alice (project p1)')
    assert.equal(jobRow({ ...job, created_by: { user_id: 'u1', user_name: null, project_id: null } }).created_by, 'u1')
    assert.equal(jobRow({ ...job, created_by: { user_id: null, user_name: null, project_id: null } }).created_by, 'noauth')
    assert.equal(jobRow(job).created_by, undefined)
  })

  it('prints a reset preview as its figures, then its scopes; as one object in JSON; -c picks among them', () => {
    const scope = {
      scope_id: 's1', scope_key: 'project_id', fetcher: 'keystone', collector: 'gnocchi', state: 't', last_processed_timestamp: '2024-01-01T00:00:00+00:00',
      active: false, scope_activation_toggle_date: '2024-01-01T00:00:00+00:00',
    }
    const preview = {
      dry_run: true as const, scopes_total: 3, scopes_inactive: 1, last_processed_timestamp: '2019-07-01T00:00:00+00:00',
      discard_from: '2019-07-01T00:00:00+00:00', results: [scope],
    }
    const table = formatPreview(preview, {})
    assert.match(table, /^\+-+\+-+\+\n\| Field +\| Value +\|\n\+-+\+-+\+\n\| Scopes Total +\| 3 +\|\n\| Scopes Inactive +\| 1 +\|/)
    assert.match(table, /\| Discard From +\| 2019-07-01T00:00:00\+00:00 \|\n\+-+\+-+\+\n\n\+-+/)
    assert.match(table, /\| s1 +\| project_id +\| keystone +\| gnocchi +\|/)
    assert.deepEqual(JSON.parse(formatPreview(preview, { format: 'json' })), {
      'Scopes Total': 3, 'Scopes Inactive': 1, 'Last Processed Timestamp': '2019-07-01T00:00:00+00:00', 'Discard From': '2019-07-01T00:00:00+00:00',
      Scopes: [{
        'Scope ID': 's1', 'Scope Key': 'project_id', Fetcher: 'keystone', Collector: 'gnocchi', 'Last Processed Timestamp': '2024-01-01T00:00:00+00:00',
        Active: false, 'Scope Activation Toggle Date': '2024-01-01T00:00:00+00:00',
      }],
    })
    assert.equal(formatPreview(preview, { format: 'value', columns: ['scopes_total', 'Scopes Inactive'] }), '3\n1\n')
    assert.match(formatPreview(preview, { format: 'value', columns: ['Scopes'] }), /^s1 project_id keystone gnocchi /)
    assert.throws(() => formatPreview(preview, { columns: ['colour'] }), /Unknown column 'colour'/)
  })
})
