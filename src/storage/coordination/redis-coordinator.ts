import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import type * as IORedis from 'ioredis'
import type { Redis as RedisClient, RedisOptions, Result } from 'ioredis'
import type { Coordinator, HeldLocks } from './coordinator.ts'
import { boolOption, intOption, ToozUrlError, type ToozUrl } from './tooz-url.ts'

// ioredis is loaded when a URL first names redis://.
const require = createRequire(import.meta.url)

// redis-py's scripts, verbatim (redis/lock.py Lock.LUA_RELEASE_SCRIPT and
// LUA_REACQUIRE_SCRIPT): a lock is deleted or extended only while it still
// holds the token its holder set.
const LUA_RELEASE_SCRIPT = `
        local token = redis.call('get', KEYS[1])
        if not token or token ~= ARGV[1] then
            return 0
        end
        redis.call('del', KEYS[1])
        return 1
    `
const LUA_REACQUIRE_SCRIPT = `
        local token = redis.call('get', KEYS[1])
        if not token or token ~= ARGV[1] then
            return 0
        end
        redis.call('pexpire', KEYS[1], ARGV[2])
        return 1
    `

declare module 'ioredis' {
  interface RedisCommander<Context> {
    toozRelease: (key: string, token: string) => Result<number, Context>
    toozReacquire: (key: string, token: string, milliseconds: number) => Result<number, Context>
  }
}

/** Python's `repr()` of a bytes object, as `str(b'...')` prints it. */
export function pythonBytesRepr (bytes: Buffer): string {
  const quote = bytes.includes(0x27) && !bytes.includes(0x22) ? '"' : "'"
  let text = ''
  for (const byte of bytes) {
    const char = String.fromCharCode(byte)
    if (char === quote || char === '\\') text += `\\${char}`
    else if (char === '\t') text += '\\t'
    else if (char === '\n') text += '\\n'
    else if (char === '\r') text += '\\r'
    else if (byte < 0x20 || byte >= 0x7f) text += `\\x${byte.toString(16).padStart(2, '0')}`
    else text += char
  }
  return `b${quote}${text}${quote}`
}

/** The few Python codec names a namespace is likely to be encoded with (the `encoding` option). */
function nodeEncoding (python: string): BufferEncoding {
  const name = python.toLowerCase().replace(/[-_ ]/g, '')
  if (name === 'utf8') return 'utf8'
  if (name === 'latin1' || name === 'iso88591' || name === 'l1') return 'latin1'
  if (name === 'ascii' || name === 'usascii') return 'ascii'
  throw new ToozUrlError(`option encoding: only utf8, latin-1 and ascii are supported here, not '${python}'`)
}

/** What tooz's Redis driver reads from the URL, and the client options redis-py would connect with. */
export interface RedisLockSettings {
  client: RedisOptions
  /** `RedisDriver.namespace`: the `namespace` option, encoded (bytes in tooz). Defaults to `_tooz`. */
  namespace: Buffer
  /** `lock_timeout`, else `timeout`, in seconds; 0 sets no expiry (redis-py sends no PX). Defaults to 30. */
  lockTimeoutSeconds: number
}

/**
 * tooz's `RedisDriver.__init__` and `_make_client`: host and port, or a Unix
 * socket path when the URL has no host; the password only (tooz passes no
 * user name); the `db`, `ssl`, `ssl_certfile`, `ssl_keyfile`,
 * `socket_timeout` (default: `timeout`, 30 s) and `sentinel` /
 * `sentinel_fallback` options. The URL's path is not a database number
 * here: tooz reads only `?db=`. TLS verifies the certificate against the
 * default CAs but not the host name, as redis-py's defaults do.
 */
export function redisLockSettings (url: ToozUrl): RedisLockSettings {
  const options = url.options
  const timeout = intOption(options, 'timeout', 30)
  const lockTimeoutSeconds = intOption(options, 'lock_timeout', timeout)
  if (lockTimeoutSeconds < 0) throw new ToozUrlError(`option lock_timeout: Redis refuses a negative expiry (${lockTimeoutSeconds})`)
  const socketTimeoutMs = intOption(options, 'socket_timeout', timeout) * 1000
  const encoding = nodeEncoding(options.get('encoding') ?? 'utf8')
  const client: RedisOptions = {
    db: intOption(options, 'db', 0),
    ...(url.password !== undefined && url.password !== '' ? { password: url.password } : {}),
    ...(socketTimeoutMs > 0 ? { connectTimeout: socketTimeoutMs, socketTimeout: socketTimeoutMs } : {}),
  }
  if (url.hostname === undefined) {
    if (url.path === '') throw new ToozUrlError('tooz expects a Unix socket path in the URL when it names no host')
    client.path = url.path
  } else {
    client.host = url.hostname
    client.port = url.port ?? 6379
  }
  if (boolOption(options, 'ssl', false)) {
    const read = (option: string): Buffer | undefined => {
      const path = options.get(option)
      if (path === undefined) return undefined
      try {
        return readFileSync(path)
      } catch (error) {
        throw new ToozUrlError(`cannot read the ${option} file ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`)
      }
    }
    const cert = read('ssl_certfile')
    const key = read('ssl_keyfile')
    client.tls = {
      rejectUnauthorized: true,
      checkServerIdentity: () => undefined,
      ...(cert !== undefined ? { cert, key: key ?? cert } : {}),
    }
  }
  const sentinel = options.get('sentinel')
  if (sentinel !== undefined) {
    // _make_client reads kwargs['host'] and kwargs['port'] for the first sentinel.
    if (client.host === undefined || url.port === undefined) throw new ToozUrlError('option sentinel: tooz needs the first sentinel\'s host and port in the URL')
    const fallbacks = (url.queryLists.get('sentinel_fallback') ?? []).map((entry) => {
      const [host, port] = entry.split(':')
      return { host, port: Number(port) }
    })
    client.sentinels = [{ host: client.host, port: client.port }, ...fallbacks]
    client.name = sentinel
    // Sentinels are asked without a password, as tooz's Sentinel(...) is built.
    delete client.host
    delete client.port
  }
  return { client, namespace: Buffer.from(options.get('namespace') ?? '_tooz', encoding), lockTimeoutSeconds }
}

/**
 * tooz's Redis driver: a lock is redis-py's `Lock` on the key
 * `"%s_%s_lock" % (coord.namespace, str(name))`, both bytes, so the key
 * reads `b'_tooz'_b'<name>'_lock` (`tooz/drivers/redis.py`
 * `RedisLock.__init__`); taken with `SET key token NX PX lock_timeout`
 * (`redis/lock.py` `Lock.do_acquire`), released by redis-py's release script
 * only while the token still matches, and kept alive by its reacquire
 * script every half `lock_timeout`, as tooz's heartbeat does for the
 * processor. A batch is one pipelined round trip; two holders here exclude
 * each other, as the key is set only once.
 */
export class RedisCoordinator implements Coordinator {
  private readonly client: RedisClient
  private readonly holders = new Set<() => Promise<void>>()
  private connectionError: Error | undefined

  constructor (private readonly settings: RedisLockSettings, readonly description: string) {
    const { Redis } = require('ioredis') as typeof IORedis
    this.client = new Redis({ ...settings.client, lazyConnect: true, maxRetriesPerRequest: 1 })
    // Connection errors reject the commands waiting on them; without a listener ioredis prints each one.
    this.client.on('error', (error: Error) => { this.connectionError = error })
    this.client.on('ready', () => { this.connectionError = undefined })
    this.client.defineCommand('toozRelease', { numberOfKeys: 1, lua: LUA_RELEASE_SCRIPT })
    this.client.defineCommand('toozReacquire', { numberOfKeys: 1, lua: LUA_REACQUIRE_SCRIPT })
  }

  /** The key tooz's `RedisLock` uses for `name` (a CloudKitty lock name is ASCII). */
  keyOf (name: string): string {
    return `${pythonBytesRepr(this.settings.namespace)}_${pythonBytesRepr(Buffer.from(name, 'ascii'))}_lock`
  }

  async tryLock (names: readonly string[]): Promise<HeldLocks> {
    const unique = [...new Set(names)]
    if (unique.length === 0) return { held: new Set(), release: async () => {} }
    // redis-py's token is uuid1().hex: 32 hex digits, compared only with itself.
    const token = randomBytes(16).toString('hex')
    const milliseconds = this.settings.lockTimeoutSeconds * 1000
    const keys = unique.map((name) => this.keyOf(name))
    const releaseKeys = async (some: string[]): Promise<void> => {
      if (some.length === 0) return
      const pipeline = this.client.pipeline()
      for (const key of some) pipeline.toozRelease(key, token)
      const results = await pipeline.exec()
      const failed = results?.find(([error]) => error !== null)
      if (failed !== undefined) throw failed[0]
    }
    let results: Array<[Error | null, unknown]> | null
    try {
      const pipeline = this.client.pipeline()
      for (const key of keys) {
        if (milliseconds > 0) pipeline.set(key, token, 'PX', milliseconds, 'NX')
        else pipeline.set(key, token, 'NX')
      }
      results = await pipeline.exec()
      const failed = results?.find(([error]) => error !== null)
      if (results === null || failed !== undefined) throw failed?.[0] ?? new Error('Redis answered no results')
    } catch (error) {
      // Some SETs may have landed: only keys that still hold our token go.
      await releaseKeys(keys).catch(() => {})
      // ioredis gives up with MaxRetriesPerRequestError; the cause is the connection's error.
      throw (error as Error).name === 'MaxRetriesPerRequestError' && this.connectionError !== undefined ? this.connectionError : error
    }
    const takenKeys = keys.filter((_, i) => results![i][1] === 'OK')
    const held = new Set(unique.filter((_, i) => results![i][1] === 'OK'))
    let timer: NodeJS.Timeout | undefined
    if (milliseconds > 0 && takenKeys.length > 0) {
      timer = setInterval(() => {
        const pipeline = this.client.pipeline()
        for (const key of takenKeys) pipeline.toozReacquire(key, token, milliseconds)
        pipeline.exec().catch(() => {})
      }, Math.max(milliseconds / 2, 100))
      timer.unref()
    }
    let released: Promise<void> | undefined
    const release = async (): Promise<void> => {
      released ??= (async () => {
        clearInterval(timer)
        this.holders.delete(release)
        await releaseKeys(takenKeys)
      })()
      await released
    }
    this.holders.add(release)
    return { held, release }
  }

  /** Releases every lock still held here, then disconnects. */
  async close (): Promise<void> {
    await Promise.all([...this.holders].map(async (release) => { await release().catch(() => {}) }))
    if (this.client.status === 'wait') this.client.disconnect()
    else await this.client.quit().catch(() => { this.client.disconnect() })
  }
}
