import assert from 'node:assert/strict'
import { once } from 'node:events'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { describe, it, type TestContext } from 'node:test'
import { ApiError, ScopeClient, WaitTimeoutError } from '../../../src/cli/scope-client.ts'

/**
 * fake-rating-api: canned answers for what the real server never sends
 * (CloudKitty's PUT without a Location, a proxy's HTML error page, a reset
 * that never ends); the real server's answers are covered end to end.
 */
async function startFakeRatingApi (t: TestContext, handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  const server = createServer(handler)
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.after(() => new Promise((resolve) => server.close(resolve)))
  return `http://127.0.0.1:${(server.address() as { port: number }).port}`
}

const pendingJob = {
  id: 5, status: 'pending', last_processed_timestamp: '2019-07-01T00:00:00+00:00', scopes_total: 3, scopes_applied: 0, attempts: 0,
  max_attempts: 10, last_error: null, request_id: null, created_at: '2019-07-01T00:00:00+00:00', started_at: null, finished_at: null,
}

describe('ScopeClient', () => {
  it("reads the reset job id from PUT's Location, and returns nothing to follow without one (CloudKitty)", async (t) => {
    let location: string | undefined = '/v2/scope/resets/42'
    const url = await startFakeRatingApi(t, (req, res) => {
      res.writeHead(202, { 'content-type': 'application/json', ...(location !== undefined ? { location } : {}) })
      res.end('{}')
    })
    const client = new ScopeClient({ endpoint: `${url}/` })
    assert.deepEqual(await client.resetScopes({ all_scopes: true, state: '2019-07-01' }), { location: '/v2/scope/resets/42', jobId: 42 })
    // scopekeeper's own Location is absolute, behind a proxy with its prefix.
    location = 'https://rating.example/prefix/v2/scope/resets/43'
    assert.deepEqual(await client.resetScopes({ all_scopes: true, state: '2019-07-01' }), { location, jobId: 43 })
    location = undefined
    assert.deepEqual(await client.resetScopes({ all_scopes: true, state: '2019-07-01' }), {})
  })

  it('stops waiting after the wait timeout with the last reading, and reports each reading', async (t) => {
    const url = await startFakeRatingApi(t, (req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify(pendingJob))
    })
    const readings: unknown[] = []
    await assert.rejects(new ScopeClient({ endpoint: url }).waitForReset(5, { intervalMs: 20, timeoutMs: 100, onProgress: (job) => readings.push(job) }),
      (e: Error) => e instanceof WaitTimeoutError && e.message === 'Stopped waiting for reset 5: it is still pending (0/3 scopes applied); it goes on on the server.')
    assert.ok(readings.length >= 2)
  })

  it('stops waiting at a cancelled job: cancelled is final, as done and failed are', async (t) => {
    let readings = 0
    const url = await startFakeRatingApi(t, (req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify(++readings < 2 ? { ...pendingJob, status: 'running' } : { ...pendingJob, status: 'cancelled', scopes_applied: 1 }))
    })
    const job = await new ScopeClient({ endpoint: url }).waitForReset(5, { intervalMs: 10, timeoutMs: 5000 })
    assert.deepEqual([job.status, job.scopes_applied, readings], ['cancelled', 1, 2])
  })

  it("turns error answers into ApiError with the server's message, or the text of a non-JSON page", async (t) => {
    const url = await startFakeRatingApi(t, (req, res) => {
      if (req.url!.startsWith('/v2/scope?')) {
        res.writeHead(404, { 'content-type': 'application/json', 'x-openstack-request-id': 'req-1' })
        return res.end(JSON.stringify({ message: 'No resource found for provided filters.' }))
      }
      res.writeHead(502, { 'content-type': 'text/html' })
      res.end('<html><body><h1>502 Bad Gateway</h1></body></html>')
    })
    const client = new ScopeClient({ endpoint: url })
    await assert.rejects(client.listScopes({ scope_id: ['x'] }), (e: Error) =>
      e instanceof ApiError && e.status === 404 && e.message === 'No resource found for provided filters.' && e.requestId === 'req-1')
    await assert.rejects(client.patchScope({ scope_id: 'x' }), (e: Error) => e instanceof ApiError && e.status === 502 && e.message === '502 Bad Gateway')
  })

  it('follows Link rel="next" markers after a first page by offset, and falls back to offsets without a Link (CloudKitty)', async (t) => {
    const rows = Array.from({ length: 7 }, (_, i) => ({ scope_id: `s${i}`, id: i + 1 }))
    let links = true
    const seen: string[] = []
    const url = await startFakeRatingApi(t, (req, res) => {
      const query = new URL(req.url!, 'http://x').searchParams
      seen.push(query.toString())
      const limit = Number(query.get('limit'))
      const start = query.has('marker') ? rows.findIndex((r) => r.id > Number(query.get('marker'))) : Number(query.get('offset') ?? 0)
      const page = start < 0 ? [] : rows.slice(start, start + limit)
      if (page.length === 0) {
        res.writeHead(404, { 'content-type': 'application/json' })
        return res.end(JSON.stringify({ message: 'No resource found for provided filters.' }))
      }
      const link = links && page.length === limit ? { link: `<http://elsewhere.invalid/v2/scope?collector=c&marker=${page.at(-1)!.id}&limit=${limit}>; rel="next"` } : {}
      res.writeHead(200, { 'content-type': 'application/json', ...link })
      res.end(JSON.stringify({ results: page.map(({ scope_id: id }) => ({ scope_id: id })) }))
    })
    const client = new ScopeClient({ endpoint: url })
    const ids = async (offset?: number) => (await client.listAllScopes({ collector: ['c'] }, { pageSize: 3, offset })).map((s) => s.scope_id)
    assert.deepEqual(await ids(1), ['s1', 's2', 's3', 's4', 's5', 's6'])
    // The link's host is not followed: only its marker, on the client's own endpoint and filters.
    assert.deepEqual(seen, ['collector=c&limit=3&offset=1', 'collector=c&limit=3&marker=4', 'collector=c&limit=3&marker=7'])
    seen.length = 0
    links = false
    assert.deepEqual(await ids(), ['s0', 's1', 's2', 's3', 's4', 's5', 's6'])
    assert.deepEqual(seen, ['collector=c&limit=3&offset=0', 'collector=c&limit=3&offset=3', 'collector=c&limit=3&offset=6'])
  })

  it('sends a keyed PUT once more, with the same Idempotency-Key, after the connection closed before an answer; never a GET', async (t) => {
    const keys: Array<string | undefined> = []
    let drops = 1
    const url = await startFakeRatingApi(t, (req, res) => {
      keys.push(req.headers['idempotency-key'] as string | undefined)
      if (drops-- > 0) return req.socket.destroy()
      res.writeHead(202, { 'content-type': 'application/json', location: '/v2/scope/resets/9' })
      res.end('{}')
    })
    const retries: string[] = []
    const client = new ScopeClient({ endpoint: url, retryDelayMs: 10, onRetry: (error, method) => retries.push(`${method}: ${error.kind}`) })
    assert.deepEqual(await client.resetScopes({ all_scopes: true, state: '2019-07-01' }, { idempotencyKey: 'key-1' }), { location: '/v2/scope/resets/9', jobId: 9 })
    assert.deepEqual(keys, ['key-1', 'key-1'])
    assert.deepEqual(retries, ['PUT: reset'])
    // Twice dropped: one retry only, then the failure.
    drops = 2
    keys.length = 0
    await assert.rejects(client.resetScopes({ all_scopes: true, state: '2019-07-01' }, { idempotencyKey: 'key-2' }), /closed before an answer/)
    assert.deepEqual(keys, ['key-2', 'key-2'])
    // Without a key, or for a GET: no retry.
    drops = 1
    keys.length = 0
    await assert.rejects(client.resetScopes({ all_scopes: true, state: '2019-07-01' }), /closed before an answer/)
    drops = 1
    await assert.rejects(client.getResetJob(9), /closed before an answer/)
    assert.deepEqual(keys, [undefined, undefined])
  })
})
