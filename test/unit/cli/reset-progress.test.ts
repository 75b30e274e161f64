import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { ResetJobReply } from '../../../src/api/v2/scope/reset-job-schemas.ts'
import { ResetProgress } from '../../../src/cli/reset-progress.ts'

function job (changes: Partial<ResetJobReply>): ResetJobReply {
  return {
    id: 7, status: 'pending', last_processed_timestamp: '2019-07-01T00:00:00+00:00', scopes_total: 200, scopes_applied: 0, scopes_waiting: 0,
    attempts: 0, max_attempts: 10, last_error: null, request_id: 'req-x', created_at: '2019-07-01T00:00:00+00:00', started_at: null, finished_at: null,
    created_by: null, reason: null,
    cancel_requested_at: null, ...changes,
  }
}

function stream (isTTY: boolean, columns?: number) {
  const chunks: string[] = []
  return { chunks, isTTY, columns, write: (text: string) => { chunks.push(text) } }
}

describe('reset progress', () => {
  it('prints one plain line per change when stderr is not a terminal', () => {
    const out = stream(false)
    const progress = new ResetProgress(out)
    progress.update(job({}))
    progress.update(job({}))
    progress.update(job({ status: 'running', scopes_applied: 100, attempts: 1 }))
    progress.update(job({ status: 'pending', scopes_applied: 100, attempts: 1, last_error: 'broker down' }))
    progress.finish(job({ status: 'done', scopes_applied: 200, attempts: 2 }))
    assert.deepEqual(out.chunks, [
      'Reset 7: pending, 0/200 scopes applied\n',
      'Reset 7: running, 100/200 scopes applied\n',
      'Reset 7: pending, 100/200 scopes applied; attempt 1 of 10 failed (broker down), retrying\n',
      'Reset 7: done, 200/200 scopes applied\n',
    ])
  })

  it('redraws one line with a bar on a terminal, and ends it with a newline', () => {
    const out = stream(true, 200)
    const progress = new ResetProgress(out)
    progress.update(job({ status: 'running', scopes_applied: 100, attempts: 1 }))
    progress.finish(job({ status: 'done', scopes_applied: 200, attempts: 1 }))
    assert.equal(out.chunks[0], '\r\x1b[2KReset 7 [###############...............]  50% running, 100/200 scopes applied')
    assert.equal(out.chunks[1], '\r\x1b[2KReset 7 [##############################] 100% done, 200/200 scopes applied')
    assert.equal(out.chunks[2], '\n')
  })

  it('moves past the bar when waiting stops early, and writes nothing when nothing was drawn', () => {
    const out = stream(true, 200)
    const progress = new ResetProgress(out)
    progress.end()
    assert.deepEqual(out.chunks, [])
    progress.update(job({ status: 'running', scopes_applied: 10, attempts: 1 }))
    progress.end()
    assert.equal(out.chunks.at(-1), '\n')
    assert.equal(out.chunks.length, 2)
  })

  it('never lets the bar line wrap on a narrow terminal', () => {
    const out = stream(true, 40)
    new ResetProgress(out).update(job({ status: 'failed', attempts: 10, last_error: 'the rated data store refused: timeout' }))
    assert.ok([...out.chunks[0].replace('\r\x1b[2K', '')].length < 40)
  })

  it("says how many scopes wait on CloudKitty's processing lock", () => {
    const out = stream(false)
    new ResetProgress(out).update(job({ status: 'running', scopes_applied: 199, scopes_waiting: 1, attempts: 1 }))
    assert.deepEqual(out.chunks, ["Reset 7: running, 199/200 scopes applied, 1 waiting on CloudKitty's processing lock\n"])
  })

  it('says when a reset is being cancelled, and that a cancelled one left the other scopes alone', () => {
    const out = stream(false)
    const progress = new ResetProgress(out)
    progress.update(job({ status: 'running', scopes_applied: 50, attempts: 1, cancel_requested_at: '2019-07-01T00:01:00+00:00' }))
    progress.finish(job({ status: 'cancelled', scopes_applied: 100, attempts: 1, cancel_requested_at: '2019-07-01T00:01:00+00:00' }))
    assert.deepEqual(out.chunks, [
      'Reset 7: running, 50/200 scopes applied; cancelling after the current batch\n',
      'Reset 7: cancelled, 100/200 scopes applied; the other scopes were left as they were\n',
    ])
  })

  it('says why a failed reset failed', () => {
    const out = stream(false)
    new ResetProgress(out).finish(job({ status: 'failed', attempts: 1, max_attempts: 1, last_error: 'connect ECONNREFUSED' }))
    assert.deepEqual(out.chunks, ['Reset 7: failed after 1 attempt, 0/200 scopes applied: connect ECONNREFUSED\n'])
  })
})
