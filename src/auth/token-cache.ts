/**
 * A map bounded in size and in time: each entry carries its own expiry, and
 * when the map is full the least recently used entry goes first.
 *
 * Expired entries are dropped when read; `clock` (milliseconds) is
 * injectable so tests can move time.
 */
export class ExpiringLru<V> {
  private readonly entries = new Map<string, { value: V, expiresAt: number }>()

  constructor (private readonly maxEntries: number, private readonly clock: () => number = Date.now) {
    if (!Number.isInteger(maxEntries) || maxEntries < 1) throw new RangeError('maxEntries must be a positive integer')
  }

  /** The live value under `key`, which becomes the most recently used; undefined when absent or expired. */
  get (key: string): V | undefined {
    const entry = this.entries.get(key)
    if (entry === undefined) return undefined
    this.entries.delete(key)
    if (this.clock() >= entry.expiresAt) return undefined
    // Re-inserting moves the key to the end: Map keeps insertion order.
    this.entries.set(key, entry)
    return entry.value
  }

  /** Stores `value` until `expiresAt` (ms); an entry already expired is not stored. */
  set (key: string, value: V, expiresAt: number): void {
    this.entries.delete(key)
    if (this.clock() >= expiresAt) return
    this.entries.set(key, { value, expiresAt })
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value as string
      this.entries.delete(oldest)
    }
  }

  delete (key: string): void {
    this.entries.delete(key)
  }

  /** Entries held, expired ones included until they are read or pushed out. */
  get size (): number {
    return this.entries.size
  }
}
