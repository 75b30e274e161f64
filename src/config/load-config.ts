import { OWN_SECTIONS, SETTINGS, type Config, type Setting } from './config-schema.ts'
import {
  ConfigFileError, fileOptionReader, findFileValue, normalizeGroupName, readConfigFiles,
  type ConfigFileSource, type OptionValue, type ParsedConfigFile,
} from './oslo-config-file.ts'

export type { ConfigFileSource } from './oslo-config-file.ts'

/** Where the raw values come from; each later source wins key by key. */
export interface ConfigSources {
  /** One cloudkitty.conf-style file: the same as `files: [file]`. */
  file?: string
  /** Config files (`--config-file`), read in order: a later file wins. */
  files?: string[]
  /** Config directories (`--config-dir`): each one's `*.conf` in sorted order, read after `files`. */
  dirs?: string[]
  /**
   * `--config-file` and `--config-dir` as the command line gave them,
   * interleaved, read after `files` and `dirs`: oslo.config reads them in
   * command-line order, and the CLI passes them so.
   */
  commandLine?: ConfigFileSource[]
  env?: NodeJS.ProcessEnv
  /** Values from command-line flags, keyed by setting flag name. */
  flags?: Record<string, string | number | boolean | undefined>
}

/** A setting that cannot be used; the message names the key and its source. */
export class ConfigError extends Error {}

function configFileSources (sources: ConfigSources, env: NodeJS.ProcessEnv): ConfigFileSource[] {
  const given: ConfigFileSource[] = [
    ...(sources.file === undefined ? [] : [{ file: sources.file }]),
    ...(sources.files ?? []).map((file) => ({ file })),
    ...(sources.dirs ?? []).map((dir) => ({ dir })),
    ...(sources.commandLine ?? []),
  ]
  if (given.length > 0) return given
  return env.SCOPEKEEPER_CONFIG === undefined || env.SCOPEKEEPER_CONFIG === '' ? [] : [{ file: env.SCOPEKEEPER_CONFIG }]
}

function findSetting (group: string, key: string): Setting | undefined {
  return SETTINGS.find((s) => s.section === group && s.key === key)
}

/**
 * The raw value of each setting the files set, read as oslo.config reads
 * them (see oslo-config-file.ts). Other sections and keys are CloudKitty's:
 * a shared cloudkitty.conf has many, and they are ignored, except in our own
 * sections. A `$name` in a value may name a setting of ours, or an option
 * of CloudKitty's that the files set.
 */
function readFileValues (sources: ConfigFileSource[]): Map<Setting, OptionValue> {
  const values = new Map<Setting, OptionValue>()
  if (sources.length === 0) return values
  try {
    const files: ParsedConfigFile[] = readConfigFiles(sources)
    for (const { file, sections } of files) {
      for (const [section, keys] of sections) {
        const group = normalizeGroupName(section)
        if (!OWN_SECTIONS.includes(group)) continue
        for (const key of keys.keys()) {
          if (findSetting(group, key) === undefined) throw new ConfigError(`Unknown setting [${section}] ${key} in config file ${file}`)
        }
      }
    }
    const isOption = (group: string, key: string): boolean =>
      findSetting(group, key) !== undefined || (normalizeGroupName(group) === group && findFileValue(files, group, key) !== undefined)
    const read = fileOptionReader(files, isOption, (group, key) => String(findSetting(group, key)?.default ?? ''))
    for (const setting of SETTINGS) {
      const found = read(setting.section, setting.key)
      if (found.file !== undefined) values.set(setting, found)
    }
  } catch (error) {
    if (error instanceof ConfigFileError) throw new ConfigError(error.message, { cause: error })
    throw error
  }
  return values
}

/**
 * Merges defaults < config file < environment < flags into one frozen
 * {@link Config}. A bad value, or an unknown `SCOPEKEEPER_*` variable, throws
 * a {@link ConfigError} naming the key and where it came from. This is the
 * only reader of the environment.
 */
export function loadConfig (sources: ConfigSources = {}): Config {
  const env = sources.env ?? process.env
  const fileValues = readFileValues(configFileSources(sources, env))
  const known = new Set([...SETTINGS.map((s) => s.env), 'SCOPEKEEPER_CONFIG'])
  for (const name of Object.keys(env)) {
    if (name.startsWith('SCOPEKEEPER_') && !known.has(name)) throw new ConfigError(`Unknown environment variable ${name}`)
  }
  const config: Record<string, Record<string, unknown>> = {}
  for (const setting of SETTINGS) {
    let value: string | number | boolean = setting.default
    const fromFile = fileValues.get(setting)
    const flag = setting.flag === undefined ? undefined : sources.flags?.[setting.flag]
    const candidates: Array<[string | number | boolean | undefined, string]> = [
      [fromFile?.value, `config file ${fromFile?.file ?? ''}`],
      [env[setting.env], `environment variable ${setting.env}`],
      [flag, `flag --${setting.flag ?? ''}`],
    ]
    for (const [raw, where] of candidates) {
      if (raw === undefined) continue
      try {
        value = setting.parse(String(raw))
      } catch (error) {
        // A secret's value never reaches a message, not even a wrong one.
        const shown = setting.secret === true ? '' : ` '${String(raw)}'`
        throw new ConfigError(`Invalid value${shown} for [${setting.section}] ${setting.key} (from ${where}): ${(error as Error).message}`)
      }
    }
    const [group, name] = setting.path.split('.')
    config[group] = { ...(config[group] ?? {}), [name]: value }
  }
  for (const group of Object.values(config)) Object.freeze(group)
  return Object.freeze(config) as unknown as Config
}
