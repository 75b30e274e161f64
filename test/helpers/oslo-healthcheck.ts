// oslo.middleware's own Healthcheck (Debian's python3-oslo.middleware, which
// python3-cloudkitty brings) in a child process, driven over stdin/stdout:
// the reference our /healthcheck answers are compared with.
import { spawn, spawnSync } from 'node:child_process'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import type { TestContext } from 'node:test'
import { deferCleanup } from './cleanup.ts'

const PYTHON = '/usr/bin/python3'
const SCRIPT = fileURLToPath(new URL('./oslo-healthcheck.py', import.meta.url))
const ANSWER_TIMEOUT_MS = 30_000

function childEnv (): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('PYTHON')))
  return { ...env, PATH: '/usr/sbin:/usr/bin:/sbin:/bin' }
}

/**
 * Whether oslo.middleware can run here: fails the test under CI=true and
 * skips it, loudly, otherwise. Returns false when skipped.
 */
export function requireOsloHealthcheck (t: TestContext): boolean {
  const probe = spawnSync(PYTHON, ['-c', 'import oslo_middleware.healthcheck, webob'], { env: childEnv(), encoding: 'utf8' })
  if (probe.status === 0) return true
  const problem = `${PYTHON} cannot import oslo_middleware and webob (${(probe.error?.message ?? probe.stderr.trim().split('\n').pop() ?? '').trim()}); install python3-cloudkitty with scripts/setup-system-packages.sh (as root)`
  if (process.env.CI === 'true') throw new Error(`${problem} (oslo.middleware is required when CI=true)`)
  process.stderr.write(`\n!!! SKIPPED: ${problem}\n`)
  t.skip(`SKIPPED: ${problem}`)
  return false
}

/** What oslo's Healthcheck answered. `contentType` is null where webob sends none (a 204). */
export interface OsloAnswer { status: number, contentType: string | null, body: string }

/** oslo's Healthcheck with CloudKitty's backends (disable_by_file), answering one request at a time. */
export type OsloHealthcheck = (request: { method: string, accept?: string, disableByFilePath?: string }) => Promise<OsloAnswer>

/** Starts oslo's Healthcheck in Python; it stops after the test. */
export function startOsloHealthcheck (t: TestContext): OsloHealthcheck {
  const child = spawn(PYTHON, [SCRIPT], { env: childEnv(), stdio: ['pipe', 'pipe', 'pipe'] })
  let stderr = ''
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr = (stderr + chunk).slice(-4000) })
  const exited = new Promise<void>((resolve) => { child.once('exit', () => { resolve() }) })
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]()
  deferCleanup(t, async () => {
    if (child.exitCode === null) {
      child.stdin.end()
      const timer = setTimeout(() => { child.kill('SIGKILL') }, 10_000)
      await exited
      clearTimeout(timer)
    }
  })
  let queue: Promise<unknown> = Promise.resolve()
  return async ({ method, accept, disableByFilePath }) => {
    const answer = queue.then(async () => {
      child.stdin.write(`${JSON.stringify({ method, accept: accept ?? null, disable_by_file_path: disableByFilePath ?? null })}\n`)
      let timer: NodeJS.Timeout | undefined
      const line = await Promise.race([
        lines.next(),
        new Promise<never>((_resolve, reject) => { timer = setTimeout(() => { reject(new Error(`oslo healthcheck did not answer within ${ANSWER_TIMEOUT_MS} ms; stderr: ${stderr}`)) }, ANSWER_TIMEOUT_MS) }),
        exited.then(() => { throw new Error(`oslo healthcheck exited; stderr: ${stderr}`) }),
      ]).finally(() => { clearTimeout(timer) })
      if (line.done === true) throw new Error(`oslo healthcheck closed its output; stderr: ${stderr}`)
      const { status, content_type: contentType, body } = JSON.parse(line.value) as { status: number, content_type: string | null, body: string }
      return { status, contentType, body }
    })
    queue = answer.then(() => {}, () => {})
    return await answer
  }
}
