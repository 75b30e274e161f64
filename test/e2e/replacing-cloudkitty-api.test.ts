// The README's "Replacing cloudkitty-api", run as written: its second
// config file and every `scopekeeper` command in it, with the deployment's
// paths mapped into the test's folder, on a kolla-shaped cloudkitty.conf
// (test/helpers/kolla-deployment.ts), MariaDB, a real Keystone, and a real
// tooz client holding CloudKitty's processing lock as its processor does.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { promisify } from 'node:util'
import { processingLockName } from '../../src/storage/coordination/coordinator.ts'
import { KOLLA_SECRETS, startKollaDeployment } from '../helpers/kolla-deployment.ts'
import { keystoneSkipReason } from '../helpers/keystone-server.ts'
import { BIN, startServerProcess, waitFor } from '../helpers/server-process.ts'
import { requireTooz, startToozHolder } from '../helpers/tooz-holder.ts'

const run = promisify(execFile)
const README = readFileSync(new URL('../../README.md', import.meta.url), 'utf8')
const INSTALLED_BIN = '/opt/scopekeeper/node_modules/.bin/scopekeeper'

/** The guide: from its heading to the next section of the same level. */
function guide (): string {
  const start = README.indexOf('\n## Replacing cloudkitty-api\n')
  assert.ok(start >= 0, 'the README has the guide')
  const end = README.indexOf('\n## ', start + 1)
  return README.slice(start, end < 0 ? undefined : end)
}

/** The fenced blocks of `text` in `language`. */
function blocks (text: string, language: string): string[] {
  return [...text.matchAll(new RegExp('```' + language + '\\n([\\s\\S]*?)```', 'g'))].map((m) => m[1])
}

/** Every `scopekeeper` command line of the guide, as argv after the binary. */
function guideCommands (): string[][] {
  return blocks(guide(), 'sh').flatMap((block) => block.split('\n'))
    .map((line) => line.replace(/^ExecStart=/, '').replace(/^sudo -u cloudkitty /, '').replace(/\s+#.*$/, '').trim())
    .filter((line) => line.startsWith(`${INSTALLED_BIN} `))
    .map((line) => line.slice(INSTALLED_BIN.length + 1).split(/\s+/))
}

describe('the README guide "Replacing cloudkitty-api", on a kolla-ansible deployment', { skip: keystoneSkipReason() }, () => {
  it('runs as written: migrate, serve from the drop-in, the checks, the drain file, SIGHUP, SIGTERM during a reset, and worker --once', async (t) => {
    if (!requireTooz(t)) return
    const deployment = await startKollaDeployment(t)
    if (deployment === undefined) return
    const { dir, conf, keystone, coordinationUrl, policyFile, root } = deployment

    // The guide's second file and commands, its paths mapped into `dir`.
    const paths: Array<[string, string]> = [
      ['/etc/cloudkitty/cloudkitty.conf', conf],
      ['/etc/cloudkitty/scopekeeper.conf', join(dir, 'scopekeeper.conf')],
      ['/var/log/cloudkitty', join(dir, 'log')],
      ['/var/lib/cloudkitty', join(dir, 'lib')],
    ]
    const mapped = (text: string) => paths.reduce((s, [from, to]) => s.split(from).join(to), text)
    const ini = blocks(guide(), 'ini')
    assert.equal(ini.length, 1, 'one second file')
    writeFileSync(join(dir, 'scopekeeper.conf'), mapped(ini[0]))
    for (const folder of ['log', 'lib']) rmSync(join(dir, folder), { recursive: true, force: true })
    await run('mkdir', ['-p', join(dir, 'log'), join(dir, 'lib')])
    const commands = guideCommands().map((argv) => argv.map(mapped))
    const find = (...words: string[]) => {
      const found = commands.filter((argv) => words.every((w) => argv.includes(w)) && argv[0] === words[0])
      assert.ok(found.length > 0, `the guide runs scopekeeper ${words.join(' ')}`)
      return found[0]
    }
    const serve = find('serve')
    const dryRun = find('migrate', '--dry-run')
    const migrate = commands.find((argv) => argv[0] === 'migrate' && !argv.includes('--dry-run'))!
    const workerOnce = find('worker', '--once')
    // Each names both files, the kolla one first, so the second wins.
    for (const argv of [serve, dryRun, migrate, workerOnce]) {
      assert.deepEqual(argv.filter((a, i) => argv[i - 1] === '--config-file'), [conf, join(dir, 'scopekeeper.conf')])
    }

    const planned = await run(process.execPath, [BIN, ...dryRun])
    assert.match(planned.stdout, /create table/i)
    const migrated = await run(process.execPath, [BIN, ...migrate])
    assert.match(migrated.stdout, /Success|up to date/i)
    assert.doesNotMatch((await run(process.execPath, [BIN, ...dryRun])).stdout, /create table/i, 'nothing left to migrate')

    // A reset applies one small batch at a time, so SIGTERM finds one running.
    const env = { SCOPEKEEPER_RESET_POLL_INTERVAL: '0.05', SCOPEKEEPER_RESET_BATCH_SIZE: '20' }
    const logFile = join(dir, 'log', 'scopekeeper-api.log')
    const server = await startServerProcess(t, serve.slice(1), env, { logFile })
    const admin = await keystone.token(keystone.admin)
    const request = async (method: string, path: string, headers: Record<string, string> = {}, body?: unknown) => {
      const res = await fetch(`${server.url}${path}`, {
        method,
        headers: { 'x-auth-token': admin, ...headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      })
      const text = await res.text()
      return { status: res.status, headers: res.headers, text, json: () => JSON.parse(text) }
    }

    // Step 4's checks, as haproxy and curl make them.
    const health = await request('GET', '/healthcheck', { 'x-auth-token': '' })
    assert.deepEqual([health.status, health.text], [200, 'OK'])
    const options = await fetch(`${server.url}/`, { method: 'OPTIONS' })
    assert.equal(options.status, 200)
    assert.deepEqual(options.headers.get('allow')?.split(', ').sort(), ['GET', 'HEAD', 'OPTIONS'])
    const discovery = (await request('GET', '/', { 'x-forwarded-proto': 'https' })).json()
    assert.match(discovery.versions[0].links[0].href, /^https:\/\/127\.0\.0\.1:\d+\/v2$/)

    // The drain file of the second file: 503 while it exists.
    const drain = join(dir, 'lib', 'healthcheck_disable')
    writeFileSync(drain, '')
    assert.deepEqual([(await request('GET', '/healthcheck')).status, (await request('GET', '/healthcheck')).text], [503, 'DISABLED BY FILE'])
    rmSync(drain)
    assert.equal((await request('GET', '/healthcheck')).status, 200)

    // The log is in the second file's log_dir/log_file, with the caller's ids.
    assert.equal(existsSync(join(dir, 'kolla-logs', 'cloudkitty', 'cloudkitty-api.log')), false, "kolla's log_file is overridden")
    await request('GET', '/v2/scope')
    await waitFor(async () => server.lines.some((line) => line.includes('"path":"/v2/scope"') && line.includes('"user_id"')), 10_000, 'the request line in log_file')

    // SIGHUP picks up an edited policy file; the process stays.
    assert.equal((await request('GET', '/v2/scope')).status, 200)
    writeFileSync(policyFile, '"scope:get_state": "role:nobody"\n')
    server.child.kill('SIGHUP')
    await waitFor(async () => (await request('GET', '/v2/scope')).status === 403, 10_000, 'the edited policy in force')
    writeFileSync(policyFile, '')
    server.child.kill('SIGHUP')
    await waitFor(async () => (await request('GET', '/v2/scope')).status === 200, 10_000, 'the policy restored')

    // SIGTERM in the middle of a reset of 2 000 scopes, one of which
    // CloudKitty's processor is rating: nothing is lost.
    const SCOPES = 2000
    const values = Array.from({ length: SCOPES }, (_, i) => `('s${String(i).padStart(4, '0')}', '2020-01-01 00:00:00', 'project_id', 'keystone', 'gnocchi', 1)`)
    await root.exec(`INSERT INTO cloudkitty_storage_states (identifier, last_processed_timestamp, scope_key, fetcher, collector, active) VALUES ${values.join(',')}`)
    const processor = await startToozHolder(t, coordinationUrl)
    const busy = processingLockName('s0007', { collector: 'gnocchi', fetcher: 'keystone', scopeKey: 'project_id' })
    assert.equal(await processor.hold(busy), true)
    const put = await request('PUT', '/v2/scope', {}, { all_scopes: true, last_processed_timestamp: '2019-06-01T00:00:00Z' })
    assert.equal(put.status, 202)
    const job = new URL(put.headers.get('location')!).pathname
    await waitFor(async () => (await request('GET', job)).json().scopes_applied > 0, 20_000, 'the reset under way')
    assert.equal(await server.stop('SIGTERM'), 0)
    const jobId = Number(job.split('/').pop())
    const [handedBack] = await root.rows(`SELECT status, scopes_applied, scopes_total FROM scopekeeper_reset_jobs WHERE id = ${jobId}`)
    assert.equal(handedBack.status, 'pending', 'handed back to the queue, not failed')
    assert.ok(Number(handedBack.scopes_applied) < Number(handedBack.scopes_total), 'stopped mid-way')
    assert.equal(await processor.release(busy), true)

    // Step 5: worker --once, as written, finishes the job it was handed.
    await run(process.execPath, [BIN, ...workerOnce], { env: { ...process.env, ...env } })
    // all_scopes: every row, the 2 000 and any the schema's seed left.
    const [done] = await root.rows(`SELECT status, scopes_total FROM scopekeeper_reset_jobs WHERE id = ${jobId}`)
    const [stamps] = await root.rows("SELECT COUNT(*) AS n, SUM(last_processed_timestamp = '2019-06-01 00:00:00') AS reset FROM cloudkitty_storage_states")
    assert.ok(Number(stamps.n) >= SCOPES)
    assert.deepEqual([done.status, Number(done.scopes_total)], ['done', Number(stamps.n)])
    assert.equal(Number(stamps.reset), Number(stamps.n), 'every scope reset, the busy one too')

    const log = readFileSync(logFile, 'utf8')
    for (const secret of [...KOLLA_SECRETS, admin]) assert.ok(!log.includes(secret), 'no secret or token in the log')
  })
})
