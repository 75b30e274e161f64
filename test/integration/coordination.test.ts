import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it, type TestContext } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { Redis } from 'ioredis'
import { createConnection } from 'mysql2/promise'
import pg from 'pg'
import { ConfigError } from '../../src/config/load-config.ts'
import { processingLockName, type Coordinator } from '../../src/storage/coordination/coordinator.ts'
import { openCoordinator } from '../../src/storage/coordination/open-coordinator.ts'
import { advisoryKeyOf } from '../../src/storage/coordination/postgresql-coordinator.ts'
import { parseToozUrl } from '../../src/storage/coordination/tooz-url.ts'
import { deferCleanup } from '../helpers/cleanup.ts'
import { TEST_MARIADB_URL, TEST_POSTGRES_URL } from '../helpers/test-databases.ts'
import { cloudkittyLockNames, requireTooz, startToozHolder, toozSplit } from '../helpers/tooz-holder.ts'
import { freePort } from '../helpers/free-port.ts'

const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'
const scratch = mkdtempSync(join(tmpdir(), 'sk-coordination-'))
after(() => { rmSync(scratch, { recursive: true, force: true }) })

type Backend = 'file' | 'mysql' | 'postgresql' | 'redis'

/** A fresh place to lock in: a new directory, or a random Redis namespace; the databases' lock spaces are server-wide. */
function backendUrl (backend: Backend): string {
  const suffix = randomBytes(6).toString('hex')
  if (backend === 'file') return `file://${join(scratch, `locks-${suffix}`, 'nested')}`
  if (backend === 'mysql') return TEST_MARIADB_URL
  if (backend === 'postgresql') return TEST_POSTGRES_URL
  return `${TEST_REDIS_URL}?namespace=sk_test_${suffix}`
}

/** A lock name of CloudKitty's shape: 64 hex digits. */
function lockName (): string {
  return randomBytes(32).toString('hex')
}

/** `count` lock names no two of which share a PostgreSQL advisory key. */
function distinctKeys (count: number): string[] {
  const byKey = new Map<string, string>()
  while (byKey.size < count) {
    const name = lockName()
    byKey.set(advisoryKeyOf(name).join(','), name)
  }
  return [...byKey.values()]
}

const UNREACHABLE = new Set(['ECONNREFUSED', 'ENOENT', 'ETIMEDOUT', 'EHOSTUNREACH'])

/**
 * Our coordinator on `url`, closed after the test. An unreachable server
 * fails the test under CI=true and skips it, loudly, otherwise.
 */
async function ours (t: TestContext, url: string): Promise<Coordinator | undefined> {
  const coordinator = openCoordinator(url)
  deferCleanup(t, async () => { await coordinator.close() })
  try {
    const probe = await coordinator.tryLock([lockName()])
    await probe.release()
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? (error as { errors?: NodeJS.ErrnoException[] }).errors?.[0]?.code
    if (code === undefined || !UNREACHABLE.has(code)) throw error
    const problem = `${coordinator.description} is unreachable: ${(error as Error).message}`
    if (process.env.CI === 'true') throw new Error(`${problem} (every coordination backend is required when CI=true)`)
    process.stderr.write(`\n!!! SKIPPED: ${problem}\n`)
    t.skip(`SKIPPED: ${problem}`)
    return undefined
  }
  return coordinator
}

async function setUp (t: TestContext, backend: Backend) {
  if (!requireTooz(t)) return undefined
  const url = backendUrl(backend)
  const coordinator = await ours(t, url)
  if (coordinator === undefined) return undefined
  return { url, coordinator, tooz: await startToozHolder(t, url) }
}

for (const backend of ['file', 'mysql', 'postgresql', 'redis'] as const) {
  describe(`${backend}: CloudKitty's processing lock against a real tooz client`, () => {
    it('takes the names tooz does not hold and leaves the one it holds', async (t) => {
      const s = await setUp(t, backend)
      if (s === undefined) return
      const [n, m] = [lockName(), lockName()]
      assert.equal(await s.tooz.hold(n), true)
      const first = await s.coordinator.tryLock([n, m])
      assert.deepEqual([...first.held], [m])
      await first.release()
      assert.equal(await s.tooz.release(n), true)
      const second = await s.coordinator.tryLock([n])
      assert.deepEqual([...second.held], [n])
      await second.release()
    })

    it('keeps tooz out while it holds a name and lets it in once released', async (t) => {
      const s = await setUp(t, backend)
      if (s === undefined) return
      const n = lockName()
      const locks = await s.coordinator.tryLock([n])
      assert.deepEqual([...locks.held], [n])
      assert.equal(await s.tooz.try(n), false)
      await locks.release()
      assert.equal(await s.tooz.try(n), true)
    })

    it('excludes a second holder in this process, through the same or another coordinator', async (t) => {
      const s = await setUp(t, backend)
      if (s === undefined) return
      const other = openCoordinator(s.url)
      deferCleanup(t, async () => { await other.close() })
      const [n, m] = [lockName(), lockName()]
      const first = await s.coordinator.tryLock([n])
      const same = await s.coordinator.tryLock([n, m])
      assert.deepEqual([...same.held], [m])
      const another = await other.tryLock([n])
      assert.deepEqual([...another.held], [])
      await same.release()
      await another.release()
      // The failed attempts dropped nothing: tooz is still kept out.
      assert.equal(await s.tooz.try(n), false)
      await first.release()
      const again = await other.tryLock([n])
      assert.deepEqual([...again.held], [n])
      await again.release()
    })

    it('releases once, however often release is called', async (t) => {
      const s = await setUp(t, backend)
      if (s === undefined) return
      const n = lockName()
      const first = await s.coordinator.tryLock([n, n])
      assert.deepEqual([...first.held], [n])
      await Promise.all([first.release(), first.release()])
      await first.release()
      const second = await s.coordinator.tryLock([n])
      assert.deepEqual([...second.held], [n])
      // A stale release of the first holder leaves the second's lock alone.
      await first.release()
      assert.equal(await s.tooz.try(n), false)
      await second.release()
      assert.equal(await s.tooz.try(n), true)
    })

    it('takes a 500-name batch around the names tooz holds', async (t) => {
      const s = await setUp(t, backend)
      if (s === undefined) return
      // tooz's PostgresLock keys a name by two bytes of its MD5, so 500 random
      // names would share a key with a busy one about 2% of the time.
      const names = distinctKeys(500)
      const busy = [names[0], names[250], names[499]]
      for (const name of busy) assert.equal(await s.tooz.hold(name), true)
      const locks = await s.coordinator.tryLock(names)
      assert.equal(locks.held.size, 497)
      for (const name of busy) assert.equal(locks.held.has(name), false)
      assert.equal(await s.tooz.try(names[1]), false)
      await locks.release()
      assert.equal(await s.tooz.try(names[1]), true)
    })
  })
}

describe('a backend that cannot be reached', () => {
  it('rejects tryLock on MariaDB, PostgreSQL, Redis and a missing Redis socket', async (t) => {
    const dir = mkdtempSync(join(scratch, 'unreachable-'))
    // A Unix socket path where nothing listens, and a loopback port where nothing does.
    for (const url of ['mysql://root@127.0.0.1:1/test', 'postgresql://postgres@127.0.0.1:1/test', 'redis://127.0.0.1:1', `redis://${join(dir, 'none.sock')}`]) {
      const coordinator = openCoordinator(url)
      deferCleanup(t, async () => { await coordinator.close() })
      await assert.rejects(coordinator.tryLock([lockName()]), /ECONNREFUSED|ENOENT|connect/i, url)
    }
  })
})

describe('file: the lock file as fasteners takes it', () => {
  it('makes the directory and locks DIR/<name>', async (t) => {
    const s = await setUp(t, 'file')
    if (s === undefined) return
    const n = lockName()
    const dir = parseToozUrl(s.url).path
    const locks = await s.coordinator.tryLock([n])
    assert.ok(existsSync(join(dir, n)))
    await locks.release()
  })

  it('refuses reserved names and names outside the directory, as tooz does', async (t) => {
    const coordinator = openCoordinator(backendUrl('file'))
    deferCleanup(t, async () => { await coordinator.close() })
    for (const name of ['../escape', 'groups', 'tmp', '.driver_lock']) {
      await assert.rejects(coordinator.tryLock([name]), /cannot make a lock file/)
    }
  })
})

describe('mysql: named locks as tooz takes them', () => {
  it('holds GET_LOCK(<name>) on a session of its own', async (t) => {
    const s = await setUp(t, 'mysql')
    if (s === undefined) return
    const n = lockName()
    const locks = await s.coordinator.tryLock([n])
    const connection = await createConnection({ uri: TEST_MARIADB_URL })
    deferCleanup(t, async () => { await connection.end() })
    const [[row]] = await connection.query<any[]>('SELECT IS_USED_LOCK(?) AS holder, CONNECTION_ID() AS me', [n])
    assert.notEqual(row.holder, null)
    assert.notEqual(row.holder, row.me)
    await locks.release()
    const [[after]] = await connection.query<any[]>('SELECT IS_USED_LOCK(?) AS holder', [n])
    assert.equal(after.holder, null)
  })

  it('replaces an idle session the server ended meanwhile', async (t) => {
    const s = await setUp(t, 'mysql')
    if (s === undefined) return
    const n = lockName()
    const first = await s.coordinator.tryLock([n])
    const connection = await createConnection({ uri: TEST_MARIADB_URL })
    deferCleanup(t, async () => { await connection.end() })
    const [[row]] = await connection.query<any[]>('SELECT IS_USED_LOCK(?) AS holder', [n])
    await first.release()
    await connection.query(`KILL ${Number(row.holder)}`)
    const second = await s.coordinator.tryLock([n])
    assert.deepEqual([...second.held], [n])
    assert.equal(await s.tooz.try(n), false)
    await second.release()
  })
})

describe('postgresql: advisory locks as tooz takes them', () => {
  /** Two names whose md5 digests share their first two bytes. */
  function collidingNames (): [string, string] {
    const seen = new Map<number, string>()
    for (let i = 0; ; i++) {
      const name = createHash('sha256').update(`collide-${i}`).digest('hex')
      const [k1, k2] = advisoryKeyOf(name)
      const other = seen.get(k1 * 256 + k2)
      if (other !== undefined) return [other, name]
      seen.set(k1 * 256 + k2, name)
    }
  }

  it("takes tooz's key: the first two md5 bytes, as classid and objid", async (t) => {
    const s = await setUp(t, 'postgresql')
    if (s === undefined) return
    const n = lockName()
    const client = new pg.Client({ connectionString: TEST_POSTGRES_URL })
    await client.connect()
    deferCleanup(t, async () => { await client.end() })
    const holders = async () => (await client.query(
      "SELECT count(*)::int AS c FROM pg_locks WHERE locktype = 'advisory' AND classid = $1 AND objid = $2 AND objsubid = 2 AND granted",
      advisoryKeyOf(n))).rows[0].c as number
    assert.equal(await s.tooz.hold(n), true)
    assert.equal(await holders(), 1)
    assert.equal(await s.tooz.release(n), true)
    const locks = await s.coordinator.tryLock([n])
    assert.equal(await holders(), 1)
    await locks.release()
    assert.equal(await holders(), 0)
  })

  it("lets names that share a key exclude each other, as tooz's do", async (t) => {
    const s = await setUp(t, 'postgresql')
    if (s === undefined) return
    const [a, b] = collidingNames()
    assert.deepEqual(advisoryKeyOf(a), advisoryKeyOf(b))
    assert.equal(await s.tooz.hold(a), true)
    const blocked = await s.coordinator.tryLock([b])
    assert.deepEqual([...blocked.held], [])
    await blocked.release()
    assert.equal(await s.tooz.release(a), true)
    const both = await s.coordinator.tryLock([a, b])
    assert.deepEqual([...both.held].sort(), [a, b].sort())
    assert.equal(await s.tooz.try(b), false)
    const another = await s.coordinator.tryLock([a])
    assert.deepEqual([...another.held], [])
    await another.release()
    await both.release()
    assert.equal(await s.tooz.try(a), true)
  })

  it('replaces an idle session the server ended meanwhile', async (t) => {
    const s = await setUp(t, 'postgresql')
    if (s === undefined) return
    const n = lockName()
    const client = new pg.Client({ connectionString: TEST_POSTGRES_URL })
    await client.connect()
    deferCleanup(t, async () => { await client.end() })
    const first = await s.coordinator.tryLock([n])
    const { rows: [holder] } = await client.query(
      "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND classid = $1 AND objid = $2 AND objsubid = 2 AND granted", advisoryKeyOf(n))
    await first.release()
    await client.query('SELECT pg_terminate_backend($1)', [holder.pid])
    const second = await s.coordinator.tryLock([n])
    assert.deepEqual([...second.held], [n])
    assert.equal(await s.tooz.try(n), false)
    await second.release()
  })
})


/**
 * A Redis Sentinel watching the test Redis as `master`, stopped after the
 * test. Without redis-server it fails under CI=true and skips otherwise.
 */
async function startSentinel (t: TestContext, master: string): Promise<number | undefined> {
  const server = '/usr/bin/redis-server'
  if (!existsSync(server)) {
    const problem = `${server} is missing: no Redis Sentinel can run here`
    if (process.env.CI === 'true') throw new Error(problem)
    process.stderr.write(`\n!!! SKIPPED: ${problem}\n`)
    t.skip(`SKIPPED: ${problem}`)
    return undefined
  }
  const redis = parseToozUrl(TEST_REDIS_URL)
  const port = await freePort()
  const dir = mkdtempSync(join(scratch, 'sentinel-'))
  const config = join(dir, 'sentinel.conf')
  // Sentinel rewrites its configuration file, so it gets one of its own.
  writeFileSync(config, `port ${port}\nbind 127.0.0.1\ndir ${dir}\nsentinel monitor ${master} ${redis.hostname ?? '127.0.0.1'} ${redis.port ?? 6379} 1\n`)
  const child = spawn(server, [config, '--sentinel'], { stdio: 'ignore' })
  const exited = new Promise((resolve) => { child.once('exit', resolve) })
  deferCleanup(t, async () => { child.kill('SIGTERM'); await exited })
  const deadline = Date.now() + 10_000
  for (;;) {
    const client = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null })
    client.on('error', () => {})
    const address = await client.connect().then(async () => await client.call('SENTINEL', 'get-master-addr-by-name', master)).catch(() => null)
    client.disconnect()
    if (Array.isArray(address)) return port
    assert.ok(Date.now() < deadline, 'Redis Sentinel did not come up within 10 s')
    await sleep(100)
  }
}

describe("redis: redis-py's Lock as tooz takes it", () => {
  async function redisClient (t: TestContext): Promise<Redis> {
    const client = new Redis(TEST_REDIS_URL)
    deferCleanup(t, async () => { await client.quit() })
    return client
  }

  it("sets the key b'<namespace>'_b'<name>'_lock with tooz's expiry and a token", async (t) => {
    const s = await setUp(t, 'redis')
    if (s === undefined) return
    const namespace = parseToozUrl(s.url).options.get('namespace')!
    const n = lockName()
    const key = `b'${namespace}'_b'${n}'_lock`
    const client = await redisClient(t)
    assert.equal(await s.tooz.hold(n), true)
    const toozToken = await client.get(key)
    assert.match(toozToken ?? '', /^[0-9a-f]{32}$/)
    assert.equal(await s.tooz.release(n), true)
    const locks = await s.coordinator.tryLock([n])
    assert.match(await client.get(key) ?? '', /^[0-9a-f]{32}$/)
    const ttl = await client.pttl(key)
    assert.ok(ttl > 25_000 && ttl <= 30_000, `pttl ${ttl}`)
    await locks.release()
    assert.equal(await client.exists(key), 0)
  })

  it('leaves a key alone on release once another token holds it', async (t) => {
    const s = await setUp(t, 'redis')
    if (s === undefined) return
    const n = lockName()
    const key = `b'${parseToozUrl(s.url).options.get('namespace')!}'_b'${n}'_lock`
    const locks = await s.coordinator.tryLock([n])
    const client = await redisClient(t)
    await client.set(key, 'someone-else')
    await locks.release()
    assert.equal(await client.get(key), 'someone-else')
    await client.del(key)
  })

  it('finds the master through a Sentinel, as tooz does with ?sentinel=', async (t) => {
    const s = await setUp(t, 'redis')
    if (s === undefined) return
    const sentinelPort = await startSentinel(t, 'sk_test_master')
    if (sentinelPort === undefined) return
    const namespace = parseToozUrl(s.url).options.get('namespace')!
    const url = `redis://127.0.0.1:${sentinelPort}?sentinel=sk_test_master&namespace=${namespace}`
    const coordinator = openCoordinator(url)
    deferCleanup(t, async () => { await coordinator.close() })
    const tooz = await startToozHolder(t, url)
    const [n, m] = [lockName(), lockName()]
    assert.equal(await tooz.hold(n), true)
    // The same master as the plain URL's.
    const direct = await s.coordinator.tryLock([n])
    assert.deepEqual([...direct.held], [])
    await direct.release()
    const locks = await coordinator.tryLock([n, m])
    assert.deepEqual([...locks.held], [m])
    assert.equal(await s.tooz.try(m), false)
    await locks.release()
    assert.equal(await s.tooz.try(m), true)
  })

  it('keeps a lock alive past lock_timeout while it is held', async (t) => {
    if (!requireTooz(t)) return
    const url = `${backendUrl('redis')}&lock_timeout=1`
    const coordinator = await ours(t, url)
    if (coordinator === undefined) return
    const tooz = await startToozHolder(t, url)
    const n = lockName()
    const locks = await coordinator.tryLock([n])
    await sleep(2500)
    assert.equal(await tooz.try(n), false)
    await locks.release()
    assert.equal(await tooz.try(n), true)
  })
})

describe("processingLockName: CloudKitty's own lock name", () => {
  it('equals cloudkitty.orchestrator.get_lock for each scope', async (t) => {
    if (!requireTooz(t)) return
    const scopes = ['7a3e0b2c9d4f4e1a8b6c5d4e3f2a1b0c', 'project-1', 'a b', '']
    for (const settings of [
      { collector: 'gnocchi', fetcher: 'keystone', scopeKey: 'project_id' },
      { collector: 'prometheus', fetcher: 'prometheus', scopeKey: 'namespace' },
    ]) {
      assert.deepEqual(scopes.map((id) => processingLockName(id, settings)), await cloudkittyLockNames(settings, scopes))
    }
  })
})

describe('coordination_url as tooz reads it', () => {
  it('splits every URL as get_coordinator does', async (t) => {
    if (!requireTooz(t)) return
    const urls = [
      'file:///var/lib/cloudkitty/locks', 'file://locks', 'file:locks', 'file://host/dir', 'file:///tmp/my%20locks?timeout=5',
      'mysql://cloudkitty:pw@db.example:3306/cloudkitty?ssl_ca=/etc/ssl/ca.pem', 'mysql://u:p@s#s@h:3306/db', 'mysql://u:S3cr#t;pw@h/db',
      'mysql://u:p%40ss@H/d%62?a=1&a=2&b=&c', 'mysql://h:99999/x', 'mysql://h:+1/x', 'mysql://[::1]:3306/x', 'mysql://[::1/x',
      'redis://:pw@127.0.0.1:6379?db=2&namespace=a+b%20c', 'redis:///run/redis.sock?db=1', 'postgresql://u@:5432?dbname=x&host=/run/pg',
      'MySQL://u:p@h/d', ' mysql://a\tb@h/x', 'zookeeper://h:2181',
    ]
    const expected = await toozSplit(urls)
    urls.forEach((url, i) => {
      let actual: Record<string, unknown>
      try {
        const p = parseToozUrl(url)
        actual = {
          scheme: p.scheme,
          netloc: p.netloc,
          path: p.path,
          hostname: p.hostname ?? null,
          port: p.port ?? null,
          username: p.username ?? null,
          password: p.password ?? null,
          options: Object.fromEntries(p.options),
        }
      } catch (error) {
        actual = { error: (error as Error).message }
      }
      // Python's error quotes the offending text; ours does not (it may be a password).
      const errorKind = (reply: Record<string, unknown>) => typeof reply.error === 'string' ? { error: reply.error.replace(/ (as|\().*$/, '') } : reply
      assert.deepEqual(errorKind(actual), errorKind(expected[i]), url)
    })
  })

  it('refuses the other tooz backends, naming the oslo_messaging dispatcher', () => {
    for (const url of ['zookeeper://h:2181', 'kazoo://h:2181', 'zake://', 'etcd3://h:2379', 'etcd3+http://h:2379', 'memcached://h:11211', 'consul://h:8500', 'ipc://']) {
      assert.throws(() => openCoordinator(url), (error: Error) => {
        assert.ok(error instanceof ConfigError)
        assert.match(error.message, /cannot exclude CloudKitty's processor/)
        assert.match(error.message, /\[reset\] dispatcher = oslo_messaging/)
        return true
      }, url)
    }
  })

  it('refuses an unusable URL in one line with the password masked', () => {
    const cases: Array<[string, RegExp]> = [
      ['mysql+pymysql://ck:S3cret@db/cloudkitty', /no tooz backend 'mysql\+pymysql'.*write mysql:\/\//],
      ['postgres://ck:S3cret@db/cloudkitty', /no tooz backend 'postgres'/],
      ['rediss://:S3cret@cache:6379', /no tooz backend 'rediss'/],
      ['mysql://ck:S3c#ret;pw@db/cloudkitty', /Port could not be cast/],
      ['mysql://ck:S3cret@db:99999/cloudkitty', /Port out of range/],
      // tooz would connect to host 'pw#1' / 'ck' port 12: parts of the password.
      ['mysql://ck:S3c@pw#1;ret@db/cloudkitty', /an '@' after its host part.*choose one without '\/', '\?' and '#'/],
      ['postgresql://ck:12/S3cret@db/cloudkitty', /an '@' after its host part/],
      ['redis://:S3c@ret?x@cache:6379', /an '@' after its host part/],
      ['mysql://ck:S3cret@db/cloudkitty?ssl_ca=/nonexistent/ca.pem', /cannot read the ssl_ca file/],
      ['mysql://ck:S3cret@db/cloudkitty?ssl_ca=/etc/hostname&ssl_verify_mode=none', /ssl_check_hostname=false/],
      ['redis://:S3cret@cache:6379?lock_timeout=3.5', /invalid literal for int/],
      ['redis://:S3cret@cache?sentinel=mymaster', /sentinel/],
      ['file:locks', /absolute directory/],
      ['file://', /absolute lock directory/],
      ['file:///var/lib/../lib/locks', /absolute directory/],
      ['', /no tooz backend ''/],
    ]
    for (const [url, message] of cases) {
      assert.throws(() => openCoordinator(url), (error: Error) => {
        assert.ok(error instanceof ConfigError, url)
        assert.match(error.message, message)
        assert.match(error.message, /\[orchestrator\] coordination_url/)
        assert.doesNotMatch(error.message, /S3c|ret;pw|pw#1|12\//)
        assert.doesNotMatch(error.message, /\n/)
        return true
      }, url)
    }
  })

  it('reads kolla-ansible\'s form and the query options tooz reads', () => {
    for (const url of [
      'mysql://cloudkitty:pw@10.0.0.10:3306/cloudkitty',
      'file:///var/lib/cloudkitty/locks',
      'postgresql://ck:pw@db:5432?dbname=cloudkitty',
      'redis://:pw@cache:6379?db=3&namespace=ck&lock_timeout=60&socket_timeout=5',
    ]) {
      const coordinator = openCoordinator(url)
      assert.doesNotMatch(coordinator.description, /:pw@/)
      void coordinator.close()
    }
  })
})
