import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { keystoneAuthOptions } from '../../../src/auth/keystone-auth.ts'
import { ConfigError, loadConfig } from '../../../src/config/load-config.ts'
import { confFile } from '../../helpers/conf-file.ts'

// The [keystone_authtoken] section of a real cloudkitty.conf, with keys we do not use.
const CLOUDKITTY_CONF = `
[DEFAULT]
auth_strategy = keystone

[keystone_authtoken]
www_authenticate_uri = https://keystone.example:5000
auth_url = https://keystone.example:5000/v3
auth_type = password
project_domain_name = Default
user_domain_name = Default
project_name = service
username = cloudkitty
password = s3cret
region_name = RegionOne
service_token_roles = service, admin
memcached_servers = 127.0.0.1:11211

[oslo_policy]
policy_file = /etc/cloudkitty/policy.yaml
`

// [keystone_authtoken] as kolla-ansible renders it (ansible/roles/cloudkitty/
// templates/cloudkitty.conf.j2), with TLS off (`cafile = `), plus the other
// keystonemiddleware options (auth_token/_opts.py) a deployment may carry.
const KOLLA_CONF = `
[keystone_authtoken]
service_type = rating
www_authenticate_uri = http://10.0.0.10:5000
auth_url = http://10.0.0.10:5000
auth_type = password
project_domain_id = default
user_domain_id = default
project_name = service
username = cloudkitty
password = s3cret
region_name = RegionOne
cafile =

memcache_security_strategy = ENCRYPT
memcache_secret_key = 0123456789abcdef
memcached_servers = 10.0.0.11:11211,10.0.0.12:11211
memcache_pool_dead_retry = 300
memcache_pool_maxsize = 10
memcache_pool_socket_timeout = 3
memcache_pool_unused_timeout = 60
memcache_pool_conn_get_timeout = 10
memcache_use_advanced_pool = True
delay_auth_decision = False
include_service_catalog = True
enforce_token_bind = permissive
http_request_max_retries = 3
auth_version = v3
service_token_roles_required = True
`

describe('Keystone settings', () => {
  it("reads kolla-ansible's [keystone_authtoken]: domain ids, an empty cafile, and the keystonemiddleware options it does not use ignored", (t) => {
    const config = loadConfig({ file: confFile(t, KOLLA_CONF), env: {} })
    const options = keystoneAuthOptions(config.keystone)
    assert.equal(options.userDomainId, 'default')
    assert.equal(options.projectDomainId, 'default')
    // The names keep their defaults; the ids win over them when Keystone is asked.
    assert.equal(options.userDomainName, 'Default')
    assert.equal(options.tls, undefined)
    assert.equal(options.serviceTokenRolesRequired, true)
    assert.equal(options.username, 'cloudkitty')
  })

  it("reads auth_strategy = keystone and [keystone_authtoken] from a cloudkitty.conf", (t) => {
    const config = loadConfig({ file: confFile(t, CLOUDKITTY_CONF), env: {} })
    assert.equal(config.auth.strategy, 'keystone')
    assert.equal(config.policy.file, '/etc/cloudkitty/policy.yaml')
    const options = keystoneAuthOptions(config.keystone)
    assert.equal(options.wwwAuthenticateUri, 'https://keystone.example:5000')
    assert.equal(options.authUrl, 'https://keystone.example:5000/v3')
    assert.equal(options.username, 'cloudkitty')
    assert.equal(options.password, 's3cret')
    assert.equal(options.projectName, 'service')
    assert.equal(options.regionName, 'RegionOne')
    assert.equal(options.interface, 'internal')
    assert.deepEqual(options.serviceTokenRoles, ['service', 'admin'])
    assert.equal(options.tokenCacheMs, 300_000)
    assert.equal(options.negativeCacheMs, 10_000)
  })

  it("defaults to keystone, as CloudKitty's auth_strategy does, and takes noauth only when asked", () => {
    assert.equal(loadConfig({ env: {} }).auth.strategy, 'keystone')
    assert.equal(loadConfig({ env: { SCOPEKEEPER_DEFAULT_AUTH_STRATEGY: 'noauth' } }).auth.strategy, 'noauth')
    assert.equal(loadConfig({ env: { SCOPEKEEPER_DEFAULT_AUTH_STRATEGY: 'keystone' } }).auth.strategy, 'keystone')
    assert.equal(loadConfig({ env: { SCOPEKEEPER_DEFAULT_AUTH_STRATEGY: 'keystone' }, flags: { auth: 'noauth' } }).auth.strategy, 'noauth')
    assert.throws(() => loadConfig({ env: {}, flags: { auth: 'ldap' } }), /\[DEFAULT\] auth_strategy \(from flag --auth\): must be one of: noauth, keystone/)
  })

  it('lets the environment override [keystone_authtoken]', (t) => {
    const config = loadConfig({
      file: confFile(t, CLOUDKITTY_CONF),
      env: { SCOPEKEEPER_KEYSTONE_AUTHTOKEN_PASSWORD: 'from-env', SCOPEKEEPER_KEYSTONE_AUTHTOKEN_TOKEN_CACHE_TIME: '2', SCOPEKEEPER_OSLO_POLICY_POLICY_FILE: '' },
    })
    assert.equal(config.keystone.password, 'from-env')
    assert.equal(config.keystone.tokenCacheTime, 2)
    assert.equal(config.policy.file, '')
  })

  it('falls back to auth_url for WWW-Authenticate', () => {
    const config = loadConfig({ env: { SCOPEKEEPER_KEYSTONE_AUTHTOKEN_AUTH_URL: 'http://k:5000', SCOPEKEEPER_KEYSTONE_AUTHTOKEN_USERNAME: 'u', SCOPEKEEPER_KEYSTONE_AUTHTOKEN_PASSWORD: 'p', SCOPEKEEPER_KEYSTONE_AUTHTOKEN_PROJECT_NAME: 'service' } })
    assert.equal(keystoneAuthOptions(config.keystone).wwwAuthenticateUri, 'http://k:5000')
  })

  it('names every missing required setting, and the way back to noauth', () => {
    const config = loadConfig({ env: { SCOPEKEEPER_DEFAULT_AUTH_STRATEGY: 'keystone', SCOPEKEEPER_KEYSTONE_AUTHTOKEN_USERNAME: 'u' } })
    assert.throws(() => keystoneAuthOptions(config.keystone), (e: Error) => e instanceof ConfigError &&
      e.message.includes('auth_url (SCOPEKEEPER_KEYSTONE_AUTHTOKEN_AUTH_URL), password (SCOPEKEEPER_KEYSTONE_AUTHTOKEN_PASSWORD), project_name (SCOPEKEEPER_KEYSTONE_AUTHTOKEN_PROJECT_NAME)') &&
      !e.message.includes('username') && /SCOPEKEEPER_DEFAULT_AUTH_STRATEGY.*noauth/.test(e.message))
  })

  it('refuses bad values, naming the key and its source', () => {
    const bad: Array<[string, string, RegExp]> = [
      ['SCOPEKEEPER_KEYSTONE_AUTHTOKEN_AUTH_URL', 'keystone:5000', /\[keystone_authtoken\] auth_url .*http:\/\/ or https:\/\//],
      ['SCOPEKEEPER_KEYSTONE_AUTHTOKEN_WWW_AUTHENTICATE_URI', 'ftp://k', /\[keystone_authtoken\] www_authenticate_uri/],
      ['SCOPEKEEPER_KEYSTONE_AUTHTOKEN_AUTH_TYPE', 'v3token', /\[keystone_authtoken\] auth_type .*must be one of: password/],
      ['SCOPEKEEPER_KEYSTONE_AUTHTOKEN_TOKEN_CACHE_TIME', '86400', /\[keystone_authtoken\] token_cache_time .*from 0 to 3600/],
      ['SCOPEKEEPER_KEYSTONE_AUTHTOKEN_TOKEN_CACHE_SIZE', '0', /\[keystone_authtoken\] token_cache_size/],
      ['SCOPEKEEPER_KEYSTONE_AUTHTOKEN_NEGATIVE_CACHE_TIME', '-1', /\[keystone_authtoken\] negative_cache_time/],
      ['SCOPEKEEPER_KEYSTONE_AUTHTOKEN_HTTP_CONNECT_TIMEOUT', '1000', /\[keystone_authtoken\] http_connect_timeout .*at most 300/],
      ['SCOPEKEEPER_KEYSTONE_AUTHTOKEN_INTERFACE', 'private', /\[keystone_authtoken\] interface/],
    ]
    for (const [env, value, message] of bad) {
      assert.throws(() => loadConfig({ env: { [env]: value } }), (e: Error) => e instanceof ConfigError && message.test(e.message) && e.message.includes(env), env)
    }
  })
})
