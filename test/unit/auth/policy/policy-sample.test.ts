import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { promisify } from 'node:util'
import { parse as parseYaml } from 'yaml'
import { DEFAULT_RULES } from '../../../../src/auth/policy/default-rules.ts'
import { loadPolicy } from '../../../../src/auth/policy/policy-enforcer.ts'
import { policySample } from '../../../../src/auth/policy/policy-sample.ts'
import { BIN } from '../../../helpers/server-process.ts'

describe('policySample', () => {
  const sample = policySample()

  it('comments every default rule out, after its description and operations', () => {
    for (const rule of DEFAULT_RULES) {
      const line = `#${JSON.stringify(rule.name)}: ${JSON.stringify(rule.check)}`
      const at = sample.indexOf(line)
      assert.ok(at >= 0, `${rule.name} missing`)
      const block = sample.slice(sample.lastIndexOf('\n\n', at) + 1, at)
      assert.ok(block.includes(rule.description.split(' ').slice(0, 3).join(' ')), `${rule.name}: description`)
      for (const op of rule.operations) assert.ok(block.includes(`# ${op.method}  ${op.path}\n`), `${rule.name}: ${op.method} ${op.path}`)
    }
    assert.match(sample, /# GET {2}\/v2\/scope\n(# .*\n)*#"scope:get_state": "role:admin"/)
    assert.match(sample, /# GET {2}\/metrics\n#"scopekeeper:get_metrics": "role:admin"/)
    assert.deepEqual(parseYaml(sample), null, 'everything is commented out')
  })

  it('becomes a policy file equal to the defaults once uncommented', () => {
    const uncommented = sample.replace(/^#"/gm, '"')
    const parsed = parseYaml(uncommented) as Record<string, string>
    assert.deepEqual(parsed, Object.fromEntries(DEFAULT_RULES.map((r) => [r.name, r.check])))
    const dir = mkdtempSync(join(tmpdir(), 'scopekeeper-sample-'))
    try {
      writeFileSync(join(dir, 'policy.yaml'), uncommented)
      assert.doesNotThrow(() => loadPolicy(join(dir, 'policy.yaml')))
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('is what `scopekeeper policy sample` prints', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, [BIN, 'policy', 'sample'])
    assert.equal(stdout, sample)
  })
})
