import { createHash } from 'node:crypto'
import { connect, type ChannelModel, type ConfirmChannel, type Options } from 'amqplib'

/** One scope state as CloudKitty's processor expects it in a `reset_state` cast. */
export interface CastScope {
  scopeId: string
  scopeKey: string | null
  fetcher: string | null
  collector: string | null
}

/**
 * Who asked for the reset, carried as oslo.context's `_context_*` keys.
 *
 * CloudKitty's processor does not act on it; it is there so the processor's
 * logs name the request. Omitted fields are sent as oslo.context's defaults
 * (null, `[]`, `false`).
 */
export interface CastContext {
  requestId: string | null
  userId?: string | null
  projectId?: string | null
  roles?: string[]
  isAdmin?: boolean
}

/** The outer envelope oslo.messaging puts on the wire (its "2.0" message format). */
export interface OsloEnvelope {
  'oslo.version': '2.0'
  'oslo.message': string
}

const UNIQUE_ID = /^[0-9a-f]{32}$/

/**
 * Builds the oslo.messaging envelope of a `reset_state` cast that moves
 * `scopes` back to `lastProcessedTimestamp`, byte for byte what CloudKitty's
 * API sends.
 *
 * Pure: the same arguments give the same string. The timestamp is sent in
 * UTC as `YYYY-MM-DDTHH:MM:SS+00:00`, milliseconds dropped. The processor
 * drops a message whose `_unique_id` it has already seen, so `uniqueId` (32
 * lowercase hex characters, see {@link uniqueIdFor}) must be new for each
 * chunk and reused only for a retry of the same chunk. A null
 * `context.requestId` becomes a `req-<uuid>` derived from `uniqueId`, since
 * oslo.context always carries one. Throws a RangeError for a malformed
 * `uniqueId` or a timestamp Python cannot represent.
 */
export function resetStateMessage (scopes: CastScope[], lastProcessedTimestamp: Date, uniqueId: string, context: CastContext): OsloEnvelope {
  if (!UNIQUE_ID.test(uniqueId)) throw new RangeError(`The unique id must be 32 lowercase hex characters, not ${JSON.stringify(uniqueId)}.`)
  const userId = context.userId ?? null
  const projectId = context.projectId ?? null
  // Key order follows oslo.messaging's AMQP driver: the call, its target
  // version, the unique id, then RequestContext.to_dict() packed as
  // `_context_*`. No `namespace`: the processor's endpoint has none, and a
  // cast naming one (`rating`) is rejected as unsupported.
  const message = {
    method: 'reset_state',
    args: {
      res_data: {
        scopes: scopes.map((s) => ({ scope_id: s.scopeId, scope_key: s.scopeKey, fetcher: s.fetcher, collector: s.collector })),
        last_processed_timestamp: pythonIsoFormat(lastProcessedTimestamp),
      },
    },
    version: '1.0',
    _unique_id: uniqueId,
    _context_user: userId,
    _context_user_id: userId,
    _context_project_id: projectId,
    _context_system_scope: null,
    _context_project: projectId,
    _context_domain: null,
    _context_user_domain: null,
    _context_project_domain: null,
    _context_is_admin: context.isAdmin ?? false,
    _context_read_only: false,
    _context_show_deleted: false,
    _context_auth_token: null,
    _context_request_id: context.requestId ?? `req-${uuidShape(uniqueId)}`,
    _context_global_request_id: null,
    _context_resource_uuid: null,
    _context_roles: context.roles ?? [],
    _context_user_identity: `${userId ?? '-'} ${projectId ?? '-'} - - -`,
    _context_is_admin_project: true,
  }
  return { 'oslo.version': '2.0', 'oslo.message': JSON.stringify(message) }
}

/**
 * Derives the `_unique_id` of the cast for one chunk of a reset job: the
 * chunk that starts at scope state `chunkStartStateId`.
 *
 * Deterministic, so a worker that retries a publish which may already have
 * reached the broker sends the same id and the processor drops the
 * duplicate; distinct pairs give distinct ids (an MD5 of a namespaced
 * string). Throws a RangeError unless both are safe integers.
 */
export function uniqueIdFor (jobId: number, chunkStartStateId: number): string {
  if (!Number.isSafeInteger(jobId) || !Number.isSafeInteger(chunkStartStateId)) {
    throw new RangeError(`A unique id needs integer ids, not ${jobId} and ${chunkStartStateId}.`)
  }
  return createHash('md5').update(`scopekeeper:reset_state:${jobId}:${chunkStartStateId}`).digest('hex')
}

/** Where and how {@link OsloMessagingCaster} publishes. */
export interface OsloMessagingCasterOptions {
  /** oslo.messaging's `transport_url` (`rabbit://user:pass@host:5672/vhost`, hosts comma-separated); `amqp://` and `amqps://` work too. */
  transportUrl: string
  /** CloudKitty's control exchange. Defaults to `cloudkitty`. */
  exchange?: string
  /** The RPC topic: `cloudkitty` reaches every processor, `cloudkitty.<host>` one. Defaults to `cloudkitty`. */
  topic?: string
  /** How long opening a connection to one broker host may take. Defaults to 5000. */
  connectTimeoutMs?: number
  /** How long a publish may wait for the broker's confirm (a blocked broker never sends one). Defaults to 30000. */
  confirmTimeoutMs?: number
}

interface Link {
  connection: ChannelModel
  channel: ConfirmChannel
}

/**
 * Casts CloudKitty's `reset_state` RPC to its processors over RabbitMQ,
 * exactly as CloudKitty's API does through oslo.messaging.
 *
 * A cast resolves only once the broker has confirmed the publish; it does
 * not wait for a processor to apply it. One connection is opened lazily on
 * the first cast, shared by concurrent casts, and dropped when the broker
 * closes it or an error occurs, so the next cast reconnects. Broker hosts
 * are tried in the order the transport URL lists them, each bounded by
 * `connectTimeoutMs`: an unreachable broker rejects the cast, it never
 * hangs nor emits an unhandled error. A rejected cast may still have been
 * delivered; retry it with the same unique id. After {@link close} every
 * cast rejects.
 */
export class OsloMessagingCaster {
  private readonly brokers: Options.Connect[]
  private readonly exchange: string
  private readonly topic: string
  private readonly connectTimeoutMs: number
  private readonly confirmTimeoutMs: number
  private linking: Promise<Link> | undefined
  private linked: Link | undefined
  private isClosed = false

  constructor (options: OsloMessagingCasterOptions) {
    this.brokers = brokersOf(options.transportUrl)
    this.exchange = options.exchange ?? 'cloudkitty'
    this.topic = options.topic ?? 'cloudkitty'
    this.connectTimeoutMs = options.connectTimeoutMs ?? 5000
    this.confirmTimeoutMs = options.confirmTimeoutMs ?? 30_000
  }

  /**
   * Casts `reset_state` for `scopes` to `lastProcessedTimestamp` (see
   * {@link resetStateMessage}) and resolves once the broker confirms it.
   */
  async castResetState (scopes: CastScope[], lastProcessedTimestamp: Date, uniqueId: string, context: CastContext): Promise<void> {
    const body = Buffer.from(JSON.stringify(resetStateMessage(scopes, lastProcessedTimestamp, uniqueId, context)), 'utf8')
    const link = await this.link()
    try {
      await withDeadline(new Promise<void>((resolve, reject) => {
        // oslo.messaging's kombu producer sets these three; CloudKitty's
        // processor drops a message without the content type and encoding.
        link.channel.publish(this.exchange, this.topic, body, {
          contentType: 'application/json',
          contentEncoding: 'utf-8',
          deliveryMode: 2,
        }, (error: unknown) => { if (error == null) resolve(); else reject(asError(error, 'The broker refused the reset_state cast')) })
      }), this.confirmTimeoutMs, `The broker did not confirm the reset_state cast within ${this.confirmTimeoutMs} ms.`)
    } catch (error) {
      // The link's state is unknown now (a nack, a closed channel, a stall):
      // start the next cast on a fresh connection.
      this.drop(link)
      throw error
    }
  }

  /** Closes the broker connection; later casts reject. Safe to call twice. */
  async close (): Promise<void> {
    this.isClosed = true
    const linking = this.linking
    this.linking = undefined
    this.linked = undefined
    if (linking === undefined) return
    const link = await linking.catch(() => undefined)
    if (link !== undefined) await link.connection.close().catch(() => {})
  }

  private link (): Promise<Link> {
    if (this.isClosed) return Promise.reject(new Error('The reset_state caster is closed.'))
    if (this.linking !== undefined) return this.linking
    const linking = this.openAny((lost) => this.drop(lost))
    this.linking = linking
    linking.then((link) => { if (this.linking === linking) this.linked = link }, () => { if (this.linking === linking) this.linking = undefined })
    return linking
  }

  /** Forgets `link` so the next cast reconnects, and closes it. */
  private drop (link: Link): void {
    if (this.linked === link) {
      this.linked = undefined
      this.linking = undefined
    }
    void link.connection.close().catch(() => {})
  }

  /** Tries each broker host in order, as oslo.messaging fails over. */
  private async openAny (onLost: (link: Link) => void): Promise<Link> {
    const failures: string[] = []
    for (const broker of this.brokers) {
      try {
        return await this.openOn(broker, onLost)
      } catch (error) {
        failures.push(`${broker.hostname}:${broker.port}: ${(error as Error).message}`)
      }
    }
    throw new Error(`Could not connect to any RabbitMQ broker for the reset_state cast (${failures.join('; ')}).`)
  }

  private async openOn (broker: Options.Connect, onLost: (link: Link) => void): Promise<Link> {
    let isLate = false
    const opening = (async (): Promise<Link> => {
      // The socket timeout bounds the TCP and AMQP handshake inside amqplib;
      // the deadline below also bounds opening the channel and declaring.
      const connection = await connect(broker, { timeout: this.connectTimeoutMs, clientProperties: { connection_name: 'scopekeeper reset_state caster' } })
      let link: Link | undefined
      let isLost = false
      const lose = () => {
        if (isLost) return
        isLost = true
        if (link !== undefined && !isLate) onLost(link)
      }
      // Without an 'error' listener, a broker-side close would throw from an
      // EventEmitter and end the process.
      connection.on('error', lose)
      connection.on('close', lose)
      try {
        const channel = await this.confirmChannelWithExchange(connection)
        link = { connection, channel }
        channel.on('error', lose)
        channel.on('close', lose)
        if (isLost) throw new Error('The broker closed the connection while it was opening.')
        return link
      } catch (error) {
        await connection.close().catch(() => {})
        throw error
      }
    })()
    try {
      return await withDeadline(opening, this.connectTimeoutMs, `connect timed out after ${this.connectTimeoutMs} ms`)
    } catch (error) {
      isLate = true
      // A connection that opens after its deadline is nobody's: close it.
      void opening.then((link) => link.connection.close().catch(() => {}), () => {})
      throw error
    }
  }

  private async confirmChannelWithExchange (connection: ChannelModel): Promise<ConfirmChannel> {
    const channel = await connection.createConfirmChannel()
    channel.on('error', () => {})
    try {
      // Declared as oslo.messaging declares the control exchange, so a cast
      // before any processor has started still lands instead of closing the
      // channel with NOT_FOUND.
      await channel.assertExchange(this.exchange, 'topic', { durable: false, autoDelete: false })
      return channel
    } catch (error) {
      // PRECONDITION_FAILED: the exchange exists with other attributes (a
      // deployment with amqp_durable_queues declares it durable). The broker
      // closed this channel; the exchange is there, so publish on a new one.
      if ((error as { code?: number }).code !== 406) throw error
      const fresh = await connection.createConfirmChannel()
      fresh.on('error', () => {})
      return fresh
    }
  }
}

/**
 * oslo.messaging's `rabbit://user:pass@h1:5672,user:pass@h2:5672/vhost` as
 * amqplib connection options, one per host. An empty vhost means `/`;
 * missing credentials are oslo's defaults (guest/guest); `?ssl=1` means TLS.
 */
function brokersOf (transportUrl: string): Options.Connect[] {
  const match = /^(rabbit|amqp|amqps):\/\/([^/?#]*)(\/[^?#]*)?(?:\?([^#]*))?$/.exec(transportUrl)
  if (match === null) throw new RangeError('The transport URL must look like rabbit://user:pass@host:5672/vhost.')
  const [, scheme, netloc, path, query] = match
  const ssl = new URLSearchParams(query ?? '').get('ssl')
  const protocol = scheme === 'amqps' || ssl === '1' || ssl?.toLowerCase() === 'true' ? 'amqps' : 'amqp'
  // Left escaped: amqplib unescapes the vhost itself, and maps '' to '/'.
  const vhost = (path ?? '/').slice(1)
  return netloc.split(',').map((hostSpec) => {
    const at = hostSpec.lastIndexOf('@')
    const userInfo = at === -1 ? undefined : hostSpec.slice(0, at)
    const hostPort = hostSpec.slice(at + 1)
    const colon = userInfo?.indexOf(':') ?? -1
    const username = userInfo === undefined ? 'guest' : decodeURIComponent(colon === -1 ? userInfo : userInfo.slice(0, colon))
    const password = userInfo === undefined ? 'guest' : colon === -1 ? '' : decodeURIComponent(userInfo.slice(colon + 1))
    const hostMatch = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(hostPort)
    // Not quoted: the text oslo.messaging's split takes for a host may be
    // part of a password holding a '/', '?', '#' or ','.
    if (hostMatch === null) throw new RangeError("The transport URL has a malformed host (a '/', '?', '#' or ',' in a password must be percent-encoded).")
    const hostname = hostMatch[1].replace(/^\[|\]$/g, '')
    const port = hostMatch[2] === undefined ? (protocol === 'amqps' ? 5671 : 5672) : Number(hostMatch[2])
    return { protocol, hostname, port, username, password, vhost }
  })
}

/** Python's `datetime.isoformat()` of an aware UTC datetime without microseconds. */
function pythonIsoFormat (at: Date): string {
  const iso = at.toISOString()
  if (!/^\d{4}-/.test(iso) || iso.startsWith('0000')) throw new RangeError(`The timestamp ${iso} is outside what CloudKitty can read.`)
  return `${iso.slice(0, 19)}+00:00`
}

function uuidShape (hex: string): string {
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
}

function asError (error: unknown, message: string): Error {
  return error instanceof Error ? error : new Error(message, { cause: error })
}

function withDeadline<T> (promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<never>((_resolve, reject) => { timer = setTimeout(() => reject(new Error(message)), ms) })
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer))
}
