import { Argument, type Command, InvalidArgumentError, Option } from 'commander'
import type { Env } from './clouds-yaml.ts'
import { ConnectionError, HttpTransport } from './http-transport.ts'
import {
  CatalogError, connectionFlag, connectionHelp, CONNECTION_OPTIONS, openSession, resolveConnection,
  type ConnectionFlags, type ConnectionKey, type ConnectionOption,
} from './os-auth.ts'
import { idempotencyKeyOf } from './idempotency.ts'
import { columnsOf, CSV_QUOTE_MODES, formatList, formatOne, labelOf, OUTPUT_FORMATS, selectColumns, type Column, type OutputOptions } from './output-format.ts'
import { describeJob, ResetProgress, type ProgressStream } from './reset-progress.ts'
import { ApiError, ScopeClient, WaitTimeoutError } from './scope-client.ts'
import { historyRow, HISTORY_COLUMNS, userText } from './scope-history.ts'
import { UsageError } from './usage-error.ts'
import {
  ACTIVATION_FIELDS, ACTIVATION_REPLY_FIELDS, CREATE_SCOPE_FIELDS, DEFAULT_PAGE_SIZE, LIST_SCOPES_PARAMETERS, PATCH_SCOPE_FIELDS,
  RECONCILE_DISABLED_FIELDS, RECONCILE_PROJECT_FIELDS, RECONCILE_REPLY_FIELDS, RESET_JOB_FIELDS, RESET_PREVIEW_FIELDS, RESET_SCOPES_FIELDS,
  SCOPE_STATE_FIELDS, SCOPE_SUMMARY_FIELDS,
  type ActivationBody, type ActivationReply, type CreateScopeBody, type ListResetJobsQuery, type ListScopeEventsQuery, type ListScopesQuery,
  type PatchScopeBody, type ReconcileBody, type ReconcileReply, type ResetJobReply,
  type ResetPreviewReply, type ResetScopesBody, type ScopeEventReply, type ScopeSummaryQuery, type ScopeSummaryReply,
} from './wire.ts'

/** Where the scope commands read their environment and write their output; tests pass their own. */
export interface CliIo {
  stdout: ProgressStream
  stderr: ProgressStream
  env: Env
  cwd: string
}

// The OpenStack client's OS_* settings are the CLI's input, like its flags.
function processIo (): CliIo {
  return { stdout: process.stdout, stderr: process.stderr, env: process.env, cwd: process.cwd() }
}

/** Scope state columns: the reply's fields, less the deprecated `state` alias of `last_processed_timestamp`. */
export const SCOPE_COLUMNS = columnsOf(SCOPE_STATE_FIELDS, ['state'])
/** Reset job columns: the progress reply's fields. */
export const RESET_JOB_COLUMNS = columnsOf(RESET_JOB_FIELDS)
/** Columns of a reset's dry run: the preview's fields, its first page of scopes last, as `Scopes`. */
export const RESET_PREVIEW_COLUMNS: Column[] = columnsOf(RESET_PREVIEW_FIELDS, ['dry_run'])
  .map((column) => column.key === 'results' ? { key: 'results', label: 'Scopes' } : column)

/** Columns of an activation's answer: its fields, a dry run's first page of scopes last, as `Scopes`. */
export const ACTIVATION_COLUMNS: Column[] = columnsOf(ACTIVATION_REPLY_FIELDS)
  .map((column) => column.key === 'results' ? { key: 'results', label: 'Scopes' } : column)

/** A job as the CLI shows it: `created_by` as one text, `alice (project 0c1d…)`; absent on an older server. */
export function jobRow (job: ResetJobReply): Record<string, unknown> {
  const author = job.created_by
  if (author === undefined || author === null) return { ...job }
  const who = userText(author) ?? 'unknown user'
  return { ...job, created_by: author.project_id === null || author.project_id === undefined ? who : `${who} (project ${author.project_id})` }
}

const SCOPE_FIELD_HELP: Record<string, string> = {
  scope_id: 'scope id (usually a project id)',
  scope_key: "scope key, e.g. 'project_id'",
  fetcher: "fetcher, e.g. 'keystone', 'gnocchi', 'prometheus'",
  collector: "collector, e.g. 'gnocchi', 'prometheus'",
}

const TIMESTAMP_HELP = 'ISO 8601 timestamp, e.g. 2019-07-16T00:00:00Z; no offset means UTC'

/** `scope_key` → `--scope-key`: flags are the wire fields in kebab-case (STYLE.md "Naming"). */
export function flagOf (field: string): string {
  return `--${field.replace(/_/g, '-')}`
}

/** `scope_key` → `scopeKey`: where commander puts the flag's value. */
function optionKey (field: string): string {
  return field.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase())
}

function collect (value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value]
}

// The largest `limit` and `offset` the server takes: a 32-bit signed
// integer, the type of its id columns (scopekeeper's input-limits.ts
// MAX_INTEGER). Refused here as a usage error, before any request.
const MAX_INTEGER = 2_147_483_647

function integerAtLeast (min: number) {
  return (value: string): number => {
    if (!/^\d+$/.test(value.trim()) || Number(value) < min || Number(value) > MAX_INTEGER) {
      throw new InvalidArgumentError(`Give an integer of at least ${min}.`)
    }
    return Number(value)
  }
}

function nonEmpty (value: string): string {
  if (value.trim() === '') throw new InvalidArgumentError('Give a non-empty text.')
  return value
}

// An Idempotency-Key goes out as a header: visible ASCII, and short enough for any proxy.
function headerToken (value: string): string {
  if (!/^[\x21-\x7e]{1,255}$/.test(value)) throw new InvalidArgumentError('Give 1 to 255 visible ASCII characters, without spaces.')
  return value
}

// An ETag as the server sent it, quotes included ("…" or W/"…"), or `*`.
function entityTag (value: string): string {
  if (!/^(\*|(W\/)?"[\x21\x23-\x7e]*")$/.test(value.trim())) throw new InvalidArgumentError('Give the ETag as the server sent it, quotes included, e.g. \'"3f2a…"\'.')
  return value.trim()
}

function positiveSeconds (value: string): number {
  const seconds = Number(value)
  if (value.trim() === '' || !(seconds > 0) || !Number.isFinite(seconds)) throw new InvalidArgumentError('Give a positive number of seconds.')
  return seconds
}

// The spellings Python's strtobool accepts, which the CloudKitty client uses for --active.
function booleanWord (value: string): boolean {
  const word = value.trim().toLowerCase()
  if (['y', 'yes', 't', 'true', 'on', '1'].includes(word)) return true
  if (['n', 'no', 'f', 'false', 'off', '0'].includes(word)) return false
  throw new InvalidArgumentError('Give true or false.')
}

/** The filter fields of a request: its fields (wire.ts) less the ones a command handles itself. */
export function filterFields (fields: readonly string[], handled: readonly string[]): string[] {
  return fields.filter((key) => !handled.includes(key))
}

function addFieldOptions (command: Command, fields: string[], repeatable: boolean, verb: string): void {
  for (const field of fields) {
    const help = `${verb} ${SCOPE_FIELD_HELP[field] ?? field.replace(/_/g, ' ')}${repeatable ? ' (repeatable; any value matches)' : ''}`
    command.addOption(repeatable
      ? new Option(`${flagOf(field)} <value>`, help).argParser(collect)
      : new Option(`${flagOf(field)} <value>`, help))
  }
}

function addOutputOptions (command: Command, kind: 'list' | 'one'): void {
  const group = 'Output options:'
  const options = [
    new Option('-f, --format <format>', 'output format').choices(OUTPUT_FORMATS).default('table'),
    new Option('-c, --column <column>', 'show this column (heading or field name; repeatable); all by default').argParser(collect),
    ...(kind === 'list'
      ? [
          new Option('--sort-column <column>', 'sort by this column (repeatable; the first one first)').argParser(collect),
          new Option('--sort-ascending', 'sort in ascending order (the default)').conflicts('sortDescending'),
          new Option('--sort-descending', 'sort in descending order'),
        ]
      : []),
    new Option('--noindent', 'json: print on one line'),
    new Option('--quote <mode>', 'csv: when to quote values').choices(CSV_QUOTE_MODES).default('nonnumeric'),
  ]
  for (const option of options) command.addOption(option.helpGroup(group))
}

function addConnectionOptions (command: Command): void {
  const group = 'Connection options (each defaults to its OS_* environment variable, then to the --os-cloud entry):'
  for (const [key, option] of Object.entries(CONNECTION_OPTIONS) as Array<[ConnectionKey, ConnectionOption]>) {
    const flag = option.value === undefined ? connectionFlag(key) : `${connectionFlag(key)} ${option.value}`
    command.addOption(new Option(flag, connectionHelp(option)).helpGroup(group))
  }
}

function outputOptions (options: Record<string, unknown>): OutputOptions {
  return {
    format: options.format as OutputOptions['format'],
    columns: options.column as string[] | undefined,
    sortColumns: options.sortColumn as string[] | undefined,
    sortDescending: options.sortDescending === true,
    noIndent: options.noindent === true,
    quote: options.quote as OutputOptions['quote'],
  }
}

/** Multi-value filters go out comma-joined, as the CloudKitty client sends them, so any CloudKitty API reads them. */
function joined (values: string[] | undefined): string | undefined {
  return values === undefined || values.length === 0 ? undefined : values.join(',')
}

async function connect (io: CliIo, options: Record<string, unknown>): Promise<ScopeClient> {
  const settings = resolveConnection(options as ConnectionFlags, io.env, io.cwd)
  const debug = options.debug === true ? (text: string) => { io.stderr.write(text + '\n') } : undefined
  const transport = new HttpTransport({ ...settings.transport, debug, userAgent: 'scopekeeper-cli' })
  const session = await openSession(settings, transport)
  return new ScopeClient({
    endpoint: session.endpoint,
    token: session.token,
    transport,
    onRetry: (error, method) => { io.stderr.write(`scopekeeper: ${error.message} Sending the ${method} once more, with the same Idempotency-Key.\n`) },
  })
}

/** `--reason`, `--idempotency-key` and, where asked, `--dry-run`: the options every changing command shares. */
function addWriteOptions (command: Command, { dryRun }: { dryRun: string }): void {
  command
    .addOption(new Option('--reason <text>', "why: recorded with the change in the scope's history (scope history)").argParser(nonEmpty))
    .addOption(new Option('--idempotency-key <key>', 'sent as Idempotency-Key: a repeat with the same key is answered as the first time and acts once ' +
      '(default: a new random key per invocation, reused by the one retry after a connection failure)').argParser(headerToken))
    .addOption(new Option('--dry-run', dryRun))
}

/** Prints a failure as one line and returns the exit code: 1 when the API or the network refused. */
function reportFailure (io: CliIo, error: unknown, debug: boolean): number {
  if (error instanceof ApiError) {
    io.stderr.write(`scopekeeper: ${error.message} (HTTP ${error.status})${error.requestId === undefined ? '' : ` (Request-ID: ${error.requestId})`}\n`)
    return 1
  }
  if (error instanceof ConnectionError || error instanceof CatalogError || error instanceof WaitTimeoutError) {
    io.stderr.write(`scopekeeper: ${error.message}\n`)
    return 1
  }
  io.stderr.write(`scopekeeper: ${debug ? (error as Error)?.stack ?? String(error) : (error as Error)?.message ?? String(error)}\n`)
  return 1
}

/** Runs a command body: a usage error goes through commander (message, usage, exit 2), anything else is reported (exit 1). */
function action (io: CliIo, body: (options: Record<string, unknown>, args: Array<string | undefined>, command: Command) => Promise<number>) {
  return async (...received: unknown[]) => {
    const command = received[received.length - 1] as Command
    const options = command.opts()
    const args = received.slice(0, -2) as Array<string | undefined>
    // `scopekeeper scope state list --all | head`: a reader that stops early is not an error.
    process.stdout.once('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0)
      throw error
    })
    try {
      process.exitCode = await body(options, args, command)
    } catch (error) {
      if (error instanceof UsageError) command.error(`error: ${error.message}`, { exitCode: 2, code: 'scopekeeper.usage' })
      process.exitCode = reportFailure(io, error, options.debug === true)
    }
  }
}

// The filters scopekeeper adds to GET /v2/scope: rated through before or
// after an instant, stuck or not. Their flags and query parameters, for
// `scope state list` and `scope summary`.
const LAG_FILTERS = ['rated_before', 'rated_after', 'stuck'] as const

function addLagFilterOptions (command: Command): void {
  command
    .addOption(new Option('--rated-before <timestamp>', 'only scopes not yet rated through this instant (last processed + period before it; scopekeeper)'))
    .addOption(new Option('--rated-after <timestamp>', 'only scopes rated through this instant or later (scopekeeper)'))
    .addOption(new Option('--stuck', 'only stuck scopes: active, more than [collect] stuck_after_periods periods behind the median (scopekeeper)'))
    .addOption(new Option('--no-stuck', 'only the scopes that are not stuck, inactive ones included (scopekeeper)'))
}

function lagFilterQuery (options: Record<string, unknown>): Pick<ListScopesQuery, typeof LAG_FILTERS[number]> {
  return {
    rated_before: options.ratedBefore as string | undefined,
    rated_after: options.ratedAfter as string | undefined,
    stuck: options.stuck === undefined ? undefined : String(options.stuck),
  }
}

function listCommand (state: Command, io: CliIo): void {
  const filters = filterFields(LIST_SCOPES_PARAMETERS, ['active', ...LAG_FILTERS, 'limit', 'offset', 'marker'])
  const command = state.command('list').alias('get')
    .description('List scope states, in creation order (GET /v2/scope).')
  addFieldOptions(command, filters, true, 'only this')
  addLagFilterOptions(command)
  command
    .addOption(new Option('--active', 'only active scopes').conflicts('inactive'))
    .addOption(new Option('--inactive', 'only inactive scopes'))
    .addOption(new Option('--limit <n>', `page size (the server's default: ${DEFAULT_PAGE_SIZE})`).argParser(integerAtLeast(1)))
    .addOption(new Option('--offset <n>', 'index of the first scope (default 0)').argParser(integerAtLeast(0)))
    .addOption(new Option('--marker <id>', 'start after this row: the marker of a previous page\'s Link rel="next"').argParser(integerAtLeast(0)).conflicts(['offset', 'all']))
    .addOption(new Option('--all', 'follow the pages to the end (--limit sets the page size)'))
  addOutputOptions(command, 'list')
  addConnectionOptions(command)
  command.addHelpText('after', `
Examples:
  scopekeeper scope state list --os-endpoint http://127.0.0.1:8889 --inactive
  scopekeeper scope state list --collector gnocchi --collector prometheus --all -f json
  scopekeeper scope state list --all -f value -c scope_id --sort-column scope_id
  scopekeeper scope state list --active --rated-before 2026-12-01 --all -f value -c scope_id
  scopekeeper scope state list --stuck`)
  command.action(action(io, async (options) => {
    const query: ListScopesQuery = lagFilterQuery(options)
    for (const field of filters) {
      const value = joined(options[optionKey(field)] as string[] | undefined)
      if (value !== undefined) (query as Record<string, string[]>)[field] = [value]
    }
    if (options.active === true) query.active = ['1']
    if (options.inactive === true) query.active = ['0']
    const limit = options.limit as number | undefined
    const offset = options.offset as number | undefined
    const output = outputOptions(options)
    formatList(SCOPE_COLUMNS, [], output) // an unknown -c or --sort-column is a usage error before any request
    const client = await connect(io, options)
    const rows = options.all === true
      ? await client.listAllScopes(query, { pageSize: limit ?? DEFAULT_PAGE_SIZE, offset: offset ?? 0 })
      : await client.listScopes({ ...query, limit, offset, marker: options.marker as number | undefined })
    io.stdout.write(formatList(SCOPE_COLUMNS, rows, output))
    return 0
  }))
}

function resetCommand (state: Command, io: CliIo): void {
  const filters = filterFields(RESET_SCOPES_FIELDS, ['all_scopes', 'last_processed_timestamp', 'state', 'reason'])
  const command = state.command('reset')
    .description('Reset the state of several scopes to a timestamp (PUT /v2/scope). The server applies it in the background; --wait follows it.')
    .argument('[timestamp]', `the timestamp to reset to, as the CloudKitty client takes it (sent as 'state'): ${TIMESTAMP_HELP}`)
    .addOption(new Option('-a, --all-scopes', 'reset every scope').conflicts('scopeId'))
  addFieldOptions(command, filters, true, 'reset this')
  command
    .addOption(new Option('--last-processed-timestamp <timestamp>', `the timestamp to reset to: ${TIMESTAMP_HELP}`).conflicts('state'))
    .addOption(new Option('--state <timestamp>', "deprecated alias of --last-processed-timestamp (sent as 'state')"))
  addWaitOptions(command, 'follow the reset until it is done (exit 0), or failed or cancelled (exit 1), where the server reports progress')
  addWriteOptions(command, {
    dryRun: 'show what the reset would do (how many scopes, from when rated data is discarded, the first scopes) and change nothing (scopekeeper only)',
  })
  command.options.find((o) => o.long === '--dry-run')!.conflicts('wait')
  addOutputOptions(command, 'one')
  addConnectionOptions(command)
  command.addHelpText('after', `
Examples:
  scopekeeper scope state reset --scope-id 8f2c… 2019-07-01T00:00:00Z --wait
  scopekeeper scope state reset --all-scopes --collector gnocchi --last-processed-timestamp 2019-07-01
  scopekeeper scope state reset --all-scopes --collector gnocchi 2019-07-01 --dry-run
  scopekeeper scope state reset --scope-id 8f2c… 2019-07-01 --reason 'INC-4711: rating rules fixed'`)
  command.action(action(io, async (options, [positional]) => {
    const scopeIds = options.scopeId as string[] | undefined
    if (options.allScopes !== true && scopeIds === undefined) throw new UsageError('Give --all-scopes or at least one --scope-id.')
    const given = [positional, options.lastProcessedTimestamp, options.state].filter((v) => v !== undefined)
    if (given.length !== 1) throw new UsageError('Give the timestamp once: as the argument, --last-processed-timestamp or --state.')
    const output = outputOptions(options)
    const dryRun = options.dryRun === true
    // An unknown -c is a usage error before any request.
    if (dryRun) selectColumns(RESET_PREVIEW_COLUMNS, output.columns)
    else formatOne(RESET_JOB_COLUMNS, {}, output)
    const body: ResetScopesBody = options.allScopes === true ? { all_scopes: true } : { scope_id: joined(scopeIds) }
    for (const field of filters.filter((f) => f !== 'scope_id')) {
      const value = joined(options[optionKey(field)] as string[] | undefined)
      if (value !== undefined) (body as Record<string, string>)[field] = value
    }
    // The positional form and --state send `state`, which every CloudKitty version reads.
    if (options.lastProcessedTimestamp !== undefined) body.last_processed_timestamp = options.lastProcessedTimestamp as string
    else body.state = (positional ?? options.state) as string
    if (options.reason !== undefined) body.reason = options.reason as string
    const write = { idempotencyKey: idempotencyKeyOf(options.idempotencyKey as string | undefined) }

    const client = await connect(io, options)
    if (dryRun) {
      io.stdout.write(formatPreview(await client.previewReset(body, write), output))
      return 0
    }
    const { jobId } = await client.resetScopes(body, write)
    if (jobId === undefined) {
      io.stderr.write(`Reset accepted. The server does not report its progress${options.wait === true ? ', so there is nothing to wait for' : ''}.\n`)
      return 0
    }
    if (options.wait !== true) {
      io.stdout.write(formatOne(RESET_JOB_COLUMNS, jobRow(await client.getResetJob(jobId)), output))
      return 0
    }
    return await followJob(io, client, jobId, options, output)
  }))
}

/** Polls a job until it ends (`--wait`), progress on stderr, then prints it: exit 0 when done, 1 when failed or cancelled. */
async function followJob (io: CliIo, client: ScopeClient, jobId: number, options: Record<string, unknown>, output: OutputOptions): Promise<number> {
  const progress = new ResetProgress(io.stderr)
  const waitTimeout = options.waitTimeout as number | undefined
  let job
  try {
    job = await client.waitForReset(jobId, {
      intervalMs: (options.pollInterval as number) * 1000,
      timeoutMs: waitTimeout === undefined ? undefined : waitTimeout * 1000,
      onProgress: (reading) => { progress.update(reading) },
    })
  } finally {
    progress.end()
  }
  io.stdout.write(formatOne(RESET_JOB_COLUMNS, jobRow(job), output))
  if (job.status === 'failed' || job.status === 'cancelled') {
    io.stderr.write(`scopekeeper: Reset ${job.id} ${describeJob(job)}\n`)
    return 1
  }
  return 0
}

function addWaitOptions (command: Command, what: string): void {
  command
    .addOption(new Option('--wait', what))
    .addOption(new Option('--poll-interval <seconds>', 'seconds between two looks at the progress').argParser(positiveSeconds).default(1))
    .addOption(new Option('--wait-timeout <seconds>', 'stop waiting after this long (exit 1; the reset goes on)').argParser(positiveSeconds))
}

/**
 * A dry run (a reset's, or an activation's answer): its figures as a Field/Value table, then its
 * first page of scopes as a list; in JSON and YAML, one object whose
 * `Scopes` holds them. `-c` picks among the figures and `Scopes`.
 */
export function formatPreview (preview: ResetPreviewReply | ActivationReply, output: OutputOptions, columns: Column[] = RESET_PREVIEW_COLUMNS): string {
  const shown = selectColumns(columns, output.columns)
  const results = preview.results ?? []
  if (output.format === 'json' || output.format === 'yaml') {
    const scopes = results.map((scope) => Object.fromEntries(SCOPE_COLUMNS.map((c) => [c.label, (scope as Record<string, unknown>)[c.key] ?? null])))
    return formatOne(shown, { ...preview, results: scopes }, { ...output, columns: undefined })
  }
  const figures = shown.filter((c) => c.key !== 'results')
  const head = figures.length === 0 ? '' : formatOne(figures, preview, { ...output, columns: undefined })
  const tail = shown.some((c) => c.key === 'results') ? formatList(SCOPE_COLUMNS, results, { ...output, columns: undefined }) : ''
  return head + (head !== '' && tail !== '' && (output.format ?? 'table') === 'table' ? '\n' : '') + tail
}

function activationCommand (scope: Command, io: CliIo, active: boolean): void {
  const verb = active ? 'activate' : 'deactivate'
  const filters = filterFields(ACTIVATION_FIELDS, ['active', 'all_scopes', ...LAG_FILTERS, 'dry_run', 'reason'])
  const command = scope.command(verb)
    .description(`${active ? 'Activate' : 'Deactivate'} every scope matching the filters, in one audited step (POST /v2/scope/activation, scopekeeper only): ` +
      `scopes already ${active ? 'active' : 'inactive'} are left as they are. Prints how many matched and how many switched.`)
    .addOption(new Option('-a, --all-scopes', `${verb} every scope`).conflicts([...filters, ...LAG_FILTERS].map(optionKey)))
  addFieldOptions(command, filters, true, `${verb} scopes of this`)
  addLagFilterOptions(command)
  addWriteOptions(command, { dryRun: `show how many scopes would switch and the first of them, and switch nothing` })
  addOutputOptions(command, 'one')
  addConnectionOptions(command)
  command.addHelpText('after', `
Examples:
  scopekeeper scope ${verb} --collector gnocchi --dry-run
  scopekeeper scope ${verb} --collector gnocchi --fetcher keystone --reason 'INC-4711'
  scopekeeper scope ${verb} --scope-id 8f2c… --scope-id 9a41… -f json
  scopekeeper scope ${verb} --stuck --dry-run
  scopekeeper scope ${verb} --all-scopes`)
  command.action(action(io, async (options) => {
    const body: ActivationBody = { active }
    for (const field of filters) {
      const value = joined(options[optionKey(field)] as string[] | undefined)
      if (value !== undefined) (body as Record<string, unknown>)[field] = value
    }
    const lag = lagFilterQuery(options)
    if (lag.rated_before !== undefined) body.rated_before = lag.rated_before
    if (lag.rated_after !== undefined) body.rated_after = lag.rated_after
    if (options.stuck !== undefined) body.stuck = options.stuck === true
    // As the server asks it: the scopes named, so that a bare command cannot switch every scope.
    if (options.allScopes === true) body.all_scopes = true
    else if (Object.keys(body).length === 1) throw new UsageError(`Give at least one of ${filters.map(flagOf).join(', ')}, or --all-scopes.`)
    if (options.dryRun === true) body.dry_run = true
    if (options.reason !== undefined) body.reason = options.reason as string
    const output = outputOptions(options)
    selectColumns(ACTIVATION_COLUMNS, output.columns) // an unknown -c is a usage error before any request
    const client = await connect(io, options)
    const reply = await client.setActivation(body, { idempotencyKey: idempotencyKeyOf(options.idempotencyKey as string | undefined) })
    // A real answer has no scopes to list: its figures alone.
    const columns = reply.results === undefined ? ACTIVATION_COLUMNS.filter((c) => c.key !== 'results') : ACTIVATION_COLUMNS
    io.stdout.write(formatPreview(reply, output, columns))
    return 0
  }))
}

function scopeBodyFields (command: Command, bodyFields: readonly string[]): string[] {
  const fields = filterFields(bodyFields, ['scope_id', 'active', 'last_processed_timestamp', 'state', 'reason'])
  addFieldOptions(command, fields, false, 'new')
  command.addOption(new Option('--active <true|false>', 'whether the processor rates this scope').argParser(booleanWord))
  return fields
}

/** The headers and `dry_run` of a PATCH or POST, from its flags; a new Idempotency-Key unless one was given. */
function writeOptions (options: Record<string, unknown>): { idempotencyKey: string, ifMatch?: string, dryRun: boolean } {
  return {
    idempotencyKey: idempotencyKeyOf(options.idempotencyKey as string | undefined),
    ...(options.ifMatch === undefined ? {} : { ifMatch: options.ifMatch as string }),
    dryRun: options.dryRun === true,
  }
}

function patchCommand (scope: Command, io: CliIo): void {
  const command = scope.command('patch')
    .description('Change one scope: only the fields given change (PATCH /v2/scope).')
    .argument('[scope_id]', 'the scope to change')
    .addOption(new Option('--scope-id <scope_id>', "the scope to change, as the CloudKitty client's 'scope patch --scope-id' takes it"))
  const fields = scopeBodyFields(command, PATCH_SCOPE_FIELDS)
  command.addOption(new Option('--if-match <etag>', "change it only if its ETag is still this one (sent as If-Match; the server answers 412 if it changed)").argParser(entityTag))
  addWriteOptions(command, { dryRun: 'show the scope as the change would leave it, and change nothing (scopekeeper only)' })
  addOutputOptions(command, 'one')
  addConnectionOptions(command)
  command.addHelpText('after', `
Examples:
  scopekeeper scope patch 8f2c… --active true
  scopekeeper scope patch 8f2c… --collector prometheus -f json
  scopekeeper scope patch 8f2c… --active false --reason 'project closed' --if-match '"3f2a…"'`)
  command.action(action(io, async (options, [positional]) => {
    const ids = [positional, options.scopeId as string | undefined].filter((v) => v !== undefined)
    if (ids.length !== 1) throw new UsageError('Give the scope id once: as the argument or as --scope-id.')
    const output = outputOptions(options)
    formatOne(SCOPE_COLUMNS, {}, output)
    const body: PatchScopeBody = { scope_id: ids[0], ...scopeFieldsOf(fields, options) }
    const client = await connect(io, options)
    io.stdout.write(formatOne(SCOPE_COLUMNS, await client.patchScope(body, writeOptions(options)), output))
    return 0
  }))
}

/** What PATCH and POST send alike: the field flags given, `--active` and `--reason`. */
function scopeFieldsOf (fields: readonly string[], options: Record<string, unknown>): Record<string, string | boolean> {
  const body: Record<string, string | boolean> = {}
  for (const field of fields) {
    const value = options[optionKey(field)] as string | undefined
    if (value !== undefined) body[field] = value
  }
  if (options.active !== undefined) body.active = options.active as boolean
  if (options.reason !== undefined) body.reason = options.reason as string
  return body
}

function createCommand (scope: Command, io: CliIo): void {
  const command = scope.command('create')
    .description('Register a scope ahead of discovery (POST /v2/scope); it starts at the beginning of the current month unless a timestamp is given.')
    .argument('<scope_id>', 'the new scope id (usually a project id)')
  const fields = scopeBodyFields(command, CREATE_SCOPE_FIELDS)
  command
    .addOption(new Option('--last-processed-timestamp <timestamp>', `where the processor starts: ${TIMESTAMP_HELP}`).conflicts('state'))
    .addOption(new Option('--state <timestamp>', "deprecated alias of --last-processed-timestamp (sent as 'state')"))
  addWriteOptions(command, { dryRun: 'show the scope as it would be registered, and register nothing (scopekeeper only)' })
  addOutputOptions(command, 'one')
  addConnectionOptions(command)
  command.addHelpText('after', `
Examples:
  scopekeeper scope create 8f2c… --active false            # a trial project, never rated
  scopekeeper scope create 8f2c… --collector prometheus --last-processed-timestamp 2024-01-01`)
  command.action(action(io, async (options, [scopeId]) => {
    const output = outputOptions(options)
    formatOne(SCOPE_COLUMNS, {}, output)
    const body: CreateScopeBody = { scope_id: scopeId!, ...scopeFieldsOf(fields, options) }
    if (options.lastProcessedTimestamp !== undefined) body.last_processed_timestamp = options.lastProcessedTimestamp as string
    if (options.state !== undefined) body.state = options.state as string
    const client = await connect(io, options)
    io.stdout.write(formatOne(SCOPE_COLUMNS, await client.createScope(body, writeOptions(options)), output))
    return 0
  }))
}

function historyCommand (scope: Command, io: CliIo): void {
  const command = scope.command('history')
    .description("A scope's audit events, newest first: who changed what, when, and why (GET /v2/scope/events, scopekeeper only).")
    .argument('<scope_id>', 'the scope')
    .addOption(new Option('--kind <kind>', 'only events of this kind: created, patched, activated, deactivated, reset_requested, reset_applied, ' +
      'reset_cancelled (repeatable; any value matches)').argParser(collect))
    .addOption(new Option('--user-id <id>', 'only changes made by this Keystone user id (repeatable; any value matches)').argParser(collect))
    .addOption(new Option('--since <timestamp>', `only events at or after this time: ${TIMESTAMP_HELP}`))
    .addOption(new Option('--until <timestamp>', `only events at or before this time: ${TIMESTAMP_HELP}`))
    .addOption(new Option('--limit <n>', "page size (the server's default when not given)").argParser(integerAtLeast(1)))
    .addOption(new Option('--marker <id>', 'start after this event: the marker of a previous page\'s Link rel="next"').argParser(integerAtLeast(0)))
    .addOption(new Option('--all', 'follow the pages to the end (--limit sets the page size)'))
  addOutputOptions(command, 'list')
  addConnectionOptions(command)
  command.addHelpText('after', `
Examples:
  scopekeeper scope history 8f2c…
  scopekeeper scope history 8f2c… --kind patched --since 2026-01-01 --all -f json`)
  command.action(action(io, async (options, [scopeId]) => {
    const output = outputOptions(options)
    formatList(HISTORY_COLUMNS, [], output)
    const query: ListScopeEventsQuery = {
      scope_id: [scopeId!],
      kind: listOf(options.kind),
      user_id: listOf(options.userId),
      since: options.since as string | undefined,
      until: options.until as string | undefined,
      limit: options.limit as number | undefined,
      marker: options.marker as number | undefined,
    }
    const client = await connect(io, options)
    const events: ScopeEventReply[] = []
    if (options.all === true) {
      for await (const page of client.scopeEventPages(query)) events.push(...page)
    } else {
      events.push(...(await client.listScopeEvents(query)).results)
    }
    io.stdout.write(formatList(HISTORY_COLUMNS, events.map(historyRow), output))
    return 0
  }))
}

/** A repeatable filter's values as the query sends them: comma-joined, or absent. */
function listOf (values: unknown): string[] | undefined {
  const value = joined(values as string[] | undefined)
  return value === undefined ? undefined : [value]
}

function jobIdArgument (): Argument {
  return new Argument('<id>', 'the reset job id (the ID a reset prints)').argParser(integerAtLeast(1))
}

function resetJobCommands (scope: Command, io: CliIo): void {
  const group = scope.command('reset').description('List, show and cancel reset jobs (GET and DELETE /v2/scope/resets, scopekeeper only).')

  const list = group.command('list')
    .description('Reset jobs, newest first (GET /v2/scope/resets).')
    .addOption(new Option('--status <status>', 'only jobs in this status: pending, running, done, failed, cancelled (repeatable; any value matches)').argParser(collect))
    .addOption(new Option('--scope-id <value>', 'only jobs that matched this scope (repeatable; any value matches)').argParser(collect))
    .addOption(new Option('--limit <n>', "page size (the server's default when not given)").argParser(integerAtLeast(1)))
    .addOption(new Option('--offset <n>', 'index of the first job (default 0)').argParser(integerAtLeast(0)))
  addOutputOptions(list, 'list')
  addConnectionOptions(list)
  list.addHelpText('after', `
Examples:
  scopekeeper scope reset list --status pending --status running
  scopekeeper scope reset list --scope-id 8f2c… -f json`)
  list.action(action(io, async (options) => {
    const output = outputOptions(options)
    formatList(RESET_JOB_COLUMNS, [], output)
    const query: ListResetJobsQuery = {}
    const status = joined(options.status as string[] | undefined)
    const scopeIds = joined(options.scopeId as string[] | undefined)
    if (status !== undefined) query.status = [status]
    if (scopeIds !== undefined) query.scope_id = [scopeIds]
    if (options.limit !== undefined) query.limit = options.limit as number
    if (options.offset !== undefined) query.offset = options.offset as number
    const client = await connect(io, options)
    io.stdout.write(formatList(RESET_JOB_COLUMNS, (await client.listResetJobs(query)).map(jobRow), output))
    return 0
  }))

  const show = group.command('show')
    .description('One reset job and its progress (GET /v2/scope/resets/{id}); --wait follows it to its end.')
    .addArgument(jobIdArgument())
  addWaitOptions(show, 'follow the job until it is done (exit 0), or failed or cancelled (exit 1)')
  addOutputOptions(show, 'one')
  addConnectionOptions(show)
  show.addHelpText('after', `
Examples:
  scopekeeper scope reset show 12
  scopekeeper scope reset show 12 --wait -f value -c status`)
  show.action(action(io, async (options, [id]) => {
    const output = outputOptions(options)
    formatOne(RESET_JOB_COLUMNS, {}, output)
    const client = await connect(io, options)
    const jobId = id as unknown as number
    if (options.wait === true) return await followJob(io, client, jobId, options, output)
    io.stdout.write(formatOne(RESET_JOB_COLUMNS, jobRow(await client.getResetJob(jobId)), output))
    return 0
  }))

  const cancel = group.command('cancel')
    .description('Cancel a reset job (DELETE /v2/scope/resets/{id}): a pending one at once, a running one after its current batch; a finished one cannot be.')
    .addArgument(jobIdArgument())
  addOutputOptions(cancel, 'one')
  addConnectionOptions(cancel)
  cancel.addHelpText('after', `
Examples:
  scopekeeper scope reset cancel 12
  scopekeeper scope reset cancel 12 && scopekeeper scope reset show 12 --wait`)
  cancel.action(action(io, async (options, [id]) => {
    const output = outputOptions(options)
    formatOne(RESET_JOB_COLUMNS, {}, output)
    const client = await connect(io, options)
    const { job, stopping } = await client.cancelResetJob(id as unknown as number)
    io.stdout.write(formatOne(RESET_JOB_COLUMNS, jobRow(job), output))
    if (stopping) io.stderr.write(`Reset ${job.id} is ${job.status}: it stops after its current batch, and ends cancelled (follow it with: scopekeeper scope reset show ${job.id} --wait).\n`)
    return 0
  }))
}

/** The report's figures: its fields less the lists, shown first as a Field/Value table. */
export const RECONCILE_FIGURE_COLUMNS = columnsOf(RECONCILE_REPLY_FIELDS, ['deleted', 'disabled', 'new', 'registered'])

/** The report's lists: their field, heading, and the columns of their rows. */
export const RECONCILE_LISTS: ReadonlyArray<{ key: 'deleted' | 'disabled' | 'new' | 'registered', title: string, columns: Column[] }> = [
  { key: 'deleted', title: 'Scopes of deleted projects', columns: SCOPE_COLUMNS },
  { key: 'disabled', title: 'Scopes of disabled projects', columns: columnsOf(RECONCILE_DISABLED_FIELDS, ['state']) },
  { key: 'new', title: 'Projects with no scope', columns: columnsOf(RECONCILE_PROJECT_FIELDS) },
  { key: 'registered', title: 'Scopes registered', columns: SCOPE_COLUMNS },
]

/**
 * A reconciliation report: its figures as a Field/Value table, then each
 * list under its title and count (in a table; a list with no row shows its
 * title alone); in JSON and YAML one object, each list an object of its
 * `Count` and `Results` keyed by heading; in CSV and value, the figures,
 * then each list's rows. `-c` picks among the figures (table, CSV, value).
 */
export function formatReconcile (report: ReconcileReply, output: OutputOptions): string {
  const format = output.format ?? 'table'
  const plain = { ...output, columns: undefined }
  const rows = (key: typeof RECONCILE_LISTS[number]['key']) => (report[key]?.results ?? []) as Array<Record<string, unknown>>
  if (format === 'json' || format === 'yaml') {
    const lists = Object.fromEntries(RECONCILE_LISTS.map(({ key, columns }) => [key, {
      Count: report[key]?.count ?? 0,
      Results: rows(key).map((row) => Object.fromEntries(columns.map((c) => [c.label, row[c.key] ?? null]))),
    }]))
    const columns = [...RECONCILE_FIGURE_COLUMNS, ...RECONCILE_LISTS.map(({ key }) => ({ key, label: labelOf(key) }))]
    return formatOne(columns, { ...report, ...lists }, plain)
  }
  // -c picks among the figures.
  let text = formatOne(RECONCILE_FIGURE_COLUMNS, report, output)
  for (const { key, title, columns } of RECONCILE_LISTS) {
    if (format === 'table') text += `\n${title}: ${report[key]?.count ?? 0}\n`
    text += formatList(columns, rows(key), plain)
  }
  return text
}

function reconcileCommand (scope: Command, io: CliIo): void {
  const command = scope.command('reconcile')
    .description("Compare the scope states with Keystone's projects (POST /v2/scope/reconcile, scopekeeper only): report the scopes of deleted " +
      'and of disabled projects, and the projects with no scope. Only a report unless --deactivate-missing or --register-new is given.')
    .addOption(new Option('--deactivate-missing', 'deactivate the active scopes of deleted and disabled projects'))
    .addOption(new Option('--register-new', 'register a scope (the server\'s default scope_key, fetcher and collector) for each project with none'))
    .addOption(new Option('--inactive', 'with --register-new: register them inactive'))
    .addOption(new Option('--dry-run', 'only report, even with --deactivate-missing or --register-new (the default without them)'))
    .addOption(new Option('--reason <text>', "why: recorded with the changes in the scopes' history, after 'reconcile: '").argParser(nonEmpty))
  addOutputOptions(command, 'one')
  addConnectionOptions(command)
  command.addHelpText('after', `
Examples:
  scopekeeper scope reconcile                               # the report; nothing changes
  scopekeeper scope reconcile --deactivate-missing          # stop rating deleted and disabled projects
  scopekeeper scope reconcile --register-new --inactive     # register new projects, not rated until activated
  scopekeeper scope reconcile -f json | jq '.New.Results[]."Project ID"'`)
  command.action(action(io, async (options) => {
    if (options.inactive === true && options.registerNew !== true) throw new UsageError('--inactive goes with --register-new: it says how the new scopes are registered.')
    const output = outputOptions(options)
    selectColumns(RECONCILE_FIGURE_COLUMNS, output.columns)
    const acts = options.deactivateMissing === true || options.registerNew === true
    const body: ReconcileBody = { dry_run: !acts || options.dryRun === true }
    if (options.deactivateMissing === true) body.deactivate_missing = true
    if (options.registerNew === true) body.register_new = true
    if (options.inactive === true) body.inactive = true
    if (options.reason !== undefined) body.reason = options.reason as string
    const client = await connect(io, options)
    io.stdout.write(formatReconcile(await client.reconcile(body), output))
    return 0
  }))
}

const LAG_BUCKETS = ['0-1', '1-2', '2-6', '6-24', '24+'] as const

/** The summary's columns: its figures, the lag buckets and the cut-off flattened into columns of their own. */
export const SUMMARY_COLUMNS: Column[] = SCOPE_SUMMARY_FIELDS.flatMap((key): Column[] => {
  if (key === 'lag_periods') return LAG_BUCKETS.map((bucket) => ({ key: `lag_${bucket}`, label: `Lag ${bucket} Periods` }))
  if (key === 'cutoff') return [{ key: 'cutoff', label: 'Cutoff' }, { key: 'rated_through_cutoff', label: 'Rated Through Cutoff' }, { key: 'not_rated_through_cutoff', label: 'Not Rated Through Cutoff' }]
  return columnsOf([key])
})

/** A summary as one row of {@link SUMMARY_COLUMNS}. */
export function summaryRow (summary: ScopeSummaryReply): Record<string, unknown> {
  const { lag_periods: lag, cutoff, ...figures } = summary
  return {
    ...figures,
    ...Object.fromEntries(LAG_BUCKETS.map((bucket) => [`lag_${bucket}`, lag[bucket]])),
    cutoff: cutoff?.at ?? null,
    rated_through_cutoff: cutoff?.rated_through ?? null,
    not_rated_through_cutoff: cutoff?.not_rated_through ?? null,
  }
}

function summaryCommand (scope: Command, io: CliIo): void {
  const filters = filterFields(LIST_SCOPES_PARAMETERS, ['active', ...LAG_FILTERS, 'limit', 'offset', 'marker'])
  const command = scope.command('summary')
    .description('How far behind the scopes are rated: lag buckets, stuck scopes, a cut-off (GET /v2/scope/summary, scopekeeper only).')
    .addOption(new Option('--cutoff <timestamp>', 'also count the active scopes rated through this instant, and those not yet'))
  addFieldOptions(command, filters, true, 'only this')
  addLagFilterOptions(command)
  command
    .addOption(new Option('--active', 'only active scopes').conflicts('inactive'))
    .addOption(new Option('--inactive', 'only inactive scopes'))
  addOutputOptions(command, 'one')
  addConnectionOptions(command)
  command.addHelpText('after', `
Examples:
  scopekeeper scope summary --cutoff 2026-12-01
  scopekeeper scope summary --collector prometheus -f json`)
  command.action(action(io, async (options) => {
    const query: ScopeSummaryQuery = { ...lagFilterQuery(options), cutoff: options.cutoff as string | undefined }
    for (const field of filters) {
      const value = joined(options[optionKey(field)] as string[] | undefined)
      if (value !== undefined) (query as Record<string, string[]>)[field] = [value]
    }
    if (options.active === true) query.active = ['1']
    if (options.inactive === true) query.active = ['0']
    const output = outputOptions(options)
    formatOne(SUMMARY_COLUMNS, {}, output) // an unknown -c is a usage error before any request
    const client = await connect(io, options)
    io.stdout.write(formatOne(SUMMARY_COLUMNS, summaryRow(await client.scopeSummary(query)), output))
    return 0
  }))
}

/**
 * Adds `scope state list|get|reset`, `scope patch`, `scope create`,
 * `scope history`, `scope reconcile`, `scope reset list|show|cancel` and
 * `scope activate|deactivate` to the
 * `scopekeeper` program: the operator's client of `/v2/scope`, shaped like
 * `openstack rating scope …` (output formats, OS_* settings, clouds.yaml).
 * Exit codes: 0 done, 1 the API or the network refused (its message
 * printed), 2 a usage error. Returns the `scope` command.
 */
export function registerScopeCommands (program: Command, io: CliIo = processIo()): Command {
  const scope = program.command('scope')
    .description('Manage scope states through the /v2/scope API of scopekeeper or CloudKitty (list, reset, patch, create, history, reset jobs).')
  const state = scope.command('state').description('List and reset scope states.')
  listCommand(state, io)
  resetCommand(state, io)
  patchCommand(scope, io)
  createCommand(scope, io)
  historyCommand(scope, io)
  reconcileCommand(scope, io)
  resetJobCommands(scope, io)
  activationCommand(scope, io, true)
  activationCommand(scope, io, false)
  summaryCommand(scope, io)
  return scope
}
