import { stringify } from 'yaml'
import { UsageError } from './usage-error.ts'

/** The output formats of the OpenStack client (cliff), with the same names. */
export const OUTPUT_FORMATS = ['table', 'json', 'yaml', 'csv', 'value'] as const
export type OutputFormat = typeof OUTPUT_FORMATS[number]

/** cliff's CSV quoting modes; `nonnumeric` is its default. */
export const CSV_QUOTE_MODES = ['all', 'minimal', 'nonnumeric', 'none'] as const
export type CsvQuoteMode = typeof CSV_QUOTE_MODES[number]

/** One output column: the wire field it shows and its heading. */
export interface Column {
  key: string
  label: string
}

/** How a command's result is printed (`-f`, `-c`, `--sort-column`, `--noindent`, `--quote`). */
export interface OutputOptions {
  /** Defaults to `table`. */
  format?: OutputFormat
  /** Columns to show, by heading or wire name; all when empty. Shown in the command's order, as cliff does. */
  columns?: string[]
  /** Columns to sort by, the first one first (lists only). */
  sortColumns?: string[]
  sortDescending?: boolean
  /** JSON on one line. */
  noIndent?: boolean
  /** Defaults to `nonnumeric`. */
  quote?: CsvQuoteMode
}

type Row = Record<string, unknown>

const ACRONYMS = new Set(['id', 'url'])

/** `scope_activation_toggle_date` → `Scope Activation Toggle Date`, `scope_id` → `Scope ID`. */
export function labelOf (key: string): string {
  return key.split('_').map((word) => ACRONYMS.has(word) ? word.toUpperCase() : word.charAt(0).toUpperCase() + word.slice(1)).join(' ')
}

/**
 * The columns of a reply's fields, in their wire order: a list of field
 * names (wire.ts), or an object schema's properties. `exclude` leaves out
 * fields such as the deprecated `state` alias.
 */
export function columnsOf (fields: readonly string[] | { properties: object }, exclude: readonly string[] = []): Column[] {
  const keys = 'properties' in fields ? Object.keys(fields.properties) : fields
  return keys.filter((key) => !exclude.includes(key)).map((key) => ({ key, label: labelOf(key) }))
}

/** The column `name` designates, by heading or wire name, exact or ignoring case. */
function findColumn (name: string, columns: Column[]): Column {
  const wanted = name.trim()
  const found = columns.find((c) => c.label === wanted || c.key === wanted) ??
    columns.find((c) => c.label.toLowerCase() === wanted.toLowerCase() || c.key.toLowerCase() === wanted.toLowerCase())
  if (found === undefined) throw new UsageError(`Unknown column '${name}'; the columns are: ${columns.map((c) => c.label).join(', ')}.`)
  return found
}

/** The columns `-c` names (all when none), in the command's order; throws {@link UsageError} on an unknown one. */
export function selectColumns (columns: Column[], names: string[] | undefined): Column[] {
  if (names === undefined || names.length === 0) return columns
  const chosen = new Set(names.map((name) => findColumn(name, columns).key))
  return columns.filter((c) => chosen.has(c.key))
}

function isMissing (value: unknown): value is null | undefined {
  return value === null || value === undefined
}

// cliff sorts on (value is None, value): missing values last, each column a stable pass, last column first.
function sortRows (rows: Row[], columns: Column[], names: string[] | undefined, descending: boolean): Row[] {
  if (names === undefined || names.length === 0) return rows
  const keys = names.map((name) => findColumn(name, columns).key)
  let sorted = [...rows]
  for (const key of [...keys].reverse()) {
    const direction = descending ? -1 : 1
    sorted = sorted.map((row, index) => ({ row, index })).sort((a, b) => {
      const x = a.row[key]
      const y = b.row[key]
      const order = isMissing(x) !== isMissing(y)
        ? (isMissing(x) ? 1 : -1)
        : isMissing(x) || x === y ? 0 : (x as string) < (y as string) ? -1 : 1
      return order * direction || a.index - b.index
    }).map((entry) => entry.row)
  }
  return sorted
}

/** A value as the OpenStack client prints it in a table, csv or value output (Python's spelling). */
function humanText (value: unknown): string {
  if (isMissing(value)) return 'None'
  if (value === true) return 'True'
  if (value === false) return 'False'
  if (typeof value === 'object') return JSON.stringify(value)
  return String(value).replace(/\r\n/g, '\n').replace(/\r/g, ' ')
}

function machineValue (value: unknown): unknown {
  return value === undefined ? null : value
}

function width (text: string): number {
  return [...text].length
}

function pad (text: string, size: number, align: 'l' | 'r'): string {
  const fill = ' '.repeat(Math.max(0, size - width(text)))
  return align === 'r' ? fill + text : text + fill
}

/** A prettytable-style grid, as cliff draws it: `+---+` rules, one space of padding, multi-line cells. */
export function renderTable (headings: string[], cells: string[][], align: Array<'l' | 'r'>): string {
  const widths = headings.map((h, i) => Math.max(...[h, ...cells.map((row) => row[i])].flatMap((text) => text.split('\n')).map(width)))
  const rule = `+${widths.map((w) => '-'.repeat(w + 2)).join('+')}+`
  const line = (row: string[]) => {
    const parts = row.map((text) => text.split('\n'))
    const height = Math.max(...parts.map((p) => p.length))
    return Array.from({ length: height }, (_, n) =>
      `|${parts.map((p, i) => ` ${pad(p[n] ?? '', widths[i], align[i])} `).join('|')}|`).join('\n')
  }
  return [rule, line(headings), rule, ...cells.map(line), rule].join('\n') + '\n'
}

function csvField (value: unknown, quote: CsvQuoteMode): string {
  const numeric = typeof value === 'number' || typeof value === 'boolean'
  const text = isMissing(value) ? '' : humanText(value)
  const special = /[",\r\n]/.test(text)
  const quoted = quote === 'all' || (quote === 'nonnumeric' && !numeric) || (quote === 'minimal' && special)
  if (quoted) return `"${text.replace(/"/g, '""')}"`
  return quote === 'none' ? text.replace(/([\\",])/g, '\\$1') : text
}

function csvLine (values: unknown[], quote: CsvQuoteMode): string {
  return values.map((v) => csvField(v, quote)).join(',') + '\n'
}

function keyedByLabel (row: Row, columns: Column[]): Row {
  return Object.fromEntries(columns.map((c) => [c.label, machineValue(row[c.key])]))
}

function json (value: unknown, noIndent: boolean | undefined): string {
  return JSON.stringify(value, null, noIndent === true ? undefined : 2) + '\n'
}

// YAML 1.1 quoting: strings that YAML 1.1 readers (PyYAML) would take for a
// timestamp, boolean or number stay strings.
function yaml (value: unknown): string {
  return stringify(value, { version: '1.1' })
}

/**
 * Prints rows as a list, like an OpenStack client `list` command: a table
 * with one row each (nothing at all when there are no rows, as cliff does),
 * a JSON or YAML list of objects keyed by heading, CSV with a heading line,
 * or the bare values separated by spaces. Throws {@link UsageError} on an
 * unknown column.
 */
export function formatList (columns: Column[], rows: Row[], options: OutputOptions = {}): string {
  const shown = selectColumns(columns, options.columns)
  const sorted = sortRows(rows, columns, options.sortColumns, options.sortDescending === true)
  switch (options.format ?? 'table') {
    case 'table': {
      if (sorted.length === 0) return ''
      // cliff aligns each column by the type of its first value: numbers right, the rest left.
      const align = shown.map((c) => typeof sorted[0][c.key] === 'number' ? 'r' as const : 'l' as const)
      return renderTable(shown.map((c) => c.label), sorted.map((row) => shown.map((c) => humanText(row[c.key]))), align)
    }
    case 'json': return json(sorted.map((row) => keyedByLabel(row, shown)), options.noIndent)
    case 'yaml': return yaml(sorted.map((row) => keyedByLabel(row, shown)))
    case 'csv': return csvLine(shown.map((c) => c.label), options.quote ?? 'nonnumeric') +
      sorted.map((row) => csvLine(shown.map((c) => row[c.key]), options.quote ?? 'nonnumeric')).join('')
    case 'value': return sorted.map((row) => shown.map((c) => humanText(row[c.key])).join(' ') + '\n').join('')
  }
}

/**
 * Prints one object, like an OpenStack client `show` command: a
 * Field/Value table, a JSON or YAML object keyed by heading, CSV with a
 * heading line, or one value per line.
 */
export function formatOne (columns: Column[], row: Row, options: OutputOptions = {}): string {
  const shown = selectColumns(columns, options.columns)
  switch (options.format ?? 'table') {
    case 'table': return renderTable(['Field', 'Value'], shown.map((c) => [c.label, humanText(row[c.key])]), ['l', 'l'])
    case 'json': return json(keyedByLabel(row, shown), options.noIndent)
    case 'yaml': return yaml(keyedByLabel(row, shown))
    case 'csv': return formatList(columns, [row], options)
    case 'value': return shown.map((c) => humanText(row[c.key]) + '\n').join('')
  }
}
