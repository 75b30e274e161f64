import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { basename, join } from 'node:path'
import { promisify } from 'node:util'

const run = promisify(execFile)

export const SYSTEMD_ANALYZE = '/usr/bin/systemd-analyze'
/** Where the units expect `npm install --omit=dev` of the tarball to have put the binary. */
export const INSTALLED_BIN = '/opt/scopekeeper/node_modules/.bin/scopekeeper'
export const UNIT_NAMES = ['scopekeeper-api.service', 'scopekeeper-worker.service']

/**
 * Runs `systemd-analyze verify` on copies, in `dir`, of the unit `files`
 * with `bin` as their ExecStart binary, and resolves with what it printed on
 * stderr: verify refuses a unit whose binary does not exist, and the units
 * name /opt/scopekeeper, where an operator installs, not where a test can.
 * Verify exits 0 on an unknown key or a bad value, so an empty stderr is
 * the only pass.
 */
export async function verifyUnits (dir: string, files: string[], bin: string): Promise<string> {
  const copies = files.map((file) => {
    const copy = join(dir, basename(file))
    const text = readFileSync(file, 'utf8')
    assert.ok(text.includes(INSTALLED_BIN), `${file} runs ${INSTALLED_BIN}`)
    writeFileSync(copy, text.replaceAll(INSTALLED_BIN, bin))
    return copy
  })
  // --man=no: the Documentation= README is not a man page to look up.
  const { stderr } = await run(SYSTEMD_ANALYZE, ['verify', '--man=no', ...copies])
  return stderr
}
