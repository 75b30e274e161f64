import { access } from 'node:fs/promises'
import type { FastifyInstance, FastifyReply } from 'fastify'
import type { Config } from '../config/config-schema.ts'
import { ScopeKeeperError } from '../domain/errors.ts'
import { healthType, type HealthType } from './health-accept.ts'

/** One check's outcome, as oslo.middleware's pluginbase.HealthcheckResult. */
/** What answers for the database: one trivial question (`OpenDatabase.ping`), rejected when it goes unanswered. */
export interface Pingable {
  ping: () => Promise<void>
}

export interface HealthResult {
  isAvailable: boolean
  reason: string
  details: string
}

/** The outcome of every check, and its renderings (made once per distinct outcome). */
export interface HealthAnswer {
  isHealthy: boolean
  results: readonly HealthResult[]
  bodies: Map<HealthType, Buffer>
}

/** The reason /healthcheck gives while the database does not answer. */
export const DATABASE_REASON = 'DATABASE UNAVAILABLE'

// oslo_middleware/healthcheck/disable_by_file.py DisableByFileHealthcheck.healthcheck, word for word.
function disableByFileResults (path: string): Record<'unset' | 'absent' | 'present', HealthResult> {
  return {
    unset: { isAvailable: true, reason: 'OK', details: "No 'disable_by_file_path' configuration value specified" },
    absent: { isAvailable: true, reason: 'OK', details: `Path '${path}' was not found` },
    present: { isAvailable: false, reason: 'DISABLED BY FILE', details: `Path '${path}' was found` },
  }
}

// Neither the URL nor the driver's message: the answer is public.
const DATABASE_DOWN: HealthResult = { isAvailable: false, reason: DATABASE_REASON, details: 'The database does not answer.' }

/**
 * The checks behind /healthcheck and /healthz: oslo.middleware's
 * disable_by_file backend (`[healthcheck] disable_by_file_path`), then the
 * database. The database adds a result only when it fails, so a healthy
 * answer is CloudKitty's, byte for byte (its pipeline has disable_by_file
 * alone). Pings that overlap share one query, so a burst of probes costs
 * the database one `SELECT 1`.
 */
export class HealthChecks {
  private readonly file: ReturnType<typeof disableByFileResults>
  private readonly answers = new Map<string, HealthAnswer>()
  private ping: Promise<boolean> | undefined

  constructor (private readonly database: Pingable, private readonly disableByFilePath: string) {
    this.file = disableByFileResults(disableByFilePath)
  }

  /** Runs every check; the answer object is shared by every run with the same outcome. */
  async run (): Promise<HealthAnswer> {
    const [file, isDatabaseUp] = await Promise.all([this.fileState(), this.pingOnce()])
    const key = `${file}${isDatabaseUp ? '' : '+database'}`
    let answer = this.answers.get(key)
    if (answer === undefined) {
      const results = isDatabaseUp ? [this.file[file]] : [this.file[file], DATABASE_DOWN]
      answer = { isHealthy: results.every((r) => r.isAvailable), results, bodies: new Map() }
      this.answers.set(key, answer)
    }
    return answer
  }

  // os.path.exists: any failure to stat counts as absent.
  private async fileState (): Promise<'unset' | 'absent' | 'present'> {
    if (this.disableByFilePath === '') return 'unset'
    try {
      await access(this.disableByFilePath)
      return 'present'
    } catch {
      return 'absent'
    }
  }

  private async pingOnce (): Promise<boolean> {
    this.ping ??= this.database.ping().then(() => true, () => false).finally(() => { this.ping = undefined })
    return await this.ping
  }
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&#34;', "'": '&#39;' }
const HTML_SPECIAL = /[&<>"']/g
// Python's json.dumps escapes everything outside printable ASCII (ensure_ascii).
const NON_ASCII = /[\u007f-\uffff]/g

// Jinja's `|e` (markupsafe.escape).
function escapeHtml (text: string): string {
  return text.replace(HTML_SPECIAL, (c) => ESCAPES[c])
}

function pythonJson (value: unknown): string {
  return JSON.stringify(value, null, 4).replace(NON_ASCII, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
}

/**
 * The body of `type`, as oslo.middleware's Healthcheck renders its
 * templates (`_make_text_response`, `_make_json_response`,
 * `_make_html_response`), whitespace included. Detailed mode keeps the
 * per-check kind and details and leaves out what oslo adds about the
 * host: hostname, interpreter and platform, garbage collector, stacks.
 * The kind is oslo's too: the class of the result object, the same for all.
 */
export function renderHealth (results: readonly HealthResult[], type: HealthType, isDetailed: boolean): string {
  if (type === 'text/plain') return results.map((r) => r.reason).join('\n')
  if (type === 'application/json') {
    return pythonJson(isDetailed
      ? { detailed: true, reasons: results.map((r) => ({ class: 'HealthcheckResult', details: r.details, reason: r.reason })) }
      : { detailed: false, reasons: results.map((r) => r.reason) })
  }
  const head = isDetailed ? '<TH>\nKind\n</TH>\n<TH>\nReason\n</TH>\n<TH>\nDetails\n</TH>\n\n' : '\n<TH>\nReason\n</TH>\n'
  const rows = results.map((r) => isDetailed
    ? `<TR>\n<TD>HealthcheckResult</TD>\n    <TD>${escapeHtml(r.reason)}</TD>\n<TD>${escapeHtml(r.details)}</TD>\n</TR>`
    : `<TR>\n\n    <TD>${escapeHtml(r.reason)}</TD>\n\n</TR>`).join('')
  return '<HTML>\n<HEAD><TITLE>Healthcheck Status</TITLE></HEAD>\n<BODY>\n\n' +
    `<H2>Result of ${results.length} checks:</H2>\n<TABLE bgcolor="#ffffff" border="1">\n<TBODY>\n<TR>\n${head}</TR>\n` +
    `${rows}\n</TBODY>\n</TABLE>\n<HR></HR>\n${isDetailed ? '\n\n' : '\n'}</BODY>\n</HTML>`
}

// webob's content types for oslo's Response(charset='UTF-8', content_type=…):
// no charset on application/json.
const CONTENT_TYPES: Record<HealthType, string> = {
  'text/plain': 'text/plain; charset=UTF-8',
  'text/html': 'text/html; charset=UTF-8',
  'application/json': 'application/json',
}
const EMPTY = Buffer.alloc(0)
const ALLOW = 'GET, HEAD, OPTIONS'

/**
 * GET, HEAD and OPTIONS /healthcheck as oslo.middleware's
 * Healthcheck.process_request answers them (CloudKitty's api_paste.ini puts
 * it first in the pipeline, before auth): 200 or 503 (HEAD: 204 or 503,
 * HEAD_HEALTHY_TO_STATUS_CODES) with the reasons as text, HTML or JSON by
 * the Accept header. OPTIONS is answered like GET, as oslo answers every
 * method that is not HEAD, with an Allow header besides. And /healthz,
 * the same checks in our JSON shape: `{"status":"ok"}`, or a 503.
 */
export function registerHealthcheck (app: FastifyInstance, database: Pingable, settings: Config['healthcheck']): void {
  const checks = new HealthChecks(database, settings.disableByFilePath)

  app.route({
    method: ['GET', 'HEAD', 'OPTIONS'],
    url: '/healthcheck',
    schema: { hide: true },
    config: { public: true },
    handler: async (request, reply): Promise<FastifyReply> => {
      const answer = await checks.run()
      if (request.method === 'HEAD') {
        if (answer.isHealthy) return await reply.code(204).send()
        return await reply.code(503).header('content-type', CONTENT_TYPES['text/plain']).send(EMPTY)
      }
      const type = healthType(request.headers.accept)
      let body = answer.bodies.get(type)
      if (body === undefined) {
        body = Buffer.from(renderHealth(answer.results, type, settings.detailed))
        answer.bodies.set(type, body)
      }
      if (request.method === 'OPTIONS') reply.header('allow', ALLOW)
      return await reply.code(answer.isHealthy ? 200 : 503).header('content-type', CONTENT_TYPES[type]).send(body)
    },
  })

  app.get('/healthz', { schema: { hide: true }, config: { public: true } }, async (_request, reply) => {
    const { results } = await checks.run()
    if (results.includes(DATABASE_DOWN)) throw new ScopeKeeperError('DATABASE_UNAVAILABLE', 'The database does not answer.')
    if (!results[0].isAvailable) {
      return await reply.code(503).send({ message: 'This node is disabled: [healthcheck] disable_by_file_path exists.' })
    }
    return { status: 'ok' }
  })
}
