// `scopekeeper scope …` end to end: the real CLI process against the real
// server process (SQLite, in-process reset worker), with every command and
// format, paging, --wait on real resets, usage and network errors, TLS and
// Keystone settings. One server serves the whole file; each test works on
// scopes of its own.
import assert from 'node:assert/strict'
import { execFile, execFileSync } from 'node:child_process'
import { once } from 'node:events'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { connect, createServer, type Server, type Socket } from 'node:net'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { createServer as createTlsServer } from 'node:tls'
import { parse } from 'yaml'
import { tempDir } from '../helpers/build-test-app.ts'
import { CLI_TIMEOUT_MS, cleanEnv, ok, runCli, suiteContext, type CliRun } from '../helpers/cli-process.ts'
import { BIN, startServerProcess, waitFor, type ServerProcess } from '../helpers/server-process.ts'
import { ScopeClient } from '../../src/cli/scope-client.ts'
import { ratingCatalog, startFakeKeystone } from '../unit/cli/fake-keystone.ts'

function quote (word: string): string {
  return `'${word.replace(/'/g, "'\\''")}'`
}

describe('scopekeeper scope … (the real CLI against the real server)', () => {
  const suite = suiteContext()
  let server: ServerProcess
  let client: ScopeClient
  let home: string

  /** Runs the CLI to its end with OS_ENDPOINT pointing at the server unless `env` says otherwise. */
  function cli (args: string[], env: Record<string, string> = {}, cwd?: string): Promise<CliRun> {
    return runCli(args, { env: { ...cleanEnv(home), OS_ENDPOINT: server.url, ...env }, cwd: cwd ?? home })
  }

  async function seed (prefix: string, count: number, extra: Record<string, unknown> = {}): Promise<string[]> {
    const ids = Array.from({ length: count }, (_, i) => `${prefix}-${String(i).padStart(3, '0')}`)
    for (const id of ids) await client.createScope({ scope_id: id, last_processed_timestamp: '2024-01-01T00:00:00Z', ...extra })
    return ids
  }

  before(async () => {
    home = tempDir(suite.t)
    mkdirSync(join(home, '.config', 'openstack'), { recursive: true })
    server = await startServerProcess(suite.t, ['--database', `sqlite:///${join(home, 'cli.sqlite')}`], {
      SCOPEKEEPER_RESET_BATCH_SIZE: '4', SCOPEKEEPER_RESET_POLL_INTERVAL: '0.05',
    })
    client = new ScopeClient({ endpoint: server.url })
  })
  after(() => suite.cleanup())

  describe('create', () => {
    it('registers a scope and prints it in every format', async () => {
      const [table, json, noindent, yaml, csv, value] = await Promise.all([
        cli(['scope', 'create', 'create-table', '--active', 'false']),
        cli(['scope', 'create', 'create-json', '-f', 'json', '--collector', 'prometheus', '--fetcher', 'prometheus', '--scope-key', 'namespace']),
        cli(['scope', 'create', 'create-noindent', '-f', 'json', '--noindent', '--last-processed-timestamp', '2019-07-16T08:55:01+02:00']),
        cli(['scope', 'create', 'create-yaml', '-f', 'yaml', '--state', '20190716T085501Z']),
        cli(['scope', 'create', 'create-csv', '-f', 'csv', '-c', 'Scope ID', '-c', 'active']),
        cli(['scope', 'create', 'create-value', '-f', 'value', '-c', 'scope_id', '-c', 'Active', '--active', 'True']),
      ].map((p) => p.then(ok)))
      assert.match(table.stdout, /^\+-+\+-+\+\n\| Field +\| Value +\|\n/)
      assert.match(table.stdout, /\| Scope ID +\| create-table +\|/)
      assert.match(table.stdout, /\| Active +\| False +\|/)
      assert.deepEqual(JSON.parse(json.stdout), {
        'Scope ID': 'create-json', 'Scope Key': 'namespace', Fetcher: 'prometheus', Collector: 'prometheus',
        'Last Processed Timestamp': JSON.parse(json.stdout)['Last Processed Timestamp'], Active: true,
        'Scope Activation Toggle Date': JSON.parse(json.stdout)['Scope Activation Toggle Date'],
      })
      // Without a timestamp, a new scope starts at the beginning of the current month (UTC).
      assert.match(JSON.parse(json.stdout)['Last Processed Timestamp'], /^\d{4}-\d{2}-01T00:00:00\+00:00$/)
      assert.equal(noindent.stdout.trim().split('\n').length, 1)
      assert.equal(JSON.parse(noindent.stdout)['Last Processed Timestamp'], '2019-07-16T06:55:01+00:00')
      assert.equal(parse(yaml.stdout)['Last Processed Timestamp'], '2019-07-16T08:55:01+00:00')
      assert.equal(csv.stdout, '"Scope ID","Active"\n"create-csv",True\n')
      assert.equal(value.stdout, 'create-value\nTrue\n')
      const [stored] = await client.listScopes({ scope_id: ['create-table'] })
      assert.equal(stored.active, false)
    })

    it("prints the server's message and exits 1 when the scope already exists", async () => {
      await client.createScope({ scope_id: 'create-dup' })
      const run = await cli(['scope', 'create', 'create-dup'])
      assert.equal(run.code, 1)
      assert.equal(run.stdout, '')
      assert.match(run.stderr, /^scopekeeper: .*create-dup.* \(HTTP 409\) \(Request-ID: req-[0-9a-f-]{36}\)\n$/)
    })
  })

  describe('state list', () => {
    it('lists in every format, with filters, -c and --sort-column', async () => {
      await seed('list-b', 2, { collector: 'list-c1' })
      await seed('list-a', 2, { collector: 'list-c2', active: false })
      const filter = ['--collector', 'list-c1', '--collector', 'list-c2']
      const [table, json, yaml, csv, value, sorted, get] = await Promise.all([
        cli(['scope', 'state', 'list', ...filter]),
        cli(['scope', 'state', 'list', ...filter, '-f', 'json']),
        cli(['scope', 'state', 'list', ...filter, '-f', 'yaml']),
        cli(['scope', 'state', 'list', ...filter, '-f', 'csv', '-c', 'Scope ID', '-c', 'Collector']),
        cli(['scope', 'state', 'list', ...filter, '-f', 'value', '-c', 'scope_id']),
        cli(['scope', 'state', 'list', ...filter, '-f', 'value', '-c', 'scope_id', '--sort-column', 'Scope ID', '--sort-descending']),
        cli(['scope', 'state', 'get', '--scope-id', 'list-a-000', '--scope-id', 'list-b-001', '-f', 'json', '--noindent', '-c', 'scope_id']),
      ].map((p) => p.then(ok)))
      const lines = table.stdout.trim().split('\n')
      assert.equal(lines.length, 4 + 4)
      assert.match(lines[1], /^\| Scope ID +\| Scope Key +\| Fetcher +\| Collector +\| Last Processed Timestamp +\| Active +\| Scope Activation Toggle Date +\|$/)
      assert.match(lines[3], /^\| list-b-000 +\| project_id +\| keystone +\| list-c1 +\| 2024-01-01T00:00:00\+00:00 \| True +\|/)
      assert.equal(JSON.parse(json.stdout).length, 4)
      assert.deepEqual(JSON.parse(json.stdout)[2]['Active'], false)
      assert.deepEqual(parse(yaml.stdout).map((row: Record<string, unknown>) => row['Scope ID']), ['list-b-000', 'list-b-001', 'list-a-000', 'list-a-001'])
      assert.equal(csv.stdout, '"Scope ID","Collector"\n"list-b-000","list-c1"\n"list-b-001","list-c1"\n"list-a-000","list-c2"\n"list-a-001","list-c2"\n')
      // The server's order is creation order; --sort-column sorts client-side.
      assert.equal(value.stdout, 'list-b-000\nlist-b-001\nlist-a-000\nlist-a-001\n')
      assert.equal(sorted.stdout, 'list-b-001\nlist-b-000\nlist-a-001\nlist-a-000\n')
      assert.equal(get.stdout, '[{"Scope ID":"list-b-001"},{"Scope ID":"list-a-000"}]\n')
    })

    it('filters on the active flag with --active and --inactive', async () => {
      await seed('flag-on', 1, { collector: 'flag' })
      await seed('flag-off', 1, { collector: 'flag', active: false })
      const [active, inactive] = await Promise.all([
        cli(['scope', 'state', 'list', '--collector', 'flag', '--active', '-f', 'value', '-c', 'scope_id']),
        cli(['scope', 'state', 'list', '--collector', 'flag', '--inactive', '-f', 'value', '-c', 'scope_id']),
      ].map((p) => p.then(ok)))
      assert.equal(active.stdout, 'flag-on-000\n')
      assert.equal(inactive.stdout, 'flag-off-000\n')
    })

    it('follows the pages to the end with --all by the Link rel="next" markers, and shows one page with --limit and --offset', async () => {
      const ids = await seed('page', 25, { collector: 'paging' })
      const [tens, fives, one, fromOffset] = await Promise.all([
        cli(['scope', 'state', 'list', '--collector', 'paging', '--all', '--limit', '10', '-f', 'value', '-c', 'scope_id', '--debug']),
        // 25 is a multiple of 5: the sixth page is the server's 404, which ends the listing.
        cli(['scope', 'state', 'list', '--collector', 'paging', '--all', '--limit', '5', '-f', 'value', '-c', 'scope_id', '--debug']),
        cli(['scope', 'state', 'list', '--collector', 'paging', '--limit', '10', '--offset', '20', '-f', 'value', '-c', 'scope_id']),
        // --offset with --all: the first page by offset, the next ones by marker.
        cli(['scope', 'state', 'list', '--collector', 'paging', '--all', '--offset', '7', '--limit', '10', '-f', 'value', '-c', 'scope_id', '--debug']),
      ].map((p) => p.then(ok)))
      assert.deepEqual(tens.stdout.trim().split('\n'), ids)
      // Each next page starts at the marker of the previous page's Link: the id of its last row.
      const requests = (run: CliRun) => run.stderr.match(/REQ: curl -g -i -X GET "[^"]+"/g)!
      const links = (run: CliRun) => [...run.stderr.matchAll(/^RESP: \[200\] .*link: <[^>]*[?&]marker=(\d+)[^>]*>; rel="next"/gm)].map((m) => m[1])
      assert.equal(links(tens).length, 2)
      assert.deepEqual(requests(tens), ['offset=0', `marker=${links(tens)[0]}`, `marker=${links(tens)[1]}`]
        .map((page) => `REQ: curl -g -i -X GET "${server.url}/v2/scope?collector=paging&limit=10&${page}"`))
      assert.deepEqual(fives.stdout.trim().split('\n'), ids)
      assert.equal(requests(fives).length, 6)
      assert.equal(requests(fives).filter((r) => r.includes('marker=')).length, 5)
      assert.match(fives.stderr, /RESP: \[404\]/)
      assert.deepEqual(one.stdout.trim().split('\n'), ids.slice(20))
      assert.deepEqual(fromOffset.stdout.trim().split('\n'), ids.slice(7))
      assert.deepEqual(requests(fromOffset), ['offset=7', `marker=${links(fromOffset)[0]}`]
        .map((page) => `REQ: curl -g -i -X GET "${server.url}/v2/scope?collector=paging&limit=10&${page}"`))
    })

    it('starts a page after the marker of a Link rel="next" with --marker, and refuses it with --offset', async () => {
      const ids = await seed('marked', 6, { collector: 'marking' })
      const first = await fetch(`${server.url}/v2/scope?collector=marking&limit=2`)
      const marker = /[?&]marker=(\d+)/.exec(first.headers.get('link') ?? '')?.[1]
      assert.ok(marker !== undefined, 'a full page links to the next one')
      const next = ok(await cli(['scope', 'state', 'list', '--collector', 'marking', '--marker', marker, '--limit', '2', '-f', 'value', '-c', 'scope_id']))
      assert.deepEqual(next.stdout.trim().split('\n'), ids.slice(2, 4))
      for (const bad of [['--marker', 'x'], ['--marker', marker, '--offset', '1']]) {
        assert.equal((await cli(['scope', 'state', 'list', '--collector', 'marking', ...bad])).code, 2, bad.join(' '))
      }
    })

    it("prints the server's message and exits 1 when nothing matches", async () => {
      const run = await cli(['scope', 'state', 'list', '--scope-id', 'no-such-scope'])
      assert.equal(run.code, 1)
      assert.equal(run.stdout, '')
      assert.match(run.stderr, /^scopekeeper: No resource found for provided filters\. \(HTTP 404\) \(Request-ID: req-/)
    })
  })

  describe('patch', () => {
    it('changes only the fields given, by positional scope id or --scope-id', async () => {
      await seed('patch', 1, { active: false, fetcher: 'gnocchi' })
      const positional = ok(await cli(['scope', 'patch', 'patch-000', '--active', 'true', '-f', 'json']))
      assert.equal(JSON.parse(positional.stdout).Active, true)
      assert.equal(JSON.parse(positional.stdout).Fetcher, 'gnocchi')
      const flag = ok(await cli(['scope', 'patch', '--scope-id', 'patch-000', '--collector', 'prometheus', '--scope-key', 'namespace', '--fetcher', 'prometheus']))
      assert.match(flag.stdout, /\| Collector +\| prometheus +\|/)
      const [stored] = await client.listScopes({ scope_id: ['patch-000'] })
      assert.deepEqual([stored.active, stored.collector, stored.scope_key, stored.fetcher], [true, 'prometheus', 'namespace', 'prometheus'])
    })

    it("prints the server's message and exits 1 for an unknown scope", async () => {
      const run = await cli(['scope', 'patch', 'patch-missing', '--active', 'false'])
      assert.equal(run.code, 1)
      assert.match(run.stderr, /\(HTTP 404\)/)
    })
  })

  describe('state reset', () => {
    it('accepts a reset and prints its job; the worker applies it', async () => {
      await seed('reset-plain', 2)
      const run = ok(await cli(['scope', 'state', 'reset', '--scope-id', 'reset-plain-000', '--scope-id', 'reset-plain-001', '2019-07-01T00:00:00Z', '-f', 'json', '--debug']))
      // The positional timestamp goes out as `state`, and several ids comma-joined, as the CloudKitty client sends them.
      assert.match(run.stderr, /-X PUT .* -d '\{"scope_id":"reset-plain-000,reset-plain-001","state":"2019-07-01T00:00:00Z"\}'/)
      const job = JSON.parse(run.stdout)
      assert.equal(job['Scopes Total'], 2)
      assert.equal(job['Last Processed Timestamp'], '2019-07-01T00:00:00+00:00')
      await waitFor(async () => (await client.getResetJob(job.ID)).status === 'done', 15_000, 'the reset to be applied')
      for (const scope of await client.listScopes({ scope_id: ['reset-plain-000,reset-plain-001'] })) {
        assert.equal(scope.last_processed_timestamp, '2019-07-01T00:00:00+00:00')
      }
    })

    it('sends --state as state, and --last-processed-timestamp under its own name', async () => {
      await seed('reset-forms', 1)
      const runs = await Promise.all([
        ['--state', '2019-01-02T00:00:00Z'], ['--last-processed-timestamp', '2019-01-03T00:00:00Z'],
      ].map((form) => cli(['scope', 'state', 'reset', '--scope-id', 'reset-forms-000', ...form, '--debug', '-f', 'value', '-c', 'id']).then(ok)))
      assert.match(runs[0].stderr, /-X PUT .* -d '\{"scope_id":"reset-forms-000","state":"2019-01-02T00:00:00Z"\}'/)
      assert.match(runs[1].stderr, /-d '\{"scope_id":"reset-forms-000","last_processed_timestamp":"2019-01-03T00:00:00Z"\}'/)
      assert.match(runs[0].stdout, /^\d+\n$/)
    })

    it('resets every scope of a collector with --all-scopes, and follows it with --wait in plain lines when not on a terminal', async () => {
      const ids = await seed('reset-wait', 30, { collector: 'waiting' })
      const run = ok(await cli(['scope', 'state', 'reset', '--all-scopes', '--collector', 'waiting', '--last-processed-timestamp', '2019-06-01', '--wait', '--poll-interval', '0.02', '-f', 'value', '-c', 'status', '-c', 'scopes_applied']))
      assert.equal(run.stdout, 'done\n30\n')
      const lines = run.stderr.trim().split('\n')
      assert.match(lines.at(-1)!, /^Reset \d+: done, 30\/30 scopes applied$/)
      for (const line of lines) assert.match(line, /^Reset \d+: (pending|running|done), \d+\/30 scopes applied$/)
      assert.ok(!run.stderr.includes('\r'), 'no terminal control characters in a pipe')
      const scopes = await client.listAllScopes({ collector: ['waiting'] })
      assert.deepEqual(scopes.map((s) => s.scope_id), ids)
      for (const scope of scopes) assert.equal(scope.last_processed_timestamp, '2019-06-01T00:00:00+00:00')
    })

    it('draws a progress bar with --wait on a terminal', { skip: existsSync('/usr/bin/script') ? false : 'needs script(1) from util-linux for a pseudo-terminal' }, async () => {
      await seed('reset-tty', 12, { collector: 'tty' })
      const command = [process.execPath, BIN, 'scope', 'state', 'reset', '--all-scopes', '--collector', 'tty', '2019-05-01', '--wait', '--poll-interval', '0.02', '-f', 'value', '-c', 'status'].map(quote).join(' ')
      const run = await new Promise<CliRun>((resolve, reject) => {
        execFile('/usr/bin/script', ['-qec', command, '/dev/null'], { env: { ...cleanEnv(home), OS_ENDPOINT: server.url }, timeout: CLI_TIMEOUT_MS, encoding: 'utf8' },
          (error, stdout, stderr) => error !== null && typeof error.code !== 'number' ? reject(error) : resolve({ code: (error?.code as number) ?? 0, stdout, stderr }))
      })
      assert.equal(run.code, 0, run.stdout)
      assert.match(run.stdout, /\r\x1b\[2KReset \d+ \[#{30}\] 100% done, 12\/12 scopes applied\r?\n/)
      assert.match(run.stdout, /\ndone\r?\n$/)
    })

    it('exits 1 with the reason when the reset fails', async (t) => {
      // A second server whose resets go to a RabbitMQ that is not there, with one attempt each: a real failed job.
      const closed = createServer()
      closed.listen(0, '127.0.0.1')
      await once(closed, 'listening')
      const port = (closed.address() as { port: number }).port
      await new Promise((resolve) => closed.close(resolve))
      const failing = await startServerProcess(t, ['--database', `sqlite:///${join(tempDir(t), 'failing.sqlite')}`], {
        SCOPEKEEPER_RESET_DISPATCHER: 'oslo_messaging', SCOPEKEEPER_DEFAULT_TRANSPORT_URL: `rabbit://guest:guest@127.0.0.1:${port}/`,
        SCOPEKEEPER_RESET_MAX_ATTEMPTS: '1', SCOPEKEEPER_RESET_POLL_INTERVAL: '0.05',
      })
      await new ScopeClient({ endpoint: failing.url }).createScope({ scope_id: 'doomed' })
      const run = await cli(['scope', 'state', 'reset', '--scope-id', 'doomed', '2019-01-01', '--wait', '--poll-interval', '0.05', '-f', 'value', '-c', 'status'], { OS_ENDPOINT: failing.url })
      assert.equal(run.code, 1)
      assert.equal(run.stdout, 'failed\n')
      assert.match(run.stderr, /^scopekeeper: Reset \d+ failed after 1 attempt, 0\/1 scopes applied: Could not connect to any RabbitMQ broker/m)
      await failing.stop()
    })
  })

  describe('history, dry runs, If-Match, idempotency keys and reset jobs (issue 14)', () => {
    it("prints a scope's history, newest first, with who, the reason and what changed", async () => {
      ok(await cli(['scope', 'create', 'audited', '--active', 'false', '--reason', 'a trial project']))
      ok(await cli(['scope', 'patch', 'audited', '--active', 'true', '--collector', 'prometheus', '--reason', 'trial converted']))
      const run = ok(await cli(['scope', 'history', 'audited', '-f', 'json']))
      const rows = JSON.parse(run.stdout) as Array<Record<string, string>>
      assert.deepEqual(rows.map((r) => [r.Kind, r.Reason]), [['activated', 'trial converted'], ['patched', 'trial converted'], ['created', 'a trial project']])
      assert.match(JSON.stringify(rows[1]), /gnocchi → prometheus/)
      assert.ok(rows.every((r) => r.User === 'noauth'))
    })

    it('previews a reset with --dry-run and queues nothing', async () => {
      await seed('preview', 3, { collector: 'previewing' })
      const before = (await client.listResetJobs({ limit: 1000 })).length
      const run = ok(await cli(['scope', 'state', 'reset', '--all-scopes', '--collector', 'previewing', '2019-07-01', '--dry-run', '-f', 'json']))
      const preview = JSON.parse(run.stdout)
      assert.deepEqual([preview['Scopes Total'], preview['Scopes Inactive'], preview['Last Processed Timestamp']], [3, 0, '2019-07-01T00:00:00+00:00'])
      assert.equal(preview.Scopes.length, 3)
      assert.equal((await client.listResetJobs({ limit: 1000 })).length, before)
    })

    it('refuses a PATCH whose --if-match is stale with the 412, and applies a current one', async () => {
      ok(await cli(['scope', 'create', 'guarded']))
      const etag = (await fetch(`${server.url}/v2/scope?scope_id=guarded`)).headers.get('etag')
      assert.ok(etag !== null)
      ok(await cli(['scope', 'patch', 'guarded', '--if-match', etag, '--collector', 'prometheus']))
      const stale = await cli(['scope', 'patch', 'guarded', '--if-match', etag, '--collector', 'gnocchi'])
      assert.equal(stale.code, 1)
      assert.match(stale.stderr, /\(HTTP 412\)/)
    })

    it('acts once for a repeated --idempotency-key, and answers 422 for the same key with another body', async () => {
      ok(await cli(['scope', 'create', 'once', '--idempotency-key', 'create-once-1']))
      ok(await cli(['scope', 'create', 'once', '--idempotency-key', 'create-once-1']))
      const other = await cli(['scope', 'create', 'once', '--collector', 'x', '--idempotency-key', 'create-once-1'])
      assert.equal(other.code, 1)
      assert.match(other.stderr, /\(HTTP 422\)/)
      assert.equal((await client.listScopes({ scope_id: ['once'] })).length, 1)
    })

    it('lists and shows reset jobs, and refuses to cancel a done one', async () => {
      await seed('jobbed', 1, { collector: 'jobbing' })
      const reset = JSON.parse(ok(await cli(['scope', 'state', 'reset', '--scope-id', 'jobbed-000', '2019-01-01', '--wait', '--poll-interval', '0.05', '-f', 'json', '--reason', 'reprocess'])).stdout)
      const shown = JSON.parse(ok(await cli(['scope', 'reset', 'show', String(reset.ID), '-f', 'json'])).stdout)
      assert.deepEqual([shown.Status, shown.Reason], ['done', 'reprocess'])
      const listed = JSON.parse(ok(await cli(['scope', 'reset', 'list', '--scope-id', 'jobbed-000', '-f', 'json'])).stdout)
      assert.deepEqual(listed.map((j: { ID: number }) => j.ID), [reset.ID])
      const cancel = await cli(['scope', 'reset', 'cancel', String(reset.ID)])
      assert.equal(cancel.code, 1)
      assert.match(cancel.stderr, /done: it can no longer be cancelled\. \(HTTP 409\)/)
    })
  })

  describe('usage, network and TLS errors', () => {
    it('prints the usage and exits 2 on a usage error', async () => {
      const cases: Array<[string[], RegExp]> = [
        [['scope', 'state', 'reset', '2019-01-01'], /error: Give --all-scopes or at least one --scope-id\./],
        [['scope', 'state', 'reset', '--all-scopes', '--scope-id', 'x', '2019-01-01'], /error: option '-a, --all-scopes' cannot be used with option '--scope-id <value>'/],
        [['scope', 'state', 'list', '-f', 'xml'], /error: option '-f, --format <format>' argument 'xml' is invalid\. Allowed choices are table, json, yaml, csv, value\./],
        [['scope', 'state', 'list', '-c', 'Colour'], /error: Unknown column 'Colour'; the columns are: Scope ID, /],
        [['scope', 'patch', 'x', '--active', 'maybe'], /error: option '--active <true\|false>' argument 'maybe' is invalid\. Give true or false\./],
        [['scope', 'state', 'list', '--no-such-flag'], /error: unknown option '--no-such-flag'/],
      ]
      const runs = await Promise.all(cases.map(([args]) => cli(args)))
      runs.forEach((run, i) => {
        assert.equal(run.code, 2, `${cases[i][0].join(' ')}: ${run.stderr}`)
        assert.match(run.stderr, cases[i][1])
        assert.match(run.stderr, /\nUsage: scopekeeper scope /)
        assert.equal(run.stdout, '')
      })
      const unconfigured = await cli(['scope', 'state', 'list'], { OS_ENDPOINT: '' })
      assert.equal(unconfigured.code, 2)
      assert.match(unconfigured.stderr, /error: No API to talk to: give --os-endpoint URL/)
    })

    it('prints one line and exits 1 when the connection is refused or the server does not answer in time', async (t) => {
      const closed = createServer()
      closed.listen(0, '127.0.0.1')
      await once(closed, 'listening')
      const port = (closed.address() as { port: number }).port
      await new Promise((resolve) => closed.close(resolve))
      const sockets: Socket[] = []
      const fakeSilentServer = createServer((socket) => { sockets.push(socket) })
      fakeSilentServer.listen(0, '127.0.0.1')
      await once(fakeSilentServer, 'listening')
      t.after(() => { for (const s of sockets) s.destroy(); fakeSilentServer.close() })
      const silent = (fakeSilentServer.address() as { port: number }).port
      const [refused, timedOut] = await Promise.all([
        cli(['scope', 'state', 'list', '--os-endpoint', `http://127.0.0.1:${port}`]),
        cli(['scope', 'state', 'list', '--timeout', '0.3'], { OS_ENDPOINT: `http://127.0.0.1:${silent}` }),
      ])
      assert.deepEqual(refused, { code: 1, stdout: '', stderr: `scopekeeper: Connection refused by http://127.0.0.1:${port}: is the API running there?\n` })
      assert.deepEqual(timedOut, { code: 1, stdout: '', stderr: `scopekeeper: No answer from http://127.0.0.1:${silent} within 0.3 s (--timeout).\n` })
    })

    it('prints each request and response with --debug, the token redacted', async () => {
      const token = 'gAAAAA-secret-token-value'
      const run = ok(await cli(['scope', 'create', 'debug-1', '--debug', '-f', 'value', '-c', 'scope_id'], { OS_TOKEN: token }))
      assert.equal(run.stdout, 'debug-1\n')
      assert.match(run.stderr, /^REQ: curl -g -i -X POST "http:\/\/127\.0\.0\.1:\d+\/v2\/scope" .*-H "x-auth-token: \{SHA256\}[0-9a-f]{64}" -d '\{"scope_id":"debug-1"\}'$/m)
      assert.match(run.stderr, /^RESP: \[200\] .*x-openstack-request-id: req-/m)
      assert.match(run.stderr, /^RESP BODY: \{"scope_id":"debug-1",/m)
      assert.ok(!run.stderr.includes(token), 'the token is not printed')
    })

    it('verifies TLS against the CA of --os-cacert, skips verification with --insecure, and says what failed otherwise', { skip: existsSync('/usr/bin/openssl') ? false : 'needs openssl(1) to make a certificate' }, async (t) => {
      const dir = tempDir(t)
      execFileSync('/usr/bin/openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'),
        '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' })
      // TLS in front of the real server, as a load balancer terminating HTTPS would be.
      const target = new URL(server.url)
      const sockets = new Set<Socket>()
      const proxy: Server = createTlsServer({ key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) }, (tlsSocket) => {
        const upstream = connect(Number(target.port), target.hostname)
        for (const s of [tlsSocket, upstream]) { sockets.add(s); s.on('error', () => {}); s.on('close', () => sockets.delete(s)) }
        tlsSocket.pipe(upstream).pipe(tlsSocket)
      })
      proxy.listen(0, '127.0.0.1')
      await once(proxy, 'listening')
      t.after(() => { for (const s of sockets) s.destroy(); proxy.close() })
      const https = `https://127.0.0.1:${(proxy.address() as { port: number }).port}`
      await client.createScope({ scope_id: 'tls-1' })
      const args = ['scope', 'state', 'list', '--scope-id', 'tls-1', '-f', 'value', '-c', 'scope_id']
      const [untrusted, cacert, insecure] = await Promise.all([
        cli(args, { OS_ENDPOINT: https }),
        cli([...args, '--os-cacert', join(dir, 'cert.pem')], { OS_ENDPOINT: https }),
        cli([...args, '--insecure'], { OS_ENDPOINT: https }),
      ])
      assert.equal(untrusted.code, 1)
      assert.match(untrusted.stderr, new RegExp(`^scopekeeper: TLS verification of ${https.replace(/\./g, '\\.')} failed: self[- ]signed certificate; trust its CA with --os-cacert FILE, or skip verification with --insecure\\.\\n$`))
      for (const run of [cacert, insecure]) assert.equal(ok(run).stdout, 'tls-1\n')
    })
  })

  describe('Keystone settings', () => {
    it('authenticates with OS_* variables and finds the API in the catalog (fake-keystone in front of the real server)', async (t) => {
      const keystone = await startFakeKeystone(t, ratingCatalog().map((service) => service.type !== 'rating' ? service : {
        ...service, endpoints: [...service.endpoints, { interface: 'public', region_id: 'RegionReal', region: 'RegionReal', url: server.url }],
      }))
      await client.createScope({ scope_id: 'keystone-1' })
      const run = ok(await cli(['scope', 'state', 'list', '--scope-id', 'keystone-1', '-f', 'value', '-c', 'scope_id', '--debug'], {
        OS_ENDPOINT: '', OS_AUTH_URL: keystone.authUrl, OS_USERNAME: 'admin', OS_PASSWORD: 'secret', OS_PROJECT_NAME: 'admin',
        OS_USER_DOMAIN_NAME: 'Default', OS_PROJECT_DOMAIN_NAME: 'Default', OS_REGION_NAME: 'RegionReal', OS_INTERFACE: 'public',
      }))
      assert.equal(run.stdout, 'keystone-1\n')
      const token = keystone.tokens.at(-1)!
      assert.ok(!run.stderr.includes(token) && !run.stderr.includes('secret'), 'no credential in --debug output')
      assert.match(run.stderr, new RegExp(`REQ: curl -g -i -X GET "${server.url}/v2/scope\\?scope_id=keystone-1"`))
    })

    it('reads the cloud named by --os-cloud from clouds.yaml in the user config folder (fake-keystone)', async (t) => {
      const keystone = await startFakeKeystone(t, [{ type: 'rating', endpoints: [{ interface: 'internal', region_id: 'R', url: server.url }] }])
      const cloudHome = tempDir(t)
      mkdirSync(join(cloudHome, '.config', 'openstack'), { recursive: true })
      writeFileSync(join(cloudHome, '.config', 'openstack', 'clouds.yaml'), `clouds:
  mycloud:
    auth:
      auth_url: ${keystone.authUrl}
      username: admin
      project_name: admin
      user_domain_name: Default
      project_domain_name: Default
    interface: internal
`)
      writeFileSync(join(cloudHome, '.config', 'openstack', 'secure.yaml'), 'clouds:\n  mycloud:\n    auth:\n      password: secret\n')
      await client.createScope({ scope_id: 'cloud-1' })
      const run = ok(await cli(['scope', 'state', 'list', '--os-cloud', 'mycloud', '--scope-id', 'cloud-1', '-f', 'value', '-c', 'scope_id'], {
        OS_ENDPOINT: '', HOME: cloudHome, XDG_CONFIG_HOME: join(cloudHome, '.config'),
      }, cloudHome))
      assert.equal(run.stdout, 'cloud-1\n')
      assert.equal(keystone.requests[0].body.auth.identity.password.user.password, 'secret')
    })
  })
})
