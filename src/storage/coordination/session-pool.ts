/**
 * Database sessions dedicated to holding locks, one per {@link HeldLocks}.
 *
 * MySQL named locks and PostgreSQL advisory locks belong to a session, and a
 * session re-taking a lock it holds succeeds (MySQL counts it, PostgreSQL
 * stacks it). Two holders in one process therefore never share a session:
 * each takes one of its own from here, and gives it back, with no lock
 * left, once released. A few idle sessions are kept for the next batch.
 *
 * @see HeldLocks in ./coordinator.ts
 */
export class SessionPool<S> {
  private readonly idle: S[] = []
  private readonly busy = new Set<S>()
  private closed = false

  constructor (
    private readonly open: () => Promise<S>,
    private readonly dispose: (session: S) => Promise<void>,
    private readonly maxIdle = 4,
  ) {}

  /**
   * Runs `take` on a session of its own. A reused idle session that fails
   * (the server may have closed it meanwhile) is dropped and `take` runs
   * once more on a new one; a new session that fails rejects. On failure
   * the session is disposed of, which ends whatever it held.
   */
  async withSession<T> (take: (session: S) => Promise<T>): Promise<{ session: S, result: T }> {
    if (this.closed) throw new Error('The coordinator is closed')
    const reused = this.idle.pop()
    if (reused !== undefined) {
      this.busy.add(reused)
      try {
        return { session: reused, result: await take(reused) }
      } catch {
        await this.discard(reused)
      }
    }
    const session = await this.open()
    this.busy.add(session)
    try {
      return { session, result: await take(session) }
    } catch (error) {
      await this.discard(session)
      throw error
    }
  }

  /** Gives back a session that holds nothing any more. */
  async recycle (session: S): Promise<void> {
    if (!this.busy.delete(session)) return
    if (this.closed || this.idle.length >= this.maxIdle) await this.dispose(session).catch(() => {})
    else this.idle.push(session)
  }

  /** Ends a session, and with it every lock it held. */
  async discard (session: S): Promise<void> {
    this.busy.delete(session)
    await this.dispose(session).catch(() => {})
  }

  /** Ends every session, idle or holding: the server drops their locks. */
  /**
   * The release of the locks a session holds: runs `unlock` once (later
   * calls wait for the first), then hands the session back. A session that
   * fails to unlock is ended instead, which drops whatever it held.
   */
  releaser (session: S, unlock: () => Promise<void>): () => Promise<void> {
    let released: Promise<void> | undefined
    return async () => {
      released ??= (async () => {
        try {
          await unlock()
        } catch (error) {
          await this.discard(session)
          throw error
        }
        await this.recycle(session)
      })()
      await released
    }
  }

  async close (): Promise<void> {
    this.closed = true
    const sessions = [...this.idle.splice(0), ...this.busy]
    this.busy.clear()
    await Promise.all(sessions.map(async (session) => { await this.dispose(session).catch(() => {}) }))
  }
}
