import { existsSync, readFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { parse } from 'yaml'
import { UsageError } from './usage-error.ts'

/** One entry of clouds.yaml's `clouds:` map (openstacksdk's keys: `auth`, `region_name`, `interface`, `cacert`, `verify`, …). */
export interface CloudEntry {
  auth?: Record<string, unknown>
  [key: string]: unknown
}

/** Environment variables the lookup reads (`OS_CLIENT_CONFIG_FILE`, `HOME`, `XDG_CONFIG_HOME`, …). */
export type Env = Record<string, string | undefined>

const SUFFIXES = ['.yaml', '.yml', '.json']

/**
 * The folders openstacksdk searches for clouds.yaml and secure.yaml, first
 * match wins: the current folder, the user's config folder
 * (`$XDG_CONFIG_HOME/openstack`, else `~/.config/openstack`), the site
 * folders (`$XDG_CONFIG_DIRS/openstack`, default `/etc/xdg/openstack`), and
 * `/etc/openstack`.
 */
export function cloudConfigFolders (env: Env, cwd: string): string[] {
  const home = env.HOME ?? homedir()
  const folders = [
    cwd,
    join(env.XDG_CONFIG_HOME ?? join(home, '.config'), 'openstack'),
    join(home, '.config', 'openstack'),
    ...(env.XDG_CONFIG_DIRS ?? '/etc/xdg').split(':').filter((d) => d !== '').map((d) => join(d, 'openstack')),
    '/etc/openstack',
  ]
  return [...new Set(folders)]
}

/**
 * Candidate files, in search order: `OS_CLIENT_CONFIG_FILE` (or
 * `OS_CLIENT_SECURE_FILE`) first, then `clouds.yaml`, `clouds.yml` and
 * `clouds.json` (or `secure.*`) in each of {@link cloudConfigFolders}.
 */
export function cloudConfigFiles (kind: 'clouds' | 'secure', env: Env, cwd: string): string[] {
  const override = kind === 'clouds' ? env.OS_CLIENT_CONFIG_FILE : env.OS_CLIENT_SECURE_FILE
  const files = cloudConfigFolders(env, cwd).flatMap((folder) => SUFFIXES.map((suffix) => join(folder, kind + suffix)))
  return override === undefined || override === '' ? files : [override, ...files]
}

function readFirst (files: string[]): { file: string, clouds: Record<string, CloudEntry> } | undefined {
  const file = files.find((f) => existsSync(f))
  if (file === undefined) return undefined
  let document: unknown
  try {
    const text = readFileSync(file, 'utf8')
    document = file.endsWith('.json') ? JSON.parse(text) : parse(text)
  } catch (error) {
    throw new UsageError(`Cannot read ${file}: ${(error as Error).message.split('\n')[0]}`)
  }
  const clouds = (document as { clouds?: unknown } | null)?.clouds
  if (clouds !== undefined && (clouds === null || typeof clouds !== 'object' || Array.isArray(clouds))) {
    throw new UsageError(`${file}: 'clouds' must be a map of cloud names to settings.`)
  }
  return { file, clouds: (clouds ?? {}) as Record<string, CloudEntry> }
}

function merge (base: Record<string, unknown>, extra: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base }
  for (const [key, value] of Object.entries(extra)) {
    const current = out[key]
    out[key] = value !== null && typeof value === 'object' && !Array.isArray(value) && current !== null && typeof current === 'object' && !Array.isArray(current)
      ? merge(current as Record<string, unknown>, value as Record<string, unknown>)
      : value
  }
  return out
}

/**
 * The settings of cloud `name`, as the OpenStack client finds them: the
 * first clouds.yaml found (see {@link cloudConfigFiles}), with the matching
 * entry of the first secure.yaml merged over it (passwords are usually kept
 * there). Throws {@link UsageError} when no file exists or the cloud is
 * not in it. Vendor profiles (clouds-public.yaml) are not supported.
 */
export function loadCloud (name: string, env: Env, cwd: string): { cloud: CloudEntry, file: string } {
  const found = readFirst(cloudConfigFiles('clouds', env, cwd))
  if (found === undefined) {
    throw new UsageError(`Cloud '${name}' requested, but no clouds.yaml was found (searched ${cloudConfigFolders(env, cwd).join(', ')}, and OS_CLIENT_CONFIG_FILE).`)
  }
  const entry = found.clouds[name]
  if (entry === undefined || entry === null || typeof entry !== 'object') {
    const known = Object.keys(found.clouds)
    throw new UsageError(`Cloud '${name}' is not in ${found.file}${known.length === 0 ? '' : ` (it has: ${known.join(', ')})`}.`)
  }
  const secure = readFirst(cloudConfigFiles('secure', env, cwd))?.clouds[name]
  const cloud = (secure !== undefined && secure !== null && typeof secure === 'object' ? merge(entry, secure) : entry) as CloudEntry
  if (cloud.profile !== undefined) {
    throw new UsageError(`Cloud '${name}' in ${found.file} uses the vendor profile '${String(cloud.profile)}', which this client does not read: put its auth_url and region_name in clouds.yaml.`)
  }
  return { cloud, file: found.file }
}
