// What Node's HTTP parser refuses never reaches Fastify's error handler:
// these are answered by error-handler.ts clientErrorHandler, over a real
// socket, in the same {"message"} shape as every other error.
import assert from 'node:assert/strict'
import { connect, type Socket } from 'node:net'
import { describe, it } from 'node:test'
import { buildTestApp } from '../helpers/build-test-app.ts'

/** Sends `head` (and nothing more unless told), returns what the server wrote until it closed. */
async function exchange (port: number, head: string, keepSending?: (socket: Socket) => void): Promise<string> {
  return await new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1')
    let answer = ''
    socket.setEncoding('latin1')
    socket.on('data', (chunk: string) => { answer += chunk })
    socket.on('error', (error: NodeJS.ErrnoException) => { if (error.code === 'ECONNRESET') resolve(answer); else reject(error) })
    socket.on('close', () => { resolve(answer) })
    socket.write(head, 'latin1')
    keepSending?.(socket)
  })
}

function parse (answer: string): { status: number, headers: Map<string, string>, body: unknown } {
  const [head, body] = answer.split('\r\n\r\n')
  const [statusLine, ...lines] = head.split('\r\n')
  const headers = new Map(lines.map((line) => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]))
  return { status: Number(statusLine.split(' ')[1]), headers, body: JSON.parse(body) }
}

async function listen (t: Parameters<typeof buildTestApp>[0], env: Record<string, string> = {}): Promise<number> {
  const { app } = await buildTestApp(t, { env })
  await app.listen({ host: '127.0.0.1', port: 0 })
  return (app.server.address() as { port: number }).port
}

describe("errors of Node's HTTP parser", () => {
  it('answers a malformed request line with 400 in our shape, with a request id', async (t) => {
    const port = await listen(t)
    const answer = parse(await exchange(port, 'GET /v2/scope HTTP/1.1 junk\r\nHost: x\r\n\r\n'))
    assert.equal(answer.status, 400)
    assert.deepEqual(answer.body, { message: 'The request is not valid HTTP.' })
    assert.match(answer.headers.get('x-openstack-request-id') ?? '', /^req-[0-9a-f-]{36}$/)
    assert.equal(answer.headers.get('connection'), 'close')
  })

  it('answers headers over 16 KiB with 431 in our shape', async (t) => {
    const port = await listen(t)
    const answer = parse(await exchange(port, `GET /v2/scope HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`))
    assert.equal(answer.status, 431)
    assert.deepEqual(answer.body, { message: 'The request headers are too large.' })
    assert.match(answer.headers.get('x-openstack-request-id') ?? '', /^req-/)
  })

  it("answers a path Fastify cannot decode with 400 in our shape, without echoing it", async (t) => {
    const port = await listen(t)
    const res = await fetch(`http://127.0.0.1:${port}/v2/scope/%zz<script>`)
    assert.equal(res.status, 400)
    const body = await res.json() as { message: string }
    assert.deepEqual(Object.keys(body), ['message'])
    assert.doesNotMatch(body.message, /script|%zz/)
    assert.match(res.headers.get('x-openstack-request-id') ?? '', /^req-/)
  })

  it('answers a body trickled past [api] request_timeout with 408', async (t) => {
    const port = await listen(t, { SCOPEKEEPER_API_REQUEST_TIMEOUT: '1' })
    const answer = parse(await trickle(port))
    assert.equal(answer.status, 408)
    assert.deepEqual(answer.body, { message: 'The request was not received in time ([api] request_timeout).' })
    assert.match(answer.headers.get('x-openstack-request-id') ?? '', /^req-/)
  })

  it('refuses an unauthenticated trickled body at once and closes its connection', async (t) => {
    const port = await listen(t, {
      // Keystone is never reached: a request without a token is refused before.
      SCOPEKEEPER_DEFAULT_AUTH_STRATEGY: 'keystone',
      SCOPEKEEPER_KEYSTONE_AUTHTOKEN_AUTH_URL: 'http://127.0.0.1:9/v3',
      SCOPEKEEPER_KEYSTONE_AUTHTOKEN_USERNAME: 'cloudkitty',
      SCOPEKEEPER_KEYSTONE_AUTHTOKEN_PASSWORD: 'secret',
      SCOPEKEEPER_KEYSTONE_AUTHTOKEN_PROJECT_NAME: 'service',
    })
    // With the default request_timeout of 60 s, only the server closing the
    // connection after its 401 ends this before the test's timeout.
    const raw = await trickle(port)
    const answer = parse(raw)
    assert.equal(answer.status, 401)
    assert.equal(answer.headers.get('connection'), 'close')
    assert.equal(raw.split('HTTP/1.1').length, 2, 'one answer only')
  })
})

/** A POST whose body arrives one byte every 100 ms and never ends; resolves when the server closes. */
async function trickle (port: number): Promise<string> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await exchange(port, 'POST /v2/scope HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{', (socket) => {
      timer = setInterval(() => { if (socket.writable) socket.write(' ') }, 100)
    })
  } finally {
    clearInterval(timer)
  }
}
