// Configuration files for loadConfig tests: each in a directory of its own,
// removed after the test.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { TestContext } from 'node:test'

/** A new empty directory, removed after `t`. */
export function scratchDir (t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'scopekeeper-conf-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** The path of a cloudkitty.conf holding `text`, in a scratchDir of `t`. */
export function confFile (t: TestContext, text: string): string {
  const file = join(scratchDir(t), 'cloudkitty.conf')
  writeFileSync(file, text)
  return file
}
