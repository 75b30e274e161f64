import { createHash } from 'node:crypto'

/**
 * CloudKitty's processing lock, taken exactly as its processor takes it.
 *
 * Glossary: a *coordinator* is a connection to the tooz backend named by
 * `[orchestrator] coordination_url`; a *lock name* is what CloudKitty's
 * `cloudkitty/orchestrator.py` `get_lock` hands to tooz's `get_lock`.
 */

/** The configuration values CloudKitty's `get_lock` mixes into the name: the configuration's, never a row's. */
export interface LockNameSettings {
  /** `[collect] collector` */
  collector: string
  /** `[fetcher] backend` */
  fetcher: string
  /** `[collect] scope_key` */
  scopeKey: string
}

/**
 * The name of a scope's processing lock: the SHA-256 hex digest of
 * `cloudkitty-<scope_id>-<collector>-<fetcher>-<scope_key>`, as
 * `cloudkitty/orchestrator.py` `get_lock` computes it (17.0.0 to master).
 */
export function processingLockName (scopeId: string, settings: LockNameSettings): string {
  return createHash('sha256')
    .update(`cloudkitty-${scopeId}-${settings.collector}-${settings.fetcher}-${settings.scopeKey}`)
    .digest('hex')
}

/** Locks taken by one {@link Coordinator.tryLock} call. */
export interface HeldLocks {
  /** The names that were taken: a subset of those asked for. */
  readonly held: ReadonlySet<string>
  /** Releases every lock taken; idempotent. */
  release: () => Promise<void>
}

/**
 * One tooz backend, spoken on the wire as tooz's own driver speaks it, so a
 * lock held here excludes CloudKitty's processor and the other way round.
 */
export interface Coordinator {
  /**
   * Tries to take each named lock without waiting (as the processor's
   * `lock.acquire(blocking=False)` does). A lock held by anyone else,
   * including another holder in this process, is simply not in `held`.
   * Rejects only when the backend cannot be reached.
   */
  tryLock: (names: readonly string[]) => Promise<HeldLocks>
  /** The URL without credentials, for logs and messages. */
  readonly description: string
  close: () => Promise<void>
}
