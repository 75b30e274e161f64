import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { tempDir } from '../helpers/build-test-app.ts'
import { BIN } from '../helpers/server-process.ts'

interface Exit { code: number | null, stdout: string, stderr: string }

async function scopekeeper (args: string[], env: Record<string, string> = {}): Promise<Exit> {
  return await new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { env: { ...process.env, SCOPEKEEPER_LOG_LEVEL: 'warn', ...env }, timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : (error as { code?: number }).code ?? null, stdout, stderr })
    })
  })
}

/** Exit 2, and on stderr one line naming the setting, with neither the password nor a stack trace. */
function assertOneLineRefusal (exit: Exit, secret: string): string {
  assert.equal(exit.code, 2, `exit ${exit.code}: ${exit.stderr}`)
  const lines = exit.stderr.trimEnd().split('\n')
  assert.equal(lines.length, 1, exit.stderr)
  assert.match(lines[0], /^scopekeeper: \[database\] connection '/)
  assert.doesNotMatch(exit.stderr, /\n\s+at |Error:/)
  assert.ok(!`${exit.stderr}${exit.stdout}`.includes(secret), `${exit.stderr}${exit.stdout}`)
  return lines[0]
}

describe('scopekeeper and an unusable database URL, as processes', () => {
  it('serve exits 2 with one line that masks a password holding @ and #, after its retries', async (t) => {
    const exit = await scopekeeper(['serve', '--port', '0', '--auth', 'noauth', '--coordination-url', `file://${join(tempDir(t), 'locks')}`,
      '--database', 'mysql://u:p@ss#@127.0.0.1:1/x'], { SCOPEKEEPER_DATABASE_MAX_RETRIES: '2', SCOPEKEEPER_DATABASE_RETRY_INTERVAL: '1' })
    const line = assertOneLineRefusal(exit, 'p@ss#')
    assert.match(line, /^scopekeeper: \[database\] connection 'mysql:\/\/u:\*\*\*@127\.0\.0\.1:1\/x': cannot connect after 2 attempts .*ECONNREFUSED/)
    // One warning line for the retried attempt, as JSON on stdout.
    const warnings = exit.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l))
    assert.deepEqual(warnings.map((w) => [w.msg, w.database, w.attempt]), [['database connection failed; retrying in 1 s', 'mysql://u:***@127.0.0.1:1/x', 1]])
  })

  it('serve, migrate and worker exit 2 at once for a URL that cannot be read or is unsupported', async (t) => {
    const locks = ['--coordination-url', `file://${join(tempDir(t), 'locks')}`]
    const cases: Array<[string[], string, RegExp]> = [
      [['serve', '--port', '0', '--auth', 'noauth', ...locks, '--database', 'mysql://u:p@ss#@127.0.0.1:99999/x'], 'p@ss#', /port is not a number from 1 to 65535/],
      [['migrate', '--database', 'oracle://u:S3cr#t@db/x'], 'S3cr#t', /Unsupported database URL/],
      [['worker', '--once', ...locks, '--database', 'mysql://u:S3cr#t@127.0.0.1:3306/x?ssl_ca=/nonexistent'], 'S3cr#t', /cannot read ssl_ca \/nonexistent: no such file/],
      [['migrate', '--database', 'postgresql://u:S3cr#t@127.0.0.1:5432/x?sslmdoe=require'], 'S3cr#t', /unsupported parameter sslmdoe/],
    ]
    for (const [args, secret, reason] of cases) assert.match(assertOneLineRefusal(await scopekeeper(args), secret), reason, args.join(' '))
  })
})
