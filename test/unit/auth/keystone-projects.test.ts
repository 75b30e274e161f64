import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { reconcileSessionOptions } from '../../../src/auth/keystone-projects.ts'
import { ConfigError, loadConfig } from '../../../src/config/load-config.ts'
import { confFile } from '../../helpers/conf-file.ts'

const AUTHTOKEN = `
[keystone_authtoken]
auth_url = http://10.0.0.10:5000
auth_type = password
user_domain_id = default
project_domain_id = default
project_name = service
username = cloudkitty
password = s3cret
`

describe('reconcileSessionOptions', () => {
  it('takes [keystone_authtoken] with kolla-ansible\'s auth_section = keystone_authtoken, ignoring the section\'s other keys', (t) => {
    const config = loadConfig({ file: confFile(t, `${AUTHTOKEN}\n[fetcher_keystone]\nkeystone_version = 3\nauth_section = keystone_authtoken\nregion_name = RegionOne\n`), env: {} })
    const options = reconcileSessionOptions(config)
    assert.equal(options?.section, '[keystone_authtoken]')
    assert.equal(options?.username, 'cloudkitty')
    assert.equal(options?.userDomainId, 'default')
    assert.equal(options?.interface, 'public')
    assert.equal(options?.refusedCode, 'IDENTITY_REFUSED')
  })

  it('takes [fetcher_keystone]\'s own credentials when it has an auth_type', (t) => {
    const config = loadConfig({
      file: confFile(t, `${AUTHTOKEN}\n[fetcher_keystone]\nauth_type = v3password\nauth_url = http://ks:5000/v3\nusername = ck\npassword = other\nproject_name = rating\ntimeout = 7\n`),
      env: {},
    })
    const options = reconcileSessionOptions(config)!
    assert.deepEqual([options.section, options.authUrl, options.username, options.password, options.projectName, options.userDomainName, options.requestTimeoutMs],
      ['[fetcher_keystone]', 'http://ks:5000/v3', 'ck', 'other', 'rating', 'Default', 7000])
  })

  it('names the missing settings of an auth_type without credentials', (t) => {
    const config = loadConfig({ file: confFile(t, '[fetcher_keystone]\nauth_type = password\nusername = ck\n'), env: {} })
    assert.throws(() => reconcileSessionOptions(config), (e: Error) => e instanceof ConfigError &&
      /\[fetcher_keystone\] auth_url \(SCOPEKEEPER_FETCHER_KEYSTONE_AUTH_URL\), password \(SCOPEKEEPER_FETCHER_KEYSTONE_PASSWORD\), project_name/.test(e.message))
  })

  it('is undefined with no usable credentials, without reading [keystone_authtoken]\'s TLS files', (t) => {
    const config = loadConfig({ file: confFile(t, '[keystone_authtoken]\ncafile = /nonexistent/ca.pem\n'), env: {} })
    assert.equal(reconcileSessionOptions(config), undefined)
  })

  it('uses [fetcher_keystone]\'s TLS when it sets any, naming its section when a file is wrong', (t) => {
    const config = loadConfig({ file: confFile(t, `${AUTHTOKEN}\n[fetcher_keystone]\ncafile = /nonexistent/ck.pem\n`), env: {} })
    assert.throws(() => reconcileSessionOptions(config), /Cannot read \[fetcher_keystone\] cafile \/nonexistent\/ck.pem \(SCOPEKEEPER_FETCHER_KEYSTONE_CAFILE\)/)
  })

  it('refuses a Keystone version other than 3 and an auth_section of another name', (t) => {
    assert.throws(() => loadConfig({ file: confFile(t, '[fetcher_keystone]\nkeystone_version = 2\n'), env: {} }), /keystone_version.*must be 3/)
    assert.throws(() => loadConfig({ file: confFile(t, '[fetcher_keystone]\nauth_section = somewhere\n'), env: {} }), /auth_section/)
  })
})
