/**
 * A mistake in how the command was called (a bad flag value, an unknown
 * column, missing connection settings): the CLI prints it and exits 2,
 * before or instead of talking to the API.
 */
export class UsageError extends Error {
  override name = 'UsageError'
}
