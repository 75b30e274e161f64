import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { tempDir } from '../helpers/build-test-app.ts'
import { connectRaw } from '../helpers/cloudkitty-schema.ts'
import { startServerProcess } from '../helpers/server-process.ts'
import { freshDatabaseUrl, testEngines } from '../helpers/test-databases.ts'

for (const engine of testEngines()) {
  describe(`${engine}: time zones`, () => {
    it('stores and answers naive UTC whatever the process and database time zones', async (t) => {
      const url = await freshDatabaseUrl(t, engine, tempDir(t))
      if (url === undefined) return
      if (engine === 'postgres') {
        const raw = await connectRaw(engine, url)
        await raw.exec(`ALTER DATABASE ${new URL(url).pathname.slice(1)} SET timezone TO 'Asia/Tokyo'`)
        await raw.close()
      }
      const server = await startServerProcess(t, ['--database', url], { TZ: 'America/New_York' })
      const created = await fetch(`${server.url}/v2/scope`, {
        method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ scope_id: 'tz', last_processed_timestamp: '2019-07-16T10:55:01+02:00' }),
      })
      const body = await created.json() as any
      assert.equal(created.status, 200)
      assert.equal(body.last_processed_timestamp, '2019-07-16T08:55:01+00:00')
      const toggled = Date.parse(body.scope_activation_toggle_date)
      assert.ok(Math.abs(toggled - Date.now()) < 60_000, `toggle date ${body.scope_activation_toggle_date} is now, in UTC`)
      const listed = await (await fetch(`${server.url}/v2/scope?scope_id=tz`)).json() as any
      assert.deepEqual(listed.results[0], body)
      await server.stop()

      const raw = await connectRaw(engine, url)
      const text = engine === 'postgres' ? 'last_processed_timestamp::text' : engine === 'mariadb' ? 'CAST(last_processed_timestamp AS CHAR)' : 'last_processed_timestamp'
      const [row] = await raw.rows(`SELECT ${text} AS lpt FROM cloudkitty_storage_states WHERE identifier = 'tz'`)
      await raw.close()
      assert.match(String(row.lpt), /^2019-07-16 08:55:01(\.000000)?$/)
    })
  })
}
