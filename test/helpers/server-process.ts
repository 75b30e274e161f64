import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { createInterface } from 'node:readline'
import type { TestContext } from 'node:test'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { tempDir } from './build-test-app.ts'
import { deferCleanup } from './cleanup.ts'

/** The `scopekeeper` binary of this checkout. */
export const BIN = fileURLToPath(new URL('../../bin/scopekeeper.js', import.meta.url))

export interface ServerProcess {
  child: ChildProcess
  /** Base URL, e.g. http://127.0.0.1:41234 */
  url: string
  /** Every log line the process printed so far (JSON, one per line). */
  lines: string[]
  /** Sends `signal` and resolves with the exit code (or signal name). */
  stop: (signal?: NodeJS.Signals) => Promise<number | string | null>
}

/**
 * Starts `scopekeeper serve` as a real process on a free port and waits for
 * its "listening" log line. Extra args and env are passed through; the process
 * is killed after the test if still running. With `logFile` (the process
 * logs to `[DEFAULT] log_file`), `lines` are read from that path instead of
 * standard output.
 */
export async function startServerProcess (
  t: TestContext, args: string[], env: Record<string, string> = {}, { logFile }: { logFile?: string } = {},
): Promise<ServerProcess> {
  // auth_strategy defaults to keystone, as in CloudKitty: a test that names
  // no strategy (flag, config file or env) asks for noauth. The processing
  // locks default to CloudKitty's /var/lib/cloudkitty/locks: a test that
  // names no coordination_url gets a folder of its own.
  const namesConfig = args.some((arg) => ['--config', '--config-file', '--config-dir'].includes(arg))
  const namesAuth = namesConfig || args.includes('--auth') || env.SCOPEKEEPER_DEFAULT_AUTH_STRATEGY !== undefined
  const namesLocks = namesConfig || args.includes('--coordination-url') || env.SCOPEKEEPER_ORCHESTRATOR_COORDINATION_URL !== undefined
  const locks = namesLocks ? [] : ['--coordination-url', `file://${join(tempDir(t), 'locks')}`]
  const child = spawn(process.execPath, [BIN, 'serve', '--port', '0', ...(namesAuth ? [] : ['--auth', 'noauth']), ...locks, ...args], {
    env: { ...process.env, SCOPEKEEPER_LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const lines: string[] = []
  let stderr = ''
  child.stderr!.on('data', (d: Buffer) => { stderr += d.toString() })
  const exited = once(child, 'exit')
  deferCleanup(t, () => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start in 30 s; stderr: ${stderr}`)), 30_000)
    const onLine = (line: string) => {
      lines.push(line)
      try {
        const entry = JSON.parse(line)
        if (entry.msg === 'scopekeeper listening') { clearTimeout(timer); resolve(entry.address) }
      } catch { /* not JSON */ }
    }
    if (logFile === undefined) createInterface({ input: child.stdout! }).on('line', onLine)
    else {
      child.stdout!.resume()
      followFile(logFile, child, onLine)
    }
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`server exited with ${code} before listening; stderr: ${stderr}`)) })
  })
  return {
    child,
    url,
    lines,
    stop: async (signal = 'SIGTERM') => {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode ?? child.signalCode
      child.kill(signal)
      const [code, sig] = await exited as [number | null, string | null]
      return code ?? sig
    },
  }
}

// Reads the lines appended to `path` while `child` runs, a new file at the
// path (after logrotate) from its start.
function followFile (path: string, child: ChildProcess, onLine: (line: string) => void): void {
  let seen = ''
  const poll = () => {
    let text = ''
    try { text = readFileSync(path, 'utf8') } catch { /* not created yet */ }
    if (!text.startsWith(seen)) seen = ''
    const complete = text.slice(0, text.lastIndexOf('\n') + 1)
    for (const line of complete.slice(seen.length).split('\n').slice(0, -1)) onLine(line)
    seen = complete
  }
  const timer = setInterval(poll, 20)
  child.once('exit', () => { clearInterval(timer); poll() })
}

/** Polls `check` until it returns true, or fails after `timeoutMs`. */
export async function waitFor (check: () => Promise<boolean>, timeoutMs = 15_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await check()) return
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  throw new Error(`timed out waiting for ${what}`)
}
