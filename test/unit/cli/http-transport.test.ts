import assert from 'node:assert/strict'
import { once } from 'node:events'
import { createServer, type Socket } from 'node:net'
import { describe, it } from 'node:test'
import { ConnectionError, HttpTransport, redactJsonText, redactSecret } from '../../../src/cli/http-transport.ts'
import { UsageError } from '../../../src/cli/usage-error.ts'

describe('CLI HTTP transport', () => {
  it('turns a refused connection into one line naming the server', async () => {
    const closed = createServer()
    closed.listen(0, '127.0.0.1')
    await once(closed, 'listening')
    const port = (closed.address() as { port: number }).port
    await new Promise((resolve) => closed.close(resolve))
    await assert.rejects(new HttpTransport().send('GET', `http://127.0.0.1:${port}/v2/scope`),
      (e: Error) => e instanceof ConnectionError && e.message === `Connection refused by http://127.0.0.1:${port}: is the API running there?`)
  })

  it('gives up after the timeout on a server that accepts and never answers (fake-silent-server)', async (t) => {
    const sockets: Socket[] = []
    const fakeSilentServer = createServer((socket) => { sockets.push(socket) })
    fakeSilentServer.listen(0, '127.0.0.1')
    await once(fakeSilentServer, 'listening')
    t.after(() => { for (const s of sockets) s.destroy(); fakeSilentServer.close() })
    const port = (fakeSilentServer.address() as { port: number }).port
    await assert.rejects(new HttpTransport({ timeoutSeconds: 0.2 }).send('GET', `http://127.0.0.1:${port}/v2/scope`),
      (e: Error) => e instanceof ConnectionError && e.message === `No answer from http://127.0.0.1:${port} within 0.2 s (--timeout).`)
  })

  it('refuses a CA file it cannot read, and a URL that is not http(s), as usage errors', async () => {
    assert.throws(() => new HttpTransport({ caFile: '/nonexistent/ca.pem' }), (e: Error) => e instanceof UsageError && /Cannot read --os-cacert file \/nonexistent\/ca\.pem/.test(e.message))
    assert.throws(() => new HttpTransport({ timeoutSeconds: 0 }), UsageError)
    await assert.rejects(new HttpTransport().send('GET', 'ftp://example/x'), UsageError)
  })

  it('redacts passwords, secrets and token ids in JSON, and hashes header secrets as keystoneauth does', () => {
    const body = JSON.stringify({ auth: { identity: { password: { user: { name: 'u', password: 'p' } }, token: { id: 'tok' }, application_credential: { id: 'app', secret: 's' } } } })
    assert.equal(redactJsonText(body), JSON.stringify({ auth: { identity: { password: { user: { name: 'u', password: '***' } }, token: { id: '***' }, application_credential: { id: 'app', secret: '***' } } } }))
    assert.equal(redactJsonText('not json'), 'not json')
    assert.equal(redactSecret('abc'), '{SHA256}ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad')
  })
})
