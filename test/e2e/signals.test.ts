// SIGHUP, SIGTERM and SIGINT sent to real `scopekeeper serve` and `worker`
// processes: what an init system and logrotate do to them.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { connect, type Socket } from 'node:net'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { describe, it, type TestContext } from 'node:test'
import { buildTestApp, SkippedEngine, tempDir } from '../helpers/build-test-app.ts'
import { deferCleanup } from '../helpers/cleanup.ts'
import { BIN, startServerProcess, waitFor, type ServerProcess } from '../helpers/server-process.ts'

const run = promisify(execFile)
// Under Node's keepAliveTimeout (72 s): a stop that waited for an answered
// connection to time out fails here.
const PROCESS_TEST = { timeout: 60_000 }

function entries (lines: string[]): Array<Record<string, any>> {
  return lines.flatMap((line) => { try { return [JSON.parse(line)] } catch { return [] } })
}

function fileEntries (path: string): Array<Record<string, any>> {
  return existsSync(path) ? entries(readFileSync(path, 'utf8').split('\n')) : []
}

const isReload = (entry: Record<string, any>) => entry.signal === 'SIGHUP' && /^reloaded /.test(entry.msg)

/** Sends SIGHUP and waits for the line saying it was handled. */
async function hangUp (server: ServerProcess, lines: () => Array<Record<string, any>> = () => entries(server.lines)): Promise<void> {
  const before = lines().filter(isReload).length
  server.child.kill('SIGHUP')
  await waitFor(async () => lines().filter(isReload).length > before, 15_000, 'the SIGHUP to be handled')
}

async function status (url: string, path = '/v2/scope'): Promise<number> {
  const res = await fetch(`${url}${path}`)
  await res.arrayBuffer()
  return res.status
}

/** A raw HTTP/1.1 connection, to hold a request half sent. */
async function rawConnection (t: TestContext, url: string): Promise<{ socket: Socket, received: () => string, closed: Promise<void> }> {
  const { hostname, port } = new URL(url)
  const socket = connect(Number(port), hostname)
  deferCleanup(t, () => { socket.destroy() })
  await new Promise<void>((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject) })
  let received = ''
  socket.on('data', (data: Buffer) => { received += data.toString() })
  socket.on('error', () => {})
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()))
  return { socket, received: () => received, closed }
}

async function refused (url: string): Promise<boolean> {
  const { hostname, port } = new URL(url)
  return await new Promise((resolve) => {
    const socket = connect(Number(port), hostname)
    socket.once('connect', () => { socket.destroy(); resolve(false) })
    socket.once('error', () => resolve(true))
  })
}

const BODY = JSON.stringify({ scope_id: 'slow-1', last_processed_timestamp: '2020-01-01T00:00:00Z' })
const HEAD = `POST /v2/scope HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(BODY)}\r\n\r\n`

describe('SIGHUP', () => {
  it('keeps serving, reloads the policy file, and keeps the old rules when the new file does not read', PROCESS_TEST, async (t) => {
    const dir = tempDir(t)
    const policy = join(dir, 'policy.yaml')
    writeFileSync(policy, '"scope:get_state": "@"\n')
    const conf = join(dir, 'cloudkitty.conf')
    writeFileSync(conf, `[DEFAULT]\nauth_strategy = noauth\n[database]\nconnection = sqlite:///${join(dir, 'db.sqlite')}\n[orchestrator]\ncoordination_url = file://${join(dir, 'locks')}\n[oslo_policy]\npolicy_file = ${policy}\n`)
    const server = await startServerProcess(t, ['--config-file', conf])
    const created = await fetch(`${server.url}/v2/scope`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ scope_id: 'p1' }) })
    assert.equal(created.status, 200, await created.text())
    assert.equal(await status(server.url), 200)

    writeFileSync(policy, '"scope:get_state": "!"\n')
    await hangUp(server)
    assert.equal(await status(server.url), 403, 'the edited rule is in force')

    writeFileSync(policy, '"scope:get_state": "role:admin and (\n')
    await hangUp(server)
    assert.equal(await status(server.url), 403, 'the rules in force stay')
    const complaint = entries(server.lines).find((e) => e.level === 50 && /the policy file no longer reads, the rules in force stay/.test(e.msg))
    assert.ok(complaint, 'the broken file is logged as an error')
    assert.equal(complaint.policyFile, policy)

    writeFileSync(policy, '"scope:get_state": "@"\n')
    await hangUp(server)
    assert.equal(await status(server.url), 200, 'a fixed file is read again')
    assert.equal(server.child.exitCode, null)
    assert.equal(await server.stop(), 0)
  })

  it('applies a changed [DEFAULT] debug and logs the change, ignoring settings that need a restart', PROCESS_TEST, async (t) => {
    const dir = tempDir(t)
    const conf = join(dir, 'cloudkitty.conf')
    const write = (debug: boolean, period: number) => writeFileSync(conf, `[DEFAULT]\nauth_strategy = noauth\ndebug = ${debug}\n[database]\nconnection = sqlite:///${join(dir, 'db.sqlite')}\n[orchestrator]\ncoordination_url = file://${join(dir, 'locks')}\n[collect]\nperiod = ${period}\n`)
    write(false, 3600)
    const server = await startServerProcess(t, ['--config-file', conf])
    const debugLines = () => entries(server.lines).filter((e) => e.level === 20)
    assert.deepEqual(debugLines(), [])

    write(true, 60)
    await hangUp(server)
    const changes = entries(server.lines).filter((e) => e.signal === 'SIGHUP' && /^(Option|Ignoring)/.test(e.msg)).map((e) => [e.level, e.msg])
    assert.deepEqual(changes, [
      [40, 'Ignoring change to immutable option collect.period: it takes effect at the next start'],
      [30, 'Option DEFAULT.debug changed from [false] to [true]'],
    ])
    const [conf1] = debugLines()
    assert.equal(conf1?.msg, 'Full set of CONF')
    assert.equal(conf1.options['DEFAULT.debug'], true)
    assert.equal(conf1.options['collect.period'], 3600, 'the period in force is still the first')
    assert.equal(conf1.options['database.connection'], '****')

    write(false, 60)
    await hangUp(server)
    assert.equal(debugLines().length, 1, 'no debug line once debug is off again')
    assert.equal(await server.stop(), 0)
  })

  it('reopens a log file that logrotate moved, at once on SIGHUP and by itself otherwise', PROCESS_TEST, async (t) => {
    const dir = tempDir(t)
    const log = join(dir, 'scopekeeper-api.log')
    const server = await startServerProcess(t, ['--database', `sqlite:///${join(dir, 'db.sqlite')}`], { SCOPEKEEPER_DEFAULT_LOG_DIR: dir }, { logFile: log })
    assert.ok(fileEntries(log).some((e) => e.msg === 'scopekeeper listening'))

    renameSync(log, `${log}.1`)
    await hangUp(server, () => fileEntries(log))
    await status(server.url, '/v2/scope?scope_id=after-hup')
    await waitFor(async () => fileEntries(log).some((e) => e.query === 'scope_id=after-hup'), 15_000, 'the request line in the new file')
    assert.ok(fileEntries(`${log}.1`).every((e) => e.msg !== 'request'), 'nothing after the SIGHUP went to the moved file')

    // Without SIGHUP (logrotate's copy-less rotation with no postrotate):
    // the process notices within a second or so.
    renameSync(log, `${log}.2`)
    let n = 0
    await waitFor(async () => {
      await status(server.url, `/v2/scope?scope_id=r${n++}`)
      return fileEntries(log).some((e) => e.msg === 'request')
    }, 15_000, 'a request line in the file that replaced the moved one')
    assert.equal(await server.stop(), 0)
    const requests = [`${log}.2`, log].flatMap((file) => fileEntries(file)).filter((e) => e.msg === 'request' && /^scope_id=r/.test(e.query))
    assert.deepEqual(requests.map((e) => e.query), Array.from({ length: n }, (_, i) => `scope_id=r${i}`), 'every request line once, in order, across the two files')
  })
})

describe('logging at start', () => {
  it('logs at debug with --debug, which a SIGHUP re-reading debug = false in the file does not undo', PROCESS_TEST, async (t) => {
    const dir = tempDir(t)
    const conf = join(dir, 'cloudkitty.conf')
    writeFileSync(conf, `[DEFAULT]\nauth_strategy = noauth\ndebug = false\n[database]\nconnection = sqlite:///${join(dir, 'db.sqlite')}\n[orchestrator]\ncoordination_url = file://${join(dir, 'locks')}\n`)
    const server = await startServerProcess(t, ['--config-file', conf, '--debug'])
    const settingsLines = () => entries(server.lines).filter((e) => e.level === 20 && e.msg === 'Full set of CONF')
    assert.equal(settingsLines().length, 1)
    assert.equal(settingsLines()[0].options['DEFAULT.debug'], true)
    await hangUp(server)
    assert.equal(settingsLines().length, 2, 'still at debug after SIGHUP: the flag wins over the file')
    assert.equal(await server.stop(), 0)
    const worker = await run(process.execPath, [BIN, 'worker', '--once', '--debug', '--config-file', conf])
    assert.match(worker.stdout, /"level":20,.*"msg":"Full set of CONF"/)
  })

  it('refuses to start with a log file it cannot open, in one line naming the setting, exit 2', PROCESS_TEST, async (t) => {
    const missing = join(tempDir(t), 'no-such-dir')
    for (const [env, setting] of [[{ SCOPEKEEPER_DEFAULT_LOG_FILE: join(missing, 'api.log') }, 'log_file'], [{ SCOPEKEEPER_DEFAULT_LOG_DIR: missing }, 'log_dir']] as const) {
      await assert.rejects(run(process.execPath, [BIN, 'serve', '--auth', 'noauth', '--database', 'sqlite://'], { env: { ...process.env, ...env } }), (error: any) => {
        assert.equal(error.code, 2)
        assert.match(error.stderr, new RegExp(`^scopekeeper: \\[DEFAULT\\] ${setting}: cannot open ${missing}/[a-z-]+\\.log for writing: ENOENT[^\\n]*\\n$`))
        return true
      }, setting)
    }
  })
})

describe('SIGTERM and SIGINT', () => {
  it('closes an idle keep-alive connection at once rather than waiting for shutdown_timeout', PROCESS_TEST, async (t) => {
    const server = await startServerProcess(t, ['--database', `sqlite:///${join(tempDir(t), 'db.sqlite')}`, '--no-worker'], { SCOPEKEEPER_API_SHUTDOWN_TIMEOUT: '3600' })
    const client = await rawConnection(t, server.url)
    client.socket.write('GET / HTTP/1.1\r\nHost: localhost\r\n\r\n')
    await waitFor(async () => /\r\n\r\n\{"versions":.*\}$/.test(client.received()), 15_000, 'the answer')
    assert.match(client.received(), /^HTTP\/1\.1 200 /)
    // An hour's bound: only closing the idle connection lets it exit before the test's timeout.
    assert.equal(await server.stop('SIGTERM'), 0)
    await client.closed
    assert.ok(!entries(server.lines).some((e) => /still in flight/.test(e.msg)))
  })

  it('lets a request in flight finish within shutdown_timeout and gives it its whole answer', PROCESS_TEST, async (t) => {
    const server = await startServerProcess(t, ['--database', `sqlite:///${join(tempDir(t), 'db.sqlite')}`, '--no-worker'], { SCOPEKEEPER_API_SHUTDOWN_TIMEOUT: '3600' })
    const client = await rawConnection(t, server.url)
    client.socket.write(HEAD + BODY.slice(0, 10))
    // Answered after the half request was read: the server holds it now.
    assert.equal(await status(server.url, '/'), 200)
    const exited = server.stop('SIGTERM')
    await waitFor(async () => entries(server.lines).some((e) => e.msg === 'stopping'), 15_000, 'the stop to begin')
    assert.equal(await refused(server.url), true, 'no new connection is accepted')
    client.socket.write(BODY.slice(10))
    await client.closed
    const [head, body] = client.received().split('\r\n\r\n')
    assert.match(head, /^HTTP\/1\.1 200 /)
    assert.equal(JSON.parse(body).scope_id, 'slow-1')
    assert.equal(await exited, 0)
  })

  it('closes a request whose body never ends once shutdown_timeout has passed, and exits 0', PROCESS_TEST, async (t) => {
    const server = await startServerProcess(t, ['--database', `sqlite:///${join(tempDir(t), 'db.sqlite')}`, '--no-worker'], { SCOPEKEEPER_API_SHUTDOWN_TIMEOUT: '1' })
    const client = await rawConnection(t, server.url)
    client.socket.write(HEAD + BODY.slice(0, 10))
    assert.equal(await status(server.url, '/'), 200)
    assert.equal(await server.stop('SIGINT'), 0)
    await client.closed
    assert.equal(client.received(), '', 'the stalled request got no answer')
    assert.ok(entries(server.lines).some((e) => e.level === 40 && e.msg === 'requests still in flight after [api] shutdown_timeout: closing their connections'))
  })

  it('hands a large reset back after its current batch on PostgreSQL; worker --once finishes it from where it stopped', PROCESS_TEST, async (t) => {
    const SCOPES = 50_000
    let testApp: Awaited<ReturnType<typeof buildTestApp>>
    try {
      testApp = await buildTestApp(t, { engine: 'postgres' })
    } catch (error) {
      if (error instanceof SkippedEngine) return
      throw error
    }
    const { database, url, dir } = testApp
    for (let i = 0; i < SCOPES; i += 5000) {
      await database.db.insertInto('cloudkitty_storage_states').values(Array.from({ length: 5000 }, (_, j) => ({
        identifier: `p${String(i + j).padStart(6, '0')}`, scope_key: 'project_id', fetcher: 'keystone', collector: 'gnocchi',
        last_processed_timestamp: '2020-01-01 00:00:00', active: 1,
      }))).execute()
    }
    const locks = `file://${join(dir, 'locks')}`
    const server = await startServerProcess(t, ['--database', url, '--coordination-url', locks], { SCOPEKEEPER_RESET_BATCH_SIZE: '5', SCOPEKEEPER_RESET_POLL_INTERVAL: '0.05' })
    const put = await fetch(`${server.url}/v2/scope`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ all_scopes: true, state: '2019-07-01T00:00:00Z' }) })
    assert.equal(put.status, 202, await put.text())
    const job = async () => await database.db.selectFrom('scopekeeper_reset_jobs').selectAll().executeTakeFirstOrThrow()
    await waitFor(async () => (await job()).scopes_applied > 0, 30_000, 'the reset to be under way')

    assert.equal(await server.stop('SIGTERM'), 0)
    const handedBack = await job()
    assert.deepEqual([handedBack.status, handedBack.locked_by, handedBack.attempts, handedBack.last_error], ['pending', null, 0, null])
    assert.ok(handedBack.scopes_applied > 0 && handedBack.scopes_applied < handedBack.scopes_total, `stopped mid-way: ${handedBack.scopes_applied} of ${handedBack.scopes_total}`)
    assert.ok(entries(server.lines).some((e) => e.msg.startsWith('reset job handed back') && e.jobId === handedBack.id))

    await run(process.execPath, [BIN, 'worker', '--once', '--database', url, '--coordination-url', locks], { env: { ...process.env, SCOPEKEEPER_LOG_LEVEL: 'warn', SCOPEKEEPER_RESET_BATCH_SIZE: '1000' } })
    const done = await job()
    assert.deepEqual([done.status, done.attempts, done.scopes_total], ['done', 1, SCOPES])
    assert.equal(done.scopes_applied, SCOPES, 'resumed at the saved cursor: no scope applied twice, none skipped')
    const { count } = await database.db.selectFrom('cloudkitty_storage_states').select((eb) => eb.fn.countAll<string>().as('count'))
      .where('last_processed_timestamp', '!=', '2019-07-01 00:00:00').executeTakeFirstOrThrow()
    assert.equal(Number(count), 0, 'every scope holds the reset timestamp')
  })
})
