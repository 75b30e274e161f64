import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it, type TestContext } from 'node:test'
import { keystoneTls } from '../../../src/auth/keystone-tls.ts'
import { ConfigError } from '../../../src/config/load-config.ts'

const NONE = { cafile: '', certfile: '', keyfile: '', insecure: false }

/** A self-signed certificate and its key, and a second key, in a folder removed after the test. */
function pems (t: TestContext) {
  const dir = mkdtempSync(join(tmpdir(), 'scopekeeper-tls-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const f = (name: string) => join(dir, name)
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('key.pem'), '-out', f('cert.pem'), '-days', '1', '-subj', '/CN=test'], { stdio: 'ignore' })
  execFileSync('openssl', ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', f('other-key.pem')], { stdio: 'ignore' })
  writeFileSync(f('both.pem'), Buffer.concat([readFileSync(f('cert.pem')), readFileSync(f('key.pem'))]))
  writeFileSync(f('garbage.pem'), 'not a certificate\n')
  return { dir, cert: f('cert.pem'), key: f('key.pem'), otherKey: f('other-key.pem'), both: f('both.pem'), garbage: f('garbage.pem'), missing: f('missing.pem') }
}

/** Asserts a one-line ConfigError whose message matches `pattern`. */
function throwsConfigError (fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (e: Error) => {
    assert.ok(e instanceof ConfigError, String(e))
    assert.match(e.message, pattern)
    assert.ok(!e.message.includes('\n'), `one line: ${e.message}`)
    return true
  })
}

describe('keystoneTls', () => {
  it('is undefined when no TLS setting is given: Node\'s defaults apply', () => {
    assert.equal(keystoneTls(NONE), undefined)
    // kolla-ansible writes `cafile = ` when TLS is off.
    assert.equal(keystoneTls({ ...NONE, keyfile: '/ignored/without/certfile' }), undefined)
  })

  it('reads cafile, certfile and keyfile at start', (t) => {
    const p = pems(t)
    const tls = keystoneTls({ cafile: p.cert, certfile: p.cert, keyfile: p.key, insecure: false })
    assert.deepEqual(tls, { ca: readFileSync(p.cert), cert: readFileSync(p.cert), key: readFileSync(p.key), rejectUnauthorized: true })
  })

  it('takes a certfile without keyfile as one file holding both, as requests does', (t) => {
    const p = pems(t)
    const tls = keystoneTls({ ...NONE, certfile: p.both })
    assert.deepEqual(tls, { cert: readFileSync(p.both), key: readFileSync(p.both), rejectUnauthorized: true })
    throwsConfigError(() => keystoneTls({ ...NONE, certfile: p.cert }), /^\[keystone_authtoken\] certfile .*cert\.pem \(which must then hold the key too, keyfile being unset\): not a usable PEM certificate and key: /)
  })

  it('lets insecure win over cafile, without reading it (keystoneauth1 Session.load_from_options)', (t) => {
    const p = pems(t)
    assert.deepEqual(keystoneTls({ ...NONE, insecure: true, cafile: p.missing }), { rejectUnauthorized: false })
  })

  it('stops the start with a one-line error naming the setting when a file cannot be read', (t) => {
    const p = pems(t)
    throwsConfigError(() => keystoneTls({ ...NONE, cafile: p.missing }), /^Cannot read \[keystone_authtoken\] cafile .*missing\.pem \(SCOPEKEEPER_KEYSTONE_AUTHTOKEN_CAFILE\): ENOENT$/)
    throwsConfigError(() => keystoneTls({ ...NONE, certfile: p.missing, keyfile: p.key }), /^Cannot read \[keystone_authtoken\] certfile .* \(SCOPEKEEPER_KEYSTONE_AUTHTOKEN_CERTFILE\): ENOENT$/)
    throwsConfigError(() => keystoneTls({ ...NONE, certfile: p.cert, keyfile: p.dir }), /^Cannot read \[keystone_authtoken\] keyfile .* \(SCOPEKEEPER_KEYSTONE_AUTHTOKEN_KEYFILE\): EISDIR$/)
    if (process.getuid?.() !== 0) {
      chmodSync(p.key, 0o000)
      throwsConfigError(() => keystoneTls({ ...NONE, certfile: p.cert, keyfile: p.key }), /keyfile .*EACCES$/)
    }
  })

  it('stops the start when a file does not hold what its setting says', (t) => {
    const p = pems(t)
    throwsConfigError(() => keystoneTls({ ...NONE, cafile: p.garbage }), /^\[keystone_authtoken\] cafile .*garbage\.pem holds no PEM certificate$/)
    throwsConfigError(() => keystoneTls({ ...NONE, cafile: p.key }), /^\[keystone_authtoken\] cafile .*key\.pem holds no PEM certificate$/)
    throwsConfigError(() => keystoneTls({ ...NONE, certfile: p.cert, keyfile: p.otherKey }), /^\[keystone_authtoken\] certfile .* and keyfile .*other-key\.pem: not a usable PEM certificate and key: .*key values mismatch/)
    throwsConfigError(() => keystoneTls({ ...NONE, certfile: p.garbage, keyfile: p.key }), /^\[keystone_authtoken\] certfile .*garbage\.pem and keyfile .*: not a usable PEM certificate and key/)
  })
})
