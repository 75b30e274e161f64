import { COLUMN_WIDTHS } from '../../../domain/scope-fields.ts'

/**
 * Every bound on what the /v2/scope routes accept, once: the schemas, the
 * validator and the error messages read them from here, so a field is held
 * to the same limit, with the same message, on every route that takes it.
 * The README's "Input limits" table lists them.
 */

/**
 * The longest value of each field, by its name on the wire: the width of
 * its CloudKitty column (`scope_id` is stored in `identifier`;
 * {@link COLUMN_WIDTHS}), in characters (code points), as PostgreSQL and
 * MariaDB count them. A longer value cannot be stored (PostgreSQL and
 * strict MariaDB refuse it, SQLite keeps it whole: CONTRACT.md "Errors"),
 * nor, as a filter, match a stored one.
 */
export const FIELD_MAX_LENGTH = {
  scope_id: COLUMN_WIDTHS.identifier,
  scope_key: COLUMN_WIDTHS.scope_key,
  fetcher: COLUMN_WIDTHS.fetcher,
  collector: COLUMN_WIDTHS.collector,
} as const

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
