/**
 * The facts about a scope state's fields that every layer shares, once:
 * the API's schemas and messages, the storage's migration and the
 * configuration's defaults derive theirs from here.
 */

/**
 * The widths of CloudKitty's `cloudkitty_storage_states` columns, in
 * characters, as `cloudkitty/storage_state/models.py` declares them:
 * `identifier = sqlalchemy.Column(sqlalchemy.String(256), …)`, and
 * `scope_key`, `fetcher` and `collector` `sqlalchemy.String(40)`. Our
 * migration 0001 creates the same columns; the API refuses a longer value
 * (PostgreSQL and strict MariaDB would, and SQLite would keep it whole);
 * a configured default must fit too.
 */
export const COLUMN_WIDTHS = { identifier: 256, scope_key: 40, fetcher: 40, collector: 40 } as const
