import { createServer, connect, type Server, type Socket } from 'node:net'
import type { TestContext } from 'node:test'
import { deferCleanup } from './cleanup.ts'

/**
 * A loopback TCP proxy in front of a database server, to make the database
 * "go away" and come back: `cut()` drops every connection and refuses new
 * ones; `restore()` accepts again on the same port.
 */
export interface TcpProxy {
  port: number
  cut: () => Promise<void>
  restore: () => Promise<void>
}

export async function startTcpProxy (t: TestContext, targetHost: string, targetPort: number): Promise<TcpProxy> {
  const sockets = new Set<Socket>()
  let server: Server
  const listen = async (port: number) => await new Promise<number>((resolve, reject) => {
    server = createServer((client) => {
      const upstream = connect(targetPort, targetHost)
      for (const s of [client, upstream]) { sockets.add(s); s.on('close', () => sockets.delete(s)); s.on('error', () => {}) }
      client.pipe(upstream).pipe(client)
    })
    server.once('error', reject)
    server.listen(port, '127.0.0.1', () => { resolve((server.address() as { port: number }).port) })
  })
  const port = await listen(0)
  const close = async () => {
    for (const s of sockets) s.destroy()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  }
  deferCleanup(t, close)
  return { port, cut: close, restore: async () => { await listen(port) } }
}
