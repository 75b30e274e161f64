// The console's static routes (src/api/console.ts) on a folder of the
// test's own: what is served, with which headers, and what is not.
import assert from 'node:assert/strict'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import Fastify from 'fastify'
import { CONSOLE_CSP, registerConsole } from '../../../src/api/console.ts'
import { tempDir } from '../../helpers/build-test-app.ts'

async function consoleApp (dir: string | undefined) {
  // The server's router ignores trailing slashes (src/api/server-options.ts).
  const app = Fastify({ routerOptions: { ignoreTrailingSlash: true } })
  registerConsole(app, dir)
  await app.ready()
  return app
}

describe('console routes', () => {
  it('serves the built files with a strict CSP, the page for any other path, and 404 for an unknown asset', async (t) => {
    const dir = tempDir(t)
    mkdirSync(join(dir, 'assets'))
    writeFileSync(join(dir, 'index.html'), '<!doctype html><title>c</title>')
    writeFileSync(join(dir, 'assets', 'index-abc.js'), 'console.log(1)')
    const app = await consoleApp(dir)
    t.after(() => app.close())

    const bare = await app.inject('/console')
    assert.deepEqual([bare.statusCode, bare.headers.location], [308, '/console/'])
    for (const path of ['/console/', '/console/scopes?active=false', '/console/resets/12']) {
      const page = await app.inject(path)
      assert.equal(page.statusCode, 200, path)
      assert.equal(page.headers['content-type'], 'text/html; charset=utf-8')
      assert.equal(page.headers['content-security-policy'], CONSOLE_CSP)
      assert.equal(page.headers['cache-control'], 'no-cache')
      assert.equal(page.body, '<!doctype html><title>c</title>')
    }
    assert.match(CONSOLE_CSP, /^default-src 'self';.*script-src 'self';.*style-src 'self';.*frame-ancestors 'none'$/)
    assert.doesNotMatch(CONSOLE_CSP, /unsafe-inline|unsafe-eval|\*/)

    const script = await app.inject('/console/assets/index-abc.js')
    assert.equal(script.statusCode, 200)
    assert.equal(script.headers['content-type'], 'text/javascript; charset=utf-8')
    assert.equal(script.headers['cache-control'], 'public, max-age=31536000, immutable')
    assert.equal(script.headers['x-content-type-options'], 'nosniff')
    for (const path of ['/console/assets/missing.js', '/console/assets/../index.html', '/console/assets/%2e%2e/%2e%2e/package.json']) {
      const missing = await app.inject(path)
      assert.ok([404].includes(missing.statusCode) || missing.body === '<!doctype html><title>c</title>', `${path}: ${missing.statusCode} ${missing.body}`)
      assert.doesNotMatch(missing.body, /"name"/, 'never a file outside the console')
    }
  })

  it('says how to build it when dist/console is missing', async (t) => {
    const app = await consoleApp(undefined)
    t.after(() => app.close())
    const page = await app.inject('/console/')
    assert.equal(page.statusCode, 404)
    assert.match(JSON.parse(page.body).message, /not built: run `npm run build`/)
    assert.equal(page.headers['content-security-policy'], CONSOLE_CSP)
  })
})
