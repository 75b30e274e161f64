import assert from 'node:assert/strict'
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, it } from 'node:test'
import { SETTINGS } from '../../src/config/config-schema.ts'
import { tempDir } from '../helpers/build-test-app.ts'
import { INSTALLED_BIN, SYSTEMD_ANALYZE, UNIT_NAMES, verifyUnits } from '../helpers/systemd-units.ts'

const UNITS = fileURLToPath(new URL('../../systemd/', import.meta.url))
const BIN = fileURLToPath(new URL('../../bin/scopekeeper.js', import.meta.url))

type Unit = Map<string, Map<string, string[]>>

/** Sections → keys → every value assigned, in order (systemd's repeatable keys). */
function parseUnit (text: string): Unit {
  const unit: Unit = new Map()
  let section: Map<string, string[]> | undefined
  for (const raw of text.split('\n')) {
    const line = raw.trim()
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue
    const header = /^\[(.+)\]$/.exec(line)
    if (header !== null) {
      section = new Map()
      unit.set(header[1], section)
      continue
    }
    const eq = line.indexOf('=')
    assert.ok(section !== undefined && eq > 0, `a key outside a section or without '=': ${line}`)
    const key = line.slice(0, eq)
    section.set(key, [...(section.get(key) ?? []), line.slice(eq + 1)])
  }
  return unit
}

function value (unit: Unit, section: string, key: string): string | undefined {
  return unit.get(section)?.get(key)?.at(-1)
}

/** systemd.time(7) spans as TimeoutStopSec takes them: "45", "45s", "1min 30s". */
function seconds (span: string): number {
  const units: Record<string, number> = { '': 1, s: 1, sec: 1, m: 60, min: 60, h: 3600 }
  let total = 0
  for (const part of span.trim().split(/\s+/)) {
    const match = /^(\d+)([a-z]*)$/.exec(part)
    assert.ok(match !== null && units[match[2]] !== undefined, `unreadable time span: ${span}`)
    total += Number(match[1]) * units[match[2]]
  }
  return total
}

function settingDefault (path: string): unknown {
  const setting = SETTINGS.find((s) => s.path === path)
  assert.ok(setting !== undefined, path)
  return setting.default
}

const expected: Record<string, { command: string }> = {
  'scopekeeper-api.service': { command: 'serve' },
  'scopekeeper-worker.service': { command: 'worker' },
}

describe('systemd units', () => {
  it('covers every unit in systemd/', () => {
    assert.deepEqual(readdirSync(UNITS).sort(), [...UNIT_NAMES].sort())
    assert.deepEqual(Object.keys(expected), UNIT_NAMES)
  })

  for (const [name, { command }] of Object.entries(expected)) {
    describe(name, () => {
      const unit = parseUnit(readFileSync(join(UNITS, name), 'utf8'))

      it(`runs scopekeeper ${command} on /etc/cloudkitty/cloudkitty.conf, as CloudKitty's user`, () => {
        assert.equal(value(unit, 'Service', 'ExecStart'), `${INSTALLED_BIN} ${command} --config-file /etc/cloudkitty/cloudkitty.conf`)
        assert.equal(value(unit, 'Service', 'User'), 'cloudkitty')
        assert.equal(value(unit, 'Service', 'Group'), 'cloudkitty')
      })

      it('restarts on failure, reloads on SIGHUP and starts at boot', () => {
        assert.equal(value(unit, 'Service', 'Restart'), 'on-failure')
        assert.equal(value(unit, 'Service', 'ExecReload'), '/bin/kill -HUP $MAINPID')
        assert.equal(value(unit, 'Install', 'WantedBy'), 'multi-user.target')
      })

      it('gives SIGTERM longer than the default [api] shutdown_timeout', () => {
        const stop = value(unit, 'Service', 'TimeoutStopSec')
        assert.ok(stop !== undefined, 'TimeoutStopSec is set')
        const shutdown = settingDefault('api.shutdownTimeout')
        assert.equal(typeof shutdown, 'number')
        assert.ok(seconds(stop) > (shutdown as number), `TimeoutStopSec=${stop} is above ${String(shutdown)} s`)
      })

      it('is hardened, and can write the lock folder CloudKitty shares and the log folder', () => {
        assert.equal(value(unit, 'Service', 'NoNewPrivileges'), 'yes')
        assert.ok(['strict', 'full'].includes(value(unit, 'Service', 'ProtectSystem') ?? ''), 'ProtectSystem is strict or full')
        const writable = (unit.get('Service')?.get('ReadWritePaths') ?? []).flatMap((v) => v.split(/\s+/)).map((p) => p.replace(/^-/, ''))
        const locks = new URL(String(settingDefault('orchestrator.coordinationUrl'))).pathname
        assert.ok(writable.some((p) => locks === p || locks.startsWith(`${p}/`)), `ReadWritePaths covers the default lock folder ${locks}`)
        assert.ok(writable.includes('/var/log/cloudkitty'), 'ReadWritePaths has /var/log/cloudkitty')
        // V8's JIT writes the code it then runs.
        assert.notEqual(value(unit, 'Service', 'MemoryDenyWriteExecute'), 'yes')
      })
    })
  }

  it('passes systemd-analyze verify with no warning', async (t) => {
    if (!existsSync(SYSTEMD_ANALYZE)) {
      t.skip(`SKIPPED: ${SYSTEMD_ANALYZE} is absent (Debian's systemd package)`)
      return
    }
    // The checkout's bin stands in for the installed one; the production
    // install test verifies the units as installed, with the real binary.
    const stderr = await verifyUnits(tempDir(t), UNIT_NAMES.map((name) => join(UNITS, name)), BIN)
    assert.equal(stderr, '')
  })

  it('fails verification when a unit has a bad value or an unknown key', async (t) => {
    if (!existsSync(SYSTEMD_ANALYZE)) {
      t.skip(`SKIPPED: ${SYSTEMD_ANALYZE} is absent (Debian's systemd package)`)
      return
    }
    const dir = tempDir(t)
    const broken = join(dir, 'source', 'scopekeeper-api.service')
    mkdirSync(join(dir, 'source'))
    writeFileSync(broken, readFileSync(join(UNITS, 'scopekeeper-api.service'), 'utf8')
      .replace('Restart=on-failure', 'Restart=on-fialure\nProtectSytem=strict'))
    const stderr = await verifyUnits(dir, [broken], BIN)
    assert.match(stderr, /restart specifier/)
    assert.match(stderr, /Unknown key 'ProtectSytem'/)
  })
})
