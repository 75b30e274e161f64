/**
 * The per-scope processing lock a reset holds while it touches a scope, so
 * it never interleaves with the rating of that scope. A rating processor
 * takes the same lock.
 */
export interface ScopeLock {
  /** Runs `work` while holding the lock of every scope id in `scopeIds`. */
  withScopes: <T>(scopeIds: string[], work: () => Promise<T>) => Promise<T>
}

/**
 * An in-process lock, enough on SQLite where one process serves the file.
 * Takes the ids in sorted order so that two holders cannot deadlock.
 */
export class InProcessScopeLock implements ScopeLock {
  private readonly tails = new Map<string, Promise<void>>()

  async withScopes<T> (scopeIds: string[], work: () => Promise<T>): Promise<T> {
    const ids = [...new Set(scopeIds)].sort()
    const releases: Array<() => void> = []
    for (const id of ids) releases.push(await this.acquire(id))
    try {
      return await work()
    } finally {
      for (const release of releases.reverse()) release()
    }
  }

  private async acquire (id: string): Promise<() => void> {
    const previous = this.tails.get(id) ?? Promise.resolve()
    let release!: () => void
    const held = new Promise<void>((resolve) => { release = resolve })
    const tail = previous.then(() => held)
    this.tails.set(id, tail)
    await previous
    return () => {
      release()
      if (this.tails.get(id) === tail) this.tails.delete(id)
    }
  }
}
