import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { inTransaction, type Store } from '../../src/storage/store.ts'
import { buildTestApp, createScopes } from '../helpers/build-test-app.ts'
import { testEngines } from '../helpers/test-databases.ts'

// SQLite's write transactions exclude each other: it has no deadlocks to retry.
for (const engine of testEngines().filter((e) => e !== 'sqlite')) {
  describe(`${engine}: a transaction chosen as a deadlock's victim`, () => {
    it('runs again, so that both transactions of a real deadlock commit', async (t) => {
      const { app, database } = await buildTestApp(t, { engine })
      await createScopes(app, [{ scope_id: 'left' }, { scope_id: 'right' }])
      const idOf = Object.fromEntries((await database.db.selectFrom('cloudkitty_storage_states').select(['id', 'identifier']).execute()).map((r) => [r.identifier, r.id]))
      // By primary key: each statement locks its one row and no gap (InnoDB).
      const touch = async (trx: Store, scopeId: string, collector: string) => {
        await trx.db.updateTable('cloudkitty_storage_states').set({ collector }).where('id', '=', idOf[scopeId]).execute()
      }
      // Each takes its first row, waits until the other has its own, then
      // asks for the other's: the server must pick a victim.
      let holding = 0
      const bothHolding = async () => {
        holding++
        for (let waited = 0; holding < 2 && waited < 200; waited++) await new Promise((resolve) => setTimeout(resolve, 5))
      }
      const attempts = { a: 0, b: 0 }
      const [a, b] = await Promise.allSettled([
        inTransaction(database, async (trx) => { attempts.a++; await touch(trx, 'left', 'a'); await bothHolding(); await touch(trx, 'right', 'a') }),
        inTransaction(database, async (trx) => { attempts.b++; await touch(trx, 'right', 'b'); await bothHolding(); await touch(trx, 'left', 'b') }),
      ])
      assert.deepEqual([a.status, b.status], ['fulfilled', 'fulfilled'])
      // The victim runs again (3 attempts in all). Under load, its second
      // run can take its first row back before the survivor, woken by the
      // rollback, re-reads it: a second deadlock, and a fourth attempt.
      const runs = attempts.a + attempts.b
      assert.ok(runs === 3 || runs === 4, `the victim ran again, the other once or twice: ${runs} attempts`)
      const rows = await database.db.selectFrom('cloudkitty_storage_states').select('collector').execute()
      // The victim committed last: both rows carry its collector.
      assert.equal(new Set(rows.map((r) => r.collector)).size, 1)
    })
  })
}
