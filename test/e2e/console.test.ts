// The operator console in a real browser: Debian's chromium, driven headless
// by playwright-core, against a real `scopekeeper serve` on SQLite in noauth.
// Each page is checked by axe-core (no serious or critical violation) and
// photographed into test-artifacts/console/.
import assert from 'node:assert/strict'
import { existsSync, mkdirSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { describe, it, type TestContext } from 'node:test'
import { fileURLToPath } from 'node:url'
import Database from 'better-sqlite3'
import { chromium, type BrowserContext, type Page } from 'playwright-core'
import { tempDir } from '../helpers/build-test-app.ts'
import { deferCleanup } from '../helpers/cleanup.ts'
import { keystoneSkipReason, startKeystone, type KeystoneUser } from '../helpers/keystone-server.ts'
import { startServerProcess, type ServerProcess } from '../helpers/server-process.ts'

const CHROMIUM = '/usr/bin/chromium'
const ARTIFACTS = fileURLToPath(new URL('../../test-artifacts/console/', import.meta.url))
const AXE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8')
// The browser logs every 4xx it is answered; the console expects a 404 for
// an empty list and the 412 of a stale If-Match. A CSP violation or a
// script error is anything else.
const EXPECTED_ANSWER = /^Failed to load resource: the server responded with a status of (404|412) /

/** The page's script errors and console errors, less the answers `expected` matches: the test wants none. */
function scriptErrors (page: Page, expected: RegExp): string[] {
  const errors: string[] = []
  page.on('pageerror', (error) => errors.push(error.message))
  page.on('console', (message) => { if (message.type() === 'error' && !expected.test(message.text())) errors.push(message.text()) })
  return errors
}
const AXE_PATH = '/console/assets/axe-for-tests.js'
const CONSOLE_BUILT = existsSync(fileURLToPath(new URL('../../dist/console/index.html', import.meta.url)))

/** Why the browser tests cannot run here (and a loud line), or undefined; under CI=true, a failure instead. */
function chromiumSkipReason (): string | undefined {
  const missing = !existsSync(CHROMIUM)
    ? `${CHROMIUM} is missing; install Debian's chromium with scripts/setup-system-packages.sh (as root)`
    : !CONSOLE_BUILT ? 'dist/console is not built; run `npm run build`' : undefined
  if (missing === undefined) return undefined
  if (process.env.CI === 'true') throw new Error(`The console's browser tests are required when CI=true: ${missing}`)
  process.stderr.write(`\n!!! SKIPPED console browser tests: ${missing}\n`)
  return `SKIPPED: ${missing}`
}

async function launch (t: TestContext): Promise<BrowserContext> {
  const context = await chromium.launchPersistentContext(join(tempDir(t), 'chromium-profile'), {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
    viewport: { width: 1280, height: 800 },
  })
  deferCleanup(t, async () => { await context.close() })
  await context.route(`**${AXE_PATH}`, async (route) => { await route.fulfill({ body: AXE, contentType: 'text/javascript' }) })
  return context
}

interface AxeViolation { id: string, impact: string | null, help: string, nodes: Array<{ target: unknown[] }> }

/** axe-core on the page as it stands: no serious or critical violation. */
async function checkAccessibility (page: Page, what: string): Promise<void> {
  // Loaded as a file of the page's own origin: the console's CSP forbids
  // inline script, and stays on while axe runs.
  if (!(await page.evaluate(() => 'axe' in window))) await page.addScriptTag({ url: `${new URL(page.url()).origin}${AXE_PATH}` })
  const violations = await page.evaluate(async () => {
    const axe = (window as unknown as { axe: { run: (context: Document, options: object) => Promise<{ violations: AxeViolation[] }> } }).axe
    return (await axe.run(document, { resultTypes: ['violations'] })).violations
  })
  const serious = violations.filter((v) => v.impact === 'serious' || v.impact === 'critical')
  assert.deepEqual(serious.map((v) => `${v.id} (${v.impact}): ${v.help} at ${JSON.stringify(v.nodes.map((n) => n.target))}`), [], `axe on ${what}`)
}

async function shoot (page: Page, name: string, { fullPage = true } = {}): Promise<void> {
  mkdirSync(ARTIFACTS, { recursive: true })
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage })
}

async function ready (page: Page, name: string): Promise<void> {
  await page.waitForSelector(`body[data-ready="${name}"]`)
}

async function api (server: ServerProcess, method: string, path: string, body?: unknown): Promise<{ status: number, body: any, headers: Headers }> {
  const response = await fetch(`${server.url}${path}`, {
    method, headers: body === undefined ? {} : { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body),
  })
  const text = await response.text()
  return { status: response.status, body: text === '' ? undefined : JSON.parse(text), headers: response.headers }
}

/** `count` scopes written straight to the table, with lags spread over the buckets. */
function seed (file: string, count: number, now: Date): void {
  const raw = new Database(file)
  try {
    raw.pragma('busy_timeout = 10000')
    const insert = raw.prepare('INSERT INTO cloudkitty_storage_states (identifier, scope_key, fetcher, collector, last_processed_timestamp, scope_activation_toggle_date, active) VALUES (?, ?, ?, ?, ?, ?, ?)')
    const format = (at: Date) => `${at.toISOString().replace('T', ' ').replace('Z', '')}000`
    const hour = Math.floor(now.getTime() / 3_600_000) * 3_600_000
    const lags = [1, 1, 1, 2, 2, 3, 4, 8, 30]
    raw.transaction(() => {
      for (let i = 0; i < count; i++) {
        const lag = lags[i % lags.length]
        insert.run(`seed-${String(i).padStart(5, '0')}`, 'project_id', 'keystone', i % 3 === 0 ? 'prometheus' : 'gnocchi',
          format(new Date(hour - lag * 3_600_000)), format(new Date(hour - 86_400_000)), i % 10 === 0 ? 0 : 1)
      }
    })()
  } finally {
    raw.close()
  }
}

describe('operator console in a real Chromium (noauth, SQLite)', () => {
  const skip = chromiumSkipReason()

  it('creates a trial scope, filters, activates, shows history, resets with preview to done, and survives a 412', { skip, timeout: 240_000 }, async (t) => {
    const server = await startServerProcess(t, ['--database', `sqlite:///${join(tempDir(t), 'console.sqlite')}`])
    const context = await launch(t)
    const page = await context.newPage()
    const errors = scriptErrors(page, EXPECTED_ANSWER)

    await t.test('1. create a trial scope: the form defaults to inactive, and previews first', async () => {
      await page.goto(`${server.url}/console/new`)
      await ready(page, 'new')
      await checkAccessibility(page, 'new scope')
      assert.equal(await page.getByLabel(/^active/).isChecked(), false, 'a trial project starts inactive')
      await page.getByLabel('scope_id (project id)').fill('trial-0001')
      await page.getByRole('button', { name: 'Preview…' }).click()
      const dialog = page.locator('dialog[open]')
      await dialog.getByText('The new scope would be:').waitFor()
      assert.equal((await api(server, 'GET', '/v2/scope?scope_id=trial-0001')).status, 404, 'the preview created nothing')
      await checkAccessibility(page, 'create preview')
      await dialog.getByLabel(/^Reason/).fill('trial account')
      await dialog.getByRole('button', { name: 'Confirm' }).click()
      await page.getByRole('heading', { name: 'Scope trial-0001' }).waitFor()
      const [scope] = (await api(server, 'GET', '/v2/scope?scope_id=trial-0001')).body.results
      assert.equal(scope.active, false)
    })

    await t.test('2. filter for it: the URL carries the filters', async () => {
      await api(server, 'POST', '/v2/scope', { scope_id: 'other-0002' })
      await page.goto(`${server.url}/console/scopes`)
      await ready(page, 'scopes')
      await page.getByLabel('scope_id').fill('trial-0001')
      await page.getByLabel('active', { exact: true }).selectOption('false')
      await page.getByRole('button', { name: 'Filter', exact: true }).click()
      await page.waitForURL(/\/console\/scopes\?scope_id=trial-0001&active=false/)
      await ready(page, 'scopes')
      const rows = page.locator('table[aria-label="Scope states"] tbody tr')
      assert.equal(await rows.count(), 1)
      assert.match(await rows.first().innerText(), /trial-0001[\s\S]*inactive/)
      // The link is shareable: loaded afresh, it shows the same.
      await page.reload()
      await ready(page, 'scopes')
      assert.equal(await page.getByLabel('scope_id').inputValue(), 'trial-0001')
      assert.equal(await rows.count(), 1)
      await checkAccessibility(page, 'scopes table')
      // Keyboard: focus the row, Enter opens the scope.
      await rows.first().focus()
      await page.keyboard.press('Enter')
      await ready(page, 'scope')
    })

    await t.test('3. activate it with PATCH If-Match, after its dry run; 4. see its history', async () => {
      await page.getByRole('heading', { name: 'Scope trial-0001' }).waitFor()
      assert.match(await page.locator('#etag').innerText(), /^"/)
      await page.getByRole('button', { name: 'Activate…' }).click()
      const dialog = page.locator('dialog[open]')
      await dialog.getByText('The scope would be:').waitFor()
      assert.match(await dialog.innerText(), /active\s+true/)
      await dialog.getByLabel(/^Reason/).fill('trial became paying')
      await dialog.getByRole('button', { name: 'Confirm' }).click()
      await page.getByRole('button', { name: 'Deactivate…' }).waitFor()
      const history = page.locator('table[aria-label="History, newest first"] tbody tr')
      assert.equal(await history.count(), 2)
      assert.match(await history.nth(0).innerText(), /activated[\s\S]*noauth[\s\S]*trial became paying[\s\S]*active: false → true/)
      assert.match(await history.nth(1).innerText(), /created[\s\S]*trial account/)
      await checkAccessibility(page, 'one scope')
      await shoot(page, 'scope')
    })

    await t.test('a PATCH on a scope changed meanwhile: 412, "changed by someone else" with its new values', async () => {
      const changed = await api(server, 'PATCH', '/v2/scope', { scope_id: 'trial-0001', collector: 'prometheus' })
      assert.equal(changed.status, 200)
      await page.getByRole('button', { name: 'Deactivate…' }).click()
      const dialog = page.locator('dialog[open]')
      await dialog.getByText('Changed by someone else').waitFor()
      assert.match(await dialog.innerText(), /412[\s\S]*collector\s+prometheus/)
      await shoot(page, 'conflict')
      await dialog.getByRole('button', { name: 'Cancel' }).click()
      assert.equal((await api(server, 'GET', '/v2/scope?scope_id=trial-0001')).body.results[0].active, true, 'nothing changed')
    })

    await t.test('patch the fetcher: previewed, then PATCH with If-Match; the history says what changed', async () => {
      await page.goto(`${server.url}/console/scope?scope_id=trial-0001`)
      await ready(page, 'scope')
      await page.getByLabel('fetcher', { exact: true }).fill('gnocchi')
      await page.getByRole('button', { name: 'Preview change…' }).click()
      const dialog = page.locator('dialog[open]')
      await dialog.getByText('The scope would be:').waitFor()
      assert.match(await dialog.innerText(), /fetcher\s+gnocchi/)
      assert.equal((await api(server, 'GET', '/v2/scope?scope_id=trial-0001')).body.results[0].fetcher, 'keystone', 'the preview changed nothing')
      await dialog.getByRole('button', { name: 'Confirm' }).click()
      await page.locator('dialog[open]').waitFor({ state: 'detached' })
      await ready(page, 'scope')
      assert.equal((await api(server, 'GET', '/v2/scope?scope_id=trial-0001')).body.results[0].fetcher, 'gnocchi')
      assert.match(await page.locator('table[aria-label="History, newest first"] tbody tr').first().innerText(), /patched[\s\S]*fetcher: keystone → gnocchi/)
    })

    await t.test('5. reset a filtered set with preview and confirmation; 6. its progress reaches done', async () => {
      for (let i = 0; i < 5; i++) await api(server, 'POST', '/v2/scope', { scope_id: `batch-${i}`, collector: 'c-reset', active: i !== 0 })
      await page.goto(`${server.url}/console/scopes?collector=c-reset`)
      await ready(page, 'scopes')
      assert.equal(await page.locator('table[aria-label="Scope states"] tbody tr').count(), 5)
      await page.getByLabel('Reset to (UTC)').fill('2026-11-01T00:00:00Z')
      await page.getByRole('button', { name: 'Preview reset of the filtered…' }).click()
      const dialog = page.locator('dialog[open]')
      await dialog.getByText(/would be reset/).waitFor()
      const preview = await dialog.innerText()
      assert.match(preview, /5 scopes \(1 of them inactive\) would be reset to 2026-11-01 00:00:00 UTC/)
      assert.match(preview, /Rated data from 2026-11-01 01:00:00 UTC on would be discarded/)
      assert.deepEqual((await api(server, 'GET', '/v2/scope/resets')).body.results, [], 'the preview queued no job')
      await checkAccessibility(page, 'reset preview')
      await dialog.getByRole('button', { name: 'Confirm' }).click()
      await page.waitForURL(/\/console\/resets\/\d+$/)
      await page.locator('#job-status', { hasText: 'done' }).waitFor({ timeout: 60_000 })
      assert.match(await page.getByText(/of 5 scopes reset/).innerText(), /^5 of 5 scopes reset to 2026-11-01 00:00:00 UTC/)
      await checkAccessibility(page, 'reset job')
      await shoot(page, 'reset-done')
      const { body } = await api(server, 'GET', '/v2/scope?collector=c-reset')
      assert.deepEqual(body.results.map((s: { last_processed_timestamp: string }) => s.last_processed_timestamp), Array(5).fill('2026-11-01T00:00:00+00:00'))
    })

    await t.test('the overview links each figure to its list; bulk deactivation by filter previews first', async () => {
      await page.goto(`${server.url}/console/`)
      await ready(page, 'overview')
      await checkAccessibility(page, 'overview')
      await page.getByRole('link', { name: /inactive/ }).first().click()
      await page.waitForURL(/\/console\/scopes\?active=false$/)
      await ready(page, 'scopes')
      assert.equal(await page.locator('table[aria-label="Scope states"] tbody tr').count(), 1, 'batch-0 is the one inactive scope')
      await page.goto(`${server.url}/console/scopes?collector=c-reset`)
      await ready(page, 'scopes')
      await page.getByRole('button', { name: 'Deactivate filtered…' }).click()
      const dialog = page.locator('dialog[open]')
      await dialog.getByText('5 scopes match; 4 would switch to inactive.').waitFor()
      await dialog.getByRole('button', { name: 'Confirm' }).click()
      await page.locator('dialog[open]').waitFor({ state: 'detached' })
      await ready(page, 'scopes')
      assert.equal((await api(server, 'GET', '/v2/scope?collector=c-reset&active=true')).status, 404, 'all five are inactive now')
    })

    assert.deepEqual(errors, [], 'no script error and no CSP violation in the browser console')
  })

  it('cancels a queued reset (no worker); 10 000 scopes: first render, both viewports', { skip, timeout: 240_000 }, async (t) => {
    const file = join(tempDir(t), 'queued.sqlite')
    const server = await startServerProcess(t, ['--database', `sqlite:///${file}`, '--no-worker'])
    const context = await launch(t)
    const page = await context.newPage()
    const errors = scriptErrors(page, EXPECTED_ANSWER)

    await t.test('7. cancel a queued reset', async () => {
      await api(server, 'POST', '/v2/scope', { scope_id: 'queued-1' })
      const put = await api(server, 'PUT', '/v2/scope', { scope_id: 'queued-1', last_processed_timestamp: '2026-01-01T00:00:00Z' })
      assert.equal(put.status, 202)
      const id = Number(put.headers.get('location')?.match(/\/resets\/(\d+)$/)?.[1])
      await page.goto(`${server.url}/console/resets/${id}`)
      await ready(page, 'resets')
      assert.equal(await page.locator('#job-status').innerText(), 'pending')
      await checkAccessibility(page, 'pending reset')
      await page.getByRole('button', { name: 'Cancel this reset' }).click()
      await page.locator('#job-status', { hasText: 'cancelled' }).waitFor()
      assert.equal((await api(server, 'GET', `/v2/scope/resets/${id}`)).body.status, 'cancelled')
      await shoot(page, 'reset-cancelled')
    })

    await t.test('10 000 scopes: time to first render of the overview and of the table (reported, not asserted)', async () => {
      seed(file, 10_000, new Date())
      await page.goto(`${server.url}/console/`)
      await ready(page, 'overview')
      const overviewMs = await page.evaluate(() => performance.getEntriesByName('ready:overview')[0].startTime)
      assert.match(await page.locator('.figures').innerText(), /9,00\d\s+active/)
      await checkAccessibility(page, 'overview with 10 000 scopes')
      await shoot(page, 'overview')
      await page.goto(`${server.url}/console/scopes?limit=50`)
      await ready(page, 'scopes')
      const tableMs = await page.evaluate(() => performance.getEntriesByName('ready:scopes')[0].startTime)
      assert.equal(await page.locator('table[aria-label="Scope states"] tbody tr').count(), 50)
      assert.ok(await page.locator('td.lag.late').count() > 0, 'scopes late by more than stuck_after_periods are coloured')
      await shoot(page, 'scopes', { fullPage: false })
      // The next page follows the Link header's marker.
      await page.getByRole('link', { name: 'Next page →' }).click()
      await page.waitForURL(/marker=/)
      await ready(page, 'scopes')
      assert.match(await page.locator('table[aria-label="Scope states"] tbody tr').first().innerText(), /seed-00049/)
      await page.getByRole('link', { name: '← Previous page' }).click()
      await page.waitForURL((url) => !url.search.includes('marker='))
      await ready(page, 'scopes')
      assert.match(await page.locator('table[aria-label="Scope states"] tbody tr').first().innerText(), /queued-1/)
      // Reset the ticked scopes: the preview counts them alone.
      await page.getByLabel('select seed-00001').check()
      await page.getByLabel('select seed-00002').check()
      await page.getByLabel('Reset to (UTC)').fill('2026-11-01')
      await page.getByRole('button', { name: 'Preview reset of the selected…' }).click()
      const dialog = page.locator('dialog[open]')
      await dialog.getByText(/would be reset/).waitFor()
      assert.match(await dialog.innerText(), /seed-00001, seed-00002[\s\S]*2 scopes \(0 of them inactive\) would be reset to 2026-11-01 00:00:00 UTC/)
      await checkAccessibility(page, 'selected reset preview')
      await dialog.getByRole('button', { name: 'Cancel' }).click()
      process.stdout.write(`# console first render with 10 000 scopes: overview ${overviewMs.toFixed(0)} ms, scopes table ${tableMs.toFixed(0)} ms (from navigation start)\n`)
    })

    await t.test('a 390-px-wide screen: nothing wider than the screen but the scrolling tables', async () => {
      await page.setViewportSize({ width: 390, height: 844 })
      for (const [path, name] of [['/console/', 'overview'], ['/console/scopes?limit=20', 'scopes'], ['/console/new', 'new']]) {
        await page.goto(`${server.url}${path}`)
        await ready(page, name)
        const overflowing = await page.evaluate(() => Math.max(document.documentElement.scrollWidth, document.body.scrollWidth) <= window.innerWidth
          ? []
          : [...document.querySelectorAll('body *')].filter((e) => e.getBoundingClientRect().right > window.innerWidth && e.closest('.scroll') === null)
              .map((e) => `${e.tagName.toLowerCase()}.${e.className} ${Math.round(e.getBoundingClientRect().right)}`))
        assert.deepEqual(overflowing, [], `${path} fits 390 px`)
        await checkAccessibility(page, `${path} at 390 px`)
        await shoot(page, `${name}-390`)
      }
    })

    assert.deepEqual(errors, [], 'no script error and no CSP violation in the browser console')
  })

  it('8. with Keystone: logs in and out, and a member is told which policy rule refuses it', { skip: skip ?? keystoneSkipReason(), timeout: 300_000 }, async (t) => {
    const keystone = await startKeystone()
    t.after(() => keystone.stop())
    const server = await startServerProcess(t, ['--database', `sqlite:///${join(tempDir(t), 'keystone.sqlite')}`], keystone.authEnv())
    const context = await launch(t)
    const page = await context.newPage()
    // 401 before the login, 403 for the member: expected answers.
    const errors = scriptErrors(page, /status of (401|403|404|412) /)
    const logIn = async (user: KeystoneUser) => {
      await page.getByLabel('User name').fill(user.name)
      await page.getByLabel('Password').fill(user.password)
      await page.getByLabel('Project', { exact: true }).fill(user.project)
      await page.getByRole('button', { name: 'Log in' }).click()
    }

    await page.goto(`${server.url}/console/`)
    await ready(page, 'login')
    await page.waitForURL(/\/console\/login\?next=/)
    await checkAccessibility(page, 'login')
    await shoot(page, 'login')
    await logIn({ ...keystone.admin, password: 'not-the-password' })
    await page.getByText('Keystone refused these credentials').waitFor()
    await logIn(keystone.admin)
    await ready(page, 'overview')
    assert.match(await page.locator('#who-name').innerText(), /^admin in admin \(.*admin.*\)$/)
    assert.equal(await page.evaluate(() => document.cookie), '', 'no cookie: the token is in session storage only')
    assert.ok(await page.evaluate(() => sessionStorage.getItem('scopekeeper.token') !== null))
    await page.getByRole('button', { name: 'Log out' }).click()
    await ready(page, 'login')
    assert.equal(await page.evaluate(() => sessionStorage.getItem('scopekeeper.token')), null)

    await logIn(keystone.member)
    await ready(page, 'overview')
    const refusal = await page.getByRole('alert').innerText()
    assert.match(refusal, /^Your role may not do this \(policy rule scope:get_summary\): You are not authorized to perform this action/)
    await checkAccessibility(page, 'refused')
    await shoot(page, 'refused-member')
    // A token Keystone no longer accepts: back to the login form.
    await page.evaluate(() => sessionStorage.setItem('scopekeeper.token', 'not-a-token'))
    await page.goto(`${server.url}/console/scopes`)
    await ready(page, 'login')
    // The password never reaches the server's log.
    assert.equal(server.lines.filter((line) => line.includes(keystone.admin.password) || line.includes(keystone.member.password)).length, 0)
    assert.deepEqual(errors, [])
  })
})
