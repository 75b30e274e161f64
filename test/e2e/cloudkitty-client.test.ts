// Drives the real python-cloudkittyclient 4.6.0 (Debian's python3-cloudkittyclient,
// on /usr/bin/python3) and python-openstackclient against the real scopekeeper
// process, and checks the effects through plain HTTP. The packages come from
// scripts/setup-system-packages.sh; without them these tests are skipped, or
// fail when CI=true.
import assert from 'node:assert/strict'
import { execFile, execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { describe, it, type TestContext } from 'node:test'
import { tempDir } from '../helpers/build-test-app.ts'
import { startServerProcess, waitFor } from '../helpers/server-process.ts'

const PYTHON = '/usr/bin/python3'
const CLOUDKITTY = '/usr/bin/cloudkitty'
const OPENSTACK = '/usr/bin/openstack'
const CLIENT_TIMEOUT_MS = 60_000
const RESET_TIMEOUT_MS = 20_000
const IN_CI = process.env.CI === 'true'
const NOT_FOUND = 'No resource found for provided filters.'

/** Why `bin` (from Debian package `pkg`, Python module `module`) cannot run, or undefined if it can. */
function missingTool (bin: string, module: string, pkg: string): string | undefined {
  const hint = `install Debian's ${pkg} with scripts/setup-system-packages.sh (as root)`
  if (!existsSync(bin)) return `${bin} is not installed; ${hint}`
  try {
    execFileSync(PYTHON, ['-c', `import ${module}`], { stdio: 'ignore', timeout: 30_000 })
  } catch {
    return `${PYTHON} cannot import ${module}; ${hint}`
  }
  return undefined
}

const missingCloudkitty = missingTool(CLOUDKITTY, 'cloudkittyclient', 'python3-cloudkittyclient')
const missingOpenstack = missingTool(OPENSTACK, 'openstackclient', 'python3-openstackclient')

/** In CI a missing client is a failure, not a skip. */
function requireInCi (what: string, missing: string | undefined): void {
  if (missing === undefined || !IN_CI) return
  it(`has the real ${what} installed (required when CI=true)`, () => {
    assert.fail(missing)
  })
}

interface ClientRun {
  code: number
  stdout: string
  stderr: string
}

/** The environment without OS_* variables, so a developer's cloud settings cannot leak in. */
function clientEnv (): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('OS_')))
  return { ...env, PYTHONWARNINGS: 'ignore' }
}

/** Runs a client command to its end; resolves with its exit code and output, rejects only on timeout or spawn failure. */
function runClient (bin: string, args: string[]): Promise<ClientRun> {
  return new Promise((resolve, reject) => {
    execFile(bin, args, { env: clientEnv(), timeout: CLIENT_TIMEOUT_MS, maxBuffer: 16 * 1024 * 1024, encoding: 'utf8' },
      (error, stdout, stderr) => {
        const command = [bin, ...args].join(' ')
        if (error === null) return resolve({ code: 0, stdout, stderr })
        if (error.killed) return reject(new Error(`${command} did not finish in ${CLIENT_TIMEOUT_MS} ms; stderr: ${stderr}`))
        if (typeof error.code !== 'number') return reject(new Error(`${command} could not run: ${error.message}`))
        resolve({ code: error.code, stdout, stderr })
      })
  })
}

/** `cloudkitty --os-auth-type cloudkitty-noauth --os-endpoint URL --os-rating-api-version 2 …`, as in the contract. */
function cloudkitty (url: string, ...args: string[]): Promise<ClientRun> {
  return runClient(CLOUDKITTY, ['--os-auth-type', 'cloudkitty-noauth', '--os-endpoint', url, '--os-rating-api-version', '2', ...args])
}

/** `openstack --os-auth-type none --os-endpoint URL --rating-api-version 2 …`, as in the contract. */
function openstack (url: string, ...args: string[]): Promise<ClientRun> {
  return runClient(OPENSTACK, ['--os-auth-type', 'none', '--os-endpoint', url, '--rating-api-version', '2', ...args])
}

/** Parses a `-f json` listing, with a readable failure if the client printed something else. */
function parseListing (run: ClientRun): Array<Record<string, string>> {
  assert.equal(run.code, 0, `client exited ${run.code}; stderr: ${run.stderr}`)
  try {
    return JSON.parse(run.stdout)
  } catch {
    assert.fail(`client printed no JSON; stdout: ${run.stdout}; stderr: ${run.stderr}`)
  }
}

/**
 * Runs `body` against a fresh scopekeeper process on a temporary SQLite file
 * (its in-process reset worker on), and stops the process gracefully before
 * the folder is removed.
 */
async function withScopekeeper (t: TestContext, body: (url: string) => Promise<void>): Promise<void> {
  const dir = tempDir(t)
  const server = await startServerProcess(t, ['--database', `sqlite:///${join(dir, 'scopekeeper.sqlite')}`])
  try {
    await body(server.url)
  } finally {
    await server.stop()
  }
}

async function createScope (url: string, body: Record<string, unknown>): Promise<Record<string, unknown>> {
  const res = await fetch(`${url}/v2/scope`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  })
  const text = await res.text()
  assert.equal(res.status, 200, `POST /v2/scope ${JSON.stringify(body)} answered ${res.status}: ${text}`)
  return JSON.parse(text)
}

/** One scope as the server reports it now (plain GET, not through the client). */
async function getScope (url: string, scopeId: string): Promise<Record<string, unknown>> {
  const res = await fetch(`${url}/v2/scope?scope_id=${encodeURIComponent(scopeId)}`)
  const text = await res.text()
  assert.equal(res.status, 200, `GET /v2/scope?scope_id=${scopeId} answered ${res.status}: ${text}`)
  const { results } = JSON.parse(text)
  assert.equal(results.length, 1, `expected one scope ${scopeId}, got ${text}`)
  return results[0]
}

/** Waits until the reset worker has moved `scopeId` to `timestamp`. */
async function waitForTimestamp (url: string, scopeId: string, timestamp: string): Promise<void> {
  await waitFor(async () => (await getScope(url, scopeId)).last_processed_timestamp === timestamp,
    RESET_TIMEOUT_MS, `${scopeId}.last_processed_timestamp to become ${timestamp}`)
}

const AUGUST = '2019-08-01T00:00:00+00:00'

/** The row `scope state get -f json` prints for a scope the server returned. */
function listedRow (scope: Record<string, unknown>): Record<string, unknown> {
  return {
    'Scope ID': scope.scope_id,
    'Scope Key': scope.scope_key,
    Collector: scope.collector,
    Fetcher: scope.fetcher,
    State: scope.state,
  }
}

/**
 * python-cloudkittyclient 4.6.0's `scope patch` returns the server's updated
 * scope from cliff's take_action, which cliff hands to sys.exit(): on success
 * the client prints that dict's Python repr on stderr and exits 1. A fixed
 * client exits 0. Anything else (an HTTP error, a traceback) is a failure.
 */
function assertPatchSucceeded (run: ClientRun, scopeId: string, active: boolean): void {
  if (run.code === 0) return
  const repr = `'scope_id': '${scopeId}'`
  assert.ok(run.code === 1 && run.stderr.trimStart().startsWith('{') && run.stderr.includes(repr) &&
    run.stderr.includes(`'active': ${active ? 'True' : 'False'}`) && !run.stderr.includes('(HTTP '),
  `scope patch failed: exit ${run.code}; stdout: ${run.stdout}; stderr: ${run.stderr}`)
}

requireInCi('python-cloudkittyclient (/usr/bin/cloudkitty)', missingCloudkitty)

describe('python-cloudkittyclient against a scopekeeper process', { skip: missingCloudkitty ?? false }, () => {
  it('lists the created scopes with their state, and filters on repeated --scope-id', async (t) => {
    await withScopekeeper(t, async (url) => {
      const aaaa = await createScope(url, { scope_id: 'aaaa', active: true, last_processed_timestamp: AUGUST })
      const bbbb = await createScope(url, {
        scope_id: 'bbbb', active: true, scope_key: 'tenant_id', collector: 'prometheus', fetcher: 'prometheus',
        last_processed_timestamp: '2019-09-15T12:00:00Z',
      })
      const cccc = await createScope(url, { scope_id: 'cccc', active: false })

      const all = parseListing(await cloudkitty(url, 'scope', 'state', 'get', '-f', 'json'))
      assert.deepEqual(all, [aaaa, bbbb, cccc].map(listedRow))
      assert.deepEqual(all[1], {
        'Scope ID': 'bbbb', 'Scope Key': 'tenant_id', Collector: 'prometheus', Fetcher: 'prometheus', State: '2019-09-15T12:00:00+00:00',
      })

      const filtered = parseListing(await cloudkitty(url, 'scope', 'state', 'get', '--scope-id', 'aaaa', '--scope-id', 'cccc', '-f', 'json'))
      assert.deepEqual(filtered, [aaaa, cccc].map(listedRow))
    })
  })

  it('resets the named scopes to the positional timestamp and leaves the others alone', async (t) => {
    await withScopekeeper(t, async (url) => {
      for (const scopeId of ['aaaa', 'bbbb', 'cccc']) await createScope(url, { scope_id: scopeId, active: true, last_processed_timestamp: AUGUST })

      const run = await cloudkitty(url, 'scope', 'state', 'reset', '--scope-id', 'aaaa', '--scope-id', 'bbbb', '2019-07-16T08:55:01Z')
      assert.deepEqual(run, { code: 0, stdout: '', stderr: '' })

      await waitForTimestamp(url, 'aaaa', '2019-07-16T08:55:01+00:00')
      await waitForTimestamp(url, 'bbbb', '2019-07-16T08:55:01+00:00')
      assert.equal((await getScope(url, 'cccc')).last_processed_timestamp, AUGUST)

      const listed = parseListing(await cloudkitty(url, 'scope', 'state', 'get', '--scope-id', 'aaaa', '-f', 'json'))
      assert.equal(listed[0]!.State, '2019-07-16T08:55:01+00:00')
    })
  })

  it('resets every scope with --all-scopes', async (t) => {
    await withScopekeeper(t, async (url) => {
      await createScope(url, { scope_id: 'aaaa', active: true, last_processed_timestamp: AUGUST })
      await createScope(url, { scope_id: 'bbbb', active: false, collector: 'prometheus', last_processed_timestamp: '2019-09-01T00:00:00Z' })

      const run = await cloudkitty(url, 'scope', 'state', 'reset', '--all-scopes', '2019-07-01T00:00:00Z')
      assert.deepEqual(run, { code: 0, stdout: '', stderr: '' })

      await waitForTimestamp(url, 'aaaa', '2019-07-01T00:00:00+00:00')
      await waitForTimestamp(url, 'bbbb', '2019-07-01T00:00:00+00:00')
    })
  })

  it('deactivates a scope with scope patch --active false', async (t) => {
    await withScopekeeper(t, async (url) => {
      const before = await createScope(url, { scope_id: 'aaaa', active: true, last_processed_timestamp: AUGUST })
      await createScope(url, { scope_id: 'bbbb', active: true })

      assertPatchSucceeded(await cloudkitty(url, 'scope', 'patch', '--scope-id', 'aaaa', '--active', 'false'), 'aaaa', false)

      const after = await getScope(url, 'aaaa')
      assert.equal(after.active, false)
      assert.deepEqual({ ...after, active: true, scope_activation_toggle_date: undefined },
        { ...before, scope_activation_toggle_date: undefined })
      assert.equal((await getScope(url, 'bbbb')).active, true)
    })
  })

  it('reactivates a scope and changes its collector with scope patch', async (t) => {
    await withScopekeeper(t, async (url) => {
      await createScope(url, { scope_id: 'aaaa', active: false, collector: 'gnocchi' })

      assertPatchSucceeded(await cloudkitty(url, 'scope', 'patch', '--scope-id', 'aaaa', '--active', 'true', '--collector', 'prometheus'), 'aaaa', true)

      const after = await getScope(url, 'aaaa')
      assert.equal(after.active, true)
      assert.equal(after.collector, 'prometheus')
    })
  })

  it("prints the server's message and exits 1 when no scope matches", async (t) => {
    await withScopekeeper(t, async (url) => {
      await createScope(url, { scope_id: 'aaaa', active: true, last_processed_timestamp: AUGUST })

      const get = await cloudkitty(url, 'scope', 'state', 'get', '--scope-id', 'unknown', '-f', 'json')
      assert.equal(get.code, 1, `stdout: ${get.stdout}; stderr: ${get.stderr}`)
      assert.equal(get.stdout, '')
      assert.match(get.stderr, /No resource found for provided filters\.".*\(HTTP 404\)/)

      const reset = await cloudkitty(url, 'scope', 'state', 'reset', '--scope-id', 'unknown', '2019-07-01T00:00:00Z')
      assert.equal(reset.code, 1, `stdout: ${reset.stdout}; stderr: ${reset.stderr}`)
      assert.ok(reset.stderr.includes(NOT_FOUND), reset.stderr)
      assert.equal((await getScope(url, 'aaaa')).last_processed_timestamp, AUGUST)
    })
  })
})

requireInCi('python-openstackclient (/usr/bin/openstack)', missingOpenstack)

describe('openstack rating commands against a scopekeeper process', { skip: missingCloudkitty ?? missingOpenstack ?? false }, () => {
  it('lists the created scopes through openstack rating scope state get', async (t) => {
    await withScopekeeper(t, async (url) => {
      const aaaa = await createScope(url, { scope_id: 'aaaa', active: true, last_processed_timestamp: AUGUST })
      const bbbb = await createScope(url, { scope_id: 'bbbb', active: true, collector: 'prometheus' })

      const listed = parseListing(await openstack(url, 'rating', 'scope', 'state', 'get', '-f', 'json'))
      assert.deepEqual(listed, [aaaa, bbbb].map(listedRow))
    })
  })
})
