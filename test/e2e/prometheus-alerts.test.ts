// The alert rules operators load into Prometheus
// (prometheus/scopekeeper-alerts.yml), checked by the real promtool of
// Debian's prometheus package (scripts/setup-system-packages.sh): `promtool
// check rules` on the file, and `promtool test rules` on the unit tests
// beside it. Without promtool those two are skipped, loudly, or fail when
// CI=true. The other checks need no promtool: every alert is tested both
// firing and silent, and every metric an expression reads is one that
// /metrics really exports.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { parse } from 'yaml'
import { RESET_JOB_STATUSES } from '../../src/domain/reset-job.ts'
import { buildTestApp, call } from '../helpers/build-test-app.ts'

const exec = promisify(execFile)
const PROMTOOL = '/usr/bin/promtool'
const RULES_FILE = fileURLToPath(new URL('../../prometheus/scopekeeper-alerts.yml', import.meta.url))
const TESTS_FILE = fileURLToPath(new URL('../../prometheus/scopekeeper-alerts.test.yml', import.meta.url))

/** Prometheus's own series: scraped targets' `up`, which no exporter writes. */
const PROMETHEUS_SERIES = new Set(['up'])

interface AlertRule { alert: string, expr: string, for?: string, labels?: Record<string, string>, annotations?: Record<string, string> }
interface RuleTest { eval_time: string, alertname: string, exp_alerts?: unknown[] | null }
const rules = (parse(readFileSync(RULES_FILE, 'utf8')) as { groups: Array<{ rules: AlertRule[] }> }).groups.flatMap((g) => g.rules)
const unitTests = (parse(readFileSync(TESTS_FILE, 'utf8')) as { tests: Array<{ name?: string, alert_rule_test?: RuleTest[] }> }).tests

/** Why promtool cannot run here: a failure under CI=true, else a loud skip reason; undefined when it can. */
function promtoolSkipReason (): string | undefined {
  if (existsSync(PROMTOOL)) return undefined
  const problem = `${PROMTOOL} is missing; install Debian's prometheus with scripts/setup-system-packages.sh (as root)`
  if (process.env.CI === 'true') throw new Error(`${problem} (promtool is required when CI=true)`)
  process.stderr.write(`\n!!! SKIPPED promtool tests: ${problem}\n`)
  return `SKIPPED: ${problem}`
}

async function promtool (...args: string[]): Promise<{ code: number, output: string }> {
  try {
    const { stdout, stderr } = await exec(PROMTOOL, args, { timeout: 120_000 })
    return { code: 0, output: stdout + stderr }
  } catch (error) {
    const failed = error as { code?: unknown, stdout?: string, stderr?: string }
    if (typeof failed.code !== 'number') throw error
    return { code: failed.code, output: (failed.stdout ?? '') + (failed.stderr ?? '') }
  }
}

/**
 * The metric names a PromQL expression reads: what is left once strings,
 * label matchers, ranges, the label lists of `by`/`without`/`on`/`ignoring`
 * and functions (a name before `(`) are taken out, bar the operators.
 */
function metricNames (expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
  const names = [...bare.matchAll(/(?<![\w:.])([a-zA-Z_:][\w:]*)\b(?!\s*\()/g)].map((m) => m[1])
  return [...new Set(names.filter((n) => !['and', 'or', 'unless', 'offset', 'bool'].includes(n)))]
}

/** The names a Prometheus text scrape exports: each `# TYPE`, with a histogram's or summary's series names. */
function exportedNames (scrape: string): Set<string> {
  const names = new Set<string>()
  for (const [, name, type] of scrape.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    names.add(name)
    if (type === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) names.add(name + suffix)
    if (type === 'summary') for (const suffix of ['_sum', '_count']) names.add(name + suffix)
  }
  return names
}

describe('prometheus/scopekeeper-alerts.yml', () => {
  const skip = promtoolSkipReason()

  it('is a valid rules file for promtool', { skip }, async () => {
    const { code, output } = await promtool('check', 'rules', RULES_FILE)
    assert.equal(code, 0, output)
    assert.match(output, new RegExp(`SUCCESS: ${rules.length} rules found`))
  })

  it('passes its promtool unit tests', { skip }, async () => {
    const { code, output } = await promtool('test', 'rules', TESTS_FILE)
    assert.equal(code, 0, output)
    assert.match(output, /SUCCESS/)
    assert.doesNotMatch(output, /FAILED/)
  })

  it('has unit tests that fire each alert and show it silent', () => {
    assert.ok(rules.length >= 6, `the rules file has ${rules.length} alerts`)
    const checks = unitTests.flatMap((test) => test.alert_rule_test ?? [])
    for (const { alert } of rules) {
      const mine = checks.filter((c) => c.alertname === alert)
      assert.ok(mine.some((c) => (c.exp_alerts ?? []).length > 0), `${alert} is fired by some alert_rule_test`)
      assert.ok(mine.some((c) => (c.exp_alerts ?? []).length === 0), `${alert} is shown silent (exp_alerts: []) by some alert_rule_test`)
    }
    const names = new Set(rules.map((r) => r.alert))
    assert.equal(names.size, rules.length, 'alert names are unique')
    for (const check of checks) assert.ok(names.has(check.alertname), `the unit tests check ${check.alertname}, an alert of the file`)
  })

  it('gives every alert a severity, a summary, a description and a runbook', () => {
    for (const rule of rules) {
      assert.match(rule.alert, /^Scopekeeper[A-Z]\w+$/, rule.alert)
      assert.ok(['warning', 'critical'].includes(rule.labels?.severity ?? ''), `${rule.alert} has severity warning or critical`)
      for (const key of ['summary', 'description', 'runbook']) {
        assert.ok((rule.annotations?.[key] ?? '').trim().length > 0, `${rule.alert} has a ${key} annotation`)
      }
      // A runbook names where to look: an endpoint, a command or a unit's log.
      assert.match(rule.annotations?.runbook ?? '', /`(GET \/|scopekeeper |systemctl |journalctl |curl )/, `${rule.alert}'s runbook names a command or endpoint`)
    }
  })

  it('reads only metrics /metrics exports, with the labels it exports', async (t) => {
    const { app } = await buildTestApp(t)
    // So that the health checks' request series, which one rule leaves out by route, exist.
    await app.inject({ method: 'GET', url: '/healthcheck' })
    await app.inject({ method: 'GET', url: '/healthz' })
    await call(app, 'GET', '/v2/scope')
    const scrape = await app.inject({ method: 'GET', url: '/metrics' })
    assert.equal(scrape.statusCode, 200)
    const exported = exportedNames(scrape.body)
    assert.ok(exported.has('scopekeeper_reset_jobs'), 'the scrape is parsed')

    const read = new Set(rules.flatMap((r) => metricNames(r.expr)))
    for (const name of ['scopekeeper_reset_jobs', 'scopekeeper_reset_queue_lag_seconds', 'scopekeeper_http_requests_total', 'up']) {
      assert.ok(read.has(name), `the rules read ${name} (and the name parser finds it)`)
    }
    for (const name of read) {
      if (PROMETHEUS_SERIES.has(name)) continue
      assert.ok(exported.has(name), `${name}, read by an alert, is exported by GET /metrics`)
    }

    for (const rule of rules) {
      for (const [, status] of rule.expr.matchAll(/scopekeeper_reset_jobs\{[^}]*status="([^"]*)"/g)) {
        assert.ok((RESET_JOB_STATUSES as readonly string[]).includes(status), `${rule.alert} reads reset jobs of status ${status}, one of ${RESET_JOB_STATUSES.join(', ')}`)
      }
      for (const [, routes] of rule.expr.matchAll(/route!~"([^"]*)"/g)) {
        for (const route of routes.split('|')) {
          assert.ok(scrape.body.includes(`scopekeeper_http_requests_total{route="${route}",`), `${rule.alert} leaves out route ${route}, a route label /metrics uses`)
        }
      }
    }
  })
})
