// `scopekeeper scope …` through a real Keystone (Debian's keystone, from
// test/helpers/keystone-server.ts): the CLI gets a token with the OS_*
// variables, finds the API under service type `rating` in the catalog, and
// the server (auth_strategy = keystone) checks the token and the policy.
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { tempDir } from '../helpers/build-test-app.ts'
import { runCli, suiteContext, withoutOsVariables, type CliRun } from '../helpers/cli-process.ts'
import { keystoneSkipReason, startKeystone, type KeystoneServer, type KeystoneUser } from '../helpers/keystone-server.ts'
import { startServerProcess, type ServerProcess } from '../helpers/server-process.ts'

const skip = keystoneSkipReason()

describe('scopekeeper scope … through a real Keystone', { skip }, () => {
  const suite = suiteContext()
  let keystone: KeystoneServer
  let server: ServerProcess
  let home: string

  /** The OS_* variables of `user`, as an openrc file sets them. */
  function openrc (user: KeystoneUser): Record<string, string> {
    return {
      OS_AUTH_URL: `${keystone.url}/v3`, OS_USERNAME: user.name, OS_PASSWORD: user.password, OS_PROJECT_NAME: user.project,
      OS_USER_DOMAIN_NAME: 'Default', OS_PROJECT_DOMAIN_NAME: 'Default', OS_REGION_NAME: 'RegionOne', OS_INTERFACE: 'internal',
    }
  }

  function cli (args: string[], env: Record<string, string>): Promise<CliRun> {
    return runCli(args, { env: { ...withoutOsVariables(), HOME: home, ...env }, cwd: home })
  }

  before(async () => {
    home = tempDir(suite.t)
    keystone = await startKeystone()
    suite.t.after(() => keystone.stop())
    server = await startServerProcess(suite.t, ['--database', `sqlite:///${join(home, 'ks.sqlite')}`], {
      ...keystone.authEnv(), SCOPEKEEPER_RESET_POLL_INTERVAL: '0.05',
    })
    await keystone.registerService('rating', 'cloudkitty', server.url)
  })
  after(() => suite.cleanup())

  it('creates, lists and resets with --wait as admin, the endpoint found in the catalog', async () => {
    const env = openrc(keystone.admin)
    const created = await cli(['scope', 'create', 'ks-trial', '--active', 'false', '-f', 'value', '-c', 'scope_id', '-c', 'active'], env)
    assert.equal(created.code, 0, created.stderr)
    assert.equal(created.stdout, 'ks-trial\nFalse\n')
    const listed = await cli(['scope', 'state', 'list', '--inactive', '-f', 'value', '-c', 'scope_id', '--debug'], env)
    assert.equal(listed.code, 0, listed.stderr)
    assert.equal(listed.stdout, 'ks-trial\n')
    // The token went to the catalog's internal rating endpoint, and --debug never shows it.
    assert.match(listed.stderr, new RegExp(`REQ: curl -g -i -X GET "${server.url}/v2/scope\\?active=0" .*-H "x-auth-token: \\{SHA256\\}[0-9a-f]{64}"`))
    assert.ok(!listed.stderr.includes(keystone.admin.password))
    const reset = await cli(['scope', 'state', 'reset', '--scope-id', 'ks-trial', '2019-07-01T00:00:00Z', '--wait', '--poll-interval', '0.1', '-f', 'value', '-c', 'status'], env)
    assert.equal(reset.code, 0, reset.stderr)
    assert.equal(reset.stdout, 'done\n')
  })

  it('uses an OS_TOKEN with OS_AUTH_URL as it is, reading its catalog', async () => {
    const token = await keystone.token(keystone.admin)
    const run = await cli(['scope', 'state', 'list', '-f', 'value', '-c', 'scope_id'], { OS_AUTH_URL: `${keystone.url}/v3`, OS_TOKEN: token, OS_INTERFACE: 'public' })
    assert.equal(run.code, 0, run.stderr)
    assert.match(run.stdout, /^ks-trial$/m)
  })

  it("prints Keystone's refusal of a wrong password and the API's refusal of a member, exit 1", async () => {
    const [wrong, member] = await Promise.all([
      cli(['scope', 'state', 'list'], { ...openrc(keystone.admin), OS_PASSWORD: 'not-the-password' }),
      cli(['scope', 'create', 'ks-member'], openrc(keystone.member)),
    ])
    assert.equal(wrong.code, 1)
    assert.match(wrong.stderr, /^scopekeeper: Keystone at http:\/\/127\.0\.0\.1:\d+\/v3 refused to authenticate: .* \(HTTP 401\)\n$/)
    assert.equal(member.code, 1)
    assert.match(member.stderr, /^scopekeeper: You are not authorized to perform this action.* \(HTTP 403\)/)
  })
})
