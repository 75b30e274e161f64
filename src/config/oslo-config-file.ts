import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { homedir } from 'node:os'
import { join, resolve } from 'node:path'

// cloudkitty.conf read as oslo.config reads it. Each rule names the
// function of /usr/lib/python3/dist-packages/oslo_config (python3-oslo.config
// 9.0.0) that it follows; test/unit/config/oslo-config-file.test.ts checks
// the parse against that code itself.

/**
 * One file's sections as oslo.config's `cfg.ConfigParser` records them:
 * section name as written → key → every value it was given, in file order.
 * Maps, not objects: a key may be `__proto__`.
 */
export type OsloSections = Map<string, Map<string, string[]>>

/** A parsed config file and its absolute path. */
export interface ParsedConfigFile {
  file: string
  sections: OsloSections
}

/** One `--config-file FILE` or `--config-dir DIR`. */
export type ConfigFileSource = { file: string } | { dir: string }

/** What is wrong with a malformed line (one per error of iniparser.BaseParser). */
export type InvalidLineReason = 'no-separator' | 'empty-key' | 'unexpected-continuation' | 'no-section-end' | 'empty-section-name' | 'no-section'

/**
 * A config file that cannot be read, or a line that oslo.config would refuse
 * to parse. The message is one line naming the file (and the line).
 */
export class ConfigFileError extends Error {
  constructor (message: string, readonly line?: number, readonly reason?: InvalidLineReason) { super(message) }
}

// What Python's str.strip(), lstrip() and rstrip() remove (str.isspace()):
// not JavaScript's \s, which has U+FEFF but lacks U+001C-U+001F and U+0085.
const PYTHON_WHITESPACE = new Set([
  0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x85, 0xa0, 0x1680,
  0x2000, 0x2001, 0x2002, 0x2003, 0x2004, 0x2005, 0x2006, 0x2007, 0x2008, 0x2009, 0x200a,
  0x2028, 0x2029, 0x202f, 0x205f, 0x3000,
])

function lstrip (s: string): string {
  let start = 0
  while (start < s.length && PYTHON_WHITESPACE.has(s.charCodeAt(start))) start++
  return s.slice(start)
}

function rstrip (s: string): string {
  let end = s.length
  while (end > 0 && PYTHON_WHITESPACE.has(s.charCodeAt(end - 1))) end--
  return s.slice(0, end)
}

function invalidLine (file: string, line: number, reason: InvalidLineReason, what: string, text: string): ConfigFileError {
  return new ConfigFileError(`Invalid line ${line} in ${file}: ${what} ${JSON.stringify(text)}`, line, reason)
}

/**
 * Parses the text of one config file as oslo.config does
 * (iniparser.BaseParser.parse, _split_key_value, _get_section, and
 * cfg.ConfigParser.new_section/assignment):
 *
 * - Lines end at `\n`, `\r\n` or `\r` (Python's universal newlines) and lose
 *   their trailing whitespace. A blank line ends a value.
 * - A line that starts with a space or a tab continues the value above it,
 *   joined with a newline and stripped on the left, even when it starts
 *   with `#`. With no value above it, it is an error.
 * - `#` and `;` start a comment only in the first column. Elsewhere they are
 *   part of the value, as is every `=` after the first separator.
 * - `[name]` starts a section; the name is kept as written, spaces included.
 *   A header must end with `]` and have a name. A repeated section adds to
 *   the first one.
 * - `key = value` or `key: value`: the first `=` or `:` on the line
 *   separates; both sides are stripped, and one pair of matching quotes
 *   (`"…"` or `'…'`) around the value is removed. The key must not be empty.
 * - A repeated key keeps every value, in order (multi-valued options read
 *   them all; a plain option takes the last, see {@link findFileValue}).
 *
 * Throws a {@link ConfigFileError} naming `file` and the line. For an option
 * before any section, that is the option's line (oslo.config names the line
 * where its value ended).
 */
export function parseOsloConfig (text: string, file: string): OsloSections {
  const sections: OsloSections = new Map()
  let section: Map<string, string[]> | undefined
  let pending: { key: string, value: string[], line: number, text: string } | undefined
  const flush = (): void => {
    if (pending === undefined) return
    if (section === undefined) throw invalidLine(file, pending.line, 'no-section', 'option before any [section] header in', pending.text)
    const value = pending.value.join('\n')
    const values = section.get(pending.key)
    if (values === undefined) section.set(pending.key, [value])
    else values.push(value)
    pending = undefined
  }
  const lines = text.split(/\r\n|\r|\n/)
  for (let index = 0; index < lines.length; index++) {
    const lineno = index + 1
    const line = rstrip(lines[index])
    if (line === '') {
      flush()
      continue
    }
    if (line[0] === ' ' || line[0] === '\t') {
      if (pending === undefined) throw invalidLine(file, lineno, 'unexpected-continuation', 'indented line with no option above it to continue (an indented line is part of the value above it, even a comment):', line)
      pending.value.push(lstrip(line))
      continue
    }
    flush()
    if (line[0] === '[') {
      if (!line.endsWith(']')) throw invalidLine(file, lineno, 'no-section-end', "section header that does not end with ']':", line)
      if (line.length <= 2) throw invalidLine(file, lineno, 'empty-section-name', 'empty section name in', line)
      const name = line.slice(1, -1)
      section = sections.get(name)
      if (section === undefined) sections.set(name, section = new Map())
    } else if (line[0] !== '#' && line[0] !== ';') {
      const colon = line.indexOf(':')
      const equal = line.indexOf('=')
      if (colon < 0 && equal < 0) throw invalidLine(file, lineno, 'no-separator', "no '=' or ':' in", line)
      const at = colon < 0 || (equal >= 0 && equal < colon) ? equal : colon
      const key = lstrip(rstrip(line.slice(0, at)))
      let value = lstrip(rstrip(line.slice(at + 1)))
      if (value !== '' && value[0] === value[value.length - 1] && (value[0] === '"' || value[0] === "'")) value = value.slice(1, -1)
      if (key === '') throw invalidLine(file, lineno, 'empty-key', `empty key before '${line[at]}' in`, line)
      pending = { key, value: [value], line: lineno, text: line }
    }
  }
  flush()
  return sections
}

function expandUser (path: string): string {
  return path === '~' || path.startsWith('~/') ? homedir() + path.slice(1) : path
}

function errorCode (error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException).code
}

// Python sorts strings by code point; UTF-8 bytes sort the same way, UTF-16
// units (JavaScript's default sort) do not.
function byCodePoint (a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b))
}

/**
 * The files of a `--config-dir`, as cfg.py's _ConfigDirOpt.ConfigDirAction
 * finds them: `sorted(glob.glob(os.path.join(dir, '*.conf')))`, where glob
 * skips names that start with a dot. An absent directory is an error, as in
 * oslo.config (ConfigDirNotFoundError). So is one that cannot be listed, or
 * a path that is not a directory, where oslo.config silently reads nothing:
 * settings left out without a word are worse than a refused start.
 */
export function configDirFiles (dir: string): string[] {
  const expanded = expandUser(dir)
  if (!existsSync(expanded)) throw new ConfigFileError(`Config directory not found: ${expanded}`)
  let names: string[]
  try {
    names = readdirSync(expanded)
  } catch (error) {
    throw new ConfigFileError(`Cannot read config directory ${expanded}: ${errorCode(error) === 'ENOTDIR' ? 'it is not a directory' : (error as Error).message}`)
  }
  return names.filter((name) => name.endsWith('.conf') && !name.startsWith('.'))
    .map((name) => join(expanded, name)).sort(byCodePoint)
}

const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

/**
 * Reads `--config-file` and `--config-dir` sources in the order given, as
 * oslo.config does: each flag's argparse action (cfg.py _ConfigFileOpt,
 * _ConfigDirOpt) parses its files when the command line reaches it, so a
 * later flag wins over an earlier one whichever kind each is. Paths are made
 * absolute (cfg.py _fixpath, `~` included).
 *
 * A malformed line stops at once. Files that do not exist, then files that
 * cannot be opened, are reported together after every source was read, as
 * ConfigOpts.__call__ does (ConfigFilesNotFoundError,
 * ConfigFilesPermissionDeniedError). Throws a {@link ConfigFileError}.
 */
export function readConfigFiles (sources: readonly ConfigFileSource[]): ParsedConfigFile[] {
  const parsed: ParsedConfigFile[] = []
  const notFound: string[] = []
  const denied: string[] = []
  for (const source of sources) {
    const files = 'dir' in source ? configDirFiles(source.dir) : [source.file]
    for (const name of files) {
      const file = resolve(expandUser(name))
      let bytes: Buffer
      try {
        if (statSync(file).isDirectory()) throw new ConfigFileError(`Cannot read config file ${file}: it is a directory`)
        bytes = readFileSync(file)
      } catch (error) {
        if (error instanceof ConfigFileError) throw error
        if (errorCode(error) === 'ENOENT') { notFound.push(file); continue }
        if (errorCode(error) === 'EACCES') { denied.push(file); continue }
        throw new ConfigFileError(`Cannot read config file ${file}: ${(error as Error).message}`)
      }
      let text: string
      try {
        text = UTF8.decode(bytes)
      } catch {
        throw new ConfigFileError(`Cannot read config file ${file}: it is not UTF-8 text`)
      }
      parsed.push({ file, sections: parseOsloConfig(text, file) })
    }
  }
  if (notFound.length > 0) throw new ConfigFileError(`Config file${notFound.length > 1 ? 's' : ''} not found: ${notFound.join(', ')}`)
  if (denied.length > 0) throw new ConfigFileError(`Config file${denied.length > 1 ? 's' : ''} not readable (permission denied): ${denied.join(', ')}`)
  return parsed
}

/**
 * A section name as oslo.config looks it up (cfg.py _normalize_group_name):
 * lower case, except `DEFAULT`, which must be written so. `[API]` is
 * `[api]`; `[default]` is a section of its own.
 */
export function normalizeGroupName (name: string): string {
  return name === 'DEFAULT' ? name : name.toLowerCase()
}

/**
 * The value oslo.config gives a plain (not multi-valued) option `[group]
 * key`, and the file it came from (cfg.py _Namespace._get_file_value with
 * normalized group names, then `values[-1]`): the last file that sets it
 * wins, and within that file its last value, across repeated sections.
 * Keys are case-sensitive.
 */
export function findFileValue (files: readonly ParsedConfigFile[], group: string, key: string): { value: string, file: string } | undefined {
  const wanted = normalizeGroupName(group)
  for (let i = files.length - 1; i >= 0; i--) {
    let last: string | undefined
    for (const [name, keys] of files[i].sections) {
      const values = normalizeGroupName(name) === wanted ? keys.get(key) : undefined
      if (values !== undefined) last = values[values.length - 1]
    }
    if (last !== undefined) return { value: last, file: files[i].file }
  }
  return undefined
}

// ConfigOpts.Template: string.Template with idpattern [_a-z][\._a-z0-9]*
// under re.IGNORECASE, which also lets U+0130, U+0131, U+017F and U+212A
// match (Python's case-insensitive [a-z]).
const ID_START = '_a-zA-Z\\u0130\\u0131\\u017f\\u212a'
const ID = `[${ID_START}][.${ID_START}0-9]*`
const TEMPLATE = new RegExp(`\\$(?:(\\$)|(${ID})|\\{(${ID})\\}|)`, 'g')

/**
 * Looks up the value of option `name` of `group` (`DEFAULT` for the default
 * group), references already substituted; `undefined` when there is no such
 * option.
 */
export type OptionLookup = (group: string, name: string) => string | undefined

/**
 * Substitutes `$name`, `${name}` and `${group.name}` in a value read from a
 * file, as oslo.config does when an option is read (cfg.py
 * ConfigOpts._substitute, Template, StrSubWrapper): `$$` and `\$` are a
 * literal `$`; a `$` that starts no name stays as is; `$name` is the option
 * `name` of the same group, else of `[DEFAULT]`; `${group.name}` (split at
 * the first dot) is that option, `[DEFAULT]` not being a group one can name
 * so. A name that `lookup` does not know throws a {@link ConfigFileError}
 * (oslo.config raises NoSuchOptError).
 */
export function substituteOptions (raw: string, group: string, lookup: OptionLookup, where: string): string {
  return raw.replaceAll('\\$', '$$$$').replace(TEMPLATE, (match, escaped?: string, named?: string, braced?: string) => {
    if (escaped !== undefined) return '$'
    const name = named ?? braced
    if (name === undefined) return match
    const dot = name.indexOf('.')
    const value = dot < 0
      ? lookup(group, name) ?? lookup('DEFAULT', name)
      : (name.slice(0, dot) === 'DEFAULT' ? undefined : lookup(name.slice(0, dot), name.slice(dot + 1))) ?? lookup('DEFAULT', name)
    if (value === undefined) throw new ConfigFileError(`${where} refers to ${match}, an option scopekeeper does not know; write $$ for a literal $`)
    return value
  })
}

/** The value of one option, and the file that set it (none: its default). */
export interface OptionValue {
  value: string
  file?: string
}

/**
 * Reads options from parsed files as oslo.config reads a string option
 * (cfg.py ConfigOpts._do_get): the file value that {@link findFileValue}
 * finds, with the other options it names substituted
 * ({@link substituteOptions}), else `defaultOf`. `isOption` says which
 * options exist (oslo.config's registered options), for substitution.
 * Options that refer to each other in a cycle throw a
 * {@link ConfigFileError} (oslo.config recurses until Python gives up).
 */
export function fileOptionReader (
  files: readonly ParsedConfigFile[],
  isOption: (group: string, key: string) => boolean,
  defaultOf: (group: string, key: string) => string,
): (group: string, key: string) => OptionValue {
  const reading: string[] = []
  const read = (group: string, key: string): OptionValue => {
    const found = findFileValue(files, group, key)
    if (found === undefined) return { value: defaultOf(group, key) }
    const name = `[${group}] ${key}`
    if (reading.includes(name)) throw new ConfigFileError(`Options refer to each other in a cycle: ${[...reading, name].join(' -> ')}`)
    reading.push(name)
    try {
      const lookup: OptionLookup = (g, k) => isOption(g, k) ? read(g, k).value : undefined
      return { value: substituteOptions(found.value, group, lookup, `${name} in ${found.file}`), file: found.file }
    } finally {
      reading.pop()
    }
  }
  return read
}
