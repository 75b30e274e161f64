import { ConfigError } from '../../config/load-config.ts'
import type { Coordinator } from './coordinator.ts'
import { FileCoordinator, fileLockDirectory } from './file-coordinator.ts'
import { MysqlCoordinator, mysqlConnectionOptions } from './mysql-coordinator.ts'
import { PostgresqlCoordinator, postgresConnectionOptions } from './postgresql-coordinator.ts'
import { RedisCoordinator, redisLockSettings } from './redis-coordinator.ts'
import { maskToozUrl, parseToozUrl, ToozUrlError } from './tooz-url.ts'

const SETTING = '[orchestrator] coordination_url'

/** tooz 3.1's other backends (its `tooz.backends` entry points): CloudKitty can lock there, we cannot. */
const OTHER_TOOZ_BACKENDS = ['consul', 'etcd', 'etcd3', 'etcd3+http', 'etcd3+https', 'ipc', 'kazoo', 'memcached', 'zake', 'zookeeper']

// What follows the authority, as urlsplit reads it.
function afterHostPart (url: string): string {
  const start = url.indexOf('//')
  return start < 0 ? url : url.slice(start + 2).replace(/^[^/?#]*/, '')
}

/**
 * The {@link Coordinator} for CloudKitty's `[orchestrator] coordination_url`,
 * chosen by its scheme as tooz's `get_coordinator` chooses a driver (the
 * scheme exactly: `mysql+pymysql://` is no tooz backend). Connects lazily:
 * nothing is reached before the first `tryLock`.
 *
 * Throws a {@link ConfigError}, one line with the password masked, for a URL
 * tooz could not use (also one whose password holds a '/', '?' or '#'
 * before an '@'), and for every other backend: resets cannot exclude
 * CloudKitty's processor there, and `[reset] dispatcher = oslo_messaging`
 * hands them to the processor instead.
 */
export function openCoordinator (url: string): Coordinator {
  const masked = maskToozUrl(url).replace(/[\r\n]+/g, ' ')
  try {
    const parsed = parseToozUrl(url)
    // tooz ends the host part at the first '/', '?' or '#', even inside a
    // password, and never decodes one: with an '@' after it, the host tooz
    // (and CloudKitty's processor) would connect to is part of the password,
    // and a connection error would name it.
    if (parsed.scheme !== 'file' && afterHostPart(url).includes('@')) {
      throw new ConfigError(`${SETTING} ${masked} has an '@' after its host part, which tooz ends at the first '/', '?' or '#', even inside a password: CloudKitty's processor cannot use such a password either; choose one without '/', '?' and '#'`)
    }
    switch (parsed.scheme) {
      case 'file':
        return new FileCoordinator(fileLockDirectory(parsed), `file://${parsed.path}`)
      case 'mysql':
        return new MysqlCoordinator(mysqlConnectionOptions(parsed), masked)
      case 'postgresql':
        return new PostgresqlCoordinator(postgresConnectionOptions(parsed), masked)
      case 'redis':
        return new RedisCoordinator(redisLockSettings(parsed), masked)
    }
    if (OTHER_TOOZ_BACKENDS.includes(parsed.scheme)) {
      throw new ConfigError(`${SETTING} ${masked} names tooz's ${parsed.scheme} backend, where resets cannot exclude CloudKitty's processor; set [reset] dispatcher = oslo_messaging to hand resets to the processor instead`)
    }
    const hint = /^(mysql|postgresql)\+/.test(parsed.scheme) || parsed.scheme === 'postgres'
      ? ` (tooz takes the scheme as its backend name: write ${parsed.scheme.startsWith('mysql') ? 'mysql' : 'postgresql'}://)`
      : ''
    throw new ConfigError(`${SETTING} ${masked} names no tooz backend '${parsed.scheme}'${hint}: use file://, mysql://, postgresql:// or redis://, or set [reset] dispatcher = oslo_messaging to hand resets to CloudKitty's processor instead`)
  } catch (error) {
    if (error instanceof ToozUrlError) throw new ConfigError(`Unusable ${SETTING} ${masked}: ${error.message.replace(/[\r\n]+/g, ' ')}`)
    throw error
  }
}
