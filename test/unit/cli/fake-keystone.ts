// fake-keystone: a few lines of Keystone v3's token API on loopback, for the
// CLI's client-side auth tests (what the CLI sends, how it reads the
// catalog). Server-side token checks are tested against a real Keystone.
import { randomUUID } from 'node:crypto'
import { once } from 'node:events'
import { createServer, type IncomingMessage } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { TestContext } from 'node:test'
import { deferCleanup } from '../../helpers/cleanup.ts'
import type { CatalogService } from '../../../src/cli/os-auth.ts'

/** One request fake-keystone received. */
export interface FakeKeystoneRequest {
  method: string
  url: string
  headers: IncomingMessage['headers']
  body: any
}

export interface FakeKeystone {
  /** e.g. http://127.0.0.1:41234/v3 */
  authUrl: string
  requests: FakeKeystoneRequest[]
  /** Tokens issued so far, newest last. */
  tokens: string[]
}

/** A catalog with a rating service in two regions and three interfaces, like a small deployment's. */
export function ratingCatalog (base = 'http://rating.example'): CatalogService[] {
  return [
    { type: 'identity', name: 'keystone', endpoints: [{ interface: 'public', region_id: 'RegionOne', region: 'RegionOne', url: 'http://keystone.example/v3' }] },
    {
      type: 'rating',
      name: 'cloudkitty',
      endpoints: [
        { interface: 'internal', region_id: 'RegionOne', region: 'RegionOne', url: `${base}/internal-r1` },
        { interface: 'public', region_id: 'RegionOne', region: 'RegionOne', url: `${base}/public-r1` },
        { interface: 'public', region_id: 'RegionTwo', region: 'RegionTwo', url: `${base}/public-r2` },
      ],
    },
  ]
}

const UNAUTHORIZED = { error: { code: 401, title: 'Unauthorized', message: 'The request you have made requires authentication.' } }

/**
 * Starts fake-keystone on a free loopback port. It issues a token for user
 * `admin` (or id `admin-id`) with password `secret`, for application
 * credential `app-id`/`app-secret`, and for any token it issued or
 * `preset-token`; every token's catalog is `catalog`. GET /v3/auth/tokens
 * validates a token it knows. Anything else is a 401 in Keystone's shape.
 */
export async function startFakeKeystone (t: TestContext, catalog: CatalogService[] = ratingCatalog()): Promise<FakeKeystone> {
  const requests: FakeKeystoneRequest[] = []
  const tokens: string[] = ['preset-token']
  const server = createServer((req, res) => {
    let text = ''
    req.on('data', (chunk: Buffer) => { text += chunk.toString() })
    req.on('end', () => {
      let body: any
      try { body = text === '' ? undefined : JSON.parse(text) } catch { body = text }
      requests.push({ method: req.method!, url: req.url!, headers: req.headers, body })
      const reply = (status: number, json: unknown, headers: Record<string, string> = {}) => {
        res.writeHead(status, { 'content-type': 'application/json', ...headers })
        res.end(JSON.stringify(json))
      }
      const tokenBody = (withCatalog: boolean) => ({
        token: { methods: ['password'], expires_at: '2999-01-01T00:00:00.000000Z', project: { id: 'p1', name: 'admin' }, ...(withCatalog ? { catalog } : {}) },
      })
      const path = req.url!.split('?')[0]
      if (path === '/v3/auth/tokens' && req.method === 'GET') {
        const subject = String(req.headers['x-subject-token'])
        return tokens.includes(subject) && tokens.includes(String(req.headers['x-auth-token']))
          ? reply(200, tokenBody(true), { 'x-subject-token': subject })
          : reply(404, { error: { code: 404, title: 'Not Found', message: 'Could not find token.' } })
      }
      if (path !== '/v3/auth/tokens' || req.method !== 'POST') return reply(404, { error: { code: 404, title: 'Not Found', message: 'The resource could not be found.' } })
      const identity = body?.auth?.identity
      const user = identity?.password?.user
      const credential = identity?.application_credential
      const accepted =
        (identity?.methods?.[0] === 'password' && (user?.name === 'admin' || user?.id === 'admin-id') && user?.password === 'secret') ||
        (identity?.methods?.[0] === 'token' && tokens.includes(identity?.token?.id)) ||
        (identity?.methods?.[0] === 'application_credential' && credential?.id === 'app-id' && credential?.secret === 'app-secret')
      if (!accepted) return reply(401, UNAUTHORIZED)
      const token = `gAAAA-fake-${randomUUID()}`
      tokens.push(token)
      // Keystone leaves the catalog out of unscoped tokens and on ?nocatalog;
      // an application credential's token carries the credential's project.
      const scoped = body.auth.scope !== undefined || identity.methods[0] === 'application_credential'
      reply(201, tokenBody(scoped && !req.url!.includes('nocatalog')), { 'x-subject-token': token })
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  deferCleanup(t, () => new Promise((resolve) => server.close(resolve)))
  return { authUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v3`, requests, tokens }
}
