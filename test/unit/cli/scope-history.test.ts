import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { changeText, historyRow, userText } from '../../../src/cli/scope-history.ts'
import type { ScopeEventReply } from '../../../src/cli/wire.ts'

const event = (kind: string, details: Record<string, unknown>, extra: Partial<ScopeEventReply> = {}): ScopeEventReply => ({
  id: 1, kind, scope_id: 's1', created_at: '2026-01-02T03:04:05+00:00', user_id: null, user_name: null, project_id: null, roles: [],
  auth: 'noauth', request_id: 'req-1', reason: null, job_id: null, details, ...extra,
})

describe('scope history', () => {
  it('says what a patch changed, old → new, field by field', () => {
    assert.equal(changeText(event('patched', { changes: { collector: { old: 'gnocchi', new: 'prometheus' } } })), 'collector gnocchi → prometheus')
    assert.equal(changeText(event('patched', { changes: { fetcher: { old: 'keystone', new: 'gnocchi' }, active: { old: true, new: false } } })),
      'fetcher keystone → gnocchi, active true → false')
    assert.equal(changeText(event('patched', { changes: { scope_key: { old: null, new: 'project_id' } } })), 'scope_key null → project_id')
  })

  it('says what (de)activation changed', () => {
    assert.equal(changeText(event('deactivated', { active: { old: true, new: false } })), 'active true → false')
    assert.equal(changeText(event('activated', { active: { old: false, new: true } })), 'active false → true')
  })

  it('lists the initial fields of a created scope, the usual ones first', () => {
    assert.equal(changeText(event('created', {
      last_processed_timestamp: '2024-01-01T00:00:00+00:00', active: false, collector: 'gnocchi', fetcher: 'keystone', scope_key: 'project_id',
    })), 'scope_key project_id, fetcher keystone, collector gnocchi, active false, last_processed_timestamp 2024-01-01T00:00:00+00:00')
  })

  it('says where a reset goes, from where, how many scopes, and which job', () => {
    assert.equal(changeText(event('reset_applied', {
      old_last_processed_timestamp: '2024-03-01T00:00:00+00:00', last_processed_timestamp: '2019-07-01T00:00:00+00:00',
    }, { job_id: 12 })), 'reset to 2019-07-01T00:00:00+00:00 (from 2024-03-01T00:00:00+00:00) (job 12)')
    assert.equal(changeText(event('reset_applied', { old_last_processed_timestamp: '2024-03-01T00:00:00+00:00', last_processed_timestamp: '2019-07-01T00:00:00+00:00' })),
      'reset to 2019-07-01T00:00:00+00:00 (from 2024-03-01T00:00:00+00:00)')
    assert.equal(changeText(event('reset_requested', { filter: { all_scopes: true }, last_processed_timestamp: '2019-07-01T00:00:00+00:00', scopes_total: 30 }, { job_id: 3 })),
      'reset of 30 scopes to 2019-07-01T00:00:00+00:00 requested (all scopes) (job 3)')
    assert.equal(changeText(event('reset_requested', { filter: { scope_id: ['a', 'b'], collector: ['gnocchi'] }, last_processed_timestamp: 'T', scopes_total: 1 })),
      'reset of 1 scope to T requested (scope_id a,b; collector gnocchi)')
    assert.equal(changeText(event('reset_cancelled', { scopes_applied: 4 }, { job_id: 3 })), 'reset cancelled after 4 scopes applied (job 3)')
  })

  it("shows an unknown kind's details as compact JSON, and nothing for no details", () => {
    assert.equal(changeText(event('renamed', { from: 'a', to: 'b' })), '{"from":"a","to":"b"}')
    assert.equal(changeText(event('touched', {})), '')
  })

  it('names the user by name, else id, else noauth', () => {
    assert.equal(userText({ user_name: 'alice', user_id: 'u1', auth: 'keystone' }), 'alice')
    assert.equal(userText({ user_name: null, user_id: 'u1', auth: 'keystone' }), 'u1')
    assert.equal(userText({ user_name: null, user_id: null, auth: 'noauth' }), 'noauth')
    assert.equal(userText({ user_name: null, user_id: null, auth: 'keystone' }), null)
  })

  it('makes one row of the columns the command shows', () => {
    assert.deepEqual(historyRow(event('deactivated', { active: { old: true, new: false } }, {
      user_id: 'u1', user_name: 'alice', project_id: 'p1', auth: 'keystone', reason: 'trial over',
    })), {
      created_at: '2026-01-02T03:04:05+00:00', kind: 'deactivated', user: 'alice', project_id: 'p1', request_id: 'req-1', reason: 'trial over',
      change: 'active true → false',
    })
  })
})
