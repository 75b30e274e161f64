// package.json "prepare", run by `npm ci`, `npm install` and `npm pack` in a
// checkout: bundles src/ into dist/ with esbuild (`npm run build`). esbuild is
// a devDependency, so `npm ci --omit=dev` has none: the install then stands
// if bin/scopekeeper.js can run the bundle already in dist/ (built before,
// as a Docker build stage or a CI job does), and fails with the way out if
// not, rather than leave an install that cannot start.
import { spawnSync } from 'node:child_process'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('../', import.meta.url))

function run (command, args) {
  return spawnSync(command, args, { cwd: root, stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' })
}

function hasEsbuild () {
  try {
    createRequire(import.meta.url).resolve('esbuild')
    return true
  } catch {
    return false
  }
}

if (hasEsbuild()) {
  // npm sets npm_execpath to its own CLI; `npm` on the PATH is the fallback
  // when this file is run by hand.
  const npm = process.env.npm_execpath
  const build = npm === undefined ? run('npm', ['run', 'build']) : run(process.execPath, [npm, 'run', 'build'])
  process.stdout.write(build.stdout ?? '')
  process.exit(build.status ?? 1)
}

// The bin prints its own one-line reason on stderr when it cannot start.
const check = run(process.execPath, [fileURLToPath(new URL('../bin/scopekeeper.js', import.meta.url)), '--version'])
if (check.status === 0) {
  console.error(`scopekeeper: esbuild is not installed (--omit=dev), so dist/ was not rebuilt; bin/scopekeeper.js runs the bundle already there (version ${check.stdout.trim()})`)
  process.exit(0)
}
console.error('scopekeeper: `npm ci --omit=dev` in a checkout needs dist/ built first: run `npm ci` (it builds dist/), then `npm prune --omit=dev`; or install the package that `npm pack` makes')
process.exit(1)
