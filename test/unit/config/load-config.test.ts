import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { SETTINGS } from '../../../src/config/config-schema.ts'
import { ConfigError, loadConfig } from '../../../src/config/load-config.ts'
import { confFile, scratchDir } from '../../helpers/conf-file.ts'

const CLOUDKITTY_CONF = `
[DEFAULT]
auth_strategy = noauth
debug = true
transport_url = rabbit://guest:guest@127.0.0.1:5672/

[api]
host_ip = 0.0.0.0
port = 9999
pecan_debug = false

[database]
connection = sqlite:////var/lib/cloudkitty/cloudkitty.sqlite

[collect]
collector = prometheus
scope_key = domain_id
period = 600
metrics_conf = /etc/cloudkitty/metrics.yml

[fetcher]
backend = gnocchi

[keystone_authtoken]
auth_url = http://keystone:5000
`

describe('loadConfig', () => {
  it('uses the defaults when nothing is set', () => {
    const config = loadConfig({ env: {} })
    assert.deepEqual(config.api, { host: '127.0.0.1', port: 8889, requestTimeout: 60, shutdownTimeout: 30, enableProxyHeadersParsing: false, idempotencyTtl: 86_400, activationMaxScopes: 100_000 })
    assert.equal(config.database.url, 'sqlite:///data/scopekeeper.sqlite')
    // CloudKitty's defaults for CloudKitty's settings (cloudkitty/api/app.py auth_opts, oslo_db/options.py, cloudkitty/orchestrator.py).
    assert.equal(config.auth.strategy, 'keystone')
    assert.equal(config.database.maxPoolSize, 5)
    assert.equal(config.database.connectionRecycleTime, 3600)
    assert.equal(config.database.maxRetries, 10)
    assert.equal(config.database.retryInterval, 10)
    assert.equal(config.orchestrator.coordinationUrl, 'file:///var/lib/cloudkitty/locks')
    assert.deepEqual(config.collect, { period: 3600, stuckAfterPeriods: 3, collector: 'gnocchi', scopeKey: 'project_id' })
    assert.equal(config.fetcher.backend, 'keystone')
    assert.equal(config.reset.worker, true)
    assert.ok(Object.isFrozen(config) && Object.isFrozen(config.api))
  })

  it("reads a cloudkitty.conf, ignoring CloudKitty's own keys", (t) => {
    const config = loadConfig({ file: confFile(t, CLOUDKITTY_CONF), env: {} })
    assert.deepEqual({ host: config.api.host, port: config.api.port }, { host: '0.0.0.0', port: 9999 })
    assert.equal(config.database.url, 'sqlite:////var/lib/cloudkitty/cloudkitty.sqlite')
    assert.deepEqual(config.collect, { period: 600, stuckAfterPeriods: 3, collector: 'prometheus', scopeKey: 'domain_id' })
    assert.equal(config.fetcher.backend, 'gnocchi')
  })

  it('lets the environment override the file and flags override both', (t) => {
    const file = confFile(t, CLOUDKITTY_CONF)
    const env = { SCOPEKEEPER_API_PORT: '7000', SCOPEKEEPER_DATABASE_URL: 'sqlite:///env.sqlite' }
    assert.equal(loadConfig({ file, env }).api.port, 7000)
    assert.equal(loadConfig({ file, env }).api.host, '0.0.0.0')
    const flagged = loadConfig({ file, env, flags: { port: '7100', database: 'sqlite:///flag.sqlite', worker: false } })
    assert.equal(flagged.api.port, 7100)
    assert.equal(flagged.database.url, 'sqlite:///flag.sqlite')
    assert.equal(flagged.reset.worker, false)
  })

  it('finds the config file through SCOPEKEEPER_CONFIG', (t) => {
    assert.equal(loadConfig({ env: { SCOPEKEEPER_CONFIG: confFile(t, CLOUDKITTY_CONF) } }).api.port, 9999)
  })

  it('fails naming the key and its source on a bad value', (t) => {
    assert.throws(() => loadConfig({ env: { SCOPEKEEPER_API_PORT: 'eighty' } }),
      (e: Error) => e instanceof ConfigError && /\[api\] port/.test(e.message) && /SCOPEKEEPER_API_PORT/.test(e.message))
    assert.throws(() => loadConfig({ env: {}, flags: { port: '70000' } }), /\[api\] port \(from flag --port\)/)
    const file = confFile(t, '[collect]\nperiod = -5\n')
    assert.throws(() => loadConfig({ file, env: {} }), (e: Error) => /\[collect\] period/.test(e.message) && e.message.includes(file))
  })

  it('reads [api] idempotency_ttl in whole seconds, from 1', (t) => {
    assert.equal(loadConfig({ env: { SCOPEKEEPER_API_IDEMPOTENCY_TTL: '3600' } }).api.idempotencyTtl, 3600)
    assert.equal(loadConfig({ file: confFile(t, '[api]\nidempotency_ttl = 120\n'), env: {} }).api.idempotencyTtl, 120)
    for (const bad of ['0', '1.5', 'a day']) {
      assert.throws(() => loadConfig({ env: { SCOPEKEEPER_API_IDEMPOTENCY_TTL: bad } }), /\[api\] idempotency_ttl/, bad)
    }
  })

  it("never shows a secret setting's value in its error, whatever the source", (t) => {
    const long = 'x'.repeat(5000)
    for (const [section, key, env] of [['database', 'connection', 'SCOPEKEEPER_DATABASE_URL'], ['keystone_authtoken', 'password', 'SCOPEKEEPER_KEYSTONE_AUTHTOKEN_PASSWORD'],
      ['DEFAULT', 'transport_url', 'SCOPEKEEPER_DEFAULT_TRANSPORT_URL'], ['orchestrator', 'coordination_url', 'SCOPEKEEPER_ORCHESTRATOR_COORDINATION_URL']]) {
      const secret = `S3cr#t;${long}`
      for (const sources of [{ file: confFile(t, `[${section}]\n${key} = ${secret}\n`), env: {} }, { env: { [env]: secret } }]) {
        assert.throws(() => loadConfig(sources), (e: Error) => e instanceof ConfigError && e.message.includes(`[${section}] ${key}`) && !e.message.includes('S3cr#t'), `${section} ${key}`)
      }
    }
  })

  it('accepts noauth and keystone as auth strategies, and refuses others clearly', (t) => {
    assert.equal(loadConfig({ file: confFile(t, '[DEFAULT]\nauth_strategy = keystone\n'), env: {} }).auth.strategy, 'keystone')
    assert.throws(() => loadConfig({ file: confFile(t, '[DEFAULT]\nauth_strategy = ldap\n'), env: {} }), /\[DEFAULT\] auth_strategy .*must be one of: noauth, keystone/)
  })

  it('refuses unknown SCOPEKEEPER_ variables and unknown keys in its own sections', (t) => {
    assert.throws(() => loadConfig({ env: { SCOPEKEEPER_API_PROT: '1' } }), /Unknown environment variable SCOPEKEEPER_API_PROT/)
    assert.throws(() => loadConfig({ file: confFile(t, '[reset]\nbatchsize = 5\n'), env: {} }), /Unknown setting \[reset\] batchsize/)
  })

  it('fails clearly on a missing config file or config dir', () => {
    assert.throws(() => loadConfig({ file: '/nonexistent/cloudkitty.conf', env: {} }), (e: Error) => e instanceof ConfigError && e.message === 'Config file not found: /nonexistent/cloudkitty.conf')
    assert.throws(() => loadConfig({ dirs: ['/nonexistent/conf.d'], env: {} }), (e: Error) => e instanceof ConfigError && e.message === 'Config directory not found: /nonexistent/conf.d')
  })

  it('keeps #, ; and = inside values: a secret is read whole', (t) => {
    const file = confFile(t, [
      '[database]',
      'connection = mysql+pymysql://cloudkitty:S3cr#t;pw=x@db:3306/cloudkitty',
      '[keystone_authtoken]',
      'password = S3cr#t;pw',
      '# auth_url = http://commented-out:5000',
      'auth_url: http://keystone:5000',
    ].join('\n'))
    const config = loadConfig({ file, env: {} })
    assert.equal(config.database.url, 'mysql+pymysql://cloudkitty:S3cr#t;pw=x@db:3306/cloudkitty')
    assert.equal(config.keystone.password, 'S3cr#t;pw')
    assert.equal(config.keystone.authUrl, 'http://keystone:5000')
  })

  it("reads a value's $$ as $ and substitutes $name, as oslo.config does", (t) => {
    const file = confFile(t, '[DEFAULT]\nauth_strategy = noauth\n[keystone_authtoken]\npassword = pa$$w0rd\\$\nusername = ck-$auth_strategy\n')
    const config = loadConfig({ file, env: {} })
    assert.equal(config.keystone.password, 'pa$w0rd$')
    assert.equal(config.keystone.username, 'ck-noauth')
    const unknown = confFile(t, '[keystone_authtoken]\npassword = pa$word\n')
    assert.throws(() => loadConfig({ file: unknown, env: {} }), (e: Error) => e instanceof ConfigError && e.message.includes(`[keystone_authtoken] password in ${unknown} refers to $word`))
  })

  it('joins continuation lines and merges repeated sections, the last value winning', (t) => {
    const file = confFile(t, '[API]\nport = 7001\n[collect]\nperiod = 60\n[api]\nport = 7002\n[database]\nconnection = sqlite:////a\n  b.sqlite\n')
    const config = loadConfig({ file, env: {} })
    assert.equal(config.api.port, 7002)
    assert.equal(config.collect.period, 60)
    assert.equal(config.database.url, 'sqlite:////a\nb.sqlite')
  })

  it('refuses a malformed line with one line naming the file and the line number', (t) => {
    const file = confFile(t, '[DEFAULT]\ndebug = true\nfoo\n')
    assert.throws(() => loadConfig({ file, env: {} }), (e: Error) => e instanceof ConfigError && e.message === `Invalid line 3 in ${file}: no '=' or ':' in "foo"`)
  })

  it('lets a later --config-file win, reads a --config-dir in sorted order, and keeps their order', (t) => {
    const first = confFile(t, '[api]\nport = 7001\nhost_ip = 10.0.0.1\n')
    const second = confFile(t, '[api]\nport = 7002\n')
    const dir = scratchDir(t)
    writeFileSync(join(dir, '20-b.conf'), '[api]\nport = 7020\n')
    writeFileSync(join(dir, '10-a.conf'), '[api]\nport = 7010\n[collect]\nperiod = 10\n')
    writeFileSync(join(dir, 'ignored.conf.bak'), '[api]\nport = 7099\n')
    assert.equal(loadConfig({ files: [first, second], env: {} }).api.port, 7002)
    assert.equal(loadConfig({ files: [second, first], env: {} }).api.port, 7001)
    const { host, port } = loadConfig({ files: [first], dirs: [dir], env: {} }).api
    assert.deepEqual({ host, port }, { host: '10.0.0.1', port: 7020 })
    assert.equal(loadConfig({ commandLine: [{ dir }, { file: second }], env: {} }).api.port, 7002)
    assert.equal(loadConfig({ commandLine: [{ file: second }, { dir }], env: {} }).api.port, 7020)
    assert.equal(loadConfig({ commandLine: [{ dir }], env: {} }).collect.period, 10)
    // A bad value names the file it came from.
    writeFileSync(join(dir, '30-c.conf'), '[api]\nport = eighty\n')
    assert.throws(() => loadConfig({ files: [first], dirs: [dir], env: {} }), (e: Error) => e.message.includes(`(from config file ${join(dir, '30-c.conf')})`))
  })

  it('reads SCOPEKEEPER_CONFIG only when no config file or dir is given', (t) => {
    const env = { SCOPEKEEPER_CONFIG: confFile(t, CLOUDKITTY_CONF) }
    assert.equal(loadConfig({ env }).api.port, 9999)
    assert.equal(loadConfig({ env, files: [confFile(t, '[api]\nport = 7003\n')] }).api.port, 7003)
  })

  it("checks every file for unknown keys in scopekeeper's own sections, whatever their case", (t) => {
    const good = confFile(t, '[reset]\nbatch_size = 5\n')
    const bad = confFile(t, '[RESET]\nbatchsize = 5\n')
    assert.throws(() => loadConfig({ files: [good, bad], env: {} }), (e: Error) => e.message === `Unknown setting [RESET] batchsize in config file ${bad}`)
  })

  it('gives every setting a distinct env name and a description', () => {
    assert.equal(new Set(SETTINGS.map((s) => s.env)).size, SETTINGS.length)
    for (const s of SETTINGS) {
      assert.match(s.env, /^SCOPEKEEPER_[A-Z_]+$/)
      assert.ok(s.description.length > 5)
      assert.doesNotThrow(() => s.parse(String(s.default)), s.path)
    }
  })
})

describe('README', () => {
  it('documents every setting with its file key and environment variable', async () => {
    const { readFileSync } = await import('node:fs')
    const readme = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8')
    for (const s of SETTINGS) {
      assert.ok(readme.includes(`\`[${s.section}] ${s.key}\``), `[${s.section}] ${s.key} missing from README`)
      assert.ok(readme.includes(`\`${s.env}\``), `${s.env} missing from README`)
    }
  })
})
