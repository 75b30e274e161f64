/**
 * Every bound on what the /v2/scope routes accept, once: the schemas, the
 * validator and the error messages read them from here, so a field is held
 * to the same limit, with the same message, on every route that takes it.
 * The README's "Input limits" table lists them.
 */

/**
 * The widths of CloudKitty's columns (`cloudkitty/storage_state/models.py`:
 * `identifier` String(256), `scope_key`, `fetcher` and `collector`
 * String(40); our migration 0001 creates the same), in characters (code
 * points), as PostgreSQL and MariaDB count them. A longer value cannot be
 * stored (PostgreSQL and strict MariaDB refuse it, SQLite keeps it whole:
 * CONTRACT.md "Errors"), nor, as a filter, match a stored one.
 */
export const FIELD_MAX_LENGTH = { scope_id: 256, scope_key: 40, fetcher: 40, collector: 40 } as const

/** A field stored in one of CloudKitty's columns: `scope_id` (`identifier`), `scope_key`, `fetcher`, `collector`. */
export type ScopeField = keyof typeof FIELD_MAX_LENGTH

/**
 * Most values one filter may list, repeated parameters, list items and
 * comma-separated pieces counted together (empty pieces are not values):
 * keeps each query under every engine's bound-parameter limit.
 */
export const MAX_FILTER_VALUES = 5000

/** Longest timestamp text: well above every accepted ISO 8601 form, far below anything costly to parse. */
export const TIMESTAMP_MAX_LENGTH = 64

/** Largest `limit`, `offset`, `marker` and job id: the 32-bit signed integer of every engine's id column. */
export const MAX_INTEGER = 2_147_483_647

/**
 * Largest page of GET /v2/scope/resets. Jobs carry their list of scopes and
 * a page is built in memory, unlike GET /v2/scope's pages, which stream.
 */
export const MAX_RESET_JOB_PAGE = 1000
