// The operator console as Vite builds it (`npm run build` puts it in
// dist/console): small, self-contained, and nothing inline, so that the
// server's Content-Security-Policy can forbid inline script and style.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { gzipSync } from 'node:zlib'
import { tempDir } from '../helpers/build-test-app.ts'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const VITE = join(ROOT, 'node_modules', 'vite', 'bin', 'vite.js')
/** The issue's bound: the console loads fast over a slow link to a controller. */
const MAX_GZIPPED_BYTES = 150 * 1024

function files (dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true }).filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name))
}

describe('the operator console bundle', () => {
  it('is under 150 kB gzipped, with no inline script or style and nothing fetched from elsewhere', async (t) => {
    const out = join(tempDir(t), 'console')
    // The same command as package.json's build script, into a folder of the test's own.
    await promisify(execFile)(process.execPath, [VITE, 'build', 'console', '--base', '/console/', '--outDir', out, '--emptyOutDir', '--logLevel', 'warn'], { cwd: ROOT })
    const built = files(out)
    const sizes = built.map((file) => ({ file: relative(out, file), bytes: gzipSync(readFileSync(file), { level: 9 }).length }))
    const total = sizes.reduce((sum, s) => sum + s.bytes, 0)
    process.stdout.write(`# console bundle: ${total} bytes gzipped (${sizes.map((s) => `${s.file} ${s.bytes}`).join(', ')})\n`)
    assert.ok(total < MAX_GZIPPED_BYTES, `${total} bytes gzipped`)
    assert.ok(sizes.some((s) => s.file.endsWith('.js')) && sizes.some((s) => s.file.endsWith('.css')))

    const html = readFileSync(join(out, 'index.html'), 'utf8')
    for (const script of html.matchAll(/<script\b[^>]*>([\s\S]*?)<\/script>/g)) {
      assert.match(script[0], /\bsrc="\/console\/assets\/[^"]+\.js"/, 'every script is a file of the console')
      assert.equal(script[1].trim(), '', 'no inline script')
    }
    assert.doesNotMatch(html, /<style\b|\sstyle=|\son[a-z]+=/i, 'no inline style or event handler attribute')
    for (const file of built.filter((f) => /\.(html|css)$/.test(f))) {
      assert.doesNotMatch(readFileSync(file, 'utf8'), /(?:href|src)="(?:https?:)?\/\/|url\(\s*["']?(?:https?:)?\/\/|@import/i, `${relative(out, file)} loads nothing from elsewhere`)
    }
  })
})
