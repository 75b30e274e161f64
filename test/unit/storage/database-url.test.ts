import assert from 'node:assert/strict'
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { homedir, tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import fc from 'fast-check'
import { ConfigError } from '../../../src/config/load-config.ts'
import {
  maskUrlSecrets, mysqlOptionsFromUrl, parseDatabaseUrl, postgresOptionsFromUrl, pythonUnquote, redactUrl, type DatabaseUrl,
} from '../../../src/storage/database-url.ts'
import { engineOfUrl } from '../../../src/storage/open-database.ts'

// Debian's SQLAlchemy (1.4), the one CloudKitty runs on this machine.
const PYTHON = '/usr/bin/python3'

// Reads every URL with sqlalchemy.engine.url.make_url and unquotes every
// text with urllib.parse.unquote, in one Python process.
const PYTHON_SCRIPT = `
import json, re, sys
from urllib.parse import unquote
from sqlalchemy.engine.url import make_url, _parse_url
# _parse_url's own pattern, for the query as written (parse_qsl drops blank items).
pattern = re.compile([c for c in _parse_url.__code__.co_consts if isinstance(c, str) and 'ipv6host' in c][0], re.X)
cases = json.load(sys.stdin)
urls = []
for url in cases['urls']:
    try:
        u = make_url(url)
        urls.append({'username': u.username, 'password': u.password, 'host': u.host, 'port': u.port, 'database': u.database,
                     'query': {k: (list(v) if isinstance(v, tuple) else v) for k, v in u.query.items()},
                     'rawQuery': pattern.match(url).group('query')})
    except Exception as e:
        urls.append({'error': type(e).__name__ + ': ' + str(e)})
json.dump({'urls': urls, 'unquoted': [unquote(t) for t in cases['unquote']]}, sys.stdout)
`

interface SqlalchemyReading {
  error?: string
  username: string | null
  password: string | null
  host: string | null
  port: number | null
  database: string | null
  query: Record<string, string | string[]>
  rawQuery: string | null
}

function askSqlalchemy (urls: string[], unquote: string[] = []): { urls: SqlalchemyReading[], unquoted: string[] } {
  const run = spawnSync(PYTHON, ['-c', PYTHON_SCRIPT], { input: JSON.stringify({ urls, unquote }), encoding: 'utf8', maxBuffer: 64 << 20 })
  assert.equal(run.status, 0, run.stderr)
  return JSON.parse(run.stdout)
}

const hasSqlalchemy = spawnSync(PYTHON, ['-c', 'import sqlalchemy']).status === 0

function components (url: DatabaseUrl) {
  return { username: url.username ?? null, password: url.password ?? null, host: url.host ?? null, port: url.port ?? null, database: url.database ?? null, query: url.query }
}

// A reading CloudKitty can connect with: where we must read what it reads.
// (No host name, database name or query parameter name holds an '@'.)
function usable (r: SqlalchemyReading): boolean {
  return r.error === undefined && !(r.host?.includes('@') ?? false) && !(r.database?.includes('@') ?? false) &&
    (r.port === null || (r.port >= 1 && r.port <= 65535)) && (r.rawQuery ?? '').split('&').every((item) => !item.split('=')[0].includes('@'))
}

function sqlalchemyComponents (r: SqlalchemyReading) {
  const { error, rawQuery, ...parts } = r
  return parts
}

function urlError (fn: () => unknown): ConfigError {
  try {
    fn()
  } catch (error) {
    assert.ok(error instanceof ConfigError, `a ConfigError, not ${String(error)}`)
    assert.doesNotMatch(error.message, /\n/)
    assert.match(error.message, /^\[database\] connection '/)
    return error
  }
  assert.fail('expected a ConfigError')
}

// Written as operators and kolla-ansible write them.
const TABLE: Array<[string, Partial<ReturnType<typeof components>>]> = [
  ['mysql+pymysql://cloudkitty:S3cr#t;p@ss:w/rd@192.0.2.10:3306/cloudkitty?ssl_ca=/etc/kolla/certs/ca.pem',
    { username: 'cloudkitty', password: 'S3cr#t;p@ss:w/rd', host: '192.0.2.10', port: 3306, database: 'cloudkitty', query: { ssl_ca: '/etc/kolla/certs/ca.pem' } }],
  ['mysql+pymysql://cloudkitty:S3cr%23t%3Bp%40ss%3Aw%2Frd@db:3306/cloudkitty', { password: 'S3cr#t;p@ss:w/rd', host: 'db' }],
  ['mysql://u:p@ss/rd@db/ck', { password: 'p@ss/rd', host: 'db', database: 'ck' }],
  ['mysql://u:p@ssword@db', { password: 'p@ssword', host: 'db', database: null }],
  ['mysql://u:p@ss#@127.0.0.1:1/x', { password: 'p@ss#', host: '127.0.0.1', port: 1, database: 'x' }],
  ['mysql://u:%C3%A9t%C3%A9%FF@db/ck', { password: 'été\ufffd' }],
  ['mysql://u:100%zz%4@db/ck', { password: '100%zz%4' }],
  ['mysql://u%3Ax:p@db/ck', { username: 'u:x', password: 'p' }],
  ['mysql://u@x@db/ck', { username: 'u@x', password: null, host: 'db' }],
  ['mysql://u:@db/ck', { username: 'u', password: '' }],
  ['postgresql+psycopg2://ck:pw@[::1]:5432/ck?sslmode=verify-full', { host: '::1', port: 5432, query: { sslmode: 'verify-full' } }],
  ['postgresql://ck@[fe80::1%25eth0]/ck', { host: 'fe80::1%25eth0', database: 'ck' }],
  ['postgresql://ck@db/c%20k', { database: 'c%20k' }],
  ['postgresql:///ck', { host: null, database: 'ck' }],
  ['mysql://db', { username: null, host: 'db', database: null }],
  ['mysql://u:p@db/ck?charset=utf8&a=1+2%2B&a=3&blank=&flag', { query: { charset: 'utf8', a: ['1 2+', '3'] } }],
  ['mysql://u:p@db/ck?ssl_ca=/etc/a@b.pem', { password: 'p', host: 'db', query: { ssl_ca: '/etc/a@b.pem' } }],
  ['mysql://u:p@db: 3306/ck', { port: 3306 }],
  ['sqlite:////var/lib/cloudkitty/cloudkitty.sqlite', { database: '/var/lib/cloudkitty/cloudkitty.sqlite' }],
  ['sqlite:///data/x@y.sqlite', { database: 'data/x@y.sqlite' }],
  ['sqlite://', { database: null }],
]

describe('database-url: SQLAlchemy URLs', () => {
  it('reads each part of the forms operators and kolla-ansible write', () => {
    for (const [url, expected] of TABLE) {
      const got = components(parseDatabaseUrl(url))
      for (const [key, value] of Object.entries(expected)) assert.deepEqual(got[key as keyof typeof got], value, `${url}: ${key}`)
    }
  })

  it('accepts every driver suffix and names the engine', () => {
    const cases: Array<[string, string]> = [
      ['mysql+pymysql://u:p@db/ck', 'mysql'], ['mysql+mysqldb://u:p@db/ck', 'mysql'], ['mysql+mysqlconnector://u:p@db/ck', 'mysql'],
      ['mariadb+pymysql://u:p@db/ck', 'mysql'], ['MySQL://u:p@db/ck', 'mysql'],
      ['postgresql+psycopg2://u:p@db/ck', 'postgres'], ['postgresql+pg8000://u:p@db/ck', 'postgres'], ['postgres://db/ck', 'postgres'],
      ['sqlite+pysqlite:///x.sqlite', 'sqlite'],
    ]
    for (const [url, engine] of cases) assert.equal(engineOfUrl(url), engine, url)
    assert.equal(parseDatabaseUrl('mysql+pymysql://db').driver, 'pymysql')
  })

  it('refuses a URL it cannot use in one line that names the setting and masks the password', () => {
    const cases: Array<[string, RegExp, string]> = [
      ['oracle://u:S3cr#t@db/x', /Unsupported database URL/, 'S3cr#t'],
      ['mysql://u:S3cr#t@db:99999/x', /port is not a number from 1 to 65535/, 'S3cr#t'],
      ['mysql://u:S3cr#t@db:/x', /port/, 'S3cr#t'],
      ['mysql://u:p@ss:w0rd@db:99999/x', /percent-encode an '@' in the password as %40/, 'p@ss:w0rd'],
      ['mysql:/u:S3cr#t@db/x', /does not start with dialect/, 'S3cr#t'],
      ['S3cr#t', /does not start with dialect/, 'nothing'],
    ]
    for (const [url, reason, secret] of cases) {
      const error = urlError(() => engineOfUrl(url))
      assert.match(error.message, reason, url)
      assert.ok(!error.message.includes(secret), error.message)
    }
  })

  it('reads an ambiguous password as SQLAlchemy does, and still masks all of it', () => {
    // '@', then '?', then '=' in an unencoded password: SQLAlchemy reads a
    // host and a query there, and so do we (the README says to encode it).
    const url = 'mysql://u:a@b?x=y@db:3306/ck'
    assert.equal(parseDatabaseUrl(url).host, 'b')
    assert.equal(redactUrl(url), 'mysql://u:***@db:3306/ck')
  })
})

describe('database-url: redactUrl', () => {
  it('masks the password and secret parameters, and nothing else', () => {
    const cases: Array<[string, string]> = [
      ['mysql+pymysql://ck:s3cr3t@db:3306/ck?charset=utf8', 'mysql+pymysql://ck:***@db:3306/ck?charset=utf8'],
      ['mysql://ck:S3cr#t;p@ss:w/rd@db/ck', 'mysql://ck:***@db/ck'],
      ['postgresql://ck@db/ck?sslmode=require&sslpassword=k3y&password=pw', 'postgresql://ck@db/ck?sslmode=require&sslpassword=***&password=***'],
      ['postgresql://db/ck', 'postgresql://db/ck'],
      ['not a url u:secret@x', 'not a url u:***@x'],
    ]
    for (const [url, masked] of cases) assert.equal(redactUrl(url), masked)
  })

  it('never shows a generated password, however it is written', () => {
    const alphabet = [...'@#;:/%?=&+ !$*()[]{}\'"`~<>|\\,.^', 'a', 'Z', '0', 'é', '€', '😀']
    fc.assert(fc.property(
      fc.array(fc.constantFrom(...alphabet), { minLength: 1, maxLength: 16 }).map((c) => c.join('')),
      fc.constantFrom('mysql+pymysql', 'postgresql', 'mariadb'),
      fc.constantFrom('db.example', '127.0.0.1', '[::1]'),
      fc.option(fc.integer({ min: 1, max: 65535 }), { nil: undefined }),
      fc.constantFrom('', '/ck', '/cloudkitty?charset=utf8', '/ck?ssl_ca=/etc/ssl/ca.pem&ssl_verify_cert=true', '?sslmode=require'),
      fc.boolean(),
      (password, scheme, host, port, rest, encode) => {
        const written = encode ? encodeURIComponent(password) : password
        const skeleton = `${scheme}://ck:@${host}${port === undefined ? '' : `:${port}`}${rest}`
        fc.pre(!skeleton.includes(written) && !'***'.includes(written))
        const url = `${scheme}://ck:${written}@${host}${port === undefined ? '' : `:${port}`}${rest}`
        // The mask itself may spell a password of '*', '@' and ':'.
        const masked = redactUrl(url).replace('***', '\u0000')
        assert.ok(!masked.includes(written), `${url} -> ${masked}`)
      },
    ), { numRuns: 2000 })
  })
})

/**
 * Every message scopekeeper can print about a URL: the URL as logged, why it
 * is refused, and a driver's failure to connect, which names the host and
 * the database it was given.
 */
function messagesAbout (url: string): string[] {
  const messages = [redactUrl(url)]
  try {
    const parsed = parseDatabaseUrl(url)
    messages.push(maskUrlSecrets(url, `getaddrinfo ENOTFOUND ${parsed.host}; database "${parsed.database}" does not exist`))
    if (engineOfUrl(url) === 'mysql') mysqlOptionsFromUrl(parsed)
    else postgresOptionsFromUrl(parsed)
  } catch (error) {
    assert.ok(error instanceof ConfigError, String(error))
    messages.push(error.message)
  }
  return messages
}

describe('database-url: no part of a password in a message', () => {
  it('masks an unencoded @ in a password whole, in the URL and in why it is refused', () => {
    const cases: Array<[string, string, string]> = [
      ['mysql+pymysql://user:p@ss@db/cloudkitty', 'p@ss', 'mysql+pymysql://user:***@db/cloudkitty'],
      ['postgresql://u:a@b@c@host:5432/x', 'a@b@c', 'postgresql://u:***@host:5432/x'],
      ['mysql+pymysql://user:p@ss@db/cloudkitty?charset=klingon', 'p@ss', 'mysql+pymysql://user:***@db/cloudkitty?charset=klingon'],
    ]
    for (const [url, password, logged] of cases) {
      const messages = messagesAbout(url)
      assert.equal(messages[0], logged)
      for (const message of messages) assert.ok(!message.includes(password), message)
    }
  })

  it("masks the parts SQLAlchemy's reading takes from a password for a host, a database or parameters", () => {
    // SQLAlchemy reads host 'hhhost', parameter 'ssl_verify_cert' = 'sometimes@db/ck'; the password may run to the last '@'.
    const url = 'mysql://ck:s3cret@hhhost?ssl_verify_cert=sometimes@db/ck'
    const [logged, , refused] = messagesAbout(url)
    assert.equal(logged, 'mysql://ck:***@db/ck')
    assert.equal(refused, "[database] connection 'mysql://ck:***@db/ck': ***@db/ck is none of true, false, required, optional")
    assert.equal(maskUrlSecrets(url, 'getaddrinfo ENOTFOUND hhhost'), 'getaddrinfo ENOTFOUND ***')
    // Where the password is sure, only it is masked.
    assert.equal(maskUrlSecrets('mysql://ck:s3cret@db/ck', 'Access denied for user ck (s3cret) on db'), 'Access denied for user ck (***) on db')
  })

  it('never shows three characters running of a generated password in any of them', () => {
    // Letters no skeleton and no message of ours holds, so any run of the
    // password holding one that a message shows is a leak; between them,
    // what ends or splits each part in SQLAlchemy's reading.
    const secretLetter = /[QXJZЖ]/
    const password = fc.array(fc.constantFrom('@', ':', '/', '?', '#', '=', '&', '%', '+', '[', ']', 'QX', 'JZ', 'Ж', 'Q', 'ssl_ca=', 'charset='), { minLength: 2, maxLength: 12 })
      .map((tokens) => tokens.join('')).filter((p) => secretLetter.test(p))
    fc.assert(fc.property(
      password,
      fc.constantFrom('mysql+pymysql', 'postgresql', 'mariadb'),
      fc.constantFrom('db', '127.0.0.1', '[::1]'),
      fc.option(fc.integer({ min: 1, max: 65535 }), { nil: undefined }),
      fc.constantFrom('', '/ck', '/cloudkitty?charset=utf8', '?sslmode=require', '/ck?ssl_ca=/etc/a@b.pem', '/ck?application_name=a@b'),
      (secret, scheme, host, port, rest) => {
        const url = `${scheme}://ck:${secret}@${host}${port === undefined ? '' : `:${port}`}${rest}`
        const runs = Array.from({ length: secret.length - 2 }, (_, i) => secret.slice(i, i + 3)).filter((run) => secretLetter.test(run))
        for (const message of messagesAbout(url)) {
          const leaked = runs.find((run) => message.includes(run))
          assert.equal(leaked, undefined, `${url}: ${message}`)
        }
      },
    ), { numRuns: 3000 })
  })
})

describe('database-url: the same reading as SQLAlchemy', { skip: hasSqlalchemy ? false : 'python3-sqlalchemy is not installed' }, () => {
  it('reads the table as make_url does wherever CloudKitty could connect with it', () => {
    const urls = TABLE.map(([url]) => url)
    const { urls: readings } = askSqlalchemy(urls)
    let compared = 0
    urls.forEach((url, i) => {
      if (!usable(readings[i])) return
      compared++
      assert.deepEqual(components(parseDatabaseUrl(url)), sqlalchemyComponents(readings[i]), url)
    })
    assert.ok(compared >= 15, `compared ${compared}`)
  })

  it('reads generated URLs as make_url does, and reads unencoded passwords whole where make_url cannot', () => {
    const seed = Date.now()
    // Unencoded passwords leave out '=': "@…?…=" in one is read as a host
    // and a query, by SQLAlchemy and by us (see the test above).
    const raw = [...'@#;:/%?&+ !$*()[]{}\'"`~<>|\\,.^', 'a', 'Z', '7', 'é', '😀', '%41', '%2F', '%4', '%C3%A9', '%FF']
    const cases = fc.sample(fc.record({
      scheme: fc.constantFrom('mysql', 'mysql+pymysql', 'mariadb', 'postgresql', 'postgresql+psycopg2', 'postgres'),
      user: fc.oneof(fc.stringMatching(/^[a-z][a-z0-9_.-]{0,8}$/), fc.string({ unit: 'grapheme', maxLength: 6 }).map(encodeURIComponent)),
      password: fc.oneof(
        fc.array(fc.constantFrom(...raw), { maxLength: 14 }).map((c) => c.join('')),
        fc.string({ unit: 'grapheme', maxLength: 12 }).map(encodeURIComponent),
      ),
      host: fc.constantFrom('db', 'db.example.org', '192.0.2.10', '[::1]', '[2001:db8::5]', 'cloudkitty-db-0.cloudkitty'),
      port: fc.option(fc.integer({ min: 1, max: 65535 }), { nil: undefined }),
      database: fc.option(fc.stringMatching(/^[A-Za-z0-9_$-]{0,12}$/), { nil: undefined }),
      query: fc.option(fc.array(fc.tuple(
        fc.constantFrom('charset', 'ssl_ca', 'sslmode', 'ssl_verify_cert', 'application_name'),
        fc.constantFrom('utf8', '/etc/ssl/ca.pem', '%2Fetc%2Fca.pem', 'a+b', 'verify-full', '', 'x@y', 'a%26b'),
      ), { maxLength: 3 }).map((items) => items.map(([k, v]) => `${k}=${v}`).join('&')), { nil: undefined }),
    }), { numRuns: 600, seed })
    const urls = cases.map((c) => `${c.scheme}://${c.user}:${c.password}@${c.host}${c.port === undefined ? '' : `:${c.port}`}` +
      `${c.database === undefined ? '' : `/${c.database}`}${c.query === undefined ? '' : `?${c.query}`}`)
    // What each was meant to say: its parts read alone.
    const meant = askSqlalchemy(cases.map((c) => `mysql://x@h/${c.query === undefined ? '' : `?${c.query}`}`), cases.flatMap((c) => [c.user, c.password]))
    const { urls: readings } = askSqlalchemy(urls)
    let usableCount = 0
    urls.forEach((url, i) => {
      const c = cases[i]
      const ours = components(parseDatabaseUrl(url))
      const intended = {
        username: meant.unquoted[2 * i],
        password: meant.unquoted[2 * i + 1],
        host: c.host.replace(/^\[(.*)\]$/, '$1'),
        port: c.port ?? null,
        database: c.database ?? null,
        query: meant.urls[i].query,
      }
      assert.deepEqual(ours, intended, `${url} (seed ${seed})`)
      if (usable(readings[i])) {
        usableCount++
        assert.deepEqual(ours, sqlalchemyComponents(readings[i]), `${url} (seed ${seed})`)
      }
    })
    assert.ok(usableCount > 100, `only ${usableCount} URLs SQLAlchemy could use (seed ${seed})`)
  })

  it('unquotes as Python does, byte sequences that are not UTF-8 included', () => {
    const seed = Date.now()
    const texts = fc.sample(fc.array(fc.oneof(
      fc.integer({ min: 0, max: 255 }).map((b) => `%${b.toString(16).padStart(2, '0')}`),
      fc.integer({ min: 0, max: 255 }).map((b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`),
      fc.constantFrom('%', '%4', '%zz', 'a', '+', 'é', '😀', '%%41'),
    ), { maxLength: 10 }).map((parts) => parts.join('')), { numRuns: 1000, seed })
    const { unquoted } = askSqlalchemy([], texts)
    texts.forEach((text, i) => assert.equal(pythonUnquote(text), unquoted[i], `${JSON.stringify(text)} (seed ${seed})`))
  })
})

describe('database-url: query parameters', () => {
  let dir: string
  let ca: string
  let cert: string
  let key: string
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'scopekeeper-url-'))
    ca = join(dir, 'ca.pem')
    cert = join(dir, 'client.pem')
    key = join(dir, 'client.key')
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=test CA', '-keyout', join(dir, 'ca.key'), '-out', ca], { stdio: 'ignore' })
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=client', '-keyout', key, '-out', cert], { stdio: 'ignore' })
    writeFileSync(join(dir, 'not.pem'), 'hello\n')
  })
  after(() => { rmSync(dir, { recursive: true, force: true }) })

  const mysql = (query: string) => mysqlOptionsFromUrl(parseDatabaseUrl(`mysql+pymysql://ck:pw@db/ck?${query}`))
  const postgres = (query: string) => postgresOptionsFromUrl(parseDatabaseUrl(`postgresql://ck:pw@db/ck?${query}`))

  it('connects MySQL with utf8mb4 whatever charset a cloudkitty.conf names, and refuses a charset MySQL lacks', () => {
    for (const charset of ['utf8', 'UTF8', 'utf8mb3', 'utf8mb4', 'latin1']) assert.equal(mysql(`charset=${charset}`).charset, 'utf8mb4')
    assert.match(urlError(() => mysql('charset=utf-8')).message, /charset=utf-8 is not a MySQL character set/)
  })

  it('maps MySQL TLS parameters as SQLAlchemy hands them to PyMySQL', () => {
    assert.equal(mysql('charset=utf8').ssl, undefined)
    // kolla-ansible's ?ssl_ca=: the server is verified against that CA, and its name checked.
    assert.deepEqual(pick(mysql(`ssl_ca=${ca}`).ssl), { ca: true, cert: false, rejectUnauthorized: true, verifyIdentity: true })
    assert.deepEqual(pick(mysql(`ssl_ca=${ca}&ssl_check_hostname=false`).ssl), { ca: true, cert: false, rejectUnauthorized: true, verifyIdentity: false })
    assert.deepEqual(pick(mysql(`ssl_ca=${ca}&ssl_verify_identity=false`).ssl), { ca: true, cert: false, rejectUnauthorized: true, verifyIdentity: false })
    assert.deepEqual(pick(mysql(`ssl_ca=${ca}&ssl_verify_cert=false`).ssl), { ca: true, cert: false, rejectUnauthorized: false, verifyIdentity: false })
    // No CA: PyMySQL encrypts without verifying, unless asked to verify.
    assert.deepEqual(pick(mysql(`ssl_cert=${cert}&ssl_key=${key}`).ssl), { ca: false, cert: true, rejectUnauthorized: false, verifyIdentity: false })
    assert.deepEqual(pick(mysql('ssl_verify_cert=true').ssl), { ca: false, cert: false, rejectUnauthorized: true, verifyIdentity: false })
    assert.deepEqual(pick(mysql('ssl_verify_cert=optional').ssl), { ca: false, cert: false, rejectUnauthorized: true, verifyIdentity: false })
    assert.deepEqual(pick(mysql('ssl_verify_identity=true').ssl), { ca: false, cert: false, rejectUnauthorized: true, verifyIdentity: true })
    assert.equal(mysql(`ssl_ca=${ca}&ssl_disabled=true`).ssl, undefined)
    assert.equal(mysql('ssl_cipher=ECDHE-RSA-AES256-GCM-SHA384').ssl?.ciphers, 'ECDHE-RSA-AES256-GCM-SHA384')
  })

  it('refuses MySQL TLS parameters it cannot honour, naming the parameter', () => {
    const cases: Array<[string, RegExp]> = [
      ['ssl_ca=/nonexistent', /cannot read ssl_ca \/nonexistent: no such file/],
      ['ssl_ca=@NOT', /ssl_ca holds no PEM certificate/],
      ['ssl_cert=@NOT&ssl_key=@NOT', /ssl_cert or ssl_key: .*PEM/],
      ['ssl_capath=/etc/ssl/certs', /unsupported parameter ssl_capath/],
      ['ssl_verify_cert=maybe', /ssl_verify_cert=maybe/],
      ['ssl_check_hostname=sometimes', /ssl_check_hostname=sometimes is neither true nor false/],
      ['ssl_verify_cert=false&ssl_check_hostname=true', /cannot go with a host name check/],
      ['ssl_cz=/etc/ca.pem', /unsupported parameter ssl_cz/],
      ['charset=utf8&charset=latin1', /charset is given 2 times/],
    ]
    for (const [query, reason] of cases) assert.match(urlError(() => mysql(query.replaceAll('@NOT', join(dir, 'not.pem')))).message, reason, query)
  })

  it('honours or knowingly ignores the other PyMySQL keywords', () => {
    const options = mysql('unix_socket=/run/mysqld/mysqld.sock&connect_timeout=3&read_timeout=30&use_unicode=1&plugin=x')
    assert.equal(options.socketPath, '/run/mysqld/mysqld.sock')
    assert.equal(options.connectTimeoutMs, 3000)
    assert.match(urlError(() => mysql('init_command=SET x=1')).message, /unsupported parameter init_command/)
    assert.match(urlError(() => mysql('connect_timeout=0')).message, /connect_timeout=0 is not a positive number of seconds/)
  })

  it('gives PostgreSQL libpq\'s sslmode meanings, prefer by default', () => {
    assert.deepEqual(pgTls(postgres('')), { mode: 'prefer', ca: false, rejectUnauthorized: false, checksName: false })
    assert.deepEqual(pgTls(postgres('sslmode=disable')), { mode: 'disable', ca: false, rejectUnauthorized: false, checksName: false })
    assert.deepEqual(pgTls(postgres('sslmode=require')), { mode: 'require', ca: false, rejectUnauthorized: false, checksName: false })
    // libpq: require with a root certificate behaves as verify-ca.
    assert.deepEqual(pgTls(postgres(`sslmode=require&sslrootcert=${ca}`)), { mode: 'require', ca: true, rejectUnauthorized: true, checksName: false })
    assert.deepEqual(pgTls(postgres(`sslmode=verify-ca&sslrootcert=${ca}`)), { mode: 'verify-ca', ca: true, rejectUnauthorized: true, checksName: false })
    assert.deepEqual(pgTls(postgres(`sslmode=verify-full&sslrootcert=${ca}`)), { mode: 'verify-full', ca: true, rejectUnauthorized: true, checksName: true })
    assert.deepEqual(pgTls(postgres('sslrootcert=system')), { mode: 'verify-full', ca: false, rejectUnauthorized: true, checksName: true })
    const client = postgres(`sslmode=require&sslcert=${cert}&sslkey=${key}`).tls
    assert.ok(client.cert !== undefined && client.key !== undefined)
    assert.equal(postgres('').tls.minVersion, 'TLSv1.2')
  })

  it('refuses PostgreSQL parameters it cannot honour, naming the parameter', () => {
    const cases: Array<[string, RegExp]> = [
      ['sslmode=verify', /sslmode=verify is not one of libpq's sslmode values/],
      ['sslmode=require&sslrootcert=system', /sslmode=require cannot go with sslrootcert=system/],
      ['sslmode=verify-full&sslrootcert=/nonexistent', /cannot read sslrootcert \/nonexistent: no such file/],
      ['sslmode=require&sslcert=/nonexistent&sslkey=/nonexistent', /cannot read sslcert \/nonexistent/],
      ['client_encoding=latin1', /only UTF8 is supported/],
      ['target_session_attrs=read-write', /target_session_attrs=read-write is not supported/],
      ['host=db1,db2', /several hosts are not supported/],
      ['service=ck', /unsupported parameter service/],
      ['sslmdoe=require', /unsupported parameter sslmdoe/],
    ]
    for (const [query, reason] of cases) assert.match(urlError(() => postgres(query)).message, reason, query)
    if (!existsSync(join(homedir(), '.postgresql', 'root.crt'))) {
      assert.match(urlError(() => postgres('sslmode=verify-ca')).message, /root certificate file .*root\.crt, which does not exist/)
    }
  })

  it('takes libpq keywords for the host, port, search path and names', () => {
    const options = postgres('host=/var/run/postgresql&port=5433&options=-c%20search_path%3Dck&application_name=scopekeeper&keepalives=1&client_encoding=utf8')
    assert.equal(options.host, '/var/run/postgresql')
    assert.equal(options.port, 5433)
    assert.equal(options.options, '-c search_path=ck')
    assert.equal(options.applicationName, 'scopekeeper')
  })
})

function pick (ssl: ReturnType<typeof mysqlOptionsFromUrl>['ssl']) {
  assert.ok(ssl !== undefined, 'TLS is on')
  return { ca: ssl.ca !== undefined, cert: ssl.cert !== undefined, rejectUnauthorized: ssl.rejectUnauthorized, verifyIdentity: ssl.verifyIdentity }
}

function pgTls (options: ReturnType<typeof postgresOptionsFromUrl>) {
  return { mode: options.sslMode, ca: options.tls.ca !== undefined, rejectUnauthorized: options.tls.rejectUnauthorized, checksName: options.tls.checkServerIdentity === undefined }
}
