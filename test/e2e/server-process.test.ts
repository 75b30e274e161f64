import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { describe, it } from 'node:test'
import { tempDir } from '../helpers/build-test-app.ts'
import { BIN, startServerProcess, waitFor } from '../helpers/server-process.ts'

const run = promisify(execFile)

async function http (base: string, method: string, body?: unknown) {
  const res = await fetch(`${base}/v2/scope${method === 'GET' && typeof body === 'string' ? body : ''}`, {
    method,
    ...(body !== undefined && method !== 'GET' ? { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } } : {}),
  })
  return { status: res.status, body: await res.json() as any }
}

describe('scopekeeper serve, as a process', () => {
  it('applies a reset: the timestamp moves, as GET shows', async (t) => {
    const db = `sqlite:///${join(tempDir(t), 'e2e.sqlite')}`
    const server = await startServerProcess(t, ['--database', db], { SCOPEKEEPER_RESET_POLL_INTERVAL: '0.05' })
    assert.equal((await http(server.url, 'POST', { scope_id: 'p1', last_processed_timestamp: '2020-01-01T00:00:00Z' })).status, 200)
    assert.equal((await http(server.url, 'PUT', { scope_id: 'p1', state: '2019-07-16T08:00:00Z' })).status, 202)
    await waitFor(async () => (await http(server.url, 'GET', '?scope_id=p1')).body.results[0].last_processed_timestamp === '2019-07-16T08:00:00+00:00', 15_000, 'the reset to be applied')
    assert.equal(await server.stop('SIGTERM'), 0)
  })

  it('applies a reset accepted just before a kill -9, once restarted', async (t) => {
    const db = `sqlite:///${join(tempDir(t), 'crash.sqlite')}`
    // --no-worker pins the kill between the 202 and the apply.
    const first = await startServerProcess(t, ['--database', db, '--no-worker'])
    await http(first.url, 'POST', { scope_id: 'p1', last_processed_timestamp: '2020-01-01T00:00:00Z' })
    await http(first.url, 'POST', { scope_id: 'p2', last_processed_timestamp: '2020-01-01T00:00:00Z' })
    assert.equal((await http(first.url, 'PUT', { all_scopes: true, state: '2019-01-01T00:00:00Z' })).status, 202)
    assert.equal(await first.stop('SIGKILL'), 'SIGKILL')

    const second = await startServerProcess(t, ['--database', db], { SCOPEKEEPER_RESET_POLL_INTERVAL: '0.05' })
    await waitFor(async () => (await http(second.url, 'GET', '')).body.results.every((r: any) => r.last_processed_timestamp === '2019-01-01T00:00:00+00:00'),
      15_000, 'the pending reset to be applied after the restart')
    assert.equal(await second.stop('SIGTERM'), 0)
  })

  it('leaves resets to a separate worker with --no-worker; worker --once applies them and exits 0', async (t) => {
    const db = `sqlite:///${join(tempDir(t), 'split.sqlite')}`
    const api = await startServerProcess(t, ['--database', db, '--no-worker'])
    await http(api.url, 'POST', { scope_id: 'p1', last_processed_timestamp: '2020-01-01T00:00:00Z' })
    assert.equal((await http(api.url, 'PUT', { scope_id: 'p1', state: '2019-07-16T08:00:00Z' })).status, 202)
    await new Promise((resolve) => setTimeout(resolve, 300))
    assert.equal((await http(api.url, 'GET', '?scope_id=p1')).body.results[0].last_processed_timestamp, '2020-01-01T00:00:00+00:00')
    await run(process.execPath, [BIN, 'worker', '--once', '--database', db], { env: { ...process.env, SCOPEKEEPER_LOG_LEVEL: 'warn' } })
    assert.equal((await http(api.url, 'GET', '?scope_id=p1')).body.results[0].last_processed_timestamp, '2019-07-16T08:00:00+00:00')
    const progress = await (await fetch(`${api.url}/v2/scope/resets/1`)).json() as any
    assert.equal(progress.status, 'done')
    await api.stop()
  })

  it('stops cleanly on SIGTERM and SIGINT: exit 0, database closed', async (t) => {
    const dir = tempDir(t)
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      const file = join(dir, `${signal}.sqlite`)
      const server = await startServerProcess(t, ['--database', `sqlite:///${file}`])
      const pending = Array.from({ length: 20 }, (_, i) => http(server.url, 'POST', { scope_id: `s${i}` }))
      await Promise.all(pending)
      assert.equal(await server.stop(signal), 0, signal)
      // better-sqlite3 checkpoints and removes the WAL when the last connection closes.
      assert.equal(existsSync(`${file}-wal`), false, signal)
      assert.ok(server.lines.some((l) => l.includes('"stopping"')), signal)
    }
  })

  it('logs one JSON line per request with its request id', async (t) => {
    const server = await startServerProcess(t, ['--database', `sqlite:///${join(tempDir(t), 'log.sqlite')}`])
    const res = await fetch(`${server.url}/v2/scope?scope_id=none`)
    const id = res.headers.get('x-openstack-request-id')
    await server.stop()
    const lines = server.lines.filter((l) => l.includes(String(id)))
    assert.equal(lines.length, 1)
    const entry = JSON.parse(lines[0])
    assert.deepEqual([entry.method, entry.status, entry.path, entry.query], ['GET', 404, '/v2/scope', 'scope_id=none'])
  })

  it('starts three instances at once on a fresh SQLite file: one migrates, all serve', async (t) => {
    const db = `sqlite:///${join(tempDir(t), 'race.sqlite')}`
    const servers = await Promise.all([0, 1, 2].map(async () => await startServerProcess(t, ['--database', db, '--no-worker'])))
    for (const server of servers) assert.equal((await fetch(`${server.url}/healthz`)).status, 200)
    for (const server of servers) assert.equal(await server.stop(), 0)
  })

  it('migrates from the command line, idempotently', async (t) => {
    const db = `sqlite:///${join(tempDir(t), 'migrate.sqlite')}`
    const first = await run(process.execPath, [BIN, 'migrate', '--database', db])
    assert.match(first.stdout, /0001_create_storage_states: Success/)
    assert.match(first.stdout, /0002_create_reset_jobs: Success/)
    const second = await run(process.execPath, [BIN, 'migrate', '--database', db])
    assert.match(second.stdout, /up to date/)
  })

  it('prints the SQL of pending migrations with --dry-run, changing nothing', async (t) => {
    const file = join(tempDir(t), 'dry.sqlite')
    const planned = await run(process.execPath, [BIN, 'migrate', '--dry-run', '--database', `sqlite:///${file}`])
    assert.match(planned.stdout, /-- 0001_create_storage_states\ncreate table if not exists "cloudkitty_storage_states"/)
    assert.match(planned.stdout, /constraint "uq_cloudkitty_storage_states_identifier" unique \("identifier", "scope_key", "collector", "fetcher"\)/)
    assert.match(planned.stdout, /-- 0002_create_reset_jobs\ncreate table "scopekeeper_reset_jobs"/)
    assert.equal(existsSync(file), false, 'the dry run created no database file')
    const again = await run(process.execPath, [BIN, 'migrate', '--dry-run', '--database', `sqlite:///${file}`])
    assert.equal(again.stdout, planned.stdout, 'the dry run applied nothing')
    await run(process.execPath, [BIN, 'migrate', '--database', `sqlite:///${file}`])
    assert.match((await run(process.execPath, [BIN, 'migrate', '--dry-run', '--database', `sqlite:///${file}`])).stdout, /up to date/)
  })

  it('warns at start when noauth listens beyond loopback, since every caller is then an admin', async (t) => {
    const db = `sqlite:///${join(tempDir(t), 'noauth.sqlite')}`
    const warnings = async (host: string) => {
      const server = await startServerProcess(t, ['--database', db, '--no-worker', '--auth', 'noauth', '--host', host])
      assert.equal(await server.stop(), 0)
      return server.lines.flatMap((line) => { try { return [JSON.parse(line)] } catch { return [] } })
        .filter((entry) => entry.level === 40 && /every caller is treated as an admin/.test(entry.msg))
    }
    const [warning, ...more] = await warnings('0.0.0.0')
    assert.equal(more.length, 0)
    assert.equal(warning.host, '0.0.0.0')
    assert.match(warning.msg, /auth_strategy is noauth .*set \[DEFAULT\] auth_strategy = keystone/)
    assert.deepEqual(await warnings('127.0.0.1'), [])
    assert.deepEqual(await warnings('localhost'), [])
  })

  it('reads --config-file and --config-dir in command-line order, --config being --config-file', async (t) => {
    const dir = tempDir(t)
    const url = (name: string) => `sqlite:///${join(dir, `${name}.sqlite`)}`
    mkdirSync(join(dir, 'conf.d'))
    writeFileSync(join(dir, 'conf.d', '20-b.conf'), `[database]\nconnection = ${url('dir')}\n`)
    writeFileSync(join(dir, 'conf.d', '10-a.conf'), `[database]\nconnection = ${url('first-in-dir')}\n`)
    writeFileSync(join(dir, 'main.conf'), `# kolla-style\n[database]\nconnection = ${url('file')}\n`)
    // migrate creates the database that the last source names.
    await run(process.execPath, [BIN, 'migrate', '--config-dir', join(dir, 'conf.d'), '--config-file', join(dir, 'main.conf')])
    assert.deepEqual(['file', 'dir', 'first-in-dir'].map((n) => existsSync(join(dir, `${n}.sqlite`))), [true, false, false])
    await run(process.execPath, [BIN, 'migrate', '--config', join(dir, 'main.conf'), '--config-dir', join(dir, 'conf.d')])
    assert.deepEqual(['file', 'dir', 'first-in-dir'].map((n) => existsSync(join(dir, `${n}.sqlite`))), [true, true, false])
  })

  it('refuses a malformed config line with one line naming the file and the line, with exit 2', async (t) => {
    const file = join(tempDir(t), 'cloudkitty.conf')
    writeFileSync(file, '[DEFAULT]\ndebug = true\nauth_strategy keystone\n')
    for (const command of ['serve', 'worker', 'migrate']) {
      await assert.rejects(run(process.execPath, [BIN, command, '--config-file', file]), (e: any) => {
        assert.equal(e.code, 2, command)
        assert.equal(e.stderr, `scopekeeper: Invalid line 3 in ${file}: no '=' or ':' in "auth_strategy keystone"\n`, command)
        return true
      })
    }
  })

  it('refuses a bad setting at start, naming it and its source, with exit 2', async () => {
    await assert.rejects(run(process.execPath, [BIN, 'serve', '--port', 'http']), (e: any) => {
      assert.equal(e.code, 2)
      assert.match(e.stderr, /\[api\] port \(from flag --port\)/)
      return true
    })
    await assert.rejects(run(process.execPath, [BIN, 'serve'], { env: { ...process.env, SCOPEKEEPER_DEFAULT_AUTH_STRATEGY: 'keystone' } }), (e: any) => {
      assert.equal(e.code, 2)
      assert.match(e.stderr, /auth_strategy .*SCOPEKEEPER_DEFAULT_AUTH_STRATEGY.*noauth/)
      return true
    })
    await assert.rejects(run(process.execPath, [BIN, 'serve', '--bogus']), (e: any) => e.code === 2 && /unknown option/.test(e.stderr))
  })
})
