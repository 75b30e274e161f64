// A real tooz client (Debian's python3-tooz) in a child process, driven over
// stdin/stdout: it takes locks as CloudKitty's processor takes them, so a
// test can check that our coordinators and tooz exclude each other.
import { execFile, spawn, spawnSync } from 'node:child_process'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import type { TestContext } from 'node:test'
import type { LockNameSettings } from '../../src/storage/coordination/coordinator.ts'
import { deferCleanup } from './cleanup.ts'

const PYTHON = '/usr/bin/python3'
const SCRIPT = fileURLToPath(new URL('./tooz-holder.py', import.meta.url))
const ANSWER_TIMEOUT_MS = 30_000

// Debian's python and its packages, whatever a developer's PATH or PYTHON* variables say.
function childEnv (): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('PYTHON')))
  return { ...env, PATH: '/usr/sbin:/usr/bin:/sbin:/bin' }
}

let unavailable: string | null | undefined

/** Why a real tooz client cannot run here, or undefined when it can. */
export function toozUnavailable (): string | undefined {
  if (unavailable === undefined) {
    const probe = spawnSync(PYTHON, ['-c', 'import tooz.coordination, pymysql, psycopg2, redis, cloudkitty.orchestrator'], { env: childEnv(), encoding: 'utf8' })
    unavailable = probe.status === 0
      ? null
      : `${PYTHON} cannot import tooz, pymysql, psycopg2, redis and cloudkitty (${(probe.error?.message ?? probe.stderr.trim().split('\n').pop() ?? '').trim()}); install python3-tooz python3-pymysql python3-psycopg2 python3-redis python3-cloudkitty with scripts/setup-system-packages.sh (as root)`
  }
  return unavailable ?? undefined
}

/**
 * Whether a real tooz client can run: fails the test under CI=true and
 * skips it, loudly, otherwise. Returns false when skipped.
 */
export function requireTooz (t: TestContext): boolean {
  const problem = toozUnavailable()
  if (problem === undefined) return true
  if (process.env.CI === 'true') throw new Error(`${problem} (a real tooz client is required when CI=true)`)
  process.stderr.write(`\n!!! SKIPPED: ${problem}\n`)
  t.skip(`SKIPPED: ${problem}`)
  return false
}

/** A tooz client holding locks on one backend, as CloudKitty's processor does. */
export interface ToozHolder {
  /** `lock.acquire(blocking=False)`, keeping the lock: whether it was taken. */
  hold: (name: string) => Promise<boolean>
  /** Releases a lock {@link hold} took. */
  release: (name: string) => Promise<boolean>
  /** Takes the lock without waiting and, when taken, releases it at once: whether it was free. */
  try: (name: string) => Promise<boolean>
}

/** Starts a tooz client on `url`; it stops (releasing what it holds) after the test. */
export async function startToozHolder (t: TestContext, url: string): Promise<ToozHolder> {
  const child = spawn(PYTHON, [SCRIPT, url], { env: childEnv(), stdio: ['pipe', 'pipe', 'pipe'] })
  let stderr = ''
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
  const exited = new Promise<void>((resolve) => { child.once('exit', () => { resolve() }) })
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]()
  let queue = Promise.resolve()
  const next = async (): Promise<unknown> => {
    let timer: NodeJS.Timeout | undefined
    const line = await Promise.race([
      lines.next(),
      new Promise<never>((_resolve, reject) => { timer = setTimeout(() => { reject(new Error(`tooz holder did not answer within ${ANSWER_TIMEOUT_MS} ms; stderr: ${stderr}`)) }, ANSWER_TIMEOUT_MS) }),
      exited.then(() => { throw new Error(`tooz holder exited; stderr: ${stderr}`) }),
    ]).finally(() => { clearTimeout(timer) })
    if (line.done === true) throw new Error(`tooz holder closed its output; stderr: ${stderr}`)
    const reply = JSON.parse(line.value) as { ok: boolean, result?: unknown, error?: string }
    if (!reply.ok) throw new Error(`tooz holder: ${reply.error ?? ''}`)
    return reply.result
  }
  const ask = async (command: string): Promise<unknown> => {
    const answer = queue.then(async () => {
      child.stdin.write(`${command}\n`)
      return await next()
    })
    queue = answer.then(() => {}, () => {})
    return await answer
  }
  deferCleanup(t, async () => {
    if (child.exitCode === null) {
      child.stdin.end('quit\n')
      const timer = setTimeout(() => { child.kill('SIGKILL') }, 10_000)
      await exited
      clearTimeout(timer)
    }
  })
  await next()
  return {
    hold: async (name) => (await ask(`hold ${name}`)) as boolean,
    release: async (name) => (await ask(`release ${name}`)) as boolean,
    try: async (name) => (await ask(`try ${name}`)) as boolean,
  }
}

/** The lock names CloudKitty's own `cloudkitty.orchestrator.get_lock` computes for `scopeIds` under `settings`. */
export async function cloudkittyLockNames (settings: LockNameSettings, scopeIds: string[]): Promise<string[]> {
  return await new Promise((resolve, reject) => {
    execFile(PYTHON, [SCRIPT, 'names', settings.collector, settings.fetcher, settings.scopeKey, ...scopeIds], { env: childEnv() }, (error, stdout, stderr) => {
      if (error !== null) reject(new Error(`${error.message}: ${stderr}`))
      else resolve(stdout.trim().split('\n'))
    })
  })
}

/** How tooz's `get_coordinator` splits each URL, from Python itself; `{ error }` where Python raises. */
export async function toozSplit (urls: string[]): Promise<Array<Record<string, unknown>>> {
  return await new Promise((resolve, reject) => {
    execFile(PYTHON, [SCRIPT, 'split', ...urls], { env: childEnv() }, (error, stdout, stderr) => {
      if (error !== null) reject(new Error(`${error.message}: ${stderr}`))
      else resolve(stdout.trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>))
    })
  })
}
