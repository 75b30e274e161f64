import type { ScopeState } from '../domain/scope-state.ts'

/**
 * Where rated data lives. A reset calls {@link RatedDataStore.discardFrom}
 * before it moves a scope's timestamp back; a rating processor's storage
 * plugs in here.
 */
export interface RatedDataStore {
  /**
   * Discards the rated data of `scope` from `from` on. Must be idempotent: a
   * reset interrupted by a crash calls it again for the same scope.
   */
  discardFrom: (scope: ScopeState, from: Date) => Promise<void>
}

/** The default store: scopekeeper keeps no rated data yet, so there is nothing to discard. */
export const NO_RATED_DATA: RatedDataStore = {
  async discardFrom () {},
}
