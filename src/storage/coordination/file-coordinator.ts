import { closeSync, constants, openSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { join, resolve } from 'node:path'
import { setImmediate as yieldToEventLoop } from 'node:timers/promises'
import type * as OsLockModule from 'os-lock'
import type { Coordinator, HeldLocks } from './coordinator.ts'
import { ToozUrlError, type ToozUrl } from './tooz-url.ts'

// os-lock is a native addon: loaded when a URL first names file://.
const require = createRequire(import.meta.url)
type OsLock = typeof OsLockModule
let osLock: OsLock | undefined
function loadOsLock (): OsLock {
  osLock ??= require('os-lock') as OsLock
  return osLock
}

// fasteners opens the lock file with open(path, 'a').
const APPEND_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_APPEND

// Files are opened and closed synchronously, a few dozen at a time between
// turns of the event loop (well under a millisecond each): with open and
// close also going through the thread pool, a 500-name batch took about
// three times as long.
const SYNC_CHUNK = 64

/**
 * Paths whose record lock this process holds, with the descriptor that holds it
 * (`'taking'` while one is being taken). POSIX record locks belong to the
 * process: a second holder here would be granted the lock again, and
 * closing any descriptor of the file would drop it. So a path is opened at
 * most once at a time, whatever coordinator asks, and a path held here is
 * reported as not taken, as tooz's per-path barrier does for its threads
 * (`tooz/drivers/file.py` `FileLock.acquire`).
 */
const heldHere = new Map<string, number | 'taking'>()

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
    const opened = new Map<string, { name: string, fd: number }>()
    const failures: unknown[] = []
    const entries = [...paths]
    for (let i = 0; i < entries.length; i += SYNC_CHUNK) {
      if (i > 0) await yieldToEventLoop()
      for (const [name, path] of entries.slice(i, i + SYNC_CHUNK)) {
        if (heldHere.has(path)) continue
        heldHere.set(path, 'taking')
        try {
          opened.set(path, { name, fd: openSync(path, APPEND_FLAGS) })
        } catch (error) {
          heldHere.delete(path)
          failures.push(error)
        }
      }
    }
    const taken = new Map<string, number>()
    const held = new Set<string>()
    const refused: Array<[string, number]> = []
    await Promise.all([...opened].map(async ([path, { name, fd }]) => {
      try {
        await loadOsLock().lock(fd, { exclusive: true, immediate: true })
        heldHere.set(path, fd)
        taken.set(path, fd)
        held.add(name)
      } catch (error) {
        refused.push([path, fd])
        // fcntl answers EACCES or EAGAIN when another process holds the lock.
        const code = (error as NodeJS.ErrnoException).code
        if (code !== 'EAGAIN' && code !== 'EACCES') failures.push(error)
      }
    }))
    // This process held no lock on these files, so closing them drops none;
    // a path is free for another holder here only once it is closed.
    await closeAll(refused)
    let released: Promise<void> | undefined
    const release = async (): Promise<void> => {
      released ??= (async () => {
        this.holders.delete(release)
        await unlockAll([...taken])
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
 * `lockf(LOCK_UN)`, then close, for each held path. A path stays marked as
 * held here until its descriptor is closed: a holder that opened the file
 * meanwhile would be granted the process's lock, then lose it to this close.
 */
async function unlockAll (taken: Array<[string, number]>): Promise<void> {
  const mine = taken.filter(([path, fd]) => heldHere.get(path) === fd)
  // Closing drops the lock even when an unlock failed.
  await Promise.all(mine.map(async ([, fd]) => { await loadOsLock().unlock(fd).catch(() => {}) }))
  await closeAll(mine)
}

async function closeAll (files: Array<[string, number]>): Promise<void> {
  for (let i = 0; i < files.length; i += SYNC_CHUNK) {
    if (i > 0) await yieldToEventLoop()
    for (const [path, fd] of files.slice(i, i + SYNC_CHUNK)) {
      try {
        closeSync(fd)
      } catch {}
      if (heldHere.get(path) === fd || heldHere.get(path) === 'taking') heldHere.delete(path)
    }
  }
}
