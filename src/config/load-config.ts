import { readFileSync } from 'node:fs'
import { parse as parseIni } from 'ini'
import { OWN_SECTIONS, SETTINGS, type Config, type Setting } from './config-schema.ts'

/** Where the raw values come from; each later source wins key by key. */
export interface ConfigSources {
  /** Path of a cloudkitty.conf-style INI file. */
  file?: string
  env?: NodeJS.ProcessEnv
  /** Values from command-line flags, keyed by setting flag name. */
  flags?: Record<string, string | number | boolean | undefined>
}

/** A setting that cannot be used; the message names the key and its source. */
export class ConfigError extends Error {}

function readIniValues (file: string): Map<Setting, string> {
  let parsed: Record<string, unknown>
  try {
    parsed = parseIni(readFileSync(file, 'utf8'))
  } catch (error) {
    throw new ConfigError(`Cannot read config file ${file}: ${(error as Error).message}`)
  }
  const values = new Map<Setting, string>()
  // cloudkitty.conf's top-level keys belong to [DEFAULT].
  const sections: Record<string, Record<string, unknown>> = { DEFAULT: {} }
  for (const [name, value] of Object.entries(parsed)) {
    if (typeof value === 'object' && value !== null) sections[name] = { ...(sections[name] ?? {}), ...(value as Record<string, unknown>) }
    else sections.DEFAULT[name] = value
  }
  for (const [section, keys] of Object.entries(sections)) {
    for (const [key, value] of Object.entries(keys)) {
      const setting = SETTINGS.find((s) => s.section === section && s.key === key)
      // Other sections and keys are CloudKitty's: a shared cloudkitty.conf has many.
      if (setting === undefined) {
        if (OWN_SECTIONS.includes(section)) throw new ConfigError(`Unknown setting [${section}] ${key} in config file ${file}`)
        continue
      }
      values.set(setting, String(value))
    }
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
  const file = sources.file ?? env.SCOPEKEEPER_CONFIG
  const fileValues = file !== undefined && file !== '' ? readIniValues(file) : new Map<Setting, string>()
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
      [fromFile, `config file ${file ?? ''}`],
      [env[setting.env], `environment variable ${setting.env}`],
      [flag, `flag --${setting.flag ?? ''}`],
    ]
    for (const [raw, where] of candidates) {
      if (raw === undefined) continue
      try {
        value = setting.parse(String(raw))
      } catch (error) {
        throw new ConfigError(`Invalid value '${String(raw)}' for [${setting.section}] ${setting.key} (from ${where}): ${(error as Error).message}`)
      }
    }
    const [group, name] = setting.path.split('.')
    config[group] = { ...(config[group] ?? {}), [name]: value }
  }
  for (const group of Object.values(config)) Object.freeze(group)
  return Object.freeze(config) as unknown as Config
}
