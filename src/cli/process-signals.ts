import { SETTINGS, type Config, type Setting } from '../config/config-schema.ts'
import { logLevel, type ProcessLog } from '../logger.ts'

// oslo.log declares debug mutable=True (_options.py): oslo.config's
// mutate_config_files applies it on SIGHUP and only warns about the rest.
// [log] level is ours and means the same kind of thing.
const MUTABLE = new Set(['log.debug', 'log.level'])

function valueOf (config: Config, setting: Setting): unknown {
  const [group, name] = setting.path.split('.')
  return (config as unknown as Record<string, Record<string, unknown>>)[group][name]
}

function messageOf (error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}

/**
 * Logs every setting in force at debug level, as oslo.service's launcher
 * does at start and after each SIGHUP (`conf.log_opt_values(LOG,
 * logging.DEBUG)`), secrets written `****` as oslo.config writes them.
 */
function logOptionValues (log: ProcessLog, config: Config): void {
  const options = Object.fromEntries(SETTINGS.map((setting) => [`${setting.section}.${setting.key}`, setting.secret === true ? '****' : valueOf(config, setting)]))
  log.logger.debug({ options }, 'Full set of CONF')
}

/**
 * SIGTERM and SIGINT: logs "stopping", runs `close` (which lets work in
 * flight finish within its bounds), then exits 0, or 1 when closing
 * failed. A second signal while stopping changes nothing.
 */
export function onStopSignals (log: ProcessLog, close: () => Promise<void>): void {
  let isStopping = false
  const stop = (signal: string) => {
    if (isStopping) return
    isStopping = true
    log.logger.info({ signal }, 'stopping')
    close().then(() => {
      log.logger.info({ signal }, 'stopped')
      log.close()
      process.exit(0)
    }, (error: unknown) => {
      log.logger.error({ err: error }, 'unclean stop')
      log.close()
      process.exit(1)
    })
  }
  process.on('SIGTERM', () => stop('SIGTERM'))
  process.on('SIGINT', () => stop('SIGINT'))
}

/** What SIGHUP reloads besides the log. */
export interface Hangup {
  /** Also reload the policy file on SIGHUP (once the API is built). */
  reloadPolicyWith: (reload: () => void) => void
}

/**
 * SIGHUP, which never ends the process: reopens the log file (logrotate's
 * postrotate), reads the configuration again from the sources of the start
 * (`reread`) and applies `[DEFAULT] debug` and `[log] level`, logging each
 * change as oslo.config's mutate_config_files does and warning that any
 * other changed setting is ignored until a restart; then reloads the policy
 * file, if asked to. A configuration or policy file that no longer reads is
 * logged as an error and what is in force stays. The settings in force are
 * logged at debug level now and after each SIGHUP.
 */
export function onHangup (log: ProcessLog, config: Config, reread: () => Config): Hangup {
  let current = config
  let reloadPolicy: (() => void) | undefined
  logOptionValues(log, current)
  process.on('SIGHUP', () => {
    const { logger } = log
    log.reopen()
    try {
      const fresh = reread()
      for (const setting of SETTINGS) {
        const [before, after] = [valueOf(current, setting), valueOf(fresh, setting)]
        if (before === after) continue
        const option = `${setting.section}.${setting.key}`
        if (MUTABLE.has(setting.path)) logger.info({ signal: 'SIGHUP' }, `Option ${option} changed from [${String(before)}] to [${String(after)}]`)
        else logger.warn({ signal: 'SIGHUP' }, `Ignoring change to immutable option ${option}: it takes effect at the next start`)
      }
      current = { ...current, log: { ...current.log, level: fresh.log.level, debug: fresh.log.debug } }
      log.setLevel(logLevel(current.log))
      logOptionValues(log, current)
    } catch (error) {
      logger.error({ signal: 'SIGHUP', logLevel: logger.level }, `the configuration could not be read again, the log level stays: ${messageOf(error)}`)
    }
    if (reloadPolicy !== undefined) {
      try {
        reloadPolicy()
      } catch (error) {
        logger.error({ signal: 'SIGHUP', policyFile: config.policy.file }, `the policy file no longer reads, the rules in force stay: ${messageOf(error)}`)
      }
    }
    const reloaded = reloadPolicy === undefined ? 'the log level' : 'the log level and the policy file'
    logger.info({ signal: 'SIGHUP', logLevel: logger.level, logFile: log.file }, `reloaded ${reloaded}${log.file === undefined ? '' : '; log file reopened'}`)
  })
  return { reloadPolicyWith: (reload) => { reloadPolicy = reload } }
}
