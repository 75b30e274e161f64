// oslo.middleware itself (Debian's python3-oslo.middleware, which
// python3-cloudkitty brings) in a child process, driven over stdin/stdout
// one JSON line at a time: the reference our answers are compared with.
import { spawn, spawnSync } from 'node:child_process'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import type { TestContext } from 'node:test'
import { deferCleanup } from './cleanup.ts'

const PYTHON = '/usr/bin/python3'
const ANSWER_TIMEOUT_MS = 30_000

function childEnv (): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('PYTHON')))
  return { ...env, PATH: '/usr/sbin:/usr/bin:/sbin:/bin' }
}

/**
 * Whether oslo.middleware can run here: fails the test under CI=true and
 * skips it, loudly, otherwise. Returns false when skipped.
 */
export function requireOsloMiddleware (t: TestContext): boolean {
  const probe = spawnSync(PYTHON, ['-c', 'import oslo_middleware.healthcheck, oslo_middleware.http_proxy_to_wsgi, webob'], { env: childEnv(), encoding: 'utf8' })
  if (probe.status === 0) return true
  const problem = `${PYTHON} cannot import oslo_middleware and webob (${(probe.error?.message ?? probe.stderr.trim().split('\n').pop() ?? '').trim()}); install python3-cloudkitty with scripts/setup-system-packages.sh (as root)`
  if (process.env.CI === 'true') throw new Error(`${problem} (oslo.middleware is required when CI=true)`)
  process.stderr.write(`\n!!! SKIPPED: ${problem}\n`)
  t.skip(`SKIPPED: ${problem}`)
  return false
}

/** The oslo.middleware scripts beside this file, each answering one JSON line with one. */
export type OsloScript = 'oslo-healthcheck.py' | 'oslo-proxy-headers.py'

/** Starts `script` in Python; it stops after the test. Questions are answered in order. */
export function startOsloScript (t: TestContext, script: OsloScript): (question: unknown) => Promise<any> {
  const child = spawn(PYTHON, [fileURLToPath(new URL(`./${script}`, import.meta.url))], { env: childEnv(), stdio: ['pipe', 'pipe', 'pipe'] })
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
  return async (question) => {
    const answer = queue.then(async () => {
      child.stdin.write(`${JSON.stringify(question)}\n`)
      let timer: NodeJS.Timeout | undefined
      const line = await Promise.race([
        lines.next(),
        new Promise<never>((_resolve, reject) => { timer = setTimeout(() => { reject(new Error(`${script} did not answer within ${ANSWER_TIMEOUT_MS} ms; stderr: ${stderr}`)) }, ANSWER_TIMEOUT_MS) }),
        exited.then(() => { throw new Error(`${script} exited; stderr: ${stderr}`) }),
      ]).finally(() => { clearTimeout(timer) })
      if (line.done === true) throw new Error(`${script} closed its output; stderr: ${stderr}`)
      return JSON.parse(line.value) as unknown
    })
    queue = answer.then(() => {}, () => {})
    return await answer
  }
}
