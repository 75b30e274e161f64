#!/usr/bin/env node
// Runs the bundle `npm run build` leaves in dist/ (built by `npm ci`), or the
// TypeScript sources through tsx when there is no bundle or a source file is
// newer than it: an edited checkout never runs stale code. The bundle starts
// in a fraction of the time and leaves tsx's loader thread (about 40 MB) out
// of the server's memory. An installed package (`npm pack`'s tarball) has
// dist/ and no src/, and no devDependencies: it always runs the bundle.
import { existsSync, readdirSync, statSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { setFlagsFromString } from 'node:v8'

// V8 lets the old generation grow up to four times what survived the last
// full GC before collecting again; under a burst of short-lived objects (a
// reset applying 250 000 scopes/s after a load of list pages) that took the
// server from 140 to 240 MB. Growing by half at most keeps it near 170 MB
// for no measurable loss of throughput. Read at every GC, so it applies from
// here on.
setFlagsFromString('--heap-growing-percent=50')

const root = new URL('../', import.meta.url)
const bundle = new URL('dist/main.js', root)
const sources = new URL('src/', root)

function newestSource (dir) {
  let newest = 0
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = new URL(entry.name + (entry.isDirectory() ? '/' : ''), dir)
    newest = Math.max(newest, entry.isDirectory() ? newestSource(path) : statSync(path).mtimeMs)
  }
  return newest
}

function bundleTime () {
  try {
    return statSync(bundle).mtimeMs
  } catch {
    return undefined
  }
}

// One line, no stack: what is missing and the command that fixes it.
function fail (message) {
  console.error(`scopekeeper: ${message}`)
  process.exit(1)
}

const built = bundleTime()
const hasSources = existsSync(sources)
if (built !== undefined && (!hasSources || built >= newestSource(sources))) {
  await import(bundle.href)
} else if (!hasSources) {
  fail(`${fileURLToPath(bundle)} is missing and there are no sources to run instead: reinstall the package that \`npm pack\` makes`)
} else {
  let tsx
  try {
    tsx = await import('tsx/esm/api')
  } catch (error) {
    // tsx is a devDependency: `npm ci --omit=dev` leaves it out.
    if (error?.code !== 'ERR_MODULE_NOT_FOUND') throw error
    const why = built === undefined ? 'dist/main.js is not built' : 'dist/main.js is older than src/'
    fail(`${why} and tsx (a devDependency) is not installed: run \`npm ci\` in ${fileURLToPath(root)} (it builds dist/), or install the package that \`npm pack\` makes`)
  }
  tsx.register()
  await import('../src/cli/main.ts')
}
