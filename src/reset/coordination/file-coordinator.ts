import { constants } from 'node:fs'
import { mkdir, open, type FileHandle } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { join, resolve } from 'node:path'
import type { Coordinator, HeldLocks } from './coordinator.ts'
import { ToozUrlError, type ToozUrl } from './tooz-url.ts'

// os-lock is a native addon: loaded when a URL first names file://.
const require = createRequire(import.meta.url)
type OsLock = typeof import('os-lock')
let osLock: OsLock | undefined
function loadOsLock (): OsLock {
  osLock ??= require('os-lock') as OsLock
  return osLock
}

/**
 * Paths whose record lock this process holds, with the handle that holds it
 * (`'taking'` while one is being taken). POSIX record locks belong to the
 * process: a second holder here would be granted the lock again, and
 * closing any descriptor of the file would drop it. So a path is opened at
 * most once at a time, whatever coordinator asks, and a path held here is
 * reported as not taken, as tooz's per-path barrier does for its threads
 * (`tooz/drivers/file.py` `FileLock.acquire`).
 */
const heldHere = new Map<string, FileHandle | 'taking'>()

/** The lock directory of a `file://` URL, as tooz's `FileDriver.__init__` takes it: the URL's path, undecoded. */
export function fileLockDirectory (url: ToozUrl): string {
  const dir = url.path
  // FileDriver._start makes the directory: an empty path fails there.
  if (dir === '') throw new ToozUrlError('tooz needs an absolute lock directory, as in file:///var/lib/cloudkitty/locks; this URL has none (a host part is not a directory)')
  // FileDriver.get_lock -> utils.safe_abs_path refuses every lock of a
  // directory that is relative or not in normal form.
  const probe = '0'.repeat(64)
  if (!resolve(dir, probe).startsWith(dir)) {
    throw new ToozUrlError(`tooz refuses every lock in '${dir}' (its utils.safe_abs_path needs an absolute directory without '.', '..' or '//')`)
  }
  return dir
}

/**
 * tooz's file driver: a lock is a POSIX record lock (`fcntl` `F_SETLK`,
 * `F_WRLCK`, the whole file) on `DIR/<name>`, as fasteners takes it
 * (`fasteners/process_lock.py` `_InterProcessLock._do_open` opens the file
 * in append mode after making its directory; `_FcntlLock._trylock` calls
 * `fcntl.lockf(f, LOCK_EX | LOCK_NB)`; release is `lockf(f, LOCK_UN)`, then
 * close). `flock()` locks do not exclude these on Linux, hence os-lock's
 * `fcntl`. Like tooz's driver, this excludes processes on one host only.
 */
export class FileCoordinator implements Coordinator {
  private readonly holders = new Set<() => Promise<void>>()

  constructor (private readonly dir: string, readonly description: string) {
    loadOsLock()
  }

  /** `tooz/utils.py` `safe_abs_path` and `FileDriver.get_lock`'s reserved paths. */
  private pathOf (name: string): string {
    const path = resolve(this.dir, name)
    const reserved = [this.dir, join(this.dir, 'groups'), join(this.dir, 'tmp'), join(this.dir, '.driver_lock')]
    if (!path.startsWith(this.dir) || reserved.includes(path) || name.includes('\0')) throw new Error(`tooz cannot make a lock file of the name '${name}' in ${this.dir}`)
    return path
  }

  async tryLock (names: readonly string[]): Promise<HeldLocks> {
    const paths = new Map<string, string>()
    for (const name of new Set(names)) paths.set(name, this.pathOf(name))
    await mkdir(this.dir, { recursive: true })
    const taken = new Map<string, FileHandle>()
    const held = new Set<string>()
    const failures: unknown[] = []
    await Promise.all([...paths].map(async ([name, path]) => {
      if (heldHere.has(path)) return
      heldHere.set(path, 'taking')
      let handle: FileHandle | undefined
      try {
        handle = await open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_APPEND)
        await loadOsLock().lock(handle.fd, { exclusive: true, immediate: true })
        heldHere.set(path, handle)
        taken.set(path, handle)
        held.add(name)
      } catch (error) {
        // This process held no lock on the file, so closing it drops none;
        // the path is free for another holder here only once it is closed.
        await handle?.close().catch(() => {})
        heldHere.delete(path)
        const code = (error as NodeJS.ErrnoException).code
        if (code !== 'EAGAIN' && code !== 'EACCES') failures.push(error)
      }
    }))
    let released: Promise<void> | undefined
    const release = async (): Promise<void> => {
      released ??= (async () => {
        this.holders.delete(release)
        await Promise.all([...taken].map(async ([path, handle]) => { await unlockPath(path, handle) }))
      })()
      await released
    }
    this.holders.add(release)
    if (failures.length > 0) {
      await release()
      throw failures[0]
    }
    return { held, release }
  }

  /** Releases every lock this coordinator still holds. */
  async close (): Promise<void> {
    await Promise.all([...this.holders].map(async (release) => { await release().catch(() => {}) }))
  }
}

/**
 * `lockf(LOCK_UN)`, then close. The path stays marked as held here until the
 * descriptor is closed: a holder that opened the file meanwhile would be
 * granted the process's lock, then lose it to this close.
 */
async function unlockPath (path: string, handle: FileHandle): Promise<void> {
  if (heldHere.get(path) !== handle) return
  try {
    await loadOsLock().unlock(handle.fd)
  } finally {
    // Closing drops the lock even when the unlock failed.
    await handle.close().catch(() => {})
    heldHere.delete(path)
  }
}
