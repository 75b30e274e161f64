import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { buildTestApp, call, createScopes, dumpStates } from '../helpers/build-test-app.ts'
import { testEngines } from '../helpers/test-databases.ts'

// Issue 14 §4: a GET that matches exactly one row carries an ETag; PATCH
// honours If-Match (RFC 9110 §13.1.1) with a 412 when the row changed since,
// and answers the new ETag.

/** A PATCH with an If-Match header (none when `ifMatch` is undefined). */
async function patch (app: FastifyInstance, body: object, ifMatch?: string, query = '') {
  const res = await app.inject({
    method: 'PATCH',
    url: `/v2/scope${query}`,
    headers: { 'content-type': 'application/json', ...(ifMatch === undefined ? {} : { 'if-match': ifMatch }) },
    payload: JSON.stringify(body),
  })
  return { status: res.statusCode, body: res.json(), etag: res.headers.etag as string | undefined }
}

const STRONG_TAG = /^"[A-Za-z0-9_-]{27}"$/

for (const engine of testEngines()) {
  describe(`${engine}: ETag and If-Match on /v2/scope`, () => {
    it('GET carries an ETag only when its answer proves one row matched a scope_id', async (t) => {
      const { app, database } = await buildTestApp(t, { engine })
      const [created] = await createScopes(app, [{ scope_id: 'aaaa' }, { scope_id: 'bbbb' }, { scope_id: 'twin' }])
      await database.db.insertInto('cloudkitty_storage_states').values({
        identifier: 'twin', scope_key: 'project_id', fetcher: 'keystone', collector: 'prometheus',
        last_processed_timestamp: '2019-01-01 00:00:00.000000', scope_activation_toggle_date: '2019-01-01 00:00:00.000000', active: 1,
      }).execute()
      const one = await call(app, 'GET', '/v2/scope?scope_id=aaaa')
      assert.match(String(one.headers.etag), STRONG_TAG)
      assert.deepEqual(one.body.results, [created])
      // Narrowing filters may make a scope_id's match one row.
      const narrowed = await call(app, 'GET', '/v2/scope?scope_id=twin&collector=prometheus')
      assert.equal(narrowed.body.results.length, 1)
      assert.match(String(narrowed.headers.etag), STRONG_TAG)
      assert.notEqual(narrowed.headers.etag, one.headers.etag)
      // The same row, the same tag.
      assert.equal((await call(app, 'GET', '/v2/scope?scope_id=aaaa&active=1')).headers.etag, one.headers.etag)
      for (const url of [
        '/v2/scope', // no scope_id
        '/v2/scope?collector=gnocchi&limit=1',
        '/v2/scope?scope_id=twin', // two rows
        '/v2/scope?scope_id=aaaa,bbbb',
        '/v2/scope?scope_id=aaaa&limit=1', // a full page: others might follow
        '/v2/scope?scope_id=twin&offset=1', // not the only match
        '/v2/scope?scope_id=twin&marker=1',
      ]) {
        const res = await call(app, 'GET', url)
        assert.equal(res.status, 200, url)
        assert.equal(res.headers.etag, undefined, url)
      }
    })

    it('PATCH with the ETag of a GET changes the row and answers its new ETag; POST answers the created row\'s', async (t) => {
      const { app } = await buildTestApp(t, { engine })
      const post = await call(app, 'POST', '/v2/scope', { scope_id: 'aaaa' })
      const got = await call(app, 'GET', '/v2/scope?scope_id=aaaa')
      assert.equal(post.headers.etag, got.headers.etag)
      const changed = await patch(app, { scope_id: 'aaaa', collector: 'prometheus' }, String(got.headers.etag))
      assert.equal(changed.status, 200)
      assert.equal(changed.body.collector, 'prometheus')
      assert.match(String(changed.etag), STRONG_TAG)
      assert.notEqual(changed.etag, got.headers.etag)
      assert.equal((await call(app, 'GET', '/v2/scope?scope_id=aaaa')).headers.etag, changed.etag)
      // The new tag works for the next PATCH; a PATCH without If-Match still answers one.
      const again = await patch(app, { scope_id: 'aaaa', active: false }, String(changed.etag))
      assert.equal(again.status, 200)
      const plain = await patch(app, { scope_id: 'aaaa', active: true })
      assert.equal(plain.status, 200)
      assert.match(String(plain.etag), STRONG_TAG)
    })

    it('answers 412 to a stale, weak or foreign tag, and leaves the row as it was', async (t) => {
      const { app, database } = await buildTestApp(t, { engine })
      await createScopes(app, [{ scope_id: 'aaaa' }, { scope_id: 'bbbb' }])
      const stale = String((await call(app, 'GET', '/v2/scope?scope_id=aaaa')).headers.etag)
      const other = String((await call(app, 'GET', '/v2/scope?scope_id=bbbb')).headers.etag)
      const current = String((await patch(app, { scope_id: 'aaaa', collector: 'prometheus' })).etag)
      const before = await dumpStates(database)
      for (const ifMatch of [stale, other, `W/${current}`, `W/${current}, ${stale}`, '"nope"', `"${current.slice(1, -1).toLowerCase()}"`]) {
        const res = await patch(app, { scope_id: 'aaaa', active: false }, ifMatch)
        assert.equal(res.status, 412, ifMatch)
        assert.equal(res.body.message, 'Scope aaaa has changed since it was read (If-Match does not match its ETag); read it again before changing it.')
        assert.equal(res.etag, undefined)
        // A dry run gets the 412 the real PATCH gets.
        assert.equal((await patch(app, { scope_id: 'aaaa', active: false }, ifMatch, '?dry_run=true')).status, 412, ifMatch)
      }
      assert.deepEqual(await dumpStates(database), before)
    })

    it('matches * and any tag of a list (RFC 9110 §13.1.1), however the list is spaced or split across header lines', async (t) => {
      const { app } = await buildTestApp(t, { engine })
      await createScopes(app, [{ scope_id: 'aaaa' }])
      let tag = String((await call(app, 'GET', '/v2/scope?scope_id=aaaa')).headers.etag)
      const lists = (current: string) => ['*', ` * `, `"x", ${current}`, `${current},"x"`, `W/"x" ,\t${current} , "y"`, `"a,b", ${current}`, `,, ${current},`]
      for (let i = 0; i < lists(tag).length; i++) {
        const ifMatch = lists(tag)[i]
        const res = await patch(app, { scope_id: 'aaaa', collector: `c${i}` }, ifMatch)
        assert.equal(res.status, 200, ifMatch)
        tag = String(res.etag)
      }
      const split = await app.inject({
        method: 'PATCH', url: '/v2/scope', headers: { 'content-type': 'application/json', 'if-match': ['"x"', tag] as unknown as string }, payload: JSON.stringify({ scope_id: 'aaaa', collector: 'split' }),
      })
      assert.equal(split.statusCode, 200)
    })

    it('keeps 404, the ambiguous 409 and 400s ahead of the precondition (RFC 9110 §13.2.2), and refuses a malformed If-Match', async (t) => {
      const { app, database } = await buildTestApp(t, { engine })
      await createScopes(app, [{ scope_id: 'aaaa' }, { scope_id: 'twin' }])
      await database.db.insertInto('cloudkitty_storage_states').values({
        identifier: 'twin', scope_key: null, fetcher: null, collector: null, last_processed_timestamp: '2019-01-01 00:00:00', active: 1,
      }).execute()
      const before = await dumpStates(database)
      for (const query of ['', '?dry_run=true']) {
        assert.equal((await patch(app, { scope_id: 'nope', active: false }, '"x"', query)).status, 404)
        assert.equal((await patch(app, { scope_id: 'nope', active: false }, '*', query)).status, 404)
        assert.equal((await patch(app, { scope_id: 'twin', active: false }, '"x"', query)).status, 409)
        assert.equal((await patch(app, { scope_id: 'aaaa', active: 'maybe' }, '"x"', query)).status, 400)
        for (const ifMatch of ['', 'abc', '"unterminated', '"a" "b"', '*, "a"', 'w/"a"', '"a"b', '"a\\"b"']) {
          const res = await patch(app, { scope_id: 'aaaa', active: false }, ifMatch, query)
          assert.equal(res.status, 400, JSON.stringify(ifMatch))
          assert.equal(res.body.message, 'Invalid If-Match header: must be * or a comma-separated list of quoted entity tags, such as the ETag of a GET.')
        }
      }
      assert.deepEqual(await dumpStates(database), before)
    })

    it('of two PATCHes sent at once with the same If-Match, exactly one succeeds', async (t) => {
      const { app, database } = await buildTestApp(t, { engine })
      await createScopes(app, [{ scope_id: 'raced' }])
      for (let round = 0; round < 8; round++) {
        const tag = String((await call(app, 'GET', '/v2/scope?scope_id=raced')).headers.etag)
        // Different changes, so that the winner's change always moves the tag.
        const results = await Promise.all(['a', 'b'].map(async (who) => await patch(app, { scope_id: 'raced', collector: `${who}${round}` }, tag)))
        assert.deepEqual(results.map((r) => r.status).sort(), [200, 412], `round ${round}`)
        const winner = results.find((r) => r.status === 200)!
        const stored = await call(app, 'GET', '/v2/scope?scope_id=raced')
        assert.deepEqual(stored.body.results, [winner.body], `round ${round}`)
        assert.equal(stored.headers.etag, winner.etag)
      }
      assert.equal((await dumpStates(database)).length, 1)
    })
  })
}
