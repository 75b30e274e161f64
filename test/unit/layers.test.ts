import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { cruise, type ICruiseOptions, type ICruiseResult, type IViolation } from 'dependency-cruiser'
import extractDepcruiseOptions from 'dependency-cruiser/config-utl/extract-depcruise-options'
import extractTSConfig from 'dependency-cruiser/config-utl/extract-ts-config'
import { deferCleanup } from '../helpers/cleanup.ts'

// Issue 13's layer rules live in .dependency-cruiser.cjs (each with the
// reason for it); this test holds src/ to them under `npm test`.
const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const CONFIG = join(ROOT, '.dependency-cruiser.cjs')
const TSCONFIG = join(ROOT, 'tsconfig.json')

async function violations (baseDir: string): Promise<IViolation[]> {
  const options: ICruiseOptions = {
    ...await extractDepcruiseOptions(CONFIG),
    baseDir,
    tsConfig: { fileName: TSCONFIG },
    outputType: 'json',
  }
  const { output } = await cruise(['src'], options, {}, { tsConfig: extractTSConfig(TSCONFIG) })
  const result = (typeof output === 'string' ? JSON.parse(output) : output) as ICruiseResult
  return result.summary.violations
}

const line = (violation: IViolation) => `${violation.from} → ${violation.to} (${violation.rule.name})`

// One file (two for the cycle, which is reported once) that breaks each rule, beside files that
// the rules allow: api → domain, storage → Kysely and the drivers, the
// dispatcher and its signal handlers → the server.
const FIXTURE: Record<string, string> = {
  'src/api/route.ts': "import type { Row } from '../storage/repository.ts'\nimport { rule } from '../domain/rule.ts'\nexport const use = (row: Row) => rule(row)\n",
  'src/domain/rule.ts': 'export const rule = (value: unknown) => value\n',
  'src/domain/with-fastify.ts': "import type { FastifyInstance } from 'fastify'\nexport type App = FastifyInstance\n",
  'src/domain/with-fastify-plugin.ts': "import swagger from '@fastify/swagger'\nexport const plugin = swagger\n",
  'src/domain/with-kysely.ts': "import type { Kysely } from 'kysely'\nexport type Db = Kysely<unknown>\n",
  'src/storage/repository.ts': "import { sql } from 'kysely'\nimport pg from 'pg'\nexport type Row = { id: number }\nexport const q = [sql, pg]\n",
  'src/reset/with-driver.ts': "import { createRequire } from 'node:module'\nconst require = createRequire(import.meta.url)\nexport const mysql = require('mysql2')\n",
  'src/reset/with-pg-types.ts': "import type { Pool } from 'pg'\nexport type Connections = Pool\n",
  'src/reset/with-kysely.ts': "import { sql } from 'kysely'\nexport const q = sql\n",
  'src/config/settings.ts': 'export const SETTINGS = {}\n',
  'src/logger.ts': 'export const log = console\n',
  'src/server.ts': 'export const start = () => {}\n',
  'src/cli/client.ts': "import { SETTINGS } from '../config/settings.ts'\nexport const settings = SETTINGS\n",
  'src/cli/client-log.ts': "import type { log } from '../logger.ts'\nexport type Log = typeof log\n",
  'src/cli/with-signals.ts': "import { onStop } from './process-signals.ts'\nexport const stop = onStop\n",
  'src/cli/process-signals.ts': "import { SETTINGS } from '../config/settings.ts'\nimport { log } from '../logger.ts'\nexport const onStop = () => [SETTINGS, log]\n",
  'src/cli/main.ts': "import { SETTINGS } from '../config/settings.ts'\nimport { onStop } from './process-signals.ts'\nexport const run = async () => [SETTINGS, onStop, await import('../server.ts')]\n",
  'src/auth/cycle-a.ts': "import { b } from './cycle-b.ts'\nexport const a = () => b\n",
  'src/auth/cycle-b.ts': "import { a } from './cycle-a.ts'\nexport const b = () => a\n",
  'src/auth/unresolvable.ts': "import { nothing } from './missing.ts'\nexport const x = nothing\n",
  // Stand-ins for the packages, resolved as the real ones are.
  'node_modules/fastify/package.json': '{ "name": "fastify", "main": "fastify.js" }\n',
  'node_modules/fastify/fastify.js': 'module.exports = {}\n',
  'node_modules/@fastify/swagger/package.json': '{ "name": "@fastify/swagger", "main": "index.js" }\n',
  'node_modules/@fastify/swagger/index.js': 'module.exports = {}\n',
  'node_modules/kysely/package.json': '{ "name": "kysely", "type": "module", "exports": { ".": { "import": "./dist/esm/index.js" } } }\n',
  'node_modules/kysely/dist/esm/index.js': 'export const sql = {}\n',
  'node_modules/pg/package.json': '{ "name": "pg", "main": "lib/index.js" }\n',
  'node_modules/pg/lib/index.js': 'module.exports = {}\n',
  'node_modules/mysql2/package.json': '{ "name": "mysql2", "main": "index.js" }\n',
  'node_modules/mysql2/index.js': 'module.exports = {}\n',
}

const EXPECTED = [
  'src/api/route.ts → src/storage/repository.ts (api-not-storage)',
  'src/domain/with-fastify.ts → node_modules/fastify/fastify.js (domain-not-frameworks)',
  'src/domain/with-fastify-plugin.ts → node_modules/@fastify/swagger/index.js (domain-not-frameworks)',
  'src/domain/with-kysely.ts → node_modules/kysely/dist/esm/index.js (domain-not-frameworks)',
  'src/domain/with-kysely.ts → node_modules/kysely/dist/esm/index.js (sql-only-in-storage)',
  'src/reset/with-kysely.ts → node_modules/kysely/dist/esm/index.js (sql-only-in-storage)',
  'src/reset/with-driver.ts → node_modules/mysql2/index.js (drivers-only-in-storage)',
  'src/reset/with-pg-types.ts → node_modules/pg/lib/index.js (drivers-only-in-storage)',
  'src/cli/client.ts → src/config/settings.ts (cli-client-not-server)',
  'src/cli/client-log.ts → src/logger.ts (cli-client-not-server)',
  'src/cli/with-signals.ts → src/cli/process-signals.ts (cli-client-not-dispatcher)',
  'src/auth/cycle-a.ts → src/auth/cycle-b.ts (no-circular)',
  'src/auth/unresolvable.ts → ./missing.ts (not-to-unresolvable)',
]

describe('layer rules (.dependency-cruiser.cjs)', () => {
  it('src/ breaks none of them', async () => {
    const found = await violations(ROOT)
    assert.equal(found.length, 0, `${found.length} layer violations:\n${found.map(line).join('\n')}`)
  })

  it('each rule reports the import that breaks it, and only that', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'scopekeeper-layers-'))
    deferCleanup(t, () => { rmSync(dir, { recursive: true, force: true }) })
    for (const [file, text] of Object.entries(FIXTURE)) {
      mkdirSync(dirname(join(dir, file)), { recursive: true })
      writeFileSync(join(dir, file), text)
    }
    const found = (await violations(dir)).map(line)
    assert.deepEqual(found.sort(), [...EXPECTED].sort())
  })
})
