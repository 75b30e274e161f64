// `scopekeeper scope …` for issue 14 (history, dry runs, reset jobs, cancel,
// Idempotency-Key, If-Match): the real CLI process against a stand-in
// server, a real node:http server that answers as the issue 14 API spec
// says. The server side of these routes is built on other branches; once
// merged, test/e2e/cli.test.ts covers them against the real server.
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, beforeEach, describe, it } from 'node:test'
import { ok, runCli, withoutOsVariables, type CliRun } from '../helpers/cli-process.ts'

interface Seen { method: string, url: URL, headers: IncomingMessage['headers'], body: unknown }

type Job = Record<string, unknown> & { id: number, status: string }

const T0 = '2026-01-01T00:00:00+00:00'
const SCOPE = {
  scope_id: 's1', scope_key: 'project_id', fetcher: 'keystone', collector: 'gnocchi', state: T0, last_processed_timestamp: T0,
  active: true, scope_activation_toggle_date: T0,
}
const ETAG = '"etag-1"'

function job (id: number, status: string, extra: Record<string, unknown> = {}): Job {
  return {
    id, status, last_processed_timestamp: '2019-07-01T00:00:00+00:00', scopes_total: 10, scopes_applied: 4, scopes_waiting: 0, attempts: 1,
    max_attempts: 10, last_error: null, request_id: 'req-job', created_at: T0, started_at: T0, finished_at: null, ...extra,
  }
}

// 25 events of s1, newest (id 25) first: a created, then patches, (de)activations and a reset.
function events (): Array<Record<string, unknown>> {
  const base = { scope_id: 's1', roles: ['admin'], request_id: 'req-e', reason: null, job_id: null }
  const all: Array<Record<string, unknown>> = [{
    ...base, id: 1, kind: 'created', created_at: '2026-01-01T00:00:01+00:00', user_id: null, user_name: null, project_id: null, auth: 'noauth',
    details: { scope_key: 'project_id', fetcher: 'keystone', collector: 'gnocchi', active: true, last_processed_timestamp: T0 },
  }]
  for (let id = 2; id <= 22; id++) {
    all.push({
      ...base, id, kind: 'patched', created_at: `2026-01-02T00:00:${String(id).padStart(2, '0')}+00:00`, user_id: 'u1', user_name: 'alice',
      project_id: 'p1', auth: 'keystone', details: { changes: { collector: { old: `c${id - 1}`, new: `c${id}` } } },
    })
  }
  all.push({
    ...base, id: 23, kind: 'deactivated', created_at: '2026-01-03T00:00:00+00:00', user_id: 'u2', user_name: null, project_id: 'p1', auth: 'keystone',
    reason: 'trial over', details: { active: { old: true, new: false } },
  })
  all.push({
    ...base, id: 24, kind: 'reset_requested', created_at: '2026-01-04T00:00:00+00:00', user_id: 'u1', user_name: 'alice', project_id: 'p1',
    auth: 'keystone', job_id: 7, details: { filter: { scope_id: ['s1'] }, last_processed_timestamp: '2019-07-01T00:00:00+00:00', scopes_total: 1 },
  })
  all.push({
    ...base, id: 25, kind: 'reset_applied', created_at: '2026-01-04T00:00:01+00:00', user_id: 'u1', user_name: 'alice', project_id: 'p1',
    auth: 'keystone', job_id: 7, details: { old_last_processed_timestamp: T0, last_processed_timestamp: '2019-07-01T00:00:00+00:00' },
  })
  return all.reverse()
}

describe('scopekeeper scope … for issue 14, the real CLI against a stand-in server speaking the spec', () => {
  let url: string
  let home: string
  let seen: Seen[] = []
  // The stand-in's state: what a real server would hold.
  let jobs: Map<number, Job>
  let replays: Map<string, { body: string, status: number, headers: Record<string, string>, answer: string }>
  let actions: number
  let dropNext: number
  let polls: number
  let offersDryRun: boolean

  function send (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    res.writeHead(status, { 'content-type': 'application/json', 'x-openstack-request-id': 'req-stand-in', ...headers })
    res.end(JSON.stringify(body))
  }

  /** PUT/PATCH/POST under an Idempotency-Key: a repeat replays the first answer; the same key with another body is a 422. */
  function keyed (req: IncomingMessage, res: ServerResponse, raw: string, act: () => { status: number, body: unknown, headers?: Record<string, string> }): void {
    const key = req.headers['idempotency-key'] as string | undefined
    const previous = key === undefined ? undefined : replays.get(key)
    if (previous !== undefined) {
      if (previous.body !== raw) return send(res, 422, { message: 'This Idempotency-Key was used with another request body.' })
      res.writeHead(previous.status, { 'content-type': 'application/json', ...previous.headers })
      return void res.end(previous.answer)
    }
    const answer = act()
    actions++
    if (key !== undefined) replays.set(key, { body: raw, status: answer.status, headers: answer.headers ?? {}, answer: JSON.stringify(answer.body) })
    // The answer is lost on the way: the server acted, the client does not know.
    if (dropNext > 0) { dropNext--; return void req.socket.destroy() }
    send(res, answer.status, answer.body, answer.headers)
  }

  function handle (req: IncomingMessage, res: ServerResponse, raw: string): void {
    const target = new URL(req.url!, 'http://stand-in')
    seen.push({ method: req.method!, url: target, headers: req.headers, body: raw === '' ? undefined : JSON.parse(raw) })
    const q = target.searchParams
    const body = (raw === '' ? {} : JSON.parse(raw)) as Record<string, unknown>
    const route = `${req.method} ${target.pathname}`
    if (route === 'GET /v2/openapi.json') {
      const dryRun = offersDryRun ? [{ name: 'dry_run', in: 'query', schema: { type: 'boolean' } }] : []
      return send(res, 200, { openapi: '3.1.0', paths: { '/v2/scope': { put: { parameters: dryRun }, patch: { parameters: dryRun }, post: { parameters: dryRun } } } })
    }
    if (route === 'GET /v2/scope/events') {
      let list = events().filter((e) => e.scope_id === q.get('scope_id'))
      if (q.has('kind')) list = list.filter((e) => e.kind === q.get('kind'))
      if (q.has('user_id')) list = list.filter((e) => e.user_id === q.get('user_id'))
      if (q.has('marker')) list = list.filter((e) => (e.id as number) < Number(q.get('marker')))
      const limit = Number(q.get('limit') ?? 100)
      const page = list.slice(0, limit)
      if (page.length === 0) return send(res, 404, { message: 'No resource found for provided filters.' })
      const link: Record<string, string> = page.length === limit ? { link: `<${url}/v2/scope/events?scope_id=s1&marker=${page.at(-1)!.id as number}&limit=${limit}>; rel="next"` } : {}
      return send(res, 200, { results: page }, link)
    }
    if (route === 'PUT /v2/scope') {
      if (q.get('dry_run') === 'true') {
        return send(res, 200, {
          dry_run: true, scopes_total: 2, scopes_inactive: 1, last_processed_timestamp: '2019-07-01T00:00:00+00:00',
          discard_from: '2019-07-01T00:00:00+00:00', results: [SCOPE, { ...SCOPE, scope_id: 's2', active: false }],
        })
      }
      return keyed(req, res, raw, () => {
        const id = jobs.size + 1
        jobs.set(id, job(id, 'pending', { scopes_applied: 0 }))
        return { status: 202, body: {}, headers: { location: `${url}/v2/scope/resets/${id}` } }
      })
    }
    if (route === 'PATCH /v2/scope') {
      if (req.headers['if-match'] !== undefined && req.headers['if-match'] !== ETAG) {
        return send(res, 412, { message: `The scope ${String(body.scope_id)} changed since its ETag ${req.headers['if-match']}.` })
      }
      return keyed(req, res, raw, () => ({ status: 200, body: { ...SCOPE, collector: body.collector ?? SCOPE.collector }, headers: { etag: '"etag-2"' } }))
    }
    if (route === 'POST /v2/scope') return keyed(req, res, raw, () => ({ status: 200, body: { ...SCOPE, scope_id: body.scope_id }, headers: { etag: ETAG } }))
    if (route === 'GET /v2/scope/resets') {
      const statuses = q.getAll('status').flatMap((s) => s.split(','))
      const list = [...jobs.values()].reverse().filter((j) => statuses.length === 0 || statuses.includes(j.status))
      return list.length === 0 ? send(res, 404, { message: 'No resource found for provided filters.' }) : send(res, 200, { results: list })
    }
    const one = /^\/v2\/scope\/resets\/(\d+)$/.exec(target.pathname)
    if (one !== null) {
      const found = jobs.get(Number(one[1]))
      if (found === undefined) return send(res, 404, { message: `No reset job ${one[1]}.` })
      if (req.method === 'GET') {
        // A running job that was asked to stop ends cancelled after two more readings (its batch).
        if (found.stopping === true && ++polls >= 2) Object.assign(found, { status: 'cancelled', stopping: undefined, finished_at: T0 })
        const { stopping: _, ...shown } = found
        return send(res, 200, shown)
      }
      if (req.method === 'DELETE') {
        if (found.status === 'pending') return send(res, 200, Object.assign(found, { status: 'cancelled', finished_at: T0 }))
        if (found.status === 'running') {
          found.stopping = true
          const { stopping: _, ...shown } = found
          return send(res, 202, shown)
        }
        return send(res, 409, { message: `Reset job ${found.id} is ${found.status}: only a pending or running job can be cancelled.` })
      }
    }
    send(res, 404, { message: 'The resource could not be found.' })
  }

  function cli (args: string[]): Promise<CliRun> {
    return runCli(['scope', ...args], { env: { ...withoutOsVariables(), HOME: home, OS_ENDPOINT: url }, cwd: home })
  }

  const server = createServer((req, res) => {
    let raw = ''
    req.setEncoding('utf8')
    req.on('data', (chunk: string) => { raw += chunk })
    req.on('end', () => { handle(req, res, raw) })
  })

  before(async () => {
    home = mkdtempSync(join(tmpdir(), 'scopekeeper-test-'))
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    url = `http://127.0.0.1:${(server.address() as { port: number }).port}`
  })
  after(async () => {
    await new Promise((resolve) => server.close(resolve))
    rmSync(home, { recursive: true, force: true })
  })
  beforeEach(() => {
    seen = []
    jobs = new Map([[1, job(1, 'done', { created_by: { user_id: 'u1', user_name: 'alice', project_id: 'p1' } })], [2, job(2, 'running')], [3, job(3, 'pending')]])
    replays = new Map()
    actions = 0
    dropNext = 0
    polls = 0
    offersDryRun = true
  })

  describe('scope history', () => {
    it('shows the events newest first, with who, why and a change text, following Link rel="next" with --all', async () => {
      const run = ok(await cli(['history', 's1', '--all', '--limit', '10', '-f', 'json']))
      const rows = JSON.parse(run.stdout) as Array<Record<string, unknown>>
      assert.equal(rows.length, 25)
      assert.deepEqual(Object.keys(rows[0]), ['Created At', 'Kind', 'User', 'Project ID', 'Request ID', 'Reason', 'Change'])
      assert.deepEqual(rows[0], {
        'Created At': '2026-01-04T00:00:01+00:00', Kind: 'reset_applied', User: 'alice', 'Project ID': 'p1', 'Request ID': 'req-e', Reason: null,
        Change: `reset to 2019-07-01T00:00:00+00:00 (from ${T0}) (job 7)`,
      })
      assert.equal(rows[1].Change, 'reset of 1 scope to 2019-07-01T00:00:00+00:00 requested (scope_id s1) (job 7)')
      assert.deepEqual([rows[2].User, rows[2].Reason, rows[2].Change], ['u2', 'trial over', 'active true → false'])
      assert.equal(rows[3].Change, 'collector c21 → c22')
      assert.deepEqual([rows[24].Kind, rows[24].User], ['created', 'noauth'])
      assert.deepEqual(seen.map((s) => s.url.search), ['?scope_id=s1&limit=10', '?scope_id=s1&limit=10&marker=16', '?scope_id=s1&limit=10&marker=6'])
    })

    it('shows one page without --all, sends the filters, and prints a table', async () => {
      const run = ok(await cli(['history', 's1', '--kind', 'patched', '--user-id', 'u1', '--since', '2026-01-01', '--until', '2026-02-01', '--limit', '3']))
      assert.deepEqual(seen.map((s) => s.url.search), ['?scope_id=s1&kind=patched&user_id=u1&since=2026-01-01&until=2026-02-01&limit=3'])
      const lines = run.stdout.trim().split('\n')
      assert.equal(lines.length, 4 + 3)
      assert.match(lines[1], /^\| Created At +\| Kind +\| User +\| Project ID +\| Request ID +\| Reason +\| Change +\|$/)
      assert.match(lines[3], /^\| 2026-01-02T00:00:22\+00:00 \| patched \| alice \| p1 +\| req-e +\| None +\| collector c21 → c22 \|$/)
    })

    it("prints the server's 404 and exits 1 when the scope has no events", async () => {
      const run = await cli(['history', 'nothing-here'])
      assert.deepEqual([run.code, run.stdout], [1, ''])
      assert.match(run.stderr, /^scopekeeper: No resource found for provided filters\. \(HTTP 404\) \(Request-ID: req-stand-in\)\n$/)
    })
  })

  describe('scope state reset --dry-run and --reason', () => {
    it('sends ?dry_run=true and prints the preview: its figures, then the first page of scopes', async () => {
      const run = ok(await cli(['state', 'reset', '--all-scopes', '--collector', 'gnocchi', '2019-07-01', '--dry-run', '--reason', 'INC-1: rules fixed']))
      // First a look at the server's API description: does it take dry_run?
      assert.deepEqual(seen.map((s) => `${s.method} ${s.url.pathname}${s.url.search}`), ['GET /v2/openapi.json', 'PUT /v2/scope?dry_run=true'])
      assert.deepEqual(seen[1].body, { all_scopes: true, collector: 'gnocchi', state: '2019-07-01', reason: 'INC-1: rules fixed' })
      assert.match(run.stdout, /\| Scopes Total +\| 2 +\|\n\| Scopes Inactive +\| 1 +\|\n\| Last Processed Timestamp +\| 2019-07-01T00:00:00\+00:00 \|\n\| Discard From +\| 2019-07-01T00:00:00\+00:00 \|/)
      assert.match(run.stdout, /\| s2 +\| project_id +\| keystone +\| gnocchi +\| 2026-01-01T00:00:00\+00:00 +\| False +\|/)
      assert.equal(jobs.size, 3, 'nothing recorded')
      const figure = ok(await cli(['state', 'reset', '--all-scopes', '2019-07-01', '--dry-run', '-f', 'value', '-c', 'scopes_total']))
      assert.equal(figure.stdout, '2\n')
    })

    it('sends nothing, and exits 1, when the server does not list dry_run (it would reset for real)', async () => {
      offersDryRun = false
      for (const args of [['state', 'reset', '--all-scopes', '2019-07-01', '--dry-run'], ['patch', 's1', '--active', 'false', '--dry-run'], ['create', 's5', '--dry-run']]) {
        const run = await cli(args)
        assert.equal(run.code, 1, args.join(' '))
        assert.match(run.stderr, /^scopekeeper: The server at http:\/\/127\.0\.0\.1:\d+ does not offer dry runs of (PUT|PATCH|POST) \/v2\/scope \(no dry_run in its \/v2\/openapi\.json\), and would make the change for real: nothing was sent\.\n$/)
      }
      assert.deepEqual(seen.map((s) => s.method), ['GET', 'GET', 'GET'])
    })

    it('sends ?dry_run=true on a patch and a create, and prints the scope as it would be', async () => {
      const patch = ok(await cli(['patch', 's1', '--collector', 'prometheus', '--dry-run', '-f', 'value', '-c', 'collector']))
      assert.equal(patch.stdout, 'prometheus\n')
      ok(await cli(['create', 's6', '--dry-run']))
      assert.deepEqual(seen.filter((s) => s.method !== 'GET').map((s) => `${s.method} ${s.url.search}`), ['PATCH ?dry_run=true', 'POST ?dry_run=true'])
    })

    it('refuses --dry-run with --wait, as a usage error', async () => {
      const run = await cli(['state', 'reset', '--all-scopes', '2019-07-01', '--dry-run', '--wait'])
      assert.equal(run.code, 2)
      assert.match(run.stderr, /cannot be used with option '--wait'/)
      assert.equal(seen.length, 0)
    })

    it('sends --reason in the body of a reset, a patch and a create', async () => {
      ok(await cli(['state', 'reset', '--scope-id', 's1', '2019-07-01', '--reason', 'why not']))
      ok(await cli(['patch', 's1', '--collector', 'prometheus', '--reason', 'moved']))
      ok(await cli(['create', 's9', '--reason', 'trial']))
      assert.deepEqual(seen.filter((s) => s.method !== 'GET').map((s) => s.body), [
        { scope_id: 's1', state: '2019-07-01', reason: 'why not' }, { scope_id: 's1', collector: 'prometheus', reason: 'moved' }, { scope_id: 's9', reason: 'trial' },
      ])
    })
  })

  describe('Idempotency-Key', () => {
    it('sends a new random key per invocation, or the one given', async () => {
      ok(await cli(['create', 'k1']))
      ok(await cli(['create', 'k2']))
      ok(await cli(['patch', 'k1', '--active', 'false', '--idempotency-key', 'op-42']))
      const keys = seen.map((s) => s.headers['idempotency-key'])
      assert.match(String(keys[0]), /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
      assert.notEqual(keys[0], keys[1])
      assert.equal(keys[2], 'op-42')
      const bad = await cli(['patch', 'k1', '--idempotency-key', 'has space'])
      assert.equal(bad.code, 2)
    })

    it('retries once, with the same key, when the answer is lost; the server acts once and replays its answer', async () => {
      dropNext = 1
      const run = ok(await cli(['state', 'reset', '--scope-id', 's1', '2019-07-01', '-f', 'value', '-c', 'id']))
      assert.equal(run.stdout, '4\n')
      const puts = seen.filter((s) => s.method === 'PUT')
      assert.equal(puts.length, 2)
      assert.equal(puts[0].headers['idempotency-key'], puts[1].headers['idempotency-key'])
      assert.equal(actions, 1, 'one reset recorded')
      assert.equal(jobs.size, 4)
      assert.match(run.stderr, /^scopekeeper: The connection to http:\/\/127\.0\.0\.1:\d+ was closed before an answer arrived\. Sending the PUT once more, with the same Idempotency-Key\.\n$/)
    })

    it("prints the server's 422 and exits 1 when a key is reused with another body", async () => {
      ok(await cli(['create', 'k3', '--idempotency-key', 'same']))
      const run = await cli(['create', 'k4', '--idempotency-key', 'same'])
      assert.equal(run.code, 1)
      assert.match(run.stderr, /^scopekeeper: This Idempotency-Key was used with another request body\. \(HTTP 422\)/)
    })
  })

  describe('scope patch --if-match', () => {
    it("sends If-Match, and on a 412 prints the server's message and exits 1", async () => {
      ok(await cli(['patch', 's1', '--collector', 'prometheus', '--if-match', ETAG]))
      assert.equal(seen[0].headers['if-match'], ETAG)
      const stale = await cli(['patch', 's1', '--collector', 'prometheus', '--if-match', '"etag-0"'])
      assert.deepEqual([stale.code, stale.stdout], [1, ''])
      assert.match(stale.stderr, /^scopekeeper: The scope s1 changed since its ETag "etag-0"\. \(HTTP 412\) \(Request-ID: req-stand-in\)\n$/)
      assert.equal((await cli(['patch', 's1', '--if-match', 'unquoted'])).code, 2)
    })
  })

  describe('scope reset list|show|cancel', () => {
    it('lists jobs with --status, --scope-id, --limit and --offset, showing who created each', async () => {
      const run = ok(await cli(['reset', 'list', '--status', 'done', '--status', 'running', '--scope-id', 's1', '--limit', '5', '--offset', '0', '-f', 'json']))
      assert.equal(seen[0].url.search, '?status=done%2Crunning&scope_id=s1&limit=5&offset=0')
      const rows = JSON.parse(run.stdout) as Array<Record<string, unknown>>
      assert.deepEqual(rows.map((r) => [r.ID, r.Status, r['Created By']]), [[2, 'running', null], [1, 'done', 'alice (project p1)']])
    })

    it('shows one job, and refuses an id that is not a positive integer', async () => {
      const run = ok(await cli(['reset', 'show', '1', '-f', 'value', '-c', 'status', '-c', 'created_by']))
      assert.equal(run.stdout, 'done\nalice (project p1)\n')
      assert.equal((await cli(['reset', 'show', 'x'])).code, 2)
      assert.equal((await cli(['reset', 'show', '0'])).code, 2)
      const missing = await cli(['reset', 'show', '99'])
      assert.equal(missing.code, 1)
      assert.match(missing.stderr, /No reset job 99\. \(HTTP 404\)/)
    })

    it('cancels a pending job at once, a running one after its batch (and --wait follows it to cancelled, exit 1), and refuses a done one', async () => {
      const pending = ok(await cli(['reset', 'cancel', '3', '-f', 'value', '-c', 'status']))
      assert.deepEqual([pending.stdout, pending.stderr], ['cancelled\n', ''])
      assert.equal(seen[0].method, 'DELETE')
      const running = ok(await cli(['reset', 'cancel', '2', '-f', 'value', '-c', 'status']))
      assert.equal(running.stdout, 'running\n')
      assert.match(running.stderr, /^Reset 2 is running: it stops after its current batch, and ends cancelled \(follow it with: scopekeeper scope reset show 2 --wait\)\.\n$/)
      const waited = await cli(['reset', 'show', '2', '--wait', '--poll-interval', '0.05', '-f', 'value', '-c', 'status'])
      assert.equal(waited.code, 1)
      assert.equal(waited.stdout, 'cancelled\n')
      assert.match(waited.stderr, /^Reset 2: running, 4\/10 scopes applied\nReset 2: cancelled, 4\/10 scopes applied; the other scopes were left as they were\nscopekeeper: Reset 2 cancelled, 4\/10 scopes applied; the other scopes were left as they were\n$/)
      const done = await cli(['reset', 'cancel', '1'])
      assert.equal(done.code, 1)
      assert.match(done.stderr, /^scopekeeper: Reset job 1 is done: only a pending or running job can be cancelled\. \(HTTP 409\)/)
    })
  })
})
