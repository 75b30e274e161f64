import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { extname, join, relative, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { FastifyInstance, FastifyReply } from 'fastify'
import { Type, type Static } from 'typebox'
import type { LoginCredentials, LoginToken } from '../auth/keystone-login.ts'

// The console's files are what `npm run build` leaves in dist/console. The
// bundle runs from dist/main.js or dist/chunks/*.js, the sources (tsx) from
// src/api/: each finds the same folder.
const CANDIDATES = ['./console/', '../console/', '../../dist/console/']

/** The folder of the built console, or undefined when it was not built. */
export function consoleDirectory (): string | undefined {
  for (const candidate of CANDIDATES) {
    const dir = fileURLToPath(new URL(candidate, import.meta.url))
    if (existsSync(join(dir, 'index.html'))) return dir
  }
  return undefined
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
}

/**
 * Nothing inline and nothing from elsewhere: the console works on an
 * air-gapped controller, and an injected string can neither run script nor
 * restyle the page. The API is same-origin (connect-src 'self').
 */
export const CONSOLE_CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
  "font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

interface ConsoleFile { body: Buffer, type: string, immutable: boolean }

function readTree (dir: string): Map<string, ConsoleFile> {
  const files = new Map<string, ConsoleFile>()
  const walk = (at: string): void => {
    for (const entry of readdirSync(at)) {
      const path = join(at, entry)
      if (statSync(path).isDirectory()) walk(path)
      else {
        const name = relative(dir, path).split(sep).join('/')
        // Vite names the files under assets/ by their content hash.
        files.set(name, { body: readFileSync(path), type: TYPES[extname(path)] ?? 'application/octet-stream', immutable: name.startsWith('assets/') })
      }
    }
  }
  walk(dir)
  return files
}

function securityHeaders (reply: FastifyReply): FastifyReply {
  return reply
    .header('content-security-policy', CONSOLE_CSP)
    .header('x-content-type-options', 'nosniff')
    .header('referrer-policy', 'no-referrer')
    .header('x-frame-options', 'DENY')
}

/**
 * Serves the operator console at /console/, public like version discovery:
 * its files hold no data, and every API call it makes carries the caller's
 * token. The files are read once at start (a few, built with the release),
 * so a request never touches the disk; any other path under /console/ is
 * the page itself, whose script reads the URL. `dir`: consoleDirectory(),
 * undefined when the console is not built.
 */
export function registerConsole (app: FastifyInstance, dir: string | undefined): void {
  const files = dir === undefined ? new Map<string, ConsoleFile>() : readTree(dir)
  const index = files.get('index.html')
  // The router ignores a trailing slash, so /console/ arrives here too: only
  // /console itself is sent to /console/, where the page's relative
  // addresses resolve.
  app.get('/console', { schema: { hide: true }, config: { public: true } }, async (request, reply) => {
    if (request.url.split('?')[0] === '/console') return await reply.code(308).header('location', '/console/').send()
    return await serve('', reply)
  })
  app.get('/console/*', { schema: { hide: true }, config: { public: true } }, async (request, reply) =>
    await serve((request.params as { '*': string })['*'], reply))
  async function serve (name: string, reply: FastifyReply): Promise<FastifyReply> {
    const file = files.get(name) ?? (name.startsWith('assets/') ? undefined : index)
    if (file === undefined) {
      const message = index === undefined
        ? 'The operator console is not built: run `npm run build` (`npm ci` does) in the checkout.'
        : `No console file ${name}.`
      return await securityHeaders(reply.code(404)).send({ message })
    }
    return await securityHeaders(reply)
      .header('content-type', file.type)
      .header('cache-control', file.immutable ? 'public, max-age=31536000, immutable' : 'no-cache')
      .send(file.body)
  }
}

const Name = (what: string) => Type.String({ minLength: 1, maxLength: 255, description: what })
const LoginBody = Type.Object({
  username: Name('the Keystone user name'),
  password: Type.String({ minLength: 1, maxLength: 4096, description: 'its password; sent to Keystone only, never kept or logged' }),
  project: Name('the name of the project to scope the token to'),
  user_domain: Type.Optional(Name('the user\'s domain name (default Default)')),
  project_domain: Type.Optional(Name('the project\'s domain name (default Default)')),
}, { additionalProperties: false })

/**
 * POST /console/api/login (with auth_strategy = keystone): the console's
 * login form, exchanged for the user's own token with Keystone at
 * [keystone_authtoken] auth_url. The answer hands the token to the page,
 * which keeps it in session storage and sends it as X-Auth-Token. No
 * cookie: a cookie is sent by the browser on its own, so every change
 * would need CSRF protection; a header the page adds is never forged by
 * another site, and session storage ends with the tab.
 */
export function registerConsoleLogin (app: FastifyInstance, login: { login: (credentials: LoginCredentials) => Promise<LoginToken> }): void {
  app.post('/console/api/login', { schema: { hide: true, body: LoginBody }, config: { public: true } }, async (request, reply) => {
    const body = request.body as Static<typeof LoginBody>
    const token = await login.login({
      username: body.username, password: body.password, project: body.project,
      userDomain: body.user_domain ?? 'Default', projectDomain: body.project_domain ?? 'Default',
    })
    return await securityHeaders(reply).header('cache-control', 'no-store').send({
      token: token.token, expires_at: token.expiresAt, user_name: token.userName, project_name: token.projectName, roles: token.roles,
    })
  })
}
