import assert from 'node:assert/strict'
import { execFile, spawn } from 'node:child_process'
import { once } from 'node:events'
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, unlinkSync, utimesSync } from 'node:fs'
import { builtinModules } from 'node:module'
import { tmpdir } from 'node:os'
import { delimiter, dirname, join, relative, sep } from 'node:path'
import { createInterface } from 'node:readline'
import { after, before, describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { SYSTEMD_ANALYZE, UNIT_NAMES, verifyUnits } from '../helpers/systemd-units.ts'

const exec = promisify(execFile)
const CHECKOUT = fileURLToPath(new URL('../../', import.meta.url))
const manifest = JSON.parse(readFileSync(join(CHECKOUT, 'package.json'), 'utf8')) as {
  version: string, dependencies: Record<string, string>, devDependencies: Record<string, string>
}
// What a checkout has and a package must not need; dist/ is rebuilt by the pack.
const NOT_COPIED = new Set(['node_modules', '.git', 'dist', 'data'])

/**
 * The environment of an operator's shell: none of the npm_* variables that
 * `npm test` sets (a child npm reads npm_config_* as its own settings), and
 * no node_modules/.bin of this checkout on the PATH, so no devDependency is
 * within reach.
 */
function operatorEnv (): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.toLowerCase().startsWith('npm_')))
  env.PATH = (process.env.PATH ?? '').split(delimiter).filter((dir) => !dir.startsWith(join(CHECKOUT, 'node_modules'))).join(delimiter)
  return env
}

async function run (command: string, args: string[], cwd: string): Promise<{ code: number, stdout: string, stderr: string }> {
  try {
    const { stdout, stderr } = await exec(command, args, { cwd, env: operatorEnv(), maxBuffer: 64 * 1024 * 1024 })
    return { code: 0, stdout, stderr }
  } catch (error) {
    const failed = error as { code?: unknown, stdout?: string, stderr?: string }
    if (typeof failed.code !== 'number') throw error
    return { code: failed.code, stdout: failed.stdout ?? '', stderr: failed.stderr ?? '' }
  }
}

/** Every package under `nodeModules`, nested and scoped ones too: its name and manifest. */
function installedPackages (nodeModules: string): Array<{ name: string, manifest: Record<'dependencies' | 'optionalDependencies' | 'peerDependencies', Record<string, string> | undefined> }> {
  const found: ReturnType<typeof installedPackages> = []
  for (const entry of readdirSync(nodeModules, { withFileTypes: true })) {
    if (!entry.isDirectory() || entry.name.startsWith('.')) continue
    const scoped = entry.name.startsWith('@')
    for (const name of scoped ? readdirSync(join(nodeModules, entry.name)).map((n) => `${entry.name}/${n}`) : [entry.name]) {
      found.push({ name, manifest: JSON.parse(readFileSync(join(nodeModules, name, 'package.json'), 'utf8')) })
      const nested = join(nodeModules, name, 'node_modules')
      if (existsSync(nested)) found.push(...installedPackages(nested))
    }
  }
  return found
}

function filesUnder (dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name))
}

/** What each bundle file imports or requires: relative paths, and package names. */
function bundleImports (file: string): { relative: string[], packages: string[] } {
  const text = readFileSync(file, 'utf8')
  const specifiers = [...text.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+|\brequire\d*\s*\(\s*)["']([^"']+)["']/g)].map((m) => m[1])
  return {
    relative: specifiers.filter((s) => s.startsWith('.')),
    packages: specifiers.filter((s) => !s.startsWith('.') && !s.startsWith('node:') && !builtinModules.includes(s))
      .map((s) => s.startsWith('@') ? s.split('/').slice(0, 2).join('/') : s.split('/')[0]),
  }
}

interface Served { url: string, exited: Promise<unknown[]>, child: ReturnType<typeof spawn> }

/** Starts the installed `scopekeeper serve` and waits for its "listening" line. */
async function serve (bin: string, cwd: string, args: string[]): Promise<Served> {
  const child = spawn(bin, ['serve', '--port', '0', ...args], { cwd, env: operatorEnv(), stdio: ['ignore', 'pipe', 'pipe'] })
  const exited = once(child, 'exit')
  let stderr = ''
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`scopekeeper did not start in 30 s; stderr: ${stderr}`)), 30_000)
    createInterface({ input: child.stdout }).on('line', (line) => {
      try {
        const entry = JSON.parse(line)
        if (entry.msg === 'scopekeeper listening') { clearTimeout(timer); resolve(entry.address) }
      } catch { /* not JSON */ }
    })
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`scopekeeper exited with ${code} before listening; stderr: ${stderr}`)) })
  })
  return { url, exited, child }
}

describe('production install: `npm pack`, then `npm install --omit=dev` of the tarball in an empty folder', () => {
  let work: string
  let checkout: string
  let install: string
  let bin: string
  let packed: string[]

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'scopekeeper-pack-'))
    // Packed from a copy: `npm pack` rebuilds dist/, which the other test
    // files' server processes are running from in this checkout.
    checkout = join(work, 'checkout')
    cpSync(CHECKOUT, checkout, { recursive: true, filter: (src) => !NOT_COPIED.has(relative(CHECKOUT, src).split(sep)[0]) })
    symlinkSync(join(CHECKOUT, 'node_modules'), join(checkout, 'node_modules'))
    const pack = await run('npm', ['pack', '--json', '--pack-destination', work], checkout)
    assert.equal(pack.code, 0, pack.stderr)
    const [report] = JSON.parse(pack.stdout) as Array<{ filename: string, files: Array<{ path: string }> }>
    assert.equal(report.filename, `scopekeeper-${manifest.version}.tgz`)
    packed = report.files.map((f) => f.path)

    install = join(work, 'install')
    mkdirSync(install)
    // The local cache that `npm ci` filled; a dependency it lacks comes from the registry.
    const installed = await run('npm', ['install', '--omit=dev', '--prefer-offline', '--no-audit', '--no-fund', join(work, report.filename)], install)
    assert.equal(installed.code, 0, installed.stderr)
    bin = join(install, 'node_modules', '.bin', 'scopekeeper')
  }, { timeout: 600_000 })

  after(() => { if (work !== undefined) rmSync(work, { recursive: true, force: true }) })

  it('packs the bundle, the bin, the systemd units, the alert rules, the README and the lockfile, and no sources', () => {
    // The rules' unit tests ship beside them, for an operator who edits a threshold to re-run `promtool test rules`.
    const alerts = ['prometheus/scopekeeper-alerts.yml', 'prometheus/scopekeeper-alerts.test.yml']
    for (const file of ['README.md', 'package.json', 'bin/scopekeeper.js', 'dist/main.js', 'npm-shrinkwrap.json', ...UNIT_NAMES.map((u) => `systemd/${u}`), ...alerts]) {
      assert.ok(packed.includes(file), `${file} is packed`)
    }
    assert.ok(packed.some((f) => f.startsWith('dist/chunks/')), 'the lazily loaded chunks are packed')
    // The operator console, built by Vite into dist/console (no sources).
    assert.ok(packed.includes('dist/console/index.html'), 'the console page is packed')
    assert.ok(packed.some((f) => /^dist\/console\/assets\/[^/]+\.js$/.test(f)), 'the console script is packed')
    assert.ok(packed.some((f) => /^dist\/console\/assets\/[^/]+\.css$/.test(f)), 'the console style sheet is packed')
    const built = filesUnder(join(checkout, 'dist')).map((f) => relative(checkout, f).split(sep).join('/'))
    assert.deepEqual(packed.filter((f) => f.startsWith('dist/')).sort(), built.sort())
    assert.deepEqual(packed.filter((f) => /^(src|test|bench|scripts)\//.test(f) || f.endsWith('.ts')), [])
    // npm pack writes the shrinkwrap for the tarball only; the checkout keeps its package-lock.json.
    assert.equal(existsSync(join(checkout, 'npm-shrinkwrap.json')), false)
  })

  it('installs every module the bundle imports: its own files, and dependencies only', () => {
    const root = join(install, 'node_modules', 'scopekeeper')
    assert.equal(existsSync(join(root, 'src')), false)
    // The console's files run in the browser, not in Node.
    const files = filesUnder(join(root, 'dist')).filter((f) => !f.startsWith(join(root, 'dist', 'console') + sep))
    assert.ok(files.length > 1)
    const imported = new Set<string>()
    for (const file of files) {
      const { relative: paths, packages } = bundleImports(file)
      for (const path of paths) {
        assert.ok(!path.endsWith('.ts'), `${file} imports a source file: ${path}`)
        assert.ok(existsSync(join(dirname(file), path)), `${file} imports ${path}, which is not installed`)
      }
      for (const name of packages) imported.add(name)
    }
    for (const name of imported) assert.ok(name in manifest.dependencies, `the bundle imports ${name}, which is not a dependency`)
    // The drivers are required by name: the scan has to have seen them.
    for (const name of ['better-sqlite3', 'pg', 'mysql2', 'fastify']) assert.ok(imported.has(name), `the bundle loads ${name}`)
  })

  it('installs no devDependency, and builds the native modules', () => {
    const dev = Object.keys(manifest.devDependencies)
    for (const name of ['tsx', 'esbuild', 'typescript', 'fast-check']) assert.ok(dev.includes(name), `${name} is a devDependency`)
    const installed = installedPackages(join(install, 'node_modules'))
    const names = installed.map((p) => p.name)
    assert.ok(names.includes('fastify') && names.includes('scopekeeper'))
    // A devDependency of ours may come in as a dependency's dependency
    // (mysql2 has @types/node as a peer, which npm installs); the tools that
    // build and test never do.
    const needed = new Set(installed.flatMap((p) => [p.manifest.dependencies, p.manifest.optionalDependencies, p.manifest.peerDependencies].flatMap((deps) => Object.keys(deps ?? {}))))
    assert.deepEqual(names.filter((name) => dev.includes(name) && !needed.has(name)), [])
    assert.deepEqual(names.filter((name) => ['tsx', 'esbuild', 'typescript', 'fast-check', 'autocannon'].includes(name)), [])
    // npm ran their install scripts: no prebuilt binary can be downloaded here, so node-gyp compiled them.
    assert.ok(existsSync(join(install, 'node_modules', 'better-sqlite3', 'build', 'Release', 'better_sqlite3.node')))
    assert.ok(existsSync(join(install, 'node_modules', 'os-lock', 'build', 'Release')))
  })

  it('prints the package version: scopekeeper --version, -V, and npx -- scopekeeper --version', async () => {
    for (const flag of ['--version', '-V']) {
      const shown = await run(bin, [flag], install)
      assert.deepEqual([shown.code, shown.stdout], [0, `${manifest.version}\n`], shown.stderr)
    }
    // Without `--`, npx takes --version as its own and prints npm's.
    const npx = await run('npx', ['--no', '--', 'scopekeeper', '--version'], install)
    assert.deepEqual([npx.code, npx.stdout], [0, `${manifest.version}\n`], npx.stderr)
  })

  it('loads a lazily imported chunk: scopekeeper policy sample', async () => {
    const sample = await run(bin, ['policy', 'sample'], install)
    assert.equal(sample.code, 0, sample.stderr)
    assert.match(sample.stdout, /"scope:reset_state"/)
  })

  it('serves on SQLite: GET / is 200, POST then GET /v2/scope show the scope, /console/ and its assets, SIGTERM exits 0', async (t) => {
    const data = join(work, 'serve')
    mkdirSync(data)
    const server = await serve(bin, install, ['--auth', 'noauth', '--database', `sqlite:///${join(data, 'x.sqlite')}`, '--coordination-url', `file://${join(data, 'locks')}`])
    t.after(() => { if (server.child.exitCode === null && server.child.signalCode === null) server.child.kill('SIGKILL') })
    assert.equal((await fetch(`${server.url}/`)).status, 200)
    const created = await fetch(`${server.url}/v2/scope`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ scope_id: 'p1', last_processed_timestamp: '2020-01-01T00:00:00Z' }),
    })
    assert.equal(created.status, 200, await created.clone().text())
    const listed = await fetch(`${server.url}/v2/scope?scope_id=p1`)
    assert.equal(listed.status, 200)
    const { results } = await listed.json() as { results: Array<{ scope_id: string, last_processed_timestamp: string }> }
    assert.deepEqual(results.map((r) => [r.scope_id, r.last_processed_timestamp]), [['p1', '2020-01-01T00:00:00+00:00']])
    // The operator console is served from the package, with its CSP, and every file its page names.
    const page = await fetch(`${server.url}/console/`)
    assert.equal(page.status, 200)
    assert.match(page.headers.get('content-security-policy') ?? '', /default-src 'self'.*frame-ancestors 'none'/)
    const assets = [...(await page.text()).matchAll(/(?:src|href)="(\/console\/assets\/[^"]+)"/g)].map((m) => m[1])
    assert.ok(assets.some((a) => a.endsWith('.js')) && assets.some((a) => a.endsWith('.css')), `the page names its script and style: ${assets.join(', ')}`)
    for (const asset of assets) {
      const served = await fetch(`${server.url}${asset}`)
      assert.equal(served.status, 200, asset)
      assert.ok((await served.arrayBuffer()).byteLength > 0, asset)
    }
    server.child.kill('SIGTERM')
    const [code, signal] = await server.exited
    assert.deepEqual([code, signal], [0, null])
  })

  it('ships systemd units that verify with the installed binary', async (t) => {
    if (!existsSync(SYSTEMD_ANALYZE)) {
      t.skip(`SKIPPED: ${SYSTEMD_ANALYZE} is absent (Debian's systemd package)`)
      return
    }
    const units = join(work, 'units')
    mkdirSync(units)
    const shipped = UNIT_NAMES.map((name) => join(install, 'node_modules', 'scopekeeper', 'systemd', name))
    assert.equal(await verifyUnits(units, shipped, bin), '')
  })

  // `npm ci --omit=dev` in a checkout installs what the tarball install did,
  // then runs "prepare" without esbuild: the copy, its node_modules now the
  // production ones, stands for it without a second native build.
  describe('a checkout whose node_modules has no devDependency, as `npm ci --omit=dev` leaves it', () => {
    const prepare = async () => await run(process.execPath, [join(checkout, 'scripts', 'prepare-dist.js')], checkout)
    const version = async () => await run(process.execPath, [join(checkout, 'bin', 'scopekeeper.js'), '--version'], checkout)

    before(() => {
      unlinkSync(join(checkout, 'node_modules'))
      symlinkSync(join(install, 'node_modules'), join(checkout, 'node_modules'))
    })

    it('prepare keeps a bundle newer than src/, and says so; the bin runs it', async () => {
      const kept = await prepare()
      assert.equal(kept.code, 0, kept.stderr)
      assert.match(kept.stderr, /esbuild is not installed .*dist\/ was not rebuilt/)
      assert.ok(kept.stderr.includes(`version ${manifest.version}`), kept.stderr)
      assert.deepEqual([(await version()).stdout], [`${manifest.version}\n`])
    })

    it('refuses a bundle older than src/ in one line, and prepare fails with the way out', async () => {
      utimesSync(join(checkout, 'dist', 'main.js'), new Date(0), new Date(0))
      const stale = await version()
      assert.equal(stale.code, 1)
      assert.match(stale.stderr, /^scopekeeper: dist\/main\.js is older than src\/ and tsx \(a devDependency\) is not installed: run `npm ci` in [^\n]* \(it builds dist\/\), or install the package that `npm pack` makes\n$/)
      const failed = await prepare()
      assert.equal(failed.code, 1)
      assert.match(failed.stderr, /is older than src\//)
      assert.match(failed.stderr, /`npm ci --omit=dev` in a checkout needs dist\/ built first/)
    })

    it('without a bundle: the bin says so in one line, prepare fails', async () => {
      rmSync(join(checkout, 'dist'), { recursive: true })
      const missing = await version()
      assert.equal(missing.code, 1)
      assert.match(missing.stderr, /^scopekeeper: dist\/main\.js is not built and tsx \(a devDependency\) is not installed: [^\n]*\n$/)
      assert.equal((await prepare()).code, 1)
    })

    it('a package with neither dist/ nor src/: the bin says so in one line', async () => {
      const broken = join(work, 'broken', 'bin')
      mkdirSync(broken, { recursive: true })
      copyFileSync(join(checkout, 'bin', 'scopekeeper.js'), join(broken, 'scopekeeper.js'))
      const shown = await run(process.execPath, [join(broken, 'scopekeeper.js'), '--version'], work)
      assert.equal(shown.code, 1)
      assert.ok(shown.stderr.startsWith(`scopekeeper: ${join(work, 'broken', 'dist', 'main.js')} is missing and there are no sources to run instead: `), shown.stderr)
      assert.equal(shown.stderr.split('\n').length, 2, 'one line')
    })
  })
})
