// The real `scopekeeper` CLI process as the e2e CLI tests run it: one way to
// start it, one way to keep the developer's cloud settings out of it, and a
// test context for servers that live as long as a whole file.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { join } from 'node:path'
import type { TestContext } from 'node:test'
import { BIN } from './server-process.ts'

export const CLI_TIMEOUT_MS = 60_000

export interface CliRun {
  code: number
  stdout: string
  stderr: string
}

/** A context for a file-wide server: cleanups run in `cleanup` (call it in `after`), last registered first. */
export function suiteContext (): { t: TestContext, cleanup: () => Promise<void> } {
  const hooks: Array<() => unknown> = []
  const t = { after: (fn: () => unknown) => { hooks.push(fn) } } as unknown as TestContext
  return { t, cleanup: async () => { for (const fn of hooks.reverse()) await fn() } }
}

/** This process's environment without OS_* variables, so a developer's cloud settings cannot leak in. */
export function withoutOsVariables (): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('OS_')))
}

/** `withoutOsVariables()` with HOME and the XDG config directories inside `home`, so no clouds.yaml outside it is read. */
export function cleanEnv (home: string): NodeJS.ProcessEnv {
  return { ...withoutOsVariables(), HOME: home, XDG_CONFIG_HOME: join(home, '.config'), XDG_CONFIG_DIRS: join(home, 'site') }
}

/**
 * Runs `scopekeeper args` to its end with exactly `env`; any exit code
 * resolves, a run that was killed (CLI_TIMEOUT_MS) or never started rejects.
 */
export function runCli (args: string[], options: { env: NodeJS.ProcessEnv, cwd: string }): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [BIN, ...args], { env: options.env, cwd: options.cwd, timeout: CLI_TIMEOUT_MS, encoding: 'utf8' }, (error, stdout, stderr) => {
      if (error === null) return resolve({ code: 0, stdout, stderr })
      if (error.killed || typeof error.code !== 'number') return reject(new Error(`scopekeeper ${args.join(' ')} did not finish: ${error.message}; stderr: ${stderr}`))
      resolve({ code: error.code, stdout, stderr })
    })
  })
}

/** `run`, once asserted that it exited 0. */
export function ok (run: CliRun): CliRun {
  assert.equal(run.code, 0, `exit ${run.code}; stderr: ${run.stderr}`)
  return run
}
