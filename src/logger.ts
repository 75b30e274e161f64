import { closeSync, fstatSync, openSync, statSync, writeSync } from 'node:fs'
import { pino, type DestinationStream, type Logger } from 'pino'
import type { Config } from './config/config-schema.ts'
import { ConfigError } from './config/load-config.ts'

/** The name oslo.log would take from `sys.argv[0]`: it names the file under a lone `log_dir`. */
export type LogBinary = 'scopekeeper-api' | 'scopekeeper-worker' | 'scopekeeper-migrate'

/** The process logger and what SIGHUP and the stop do with it. */
export interface ProcessLog {
  logger: Logger
  /** The log file, or undefined when lines go to standard output or error only. */
  file: string | undefined
  /** Opens the log file again if it was moved or deleted (logrotate); a no-op without one. */
  reopen: () => void
  setLevel: (level: string) => void
  /** Writes out what standard output and error still buffer; the file is written synchronously. */
  flush: () => void
  /** Flushes and closes the file; a line logged afterwards opens it again rather than being lost. */
  close: () => void
}

// Python's os.path.join of two parts: an absolute second part replaces the first.
function pythonJoin (dir: string, name: string): string {
  if (name.startsWith('/')) return name
  return dir.endsWith('/') ? `${dir}${name}` : `${dir}/${name}`
}

/**
 * Where the log goes, as oslo.log's `_get_log_file_path` decides (log.py):
 * `log_file` alone; `log_file` under `log_dir`; `log_dir` alone gives
 * `<log_dir>/<binary>.log`; neither: no file.
 */
export function logFilePath (log: Pick<Config['log'], 'file' | 'dir'>, binary: LogBinary): string | undefined {
  if (log.file !== '' && log.dir === '') return log.file
  if (log.file !== '' && log.dir !== '') return pythonJoin(log.dir, log.file)
  if (log.dir !== '') return `${pythonJoin(log.dir, binary)}.log`
  return undefined
}

/**
 * The level in force: `[log] level`, lowered to debug by `[DEFAULT] debug`
 * (oslo.log's `_refresh_root_level` sets DEBUG whatever else was asked),
 * except that trace, which says more, stays.
 */
export function logLevel (log: Pick<Config['log'], 'level' | 'debug'>): string {
  if (!log.debug || log.level === 'trace') return log.level
  return 'debug'
}

// A stat per line is what WatchedFileHandler does; a stat at most once a
// second costs nothing under load, and the replay below means the lines
// written in between are not lost either way.
const CHECK_INTERVAL_MS = 1000
// Bounds the lines kept for a replay: past it, the next line stats first.
const REPLAY_LIMIT = 1 << 20

/**
 * Appends lines to a file, as logging.handlers.WatchedFileHandler does:
 * when the path no longer names the file held open (its device or inode
 * differ, or it is gone), the file is opened again by its path. Python
 * stats before every line; here the path is looked at before a line at
 * most once a second, before the first line after a quiet second, and on
 * {@link reopen} (SIGHUP). In between, lines go to the file held open:
 * after a rename that is the rotated file, so they are kept there; after an
 * unlink nothing keeps them, so the lines written since the path was last
 * seen to be ours are written again to the new file. Writes are
 * synchronous: no write is in flight when a descriptor is closed, and a
 * line logged is in the kernel before the call returns.
 */
class WatchedFile implements DestinationStream {
  private fd = -1
  private dev = -1n
  private ino = -1n
  private checkedAt = 0
  private sinceCheck: string[] = []
  private sinceCheckSize = 0
  private lastProblem = ''

  constructor (readonly path: string) {
    this.open()
  }

  write (line: string): void {
    const now = Date.now()
    if (this.fd >= 0 && (now - this.checkedAt >= CHECK_INTERVAL_MS || this.sinceCheckSize + line.length > REPLAY_LIMIT)) this.check(now)
    try {
      if (this.fd < 0) this.open()
      writeAll(this.fd, line)
      this.sinceCheck.push(line)
      this.sinceCheckSize += line.length
    } catch (error) {
      // A full disk must not turn a request into a 500: say so once, go on.
      this.report('cannot write to', error)
    }
  }

  /** Opens the path again if it no longer names the open file. */
  check (now = Date.now()): void {
    try {
      const current = statSync(this.path, { bigint: true, throwIfNoEntry: false })
      if (current !== undefined && current.dev === this.dev && current.ino === this.ino) {
        this.seen(now)
        return
      }
      const old = this.fd
      const unkept = fstatSync(old, { bigint: true }).nlink === 0n ? this.sinceCheck : []
      try {
        this.open()
      } catch (error) {
        // Keep writing to the old file, and try again in a second.
        this.fd = old
        this.checkedAt = now
        throw error
      }
      closeSync(old)
      for (const line of unkept) writeAll(this.fd, line)
    } catch (error) {
      this.checkedAt = now
      this.report('cannot reopen', error)
    }
  }

  close (): void {
    if (this.fd < 0) return
    closeSync(this.fd)
    this.fd = -1
  }

  private open (): void {
    const fd = openSync(this.path, 'a')
    const opened = fstatSync(fd, { bigint: true })
    this.fd = fd
    this.dev = opened.dev
    this.ino = opened.ino
    this.seen(Date.now())
  }

  private seen (now: number): void {
    this.checkedAt = now
    this.sinceCheck = []
    this.sinceCheckSize = 0
  }

  private report (what: string, error: unknown): void {
    const message = `scopekeeper: ${what} the log file ${this.path}: ${(error as Error).message}\n`
    if (message === this.lastProblem) return
    this.lastProblem = message
    process.stderr.write(message)
  }
}

// A regular file takes a whole write unless the disk fills; finish one that stopped short.
function writeAll (fd: number, text: string): void {
  const written = writeSync(fd, text)
  if (written === Buffer.byteLength(text)) return
  const bytes = Buffer.from(text)
  for (let at = written; at < bytes.length;) at += writeSync(fd, bytes, at)
}

function settingOf (log: Config['log']): string {
  if (log.file === '') return '[DEFAULT] log_dir'
  return log.dir === '' ? '[DEFAULT] log_file' : '[DEFAULT] log_file (under log_dir)'
}

// Keys a credential would be logged under; nothing logs them today, and
// nothing should show them if something does.
// Exact paths only: a wildcard path made fast-redact walk every line's
// object, 14 µs a line, five times the cost of writing the line (measured
// with pino 10 on 200 000 request lines), paid by every request.
const REDACTED = [
  'password', 'token', 'keystone.password',
  'headers.authorization', 'headers["x-auth-token"]', 'headers["x-service-token"]',
  'req.headers.authorization', 'req.headers["x-auth-token"]', 'req.headers["x-service-token"]',
]

/**
 * The process logger, as oslo.log's `_setup_logging_from_conf` routes it,
 * in pino's JSON lines: to the file of {@link logFilePath} if any, and also
 * to standard error with `use_stderr`; to standard error alone with
 * `use_stderr` and no file; to standard output otherwise. The level is
 * {@link logLevel}. A file that cannot be opened throws a one-line
 * ConfigError naming the setting: the start stops.
 */
export function openProcessLog (log: Config['log'], binary: LogBinary): ProcessLog {
  const path = logFilePath(log, binary)
  let file: WatchedFile | undefined
  if (path !== undefined) {
    try {
      file = new WatchedFile(path)
    } catch (error) {
      throw new ConfigError(`${settingOf(log)}: cannot open ${path} for writing: ${(error as Error).message}`)
    }
  }
  const terminal = log.useStderr ? pino.destination({ dest: 2 }) : file === undefined ? pino.destination({ dest: 1 }) : undefined
  const targets: DestinationStream[] = [file, terminal].filter((target) => target !== undefined)
  const destination: DestinationStream = targets.length === 1 ? targets[0] : { write: (line: string) => { for (const target of targets) target.write(line) } }
  const logger = pino({ level: logLevel(log), base: { service: 'scopekeeper' }, redact: { paths: REDACTED, censor: '***' } }, destination)
  const flush = () => {
    try {
      terminal?.flushSync()
    } catch { /* not open yet, or a write in flight that SonicBoom finishes at exit */ }
  }
  return {
    logger,
    file: path,
    reopen: () => { file?.check() },
    setLevel: (level) => { logger.level = level },
    flush,
    close: () => {
      flush()
      file?.close()
    },
  }
}
