import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { UsageError } from './usage-error.ts'

/** How long one request may take, connection included, unless told otherwise. */
export const DEFAULT_TIMEOUT_SECONDS = 60

/** TLS and timeout settings shared by the Keystone and the rating API requests. */
export interface TransportOptions {
  /** Seconds one request may take, from connecting to the last byte. Defaults to 60. */
  timeoutSeconds?: number
  /** Skip TLS certificate verification (`--insecure`). */
  insecure?: boolean
  /** PEM file of the CA certificates to trust instead of the system's (`--os-cacert`). */
  caFile?: string
  /** PEM client certificate and key (`--os-cert`, `--os-key`). */
  certFile?: string
  keyFile?: string
  /** Receives one text block per request and per response (`--debug`); secrets are redacted. */
  debug?: (text: string) => void
  userAgent?: string
}

/** One HTTP answer, whatever its status. */
export interface HttpResponse {
  status: number
  headers: IncomingHttpHeaders
  text: string
}

/**
 * The server could not be reached or did not answer in time (refused
 * connection, unknown host, TLS failure, timeout). Its message is one
 * line an operator can act on; the CLI exits 1.
 */
export class ConnectionError extends Error {
  override name = 'ConnectionError'
  constructor (message: string, readonly kind: ConnectionFailure = 'other') {
    super(message)
  }
}

/**
 * What went wrong on the way: `refused`, `reset` (closed before an
 * answer), `timeout`, `unreachable`, `dns`, `tls`, or `other`. A retry
 * can help the first four; the CLI's retry decision reads it
 * (idempotency.ts).
 */
export type ConnectionFailure = 'refused' | 'reset' | 'timeout' | 'unreachable' | 'dns' | 'tls' | 'other'

// Headers whose values are credentials: shown in --debug as keystoneauth does.
const SECRET_HEADERS = new Set(['x-auth-token', 'x-subject-token', 'authorization'])
// JSON body keys whose values are credentials (Keystone auth bodies).
const SECRET_KEYS = new Set(['password', 'secret', 'token', 'id_token', 'passcode'])

/** keystoneauth's redaction: `{SHA256}<hex>`, so two dumps show whether the token is the same. */
export function redactSecret (value: string): string {
  return `{SHA256}${createHash('sha256').update(value).digest('hex')}`
}

/**
 * A JSON text with every credential value replaced by `***`: `password`
 * and `secret` anywhere, and the `id` of a Keystone `token` method object.
 * Text that is not JSON is returned as is.
 */
export function redactJsonText (text: string): string {
  let parsed: unknown
  try { parsed = JSON.parse(text) } catch { return text }
  const walk = (value: unknown, key?: string): unknown => {
    if (Array.isArray(value)) return value.map((v) => walk(v))
    if (value !== null && typeof value === 'object') {
      return Object.fromEntries(Object.entries(value).map(([k, v]) => {
        if (SECRET_KEYS.has(k.toLowerCase()) && typeof v === 'string') return [k, '***']
        if (key === 'token' && k === 'id' && typeof v === 'string') return [k, '***']
        return [k, walk(v, k)]
      }))
    }
    return value
  }
  return JSON.stringify(walk(parsed))
}

function headerLine (name: string, value: string | string[] | number | undefined): string {
  const text = Array.isArray(value) ? value.join(', ') : String(value)
  return `${name}: ${SECRET_HEADERS.has(name.toLowerCase()) ? redactSecret(text) : text}`
}

const TLS_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'UNABLE_TO_GET_ISSUER_CERT', 'CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID',
  'ERR_TLS_CERT_ALTNAME_INVALID', 'CERT_SIGNATURE_FAILURE', 'CERT_UNTRUSTED',
])

function connectionError (url: URL, error: NodeJS.ErrnoException): ConnectionError {
  const where = url.origin
  const code = error.code ?? ''
  if (code === 'ECONNREFUSED') return new ConnectionError(`Connection refused by ${where}: is the API running there?`, 'refused')
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return new ConnectionError(`Cannot resolve the host of ${where}.`, 'dns')
  if (code === 'ECONNRESET' || code === 'EPIPE') return new ConnectionError(`The connection to ${where} was closed before an answer arrived.`, 'reset')
  if (code === 'EHOSTUNREACH' || code === 'ENETUNREACH') return new ConnectionError(`Cannot reach ${where} (${code}).`, 'unreachable')
  if (TLS_CODES.has(code)) {
    return new ConnectionError(`TLS verification of ${where} failed: ${error.message}; trust its CA with --os-cacert FILE, or skip verification with --insecure.`, 'tls')
  }
  if (code.startsWith('ERR_SSL') || code === 'EPROTO') return new ConnectionError(`TLS handshake with ${where} failed: ${error.message}.`, 'tls')
  return new ConnectionError(`Cannot reach ${where}: ${error.message}${code === '' ? '' : ` (${code})`}.`)
}

function readPem (file: string | undefined, flag: string): Buffer | undefined {
  if (file === undefined || file === '') return undefined
  try {
    return readFileSync(file)
  } catch (error) {
    throw new UsageError(`Cannot read ${flag} file ${file}: ${(error as Error).message}`)
  }
}

/**
 * Sends HTTP(S) requests with one timeout and one set of TLS settings, and
 * turns network failures into {@link ConnectionError}. Certificate files are
 * read once, when the transport is made (a missing file is a
 * {@link UsageError}). No connection is kept alive, so a finished command
 * exits at once.
 */
export class HttpTransport {
  readonly timeoutMs: number
  private readonly tls: { rejectUnauthorized: boolean, ca?: Buffer, cert?: Buffer, key?: Buffer }

  constructor (private readonly options: TransportOptions = {}) {
    const seconds = options.timeoutSeconds ?? DEFAULT_TIMEOUT_SECONDS
    if (!(seconds > 0) || !Number.isFinite(seconds)) throw new UsageError('The timeout must be a positive number of seconds.')
    this.timeoutMs = Math.round(seconds * 1000)
    this.tls = {
      rejectUnauthorized: options.insecure !== true,
      ca: readPem(options.caFile, '--os-cacert'),
      cert: readPem(options.certFile, '--os-cert'),
      key: readPem(options.keyFile, '--os-key'),
    }
  }

  /** Sends one request; a JSON `body` is serialized and typed. Resolves with any status. */
  async send (method: string, url: string | URL, { headers = {}, body }: { headers?: Record<string, string>, body?: unknown } = {}): Promise<HttpResponse> {
    const target = new URL(url)
    if (target.protocol !== 'http:' && target.protocol !== 'https:') throw new UsageError(`Not an http(s) URL: ${target.href}`)
    const payload = body === undefined ? undefined : JSON.stringify(body)
    const allHeaders: Record<string, string> = {
      accept: 'application/json',
      'user-agent': this.options.userAgent ?? 'scopekeeper-cli',
      ...(payload === undefined ? {} : { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(payload)) }),
      ...headers,
    }
    this.debugRequest(method, target, allHeaders, payload)
    const response = await new Promise<HttpResponse>((resolve, reject) => {
      const send = target.protocol === 'https:' ? httpsRequest : httpRequest
      const req = send(target, { method, headers: allHeaders, agent: false, ...(target.protocol === 'https:' ? this.tls : {}) }, (res) => {
        const chunks: Buffer[] = []
        res.on('data', (chunk: Buffer) => chunks.push(chunk))
        res.on('error', (error) => reject(connectionError(target, error)))
        res.on('end', () => {
          clearTimeout(timer)
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') })
        })
      })
      const timer = setTimeout(() => {
        req.destroy()
        reject(new ConnectionError(`No answer from ${target.origin} within ${this.timeoutMs / 1000} s (--timeout).`, 'timeout'))
      }, this.timeoutMs)
      req.on('error', (error: NodeJS.ErrnoException) => {
        clearTimeout(timer)
        reject(connectionError(target, error))
      })
      req.end(payload)
    })
    this.debugResponse(response)
    return response
  }

  private debugRequest (method: string, url: URL, headers: Record<string, string>, payload: string | undefined): void {
    if (this.options.debug === undefined) return
    const parts = [`REQ: curl -g -i -X ${method} "${url.href}"`]
    if (this.options.insecure === true) parts.push('--insecure')
    for (const [name, value] of Object.entries(headers)) {
      if (name === 'content-length') continue
      parts.push(`-H "${headerLine(name, value)}"`)
    }
    if (payload !== undefined) parts.push(`-d '${redactJsonText(payload)}'`)
    this.options.debug(parts.join(' '))
  }

  private debugResponse (response: HttpResponse): void {
    if (this.options.debug === undefined) return
    const headers = Object.entries(response.headers).map(([name, value]) => headerLine(name, value)).join(' ')
    this.options.debug(`RESP: [${response.status}] ${headers}\nRESP BODY: ${redactJsonText(response.text)}`)
  }
}
