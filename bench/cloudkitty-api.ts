/**
 * The real CloudKitty 17.0.0 v2 API (Debian's python3-cloudkitty) beside
 * scopekeeper, on copies of one seeded SQLite database created by
 * CloudKitty's own migrations, driven by the same autocannon requests in the
 * same run (issue 18, section 1). Reached through `npm run bench -- --against cloudkitty`.
 *
 * Adapted from the recipe in ../shared/reference/cloudkitty-api/ (start.sh,
 * etc/*.in, lib/ck_seed.py), which is not used at run time: the config files
 * are rendered here, as Debian's cloudkitty-api 17.0.0-3 ships them (uwsgi,
 * 2 processes, `Connection: close` on every response, noauth), with the
 * oslo.messaging fake driver and `[storage] version = 2` (CloudKitty only
 * mounts /v2 then; its influxdb client is never contacted by /v2/scope).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import type { EventEmitter } from 'node:events'
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import autocannon from 'autocannon'
import Database from 'better-sqlite3'

const REQUIRED = ['/usr/bin/cloudkitty-dbsync', '/usr/bin/cloudkitty-storage-init', '/usr/bin/cloudkitty-api', '/usr/bin/uwsgi_python3']
const WORKERS = 2

export interface Options { sizes: number[], duration: number, connections: number, freePort: () => Promise<number>, bin: string }

/** The missing pieces, as one line, or undefined when CloudKitty can run here. */
export function cloudKittyMissing (): string | undefined {
  const missing = REQUIRED.filter((f) => !existsSync(f))
  if (missing.length === 0) return undefined
  return `--against cloudkitty needs Debian's python3-cloudkitty and uwsgi-plugin-python3 (missing ${missing.join(', ')})`
}

function render (dir: string, port: number): void {
  // cloudkitty.conf: CloudKitty renders timestamps in the process's zone, hence TZ=UTC at spawn.
  writeFileSync(join(dir, 'cloudkitty.conf'), [
    '[DEFAULT]', 'auth_strategy = noauth', 'transport_url = fake:/', `api_paste_config = ${dir}/api_paste.ini`, 'debug = false', `log_file = ${dir}/cloudkitty-api.log`,
    '[api]', `port = ${port}`,
    '[database]', `connection = sqlite:///${dir}/ck.db`,
    '[storage]', 'version = 2', 'backend = influxdb',
    '[storage_influxdb]', 'host = 127.0.0.1', 'port = 8086',
    '[oslo_policy]', `policy_file = ${dir}/policy.yaml`, '',
  ].join('\n'))
  // cloudkitty-storage-init first calls the storage backend's init(), which for influxdb needs a live InfluxDB;
  // with v1 sqlalchemy it only creates v1 tables, then runs the storage_state migrations (cloudkitty_storage_states).
  writeFileSync(join(dir, 'storage-init.conf'), '[storage]\nversion = 1\nbackend = sqlalchemy\n')
  // Debian cloudkitty-common 17.0.0-3 /usr/share/cloudkitty-common/api_paste.ini, noauth pipeline.
  writeFileSync(join(dir, 'api_paste.ini'), [
    '[pipeline:cloudkitty+noauth]', 'pipeline = cors healthcheck http_proxy_to_wsgi request_id ck_api',
    '[app:ck_api]', 'paste.app_factory = cloudkitty.api.app:app_factory',
    '[filter:request_id]', 'paste.filter_factory = oslo_middleware:RequestId.factory',
    '[filter:cors]', 'paste.filter_factory = oslo_middleware.cors:filter_factory', 'oslo_config_project = cloudkitty',
    '[filter:healthcheck]', 'paste.filter_factory = oslo_middleware:Healthcheck.factory', 'backends = disable_by_file', `disable_by_file_path = ${dir}/healthcheck_disable`,
    '[filter:http_proxy_to_wsgi]', 'paste.filter_factory = oslo_middleware.http_proxy_to_wsgi:HTTPProxyToWSGI.factory', 'oslo_config_project = cloudkitty', '',
  ].join('\n'))
  // Debian cloudkitty-api 17.0.0-3 /etc/cloudkitty/cloudkitty-api-uwsgi.ini, with 2 processes of 1 thread on loopback.
  writeFileSync(join(dir, 'uwsgi.ini'), [
    '[uwsgi]', 'buffer-size = 65535', 'master = true', 'thunder-lock = true', 'plugins = python3', 'lazy-apps = true', 'no-orphans = true',
    'die-on-term = true', 'enable-threads = true', `processes = ${WORKERS}`, 'threads = 1', 'listen = 100', `http-socket = 127.0.0.1:${port}`,
    'add-header = Connection: close', 'name = cloudkitty-api', 'wsgi-file = /usr/bin/cloudkitty-api', `pyargv = --config-file ${dir}/cloudkitty.conf`,
    `logto = ${dir}/uwsgi.log`, '',
  ].join('\n'))
  writeFileSync(join(dir, 'policy.yaml'), '')
}

function run (dir: string, args: string[]): void {
  const result = spawnSync('/usr/bin/python3', args, { cwd: dir, env: { ...process.env, TZ: 'UTC' }, encoding: 'utf8' })
  if (result.status !== 0) throw new Error(`${args.join(' ')} failed: ${result.stderr.slice(-2000)}`)
}

/**
 * The same rows as run.ts's seed (s0000000…), written in the textual forms
 * SQLAlchemy writes on SQLite ('YYYY-MM-DD HH:MM:SS.ffffff', 1/0), with
 * scope_activation_toggle_date left to its server default, as an INSERT
 * through CloudKitty's StateManager does (lib/ck_seed.py of the recipe).
 */
function seed (file: string, count: number): void {
  const db = new Database(file)
  const insert = db.prepare('INSERT INTO cloudkitty_storage_states (identifier, scope_key, fetcher, collector, last_processed_timestamp, active) VALUES (?, ?, ?, ?, ?, ?)')
  const base = Date.UTC(2020, 0, 1)
  db.transaction(() => {
    for (let n = 0; n < count; n++) {
      const at = new Date(base + (n % 8760) * 3_600_000).toISOString().slice(0, 19).replace('T', ' ') + '.000000'
      insert.run(`s${String(n).padStart(7, '0')}`, n % 10 === 0 ? 'domain_id' : 'project_id', ['keystone', 'gnocchi', 'prometheus'][n % 3], `c${n % 6}`, at, n % 7 === 0 ? 0 : 1)
    }
  })()
  db.close()
}

async function waitFor (base: string, ready: () => boolean, child: ChildProcess, what: string): Promise<void> {
  for (let i = 0; i < 900; i++) {
    if (child.exitCode !== null) throw new Error(`${what} exited early (${child.exitCode})`)
    try {
      const res = await fetch(`${base}/v2/scope?limit=1`)
      await res.arrayBuffer()
      if (res.ok && ready()) return
    } catch {}
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  throw new Error(`${what} did not answer within 90 s`)
}

async function stop (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.pid === undefined) return
  const exited = new Promise((resolve) => child.once('exit', resolve))
  child.kill('SIGTERM')
  const timer = setTimeout(() => { try { process.kill(-child.pid!, 'SIGKILL') } catch {} }, 30_000)
  await exited
  clearTimeout(timer)
  // uwsgi's workers leave with their master (no-orphans); its own process group catches a straggler.
  try { process.kill(-child.pid, 'SIGKILL') } catch {}
}

/**
 * autocannon writes the next request on a socket the server announced it
 * closes (CloudKitty as Debian ships it answers `Connection: close`); the
 * request is lost, its stale start time is matched with a later response and
 * the latencies grow without bound. Like wrk, open a new connection instead:
 * its own reset drops the stale request. A no-op for a keep-alive server, so
 * both servers are driven by the same client.
 */
interface ClientInternals { _doRequest: () => void, _resetConnection: () => void }
function honourConnectionClose (client: autocannon.Client): void {
  const internals = client as unknown as ClientInternals
  let closing = false
  // The event carries llhttp's parsed head (a flat name/value array), not what @types/autocannon says.
  ;(client as unknown as EventEmitter).on('headers', (headers: { headers: string[] }) => {
    for (let i = 0; i < headers.headers.length; i += 2) if (headers.headers[i].toLowerCase() === 'connection' && /close/i.test(headers.headers[i + 1])) closing = true
  })
  const doRequest = internals._doRequest.bind(client)
  internals._doRequest = () => {
    if (!closing) { doRequest(); return }
    closing = false
    internals._resetConnection()
  }
}

interface Figures { rps: number, p50: number, p99: number, non2xx: number, errors: number }

function merge (results: autocannon.Result[]): Figures {
  const mean = (f: (r: autocannon.Result) => number) => results.reduce((s, r) => s + f(r), 0) / results.length
  return {
    rps: Math.round(mean((r) => r.requests.average)),
    p50: Math.round(mean((r) => r.latency.p50) * 10) / 10,
    p99: Math.round(mean((r) => r.latency.p99) * 10) / 10,
    non2xx: results.reduce((s, r) => s + r.non2xx, 0),
    errors: results.reduce((s, r) => s + r.errors + r.timeouts, 0),
  }
}

interface Row { scenario: string, scopes: number, sk: Figures, ck: Figures }

export async function runAgainstCloudKitty (options: Options): Promise<void> {
  const missing = cloudKittyMissing()
  if (missing !== undefined) { console.error(missing); process.exit(1) }
  const rows: Row[] = []
  for (const size of options.sizes) {
    const dir = mkdtempSync(join(tmpdir(), 'sk-bench-ck-'))
    const children: ChildProcess[] = []
    try {
      const ckPort = await options.freePort()
      render(dir, ckPort)
      run(dir, ['/usr/bin/cloudkitty-dbsync', '--config-file', join(dir, 'cloudkitty.conf'), 'upgrade'])
      run(dir, ['/usr/bin/cloudkitty-storage-init', '--config-file', join(dir, 'cloudkitty.conf'), '--config-file', join(dir, 'storage-init.conf')])
      const started = Date.now()
      seed(join(dir, 'ck.db'), size)
      // scopekeeper serves a copy of the same file: its migrations add only its own tables and indexes.
      copyFileSync(join(dir, 'ck.db'), join(dir, 'sk.sqlite'))
      console.error(`cloudkitty: migrated and seeded ${size} scopes in ${((Date.now() - started) / 1000).toFixed(1)} s (${dir})`)

      const ck = spawn('/usr/bin/uwsgi_python3', ['--ini', join(dir, 'uwsgi.ini')], { cwd: dir, detached: true, stdio: 'ignore', env: { ...process.env, TZ: 'UTC' } })
      children.push(ck)
      const skPort = await options.freePort()
      const sk = spawn(process.execPath, [options.bin, 'serve', '--auth', 'noauth', '--port', String(skPort), '--database', `sqlite:///${join(dir, 'sk.sqlite')}`], {
        stdio: 'ignore', env: { ...process.env, SCOPEKEEPER_ORCHESTRATOR_COORDINATION_URL: `file://${join(dir, 'locks')}` },
      })
      children.push(sk)
      const ckBase = `http://127.0.0.1:${ckPort}`
      const skBase = `http://127.0.0.1:${skPort}`
      // Every uwsgi worker loads the app lazily: wait for both, so that the load starts warm.
      const uwsgiReady = () => (readFileSync(join(dir, 'uwsgi.log'), { encoding: 'utf8', flag: 'a+' }).match(/WSGI app 0 \(mountpoint=''\) ready/g) ?? []).length >= WORKERS
      await waitFor(ckBase, uwsgiReady, ck, 'CloudKitty (uwsgi)')
      await waitFor(skBase, () => true, sk, 'scopekeeper')
      for (let i = 0; i < WORKERS * 4; i++) await (await fetch(`${ckBase}/v2/scope`)).arrayBuffer()

      const scenario = async (name: string, path: string): Promise<void> => {
        const [a, b] = await Promise.all([fetch(`${skBase}${path}`).then(async (r) => await r.json()), fetch(`${ckBase}${path}`).then(async (r) => await r.json())])
        // CloudKitty's offset paging has no ORDER BY (storage_state/__init__.py StateManager.get_all), so compare the pages as sets.
        const ids = (body: { results?: Array<{ scope_id: string }> }) => (body.results ?? []).map((r) => r.scope_id).sort().join(',')
        if (ids(a) !== ids(b)) console.error(`${name}: the servers answer different scopes (scopekeeper ${a.results?.length}, CloudKitty ${b.results?.length})`)
        // A B B A, half the duration each: neither server always runs first or on a warmer machine.
        const half = Math.max(1, options.duration / 2)
        const load = async (base: string) => await autocannon({ url: `${base}${path}`, connections: options.connections, duration: half, setupClient: honourConnectionClose })
        const skRuns: autocannon.Result[] = []; const ckRuns: autocannon.Result[] = []
        skRuns.push(await load(skBase)); ckRuns.push(await load(ckBase)); ckRuns.push(await load(ckBase)); skRuns.push(await load(skBase))
        const row = { scenario: name, scopes: size, sk: merge(skRuns), ck: merge(ckRuns) }
        for (const [who, f] of [['scopekeeper', row.sk], ['CloudKitty', row.ck]] as const) if (f.non2xx + f.errors > 0) console.error(`${name}: ${who} gave ${f.non2xx} non-2xx answers and ${f.errors} errors`)
        rows.push(row)
        console.error(`${name} at ${size}: scopekeeper ${row.sk.rps} req/s, CloudKitty ${row.ck.rps} req/s`)
      }
      await scenario('GET list page (limit=100)', '/v2/scope?limit=100')
      await scenario('GET single scope_id', `/v2/scope?scope_id=s${String(Math.floor(size / 2)).padStart(7, '0')}`)
      await scenario('GET deep page (offset=N-100)', `/v2/scope?limit=100&offset=${size - 100}`)
    } finally {
      for (const child of children.reverse()) await stop(child)
      rmSync(dir, { recursive: true, force: true })
    }
  }
  console.log(`\n## scopekeeper against CloudKitty 17.0.0 (Debian, uwsgi, ${WORKERS} processes, noauth), SQLite, ${options.connections} connections, ${options.duration} s per server per scenario (A B B A), load generator on the same machine\n`)
  console.log('| scenario | scopes | scopekeeper req/s | p50 ms | p99 ms | CloudKitty req/s | p50 ms | p99 ms | ratio |')
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|')
  for (const r of rows) console.log(`| ${r.scenario} | ${r.scopes} | ${r.sk.rps} | ${r.sk.p50} | ${r.sk.p99} | ${r.ck.rps} | ${r.ck.p50} | ${r.ck.p99} | ${r.ck.rps === 0 ? '∞' : (r.sk.rps / r.ck.rps).toFixed(1) + '×'} |`)
}
