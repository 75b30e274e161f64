// `scopekeeper scope reconcile` against the real server process, which reads
// a real Keystone (test/helpers/keystone-server.ts) with [fetcher_keystone]'s
// credentials: the report in each format, --deactivate-missing,
// --register-new --inactive, a rerun with nothing to report, and Keystone
// unreachable.
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { parse as parseYaml } from 'yaml'
import { tempDir } from '../helpers/build-test-app.ts'
import { runCli, suiteContext, withoutOsVariables, type CliRun } from '../helpers/cli-process.ts'
import { freePort } from '../helpers/free-port.ts'
import { keystoneSkipReason, startKeystone, waitPastSecond, type KeystoneServer } from '../helpers/keystone-server.ts'
import { startServerProcess, type ServerProcess } from '../helpers/server-process.ts'

const skip = keystoneSkipReason()

describe('scopekeeper scope reconcile against a real Keystone', { skip }, () => {
  const suite = suiteContext()
  let keystone: KeystoneServer
  let server: ServerProcess
  let home: string
  const ids: Record<string, string> = {}

  function cli (args: string[], endpoint = server.url): Promise<CliRun> {
    return runCli(args, { env: { ...withoutOsVariables(), HOME: home, OS_ENDPOINT: endpoint }, cwd: home })
  }

  function fetcherEnv (authUrl: string): Record<string, string> {
    return {
      SCOPEKEEPER_FETCHER_KEYSTONE_AUTH_TYPE: 'password',
      SCOPEKEEPER_FETCHER_KEYSTONE_AUTH_URL: authUrl,
      SCOPEKEEPER_FETCHER_KEYSTONE_USERNAME: 'cloudkitty',
      SCOPEKEEPER_FETCHER_KEYSTONE_PASSWORD: 'cloudkitty-secret',
      SCOPEKEEPER_FETCHER_KEYSTONE_PROJECT_NAME: 'service',
    }
  }

  before(async () => {
    home = tempDir(suite.t)
    keystone = await startKeystone()
    suite.t.after(() => keystone.stop())
    // CloudKitty's user: admin on service (to list projects), rating on the projects it rates.
    await keystone.createUser({ name: 'cloudkitty', password: 'cloudkitty-secret', project: 'service' }, 'admin')
    for (const name of ['kept', 'disabled', 'deleted', 'new']) {
      ids[name] = await keystone.createProject(`cli-${name}`)
      await keystone.grantRole('cloudkitty', ids[name], 'rating')
    }
    await waitPastSecond()
    server = await startServerProcess(suite.t, ['--database', `sqlite:///${join(home, 'reconcile.sqlite')}`], fetcherEnv(`${keystone.url}/v3`))
  })
  after(() => suite.cleanup())

  it('reports, deactivates, registers inactive, and then has nothing to report', async () => {
    for (const name of ['kept', 'disabled', 'deleted']) {
      const created = await cli(['scope', 'create', ids[name], '-f', 'value', '-c', 'scope_id'])
      assert.equal(created.code, 0, created.stderr)
    }
    await keystone.setProjectEnabled(ids.disabled, false)
    await keystone.deleteProject(ids.deleted)

    const table = await cli(['scope', 'reconcile'])
    assert.equal(table.code, 0, table.stderr)
    assert.match(table.stdout, /\| Dry Run +\| True +\|/)
    assert.match(table.stdout, new RegExp(`Scopes of deleted projects: 1\\n\\+[-+]+\\+\\n\\| Scope ID .*\\n\\+[-+]+\\+\\n\\| ${ids.deleted} `))
    assert.match(table.stdout, new RegExp(`Scopes of disabled projects: 1\\n[^]*\\| ${ids.disabled} [^\\n]*\\| cli-disabled `))
    assert.match(table.stdout, new RegExp(`Projects with no scope: 1\\n[^]*\\| ${ids.new} +\\| cli-new +\\| default +\\|`))
    assert.match(table.stdout, /Scopes registered: 0\n$/)

    const json = await cli(['scope', 'reconcile', '-f', 'json'])
    assert.equal(json.code, 0, json.stderr)
    const report = JSON.parse(json.stdout)
    assert.equal(report['Dry Run'], true)
    assert.deepEqual(report.Deleted.Results.map((s: any) => s['Scope ID']), [ids.deleted])
    assert.deepEqual(report.Disabled.Results.map((s: any) => [s['Scope ID'], s['Project Name']]), [[ids.disabled, 'cli-disabled']])
    assert.deepEqual(report.New, { Count: 1, Results: [{ 'Project ID': ids.new, 'Project Name': 'cli-new', 'Domain ID': 'default' }] })

    // --dry-run wins over the changes it names.
    const dry = await cli(['scope', 'reconcile', '--deactivate-missing', '--register-new', '--dry-run', '-f', 'json'])
    assert.equal(JSON.parse(dry.stdout).Deactivated, 0)
    assert.equal((await cli(['scope', 'state', 'list', '--inactive', '-f', 'value', '-c', 'scope_id'])).stdout, '')

    const deactivate = await cli(['scope', 'reconcile', '--deactivate-missing', '--reason', 'quarterly check', '-f', 'json'])
    assert.equal(deactivate.code, 0, deactivate.stderr)
    assert.equal(JSON.parse(deactivate.stdout).Deactivated, 2)
    const inactive = await cli(['scope', 'state', 'list', '--inactive', '-f', 'value', '-c', 'scope_id', '--sort-column', 'scope_id'])
    assert.equal(inactive.stdout, [ids.deleted, ids.disabled].sort().map((id) => `${id}\n`).join(''))
    const history = await cli(['scope', 'history', ids.deleted, '-f', 'json'])
    assert.equal(history.code, 0, history.stderr)
    assert.ok(JSON.parse(history.stdout).some((e: any) => e.Kind === 'deactivated' && e.Reason === 'reconcile: quarterly check'), history.stdout)

    const register = await cli(['scope', 'reconcile', '--register-new', '--inactive', '-f', 'yaml'])
    assert.equal(register.code, 0, register.stderr)
    const registered = parseYaml(register.stdout)
    assert.deepEqual(registered.Registered.Results.map((s: any) => [s['Scope ID'], s.Active, s['Scope Key'], s.Fetcher, s.Collector]),
      [[ids.new, false, 'project_id', 'keystone', 'gnocchi']])

    const rerun = await cli(['scope', 'reconcile', '--deactivate-missing', '--register-new', '-f', 'json'])
    const again = JSON.parse(rerun.stdout)
    assert.deepEqual([again.Deleted.Count, again.Disabled.Count, again.New.Count, again.Deactivated, again.Registered.Count], [0, 0, 0, 0, 0])
  })

  it('refuses --inactive without --register-new as a usage error, sending nothing', async () => {
    const run = await cli(['scope', 'reconcile', '--inactive'])
    assert.equal(run.code, 2)
    assert.match(run.stderr, /--inactive goes with --register-new/)
  })

  it('exits 1 with the server\'s 503 when Keystone cannot be reached, and 502 when it refuses the credentials; no password in the answer or the log', async (t) => {
    const down = await startServerProcess(t, ['--database', `sqlite:///${join(tempDir(t), 'down.sqlite')}`], fetcherEnv(`http://127.0.0.1:${await freePort()}/v3`))
    const unreachable = await cli(['scope', 'reconcile'], down.url)
    assert.equal(unreachable.code, 1)
    assert.match(unreachable.stderr, /Keystone.*\(HTTP 503\)/)
    assert.ok(down.lines.some((line) => line.includes('cannot be reached')), down.lines.join('\n'))

    const refusing = await startServerProcess(t, ['--database', `sqlite:///${join(tempDir(t), 'refused.sqlite')}`], {
      ...fetcherEnv(`${keystone.url}/v3`), SCOPEKEEPER_FETCHER_KEYSTONE_PASSWORD: 'wrong-secret',
    })
    const refused = await cli(['scope', 'reconcile'], refusing.url)
    assert.equal(refused.code, 1)
    assert.match(refused.stderr, /\[fetcher_keystone\].*\(HTTP 502\)/)
    assert.ok(refusing.lines.some((line) => line.includes('refused scopekeeper\'s service credentials ([fetcher_keystone] username cloudkitty')), refusing.lines.join('\n'))
    for (const text of [unreachable.stderr, refused.stderr, ...down.lines, ...refusing.lines]) {
      assert.doesNotMatch(text, /cloudkitty-secret|wrong-secret/)
    }
  })
})
