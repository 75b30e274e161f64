import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { closeSync, existsSync, openSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { describe, it } from 'node:test'
import type { Config } from '../../src/config/config-schema.ts'
import { ConfigError } from '../../src/config/load-config.ts'
import { logFilePath, logLevel, openProcessLog, type LogBinary, type ProcessLog } from '../../src/logger.ts'
import { tempDir } from '../helpers/build-test-app.ts'
import { deferCleanup } from '../helpers/cleanup.ts'

const PYTHON = '/usr/bin/python3'
const hasOsloLog = spawnSync(PYTHON, ['-c', 'import oslo_log.log']).status === 0

// oslo.log's own _get_log_file_path, with unset options as None (their default).
const OSLO_PATHS = `
import json, sys
from oslo_log import log
class Conf: pass
out = []
for case in json.load(sys.stdin):
    conf = Conf()
    conf.log_file = case['file'] or None
    conf.log_dir = case['dir'] or None
    out.append(log._get_log_file_path(conf, binary=case['binary']))
json.dump(out, sys.stdout)
`

const PATHS: Array<[file: string, dir: string, binary: LogBinary, expected: string | undefined]> = [
  ['', '', 'scopekeeper-api', undefined],
  ['/var/log/cloudkitty/api.log', '', 'scopekeeper-api', '/var/log/cloudkitty/api.log'],
  ['api.log', '', 'scopekeeper-api', 'api.log'],
  ['api.log', '/var/log/cloudkitty', 'scopekeeper-api', '/var/log/cloudkitty/api.log'],
  ['api.log', '/var/log/cloudkitty/', 'scopekeeper-api', '/var/log/cloudkitty/api.log'],
  ['sub/api.log', 'logs', 'scopekeeper-worker', 'logs/sub/api.log'],
  // os.path.join: an absolute log_file is taken as it is.
  ['/tmp/api.log', '/var/log/cloudkitty', 'scopekeeper-api', '/tmp/api.log'],
  ['', '/var/log/cloudkitty', 'scopekeeper-api', '/var/log/cloudkitty/scopekeeper-api.log'],
  ['', '/var/log/cloudkitty/', 'scopekeeper-worker', '/var/log/cloudkitty/scopekeeper-worker.log'],
  ['', 'logs', 'scopekeeper-migrate', 'logs/scopekeeper-migrate.log'],
]

const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']

function logSettings (overrides: Partial<Config['log']>): Config['log'] {
  return { level: 'info', debug: false, file: '', dir: '', useStderr: false, ...overrides }
}

function openTestLog (t: Parameters<typeof tempDir>[0], overrides: Partial<Config['log']> = {}): { log: ProcessLog, path: string, dir: string } {
  const dir = tempDir(t)
  const path = join(dir, 'api.log')
  const log = openProcessLog(logSettings({ file: path, ...overrides }), 'scopekeeper-api')
  deferCleanup(t, () => { log.close() })
  return { log, path, dir }
}

function messages (path: string): string[] {
  if (!existsSync(path)) return []
  return readFileSync(path, 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line).msg)
}

/** Logs `line N` every 20 ms until one lands in `path`; returns every message logged. */
async function logUntilIn (log: ProcessLog, path: string, logged: string[]): Promise<void> {
  const deadline = Date.now() + 15_000
  while (Date.now() < deadline) {
    const message = `line ${logged.length}`
    log.logger.info(message)
    logged.push(message)
    if (messages(path).length > 0) return
    await sleep(20)
  }
  throw new Error(`no line reached ${path}`)
}

describe('logger: where the log goes', () => {
  it('picks the file as oslo.log _get_log_file_path does', () => {
    for (const [file, dir, binary, expected] of PATHS) assert.equal(logFilePath({ file, dir }, binary), expected, `${file} | ${dir}`)
  })

  it('agrees with oslo.log itself on the whole table', { skip: hasOsloLog ? false : 'python3-oslo.log is not installed' }, () => {
    const run = spawnSync(PYTHON, ['-c', OSLO_PATHS], { input: JSON.stringify(PATHS.map(([file, dir, binary]) => ({ file, dir, binary }))), encoding: 'utf8' })
    assert.equal(run.status, 0, run.stderr)
    assert.deepEqual(JSON.parse(run.stdout), PATHS.map(([, , , expected]) => expected ?? null))
  })

  it('routes lines as oslo.log does: stdout, stderr with use_stderr, the file (and stderr with use_stderr)', (t) => {
    const dir = tempDir(t)
    const logger = new URL('../../src/logger.ts', import.meta.url).href
    const script = `import { openProcessLog } from ${JSON.stringify(logger)}
const log = openProcessLog(JSON.parse(process.argv[1]), 'scopekeeper-api')
log.logger.info('routed')
log.close()`
    const cases: Array<[Partial<Config['log']>, { stdout: boolean, stderr: boolean, file: string | undefined }]> = [
      [{}, { stdout: true, stderr: false, file: undefined }],
      [{ useStderr: true }, { stdout: false, stderr: true, file: undefined }],
      [{ file: join(dir, 'a.log') }, { stdout: false, stderr: false, file: join(dir, 'a.log') }],
      [{ file: join(dir, 'b.log'), useStderr: true }, { stdout: false, stderr: true, file: join(dir, 'b.log') }],
      [{ dir }, { stdout: false, stderr: false, file: join(dir, 'scopekeeper-api.log') }],
    ]
    for (const [settings, expected] of cases) {
      const run = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, JSON.stringify(logSettings(settings))], { encoding: 'utf8' })
      assert.equal(run.status, 0, run.stderr)
      const where = JSON.stringify(settings)
      assert.equal(run.stdout.includes('"msg":"routed"'), expected.stdout, `stdout, ${where}`)
      assert.equal(run.stderr.includes('"msg":"routed"'), expected.stderr, `stderr, ${where}`)
      if (expected.file !== undefined) assert.deepEqual(messages(expected.file), ['routed'], `file, ${where}`)
    }
  })

  it('refuses a log file it cannot open with one line naming the setting', (t) => {
    const missing = join(tempDir(t), 'no-such-dir')
    for (const [settings, name] of [[{ file: join(missing, 'api.log') }, /^\[DEFAULT\] log_file: /], [{ dir: missing }, /^\[DEFAULT\] log_dir: /]] as const) {
      assert.throws(() => openProcessLog(logSettings(settings), 'scopekeeper-api'), (error: unknown) => {
        assert.ok(error instanceof ConfigError)
        assert.match(error.message, name)
        assert.match(error.message, /no-such-dir\/(api|scopekeeper-api)\.log.*ENOENT/)
        assert.doesNotMatch(error.message, /\n/)
        return true
      })
    }
  })
})

describe('logger: the level', () => {
  it('lowers [log] level to debug with [DEFAULT] debug, trace excepted', () => {
    for (const level of LEVELS) {
      assert.equal(logLevel({ level, debug: false }), level)
      assert.equal(logLevel({ level, debug: true }), level === 'trace' ? 'trace' : 'debug', level)
    }
  })

  it('starts at that level and changes with setLevel, for loggers made afterwards too', (t) => {
    const { log, path } = openTestLog(t, { level: 'warn', debug: true })
    log.logger.trace('hidden')
    log.logger.debug('shown at debug')
    log.setLevel('warn')
    log.logger.child({ request_id: 'r1' }).info('hidden too')
    log.logger.warn('a warning')
    log.setLevel('trace')
    log.logger.child({ request_id: 'r2' }).trace('a trace')
    assert.deepEqual(messages(path), ['shown at debug', 'a warning', 'a trace'])
  })
})

describe('logger: the log file', () => {
  it('writes JSON lines, each in the file when the call returns', (t) => {
    const { log, path } = openTestLog(t)
    log.logger.info({ scopes: 3 }, 'first')
    const [line] = readFileSync(path, 'utf8').split('\n')
    const entry = JSON.parse(line)
    assert.deepEqual([entry.msg, entry.scopes, entry.level, entry.service], ['first', 3, 30, 'scopekeeper'])
  })

  it('appends to a file that exists', (t) => {
    const dir = tempDir(t)
    const path = join(dir, 'api.log')
    writeFileSync(path, '{"msg":"before"}\n')
    const log = openProcessLog(logSettings({ file: path }), 'scopekeeper-api')
    log.logger.info('after')
    log.close()
    assert.deepEqual(messages(path), ['before', 'after'])
  })

  it('masks credentials logged under the redacted keys', (t) => {
    const { log, path } = openTestLog(t)
    log.logger.info({ headers: { 'x-auth-token': 'tok-1', 'x-service-token': 'tok-2', accept: 'json' }, keystone: { password: 'pw-1' } }, 'masked')
    const text = readFileSync(path, 'utf8')
    for (const secret of ['tok-1', 'tok-2', 'pw-1']) assert.ok(!text.includes(secret), secret)
    assert.match(text, /"accept":"json"/)
  })

  it('follows a rename to a new file by itself, keeping every line once, in order', async (t) => {
    const { log, path } = openTestLog(t)
    const logged: string[] = []
    for (let i = 0; i < 5; i++) { log.logger.info(`line ${i}`); logged.push(`line ${i}`) }
    renameSync(path, `${path}.1`)
    await logUntilIn(log, path, logged)
    for (let i = 0; i < 5; i++) { const m = `line ${logged.length}`; log.logger.info(m); logged.push(m) }
    const [rotated, fresh] = [messages(`${path}.1`), messages(path)]
    assert.deepEqual([...rotated, ...fresh], logged)
    assert.ok(rotated.length >= 5 && fresh.length >= 5)
  })

  it('reopens at once on reopen() (SIGHUP) after a rename', (t) => {
    const { log, path } = openTestLog(t)
    log.logger.info('before')
    renameSync(path, `${path}.1`)
    log.reopen()
    log.logger.info('after')
    assert.deepEqual(messages(`${path}.1`), ['before'])
    assert.deepEqual(messages(path), ['after'])
  })

  it('follows an unlink with a new file that loses no line logged after it', async (t) => {
    const { log, path } = openTestLog(t)
    const logged: string[] = []
    for (let i = 0; i < 5; i++) { log.logger.info(`line ${i}`); logged.push(`line ${i}`) }
    unlinkSync(path)
    const afterUnlink = logged.length
    await logUntilIn(log, path, logged)
    for (let i = 0; i < 5; i++) { const m = `line ${logged.length}`; log.logger.info(m); logged.push(m) }
    const fresh = messages(path)
    // The lines since the path was last seen to be ours are written again:
    // the new file holds a run of the log that reaches back past the unlink.
    const from = logged.indexOf(fresh[0])
    assert.ok(from >= 0 && from <= afterUnlink, `the new file starts at ${fresh[0]}`)
    assert.deepEqual(fresh, logged.slice(from))
  })

  it('reopens at once on reopen() after an unlink, writing again what the deleted file held since the last look', (t) => {
    const { log, path } = openTestLog(t)
    log.logger.info('before')
    unlinkSync(path)
    log.logger.info('in the deleted file')
    log.reopen()
    log.logger.info('after')
    const fresh = messages(path)
    assert.deepEqual(fresh.slice(-2), ['in the deleted file', 'after'])
  })

  it('never writes to a descriptor it closed: a line after close() opens the file again', (t) => {
    const { log, path, dir } = openTestLog(t)
    log.logger.info('before')
    log.close()
    // The closed descriptor's number goes to the next file opened.
    const other = join(dir, 'other')
    const fd = openSync(other, 'w')
    try {
      log.logger.info('after')
    } finally {
      closeSync(fd)
    }
    assert.equal(readFileSync(other, 'utf8'), '')
    assert.deepEqual(messages(path), ['before', 'after'])
  })
})
