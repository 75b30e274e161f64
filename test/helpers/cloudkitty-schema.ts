import BetterSqlite3 from 'better-sqlite3'
import { createConnection } from 'mysql2/promise'
import pg from 'pg'
import { sqlitePathFromUrl } from '../../src/storage/open-database.ts'
import type { TestEngine } from './test-databases.ts'

/** CloudKitty 17.0.0's storage_state alembic head (9feccd32_create_reprocessing_scheduler). */
export const CLOUDKITTY_ALEMBIC_HEAD = '9feccd32'

// cloudkitty_storage_states as CloudKitty's alembic migrations leave it on
// each engine (SQLAlchemy's DDL: server default now(), no server default on
// `active`, the named unique constraint), and alembic's version table.
const DDL: Record<TestEngine, string[]> = {
  sqlite: [
    `CREATE TABLE cloudkitty_storage_states (
      id INTEGER NOT NULL, identifier VARCHAR(256) NOT NULL,
      scope_key VARCHAR(40), fetcher VARCHAR(40), collector VARCHAR(40),
      last_processed_timestamp DATETIME NOT NULL,
      scope_activation_toggle_date DATETIME DEFAULT (CURRENT_TIMESTAMP) NOT NULL,
      active BOOLEAN NOT NULL,
      PRIMARY KEY (id),
      CONSTRAINT uq_cloudkitty_storage_states_identifier UNIQUE (identifier, scope_key, collector, fetcher),
      CHECK (active IN (0, 1)))`,
    'CREATE TABLE storage_states_alembic (version_num VARCHAR(32) NOT NULL, CONSTRAINT storage_states_alembic_pkc PRIMARY KEY (version_num))',
  ],
  postgres: [
    `CREATE TABLE cloudkitty_storage_states (
      id SERIAL NOT NULL, identifier VARCHAR(256) NOT NULL,
      scope_key VARCHAR(40), fetcher VARCHAR(40), collector VARCHAR(40),
      last_processed_timestamp TIMESTAMP WITHOUT TIME ZONE NOT NULL,
      scope_activation_toggle_date TIMESTAMP WITHOUT TIME ZONE DEFAULT now() NOT NULL,
      active BOOLEAN NOT NULL,
      PRIMARY KEY (id),
      CONSTRAINT uq_cloudkitty_storage_states_identifier UNIQUE (identifier, scope_key, collector, fetcher))`,
    'CREATE TABLE storage_states_alembic (version_num VARCHAR(32) NOT NULL, CONSTRAINT storage_states_alembic_pkc PRIMARY KEY (version_num))',
  ],
  // cloudkitty.conf's `?charset=utf8` makes utf8mb3 tables with the
  // server's case-insensitive default collation.
  mariadb: [
    `CREATE TABLE cloudkitty_storage_states (
      id INTEGER NOT NULL AUTO_INCREMENT, identifier VARCHAR(256) NOT NULL,
      scope_key VARCHAR(40), fetcher VARCHAR(40), collector VARCHAR(40),
      last_processed_timestamp DATETIME NOT NULL,
      scope_activation_toggle_date DATETIME NOT NULL DEFAULT now(),
      active BOOL NOT NULL,
      PRIMARY KEY (id),
      CONSTRAINT uq_cloudkitty_storage_states_identifier UNIQUE (identifier, scope_key, collector, fetcher)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8`,
    'CREATE TABLE storage_states_alembic (version_num VARCHAR(32) NOT NULL, PRIMARY KEY (version_num)) ENGINE=InnoDB DEFAULT CHARSET=utf8',
  ],
}

/** Statements and row reads through the engine's own driver, as another process (CloudKitty) would. */
export interface RawDatabase {
  exec: (statement: string) => Promise<void>
  rows: (query: string) => Promise<Array<Record<string, unknown>>>
  close: () => Promise<void>
}

/** Connects to `url` with the plain driver, bypassing scopekeeper's storage layer. */
export async function connectRaw (engine: TestEngine, url: string): Promise<RawDatabase> {
  if (engine === 'sqlite') {
    const db = new BetterSqlite3(sqlitePathFromUrl(url))
    return {
      exec: async (s) => { db.exec(s) },
      rows: async (q) => db.prepare(q).all() as Array<Record<string, unknown>>,
      close: async () => { db.close() },
    }
  }
  if (engine === 'postgres') {
    const client = new pg.Client({ connectionString: url })
    await client.connect()
    return {
      exec: async (s) => { await client.query(s) },
      rows: async (q) => (await client.query(q)).rows,
      close: async () => { await client.end() },
    }
  }
  const connection = await createConnection({ uri: url, dateStrings: true, charset: 'utf8mb4' })
  return {
    exec: async (s) => { await connection.query(s) },
    rows: async (q) => (await connection.query(q))[0] as Array<Record<string, unknown>>,
    close: async () => { await connection.end() },
  }
}

/**
 * Creates the CloudKitty schema at its alembic head and the rows a live
 * deployment holds: server-default toggle dates, NULL scope_key/fetcher/
 * collector (older CloudKitty), and one scope_id in several rows.
 */
export async function createCloudKittySchema (raw: RawDatabase, engine: TestEngine): Promise<void> {
  for (const statement of DDL[engine]) await raw.exec(statement)
  await raw.exec(`INSERT INTO storage_states_alembic (version_num) VALUES ('${CLOUDKITTY_ALEMBIC_HEAD}')`)
  const t = engine === 'postgres' ? 'true' : '1'
  const f = engine === 'postgres' ? 'false' : '0'
  await raw.exec(`INSERT INTO cloudkitty_storage_states (identifier, scope_key, fetcher, collector, last_processed_timestamp, active) VALUES
    ('aaaa', 'project_id', 'keystone', 'gnocchi', '2019-07-16 08:00:00', ${t}),
    ('legacy', NULL, NULL, NULL, '2019-07-16 09:00:00', ${f}),
    ('twin', 'project_id', 'keystone', 'gnocchi', '2019-07-16 10:00:00', ${t}),
    ('twin', 'project_id', 'gnocchi', 'prometheus', '2019-07-16 11:00:00', ${t})`)
}

/** A description of the states table's columns and constraints (and PostgreSQL storage parameters), to show it was not altered. */
export async function describeStatesTable (raw: RawDatabase, engine: TestEngine): Promise<unknown> {
  if (engine === 'sqlite') return await raw.rows("SELECT sql FROM sqlite_master WHERE name = 'cloudkitty_storage_states'")
  if (engine === 'postgres') {
    return {
      columns: await raw.rows("SELECT column_name, data_type, character_maximum_length, is_nullable, column_default FROM information_schema.columns WHERE table_name = 'cloudkitty_storage_states' ORDER BY ordinal_position"),
      constraints: await raw.rows("SELECT conname, pg_get_constraintdef(oid) AS def FROM pg_constraint WHERE conrelid = 'cloudkitty_storage_states'::regclass ORDER BY conname"),
      storage: await raw.rows("SELECT reloptions FROM pg_class WHERE oid = 'cloudkitty_storage_states'::regclass"),
    }
  }
  return {
    table: await raw.rows("SELECT table_collation, engine FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = 'cloudkitty_storage_states'"),
    columns: await raw.rows("SELECT column_name, column_type, is_nullable, column_default, collation_name FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = 'cloudkitty_storage_states' ORDER BY ordinal_position"),
    constraints: await raw.rows("SELECT constraint_name, constraint_type FROM information_schema.table_constraints WHERE table_schema = DATABASE() AND table_name = 'cloudkitty_storage_states' ORDER BY constraint_name"),
  }
}
