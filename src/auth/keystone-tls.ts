import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { createSecureContext } from 'node:tls'
import type { KeystoneTlsSettings } from '../config/config-schema.ts'
import { ConfigError } from '../config/load-config.ts'

/**
 * How scopekeeper's requests to Keystone do TLS, read from
 * `[keystone_authtoken] cafile`, `certfile`, `keyfile` and `insecure`: the
 * PEM contents, read once at start.
 */
export interface KeystoneTls {
  /** The CA(s) that sign Keystone's certificate; absent: Node's bundled CAs. */
  ca?: Buffer
  /** The client certificate presented to Keystone, and its key. */
  cert?: Buffer
  key?: Buffer
  /** False with `insecure = true`: Keystone's certificate is not verified. */
  rejectUnauthorized: boolean
}

/** The section whose TLS settings are read, and the prefix of their environment variables. */
export interface TlsSection {
  /** `keystone_authtoken` */
  name: string
  /** `SCOPEKEEPER_KEYSTONE_AUTHTOKEN_` */
  envPrefix: string
}

const AUTHTOKEN: TlsSection = { name: 'keystone_authtoken', envPrefix: 'SCOPEKEEPER_KEYSTONE_AUTHTOKEN_' }

function readPem (key: string, file: string, section: TlsSection): Buffer {
  try {
    return readFileSync(file)
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? (error as Error).message
    throw new ConfigError(`Cannot read [${section.name}] ${key} ${file} (${section.envPrefix}${key.toUpperCase()}): ${reason}`)
  }
}

function firstLine (error: unknown): string {
  return String((error as Error).message ?? error).split('\n')[0]
}

/**
 * The TLS settings of `[keystone_authtoken]`, or undefined when none is set
 * (Node's defaults then apply). Reads the files now and checks that they hold
 * what their setting says, so that a wrong path or a mismatched key stops the
 * start with a one-line {@link ConfigError} naming the setting, instead of
 * failing every request later.
 *
 * Follows keystoneauth1's `loading/session.py` `Session.load_from_options`,
 * which keystonemiddleware's `AuthProtocol._create_session` calls with these
 * four settings: `insecure` wins over `cafile` (`verify = False`, and the CA
 * file is then not read); `certfile` without `keyfile` is one file holding
 * both the certificate and its key (requests' single-file `cert`);
 * `keyfile` without `certfile` is not used.
 */
export function keystoneTls (settings: KeystoneTlsSettings, section: TlsSection = AUTHTOKEN): KeystoneTls | undefined {
  const { cafile, certfile, keyfile, insecure } = settings
  if (cafile === '' && certfile === '' && !insecure) return undefined
  const tls: KeystoneTls = { rejectUnauthorized: !insecure }
  if (cafile !== '' && !insecure) {
    const ca = readPem('cafile', cafile, section)
    // OpenSSL skips what is not a certificate: a file without one would
    // silently trust nothing.
    if (!ca.includes('-----BEGIN CERTIFICATE-----')) throw new ConfigError(`[${section.name}] cafile ${cafile} holds no PEM certificate`)
    try {
      createSecureContext({ ca })
    } catch (error) {
      throw new ConfigError(`[${section.name}] cafile ${cafile} holds no usable PEM certificate: ${firstLine(error)}`)
    }
    tls.ca = ca
  }
  if (certfile !== '') {
    const cert = readPem('certfile', certfile, section)
    const key = keyfile === '' ? cert : readPem('keyfile', keyfile, section)
    try {
      createSecureContext({ cert, key })
    } catch (error) {
      const which = keyfile === '' ? `certfile ${certfile} (which must then hold the key too, keyfile being unset)` : `certfile ${certfile} and keyfile ${keyfile}`
      throw new ConfigError(`[${section.name}] ${which}: not a usable PEM certificate and key: ${firstLine(error)}`)
    }
    tls.cert = cert
    tls.key = key
  }
  return tls
}

/** The part of undici that {@link keystoneFetch} uses. */
interface Undici {
  Agent: new (options: { connect: { ca?: Buffer, cert?: Buffer, key?: Buffer, rejectUnauthorized: boolean } }) => { close: () => Promise<void> }
  fetch: (input: string, init: Record<string, unknown>) => Promise<Response>
}

/**
 * A `fetch` that talks TLS to Keystone as `tls` says, and a way to close its
 * connections.
 *
 * Node's global fetch takes such settings only through an undici `Agent`
 * passed as its `dispatcher`, and Node does not export the undici it bundles.
 * So this uses the `undici` package, its `fetch` together with its own
 * `Agent`: a dispatcher is never handed to a fetch of another undici major
 * (Node 20 bundles undici 6, Node 24 undici 7, whose dispatchers differ).
 * Loaded here, on first use, so that processes without these settings do not
 * load it.
 */
export function keystoneFetch (tls: KeystoneTls): { fetch: typeof fetch, close: () => Promise<void> } {
  const undici = createRequire(import.meta.url)('undici') as Undici
  const dispatcher = new undici.Agent({ connect: { ca: tls.ca, cert: tls.cert, key: tls.key, rejectUnauthorized: tls.rejectUnauthorized } })
  return {
    fetch: (async (input: string | URL, init?: RequestInit) => await undici.fetch(String(input), { ...init, dispatcher })) as typeof fetch,
    close: async () => { await dispatcher.close() },
  }
}

// OpenSSL's verification failures, as Node reports them in `error.code`.
const UNTRUSTED_CERTIFICATE = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'CERT_UNTRUSTED', 'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID', 'CERT_REVOKED', 'CERT_SIGNATURE_FAILURE', 'ERR_TLS_CERT_ALTNAME_INVALID',
])

/**
 * Why a request to Keystone failed at the TLS layer, in words an operator can
 * act on, or undefined when the failure was not about TLS.
 */
export function tlsFailure (error: unknown, url: string, tls: KeystoneTls | undefined, section = '[keystone_authtoken]'): string | undefined {
  const cause = (error as { cause?: { code?: string, message?: string } })?.cause
  const code = cause?.code ?? ''
  const origin = new URL(url).origin
  if (UNTRUSTED_CERTIFICATE.has(code)) {
    const hint = code === 'ERR_TLS_CERT_ALTNAME_INVALID'
      ? 'the certificate does not name the host of auth_url (or of the catalog\'s identity endpoint)'
      : tls?.ca === undefined
        ? `name the CA that signed it in ${section} cafile`
        : `the CA in ${section} cafile did not sign it`
    return `Keystone at ${origin} presented a certificate that scopekeeper does not trust (${code}: ${cause?.message ?? ''}): ${hint}`
  }
  if (code.startsWith('ERR_SSL_') || code === 'EPROTO') {
    const hint = tls?.cert === undefined ? `; if Keystone requires a client certificate, set ${section} certfile and keyfile` : ''
    return `The TLS handshake with Keystone at ${origin} failed (${code}: ${cause?.message ?? ''})${hint}`
  }
  return undefined
}
