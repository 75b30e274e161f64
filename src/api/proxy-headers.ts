import type { FastifyInstance, FastifyRequest } from 'fastify'

declare module 'fastify' {
  // `origin`: where the caller reached us, through the load balancer when
  // `[oslo_middleware] enable_proxy_headers_parsing` trusts it.
  interface FastifyRequest { origin: RequestOrigin }
}

/** Where a request came from and which URL the caller used to reach us. */
export interface RequestOrigin {
  /** `http` or `https`. */
  protocol: string
  /** `host[:port]` as the caller wrote it; undefined when it is not a valid host, so links stay relative. */
  host: string | undefined
  /** The path under which the proxy publishes us (`X-Forwarded-Prefix`), without a trailing slash; `''` for none. */
  prefix: string
  /** The caller's address: the socket's peer, or the proxy's first client. */
  client: string
}

// A DNS name, IPv4 address or bracketed IPv6 literal, with an optional port:
// nothing that could end a header, a `<…>` of a Link, or change the path.
const VALID_HOST = /^(?:[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,252})|\[[0-9A-Fa-f:.]{2,45}\])(?::[0-9]{1,5})?$/
// Path segments of RFC 3986 pchar; a leading `//` would read as another host.
const VALID_PREFIX = /^(?:\/[A-Za-z0-9._~!$&'()*+,;=:@%-]+)+\/?$/
// A client address goes to the log only: any printable text, bounded.
const MAX_CLIENT_LENGTH = 100
const QUOTED_PAIR = /\\(.)/g

function validHost (value: string | undefined): string | undefined {
  return value !== undefined && VALID_HOST.test(value) ? value : undefined
}

function validProtocol (value: string | undefined): string | undefined {
  const protocol = value?.toLowerCase()
  return protocol === 'http' || protocol === 'https' ? protocol : undefined
}

function firstOfList (value: string | undefined): string | undefined {
  if (value === undefined) return undefined
  const comma = value.indexOf(',')
  const first = (comma < 0 ? value : value.slice(0, comma)).trim()
  return first === '' ? undefined : first
}

function header (request: FastifyRequest, name: string): string | undefined {
  const value = request.headers[name]
  return Array.isArray(value) ? value.join(', ') : value
}

// RFC 7239 node: `[v6]:port` or `v4:port` down to the address; an obfuscated
// or `unknown` node as it is.
function nodeAddress (node: string): string {
  if (node.startsWith('[')) {
    const end = node.indexOf(']')
    return end > 0 ? node.slice(1, end) : node
  }
  const colon = node.indexOf(':')
  return colon > 0 && node.indexOf(':', colon + 1) < 0 ? node.slice(0, colon) : node
}

function unquote (value: string): string {
  if (value.length < 2 || value[0] !== '"' || value[value.length - 1] !== '"') return value
  return value.slice(1, -1).replace(QUOTED_PAIR, '$1')
}

/**
 * The first element of a `Forwarded` header (RFC 7239), parameter names
 * lowercased. Split as oslo.middleware's
 * HTTPProxyToWSGI._parse_rfc7239_header does (elements at `,`, pairs at `;`,
 * name and value at the first `=`, both trimmed) except that a `,` or `;`
 * inside a quoted string does not split, and quoted values are unquoted
 * (oslo keeps the quotes: `for="[2001:db8::1]"` stays quoted there).
 */
export function firstForwardedElement (value: string): Map<string, string> {
  const element = new Map<string, string>()
  let start = 0
  let quoted = false
  for (let i = 0; i <= value.length; i++) {
    const c = value[i]
    if (quoted && i < value.length) {
      if (c === '\\' && i + 1 < value.length) i++
      else if (c === '"') quoted = false
      continue
    }
    if (c === '"') { quoted = true; continue }
    if (c !== ';' && c !== ',' && i < value.length) continue
    const pair = value.slice(start, i)
    const equals = pair.indexOf('=')
    const name = (equals < 0 ? pair : pair.slice(0, equals)).trim().toLowerCase()
    // oslo's dict keeps the last of a repeated name.
    if (name !== '') element.set(name, unquote((equals < 0 ? '' : pair.slice(equals + 1)).trim()))
    if (c === ',') break
    start = i + 1
  }
  return element
}

/**
 * Where `request` came from. With `trustProxyHeaders` (`[oslo_middleware]
 * enable_proxy_headers_parsing`) in oslo.middleware's precedence
 * (http_proxy_to_wsgi.py HTTPProxyToWSGI.process_request): a `Forwarded`
 * header wins wholesale, its first element giving proto, host and for;
 * without one, X-Forwarded-Proto, X-Forwarded-Host and X-Forwarded-For;
 * X-Forwarded-Prefix either way. Without the setting those headers are
 * ignored. A value that is not a valid scheme, host or path is ignored too,
 * since it ends up in the Location and Link headers we send.
 */
export function requestOrigin (request: FastifyRequest, trustProxyHeaders: boolean): RequestOrigin {
  const socket = request.raw.socket as { encrypted?: boolean, remoteAddress?: string } | undefined
  let protocol = socket?.encrypted === true ? 'https' : 'http'
  let host = validHost(header(request, 'host'))
  let client = socket?.remoteAddress ?? ''
  let prefix = ''
  if (trustProxyHeaders) {
    let forwardedProtocol: string | undefined
    let forwardedHost: string | undefined
    let forwardedFor: string | undefined
    const forwarded = header(request, 'forwarded')
    if (forwarded !== undefined && forwarded !== '') {
      const element = firstForwardedElement(forwarded)
      forwardedProtocol = element.get('proto')
      forwardedHost = element.get('host')
      const node = element.get('for')
      forwardedFor = node === undefined || node === '' ? undefined : nodeAddress(node)
    } else {
      // X-Forwarded-Proto and -Host: the first of a list (oslo takes the
      // whole header, which a proxy appending its own value would break).
      forwardedProtocol = firstOfList(header(request, 'x-forwarded-proto'))
      forwardedHost = firstOfList(header(request, 'x-forwarded-host'))
      // The first address is the original client's; oslo copies the whole
      // list into REMOTE_ADDR, which then names no address at all.
      forwardedFor = firstOfList(header(request, 'x-forwarded-for'))
    }
    protocol = validProtocol(forwardedProtocol) ?? protocol
    host = validHost(forwardedHost) ?? host
    if (forwardedFor !== undefined) client = forwardedFor.slice(0, MAX_CLIENT_LENGTH)
    const forwardedPrefix = header(request, 'x-forwarded-prefix')
    if (forwardedPrefix !== undefined && VALID_PREFIX.test(forwardedPrefix)) {
      prefix = forwardedPrefix.endsWith('/') ? forwardedPrefix.slice(0, -1) : forwardedPrefix
    }
  }
  return { protocol, host, prefix, client }
}

/**
 * The URL of `path` (absolute, from the root of our API) as the caller
 * reaches it: `https://rating.example/prefix/v2/…`; only the prefix and
 * path when the Host is unusable.
 */
export function absoluteUrl (origin: RequestOrigin, path: string): string {
  return origin.host === undefined ? `${origin.prefix}${path}` : `${origin.protocol}://${origin.host}${origin.prefix}${path}`
}

/**
 * `request.origin`, read when a link or the log line needs it: a getter
 * rather than an onRequest hook, which every request paid for, most of
 * them (a single scope, a PATCH) with no link to build.
 */
export function registerProxyHeaders (app: FastifyInstance, trustProxyHeaders: boolean): void {
  app.decorateRequest('origin', {
    getter (this: FastifyRequest): RequestOrigin { return requestOrigin(this, trustProxyHeaders) },
  })
}
