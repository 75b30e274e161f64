import type { FastifyInstance, FastifyRequest } from 'fastify'

/** What replaces the value of a query parameter the route does not declare. */
export const MASK = '***'

// oslo_middleware/request_id.py ID_FORMAT: an X-OpenStack-Request-ID that
// does not match is dropped, as RequestId.set_global_req_id does.
const GLOBAL_REQUEST_ID = /^req-[a-f0-9]{8}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{12}$/
// A parameter name worth showing when its value is hidden; anything else
// (a name that is itself a token, say) is hidden whole.
const PLAIN_NAME = /^[A-Za-z0-9_.[\]-]{1,64}$/

const declaredBySchema = new WeakMap<object, ReadonlySet<string>>()
const NONE: ReadonlySet<string> = new Set()

// The names in the route's querystring schema, read once per route.
function declaredNames (request: FastifyRequest): ReadonlySet<string> {
  const schema = request.routeOptions.schema?.querystring as { properties?: Record<string, unknown> } | undefined
  if (schema === undefined || schema === null) return NONE
  let names = declaredBySchema.get(schema)
  if (names === undefined) {
    names = new Set(Object.keys(schema.properties ?? {}))
    declaredBySchema.set(schema, names)
  }
  return names
}

function decodedName (name: string): string {
  if (!name.includes('%') && !name.includes('+')) return name
  try {
    return decodeURIComponent(name.replaceAll('+', ' '))
  } catch {
    return name
  }
}

/**
 * The query string with the value of every parameter that `declared` does
 * not name replaced by {@link MASK}: a token sent as `?X-Auth-Token=…` or
 * `?token=…` never reaches the log. Names are matched as Fastify's parser
 * decodes them; declared parameters are kept as sent.
 */
export function maskedQuery (query: string, declared: ReadonlySet<string>): string {
  if (query === '') return ''
  const parts = query.split('&')
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i]
    const equals = part.indexOf('=')
    const name = equals < 0 ? part : part.slice(0, equals)
    if (declared.has(name) || declared.has(decodedName(name))) continue
    parts[i] = equals < 0 ? (part === '' ? '' : MASK) : `${PLAIN_NAME.test(name) ? name : MASK}=${MASK}`
  }
  return parts.join('&')
}

/** The fields of the one log line of a request. */
export function requestLogLine (request: FastifyRequest, status: number, ms: number): Record<string, unknown> {
  const url = request.url
  const question = url.indexOf('?')
  const line: Record<string, unknown> = {
    method: request.method,
    path: question < 0 ? url : url.slice(0, question),
    query: question < 0 ? '' : maskedQuery(url.slice(question + 1), declaredNames(request)),
    status,
    ms,
    client: request.origin.client,
  }
  const credentials = request.credentials
  if (credentials !== undefined && credentials !== null) {
    line.user_id = credentials.userId
    line.project_id = credentials.projectId
  }
  const global = request.headers['x-openstack-request-id']
  if (typeof global === 'string' && GLOBAL_REQUEST_ID.test(global)) line.global_request_id = global
  return line
}

/**
 * One info line per request, when its response is sent: method, path, the
 * query string with undeclared values masked, status, milliseconds, the
 * client (behind a trusted proxy, the proxy's client), who called
 * (`user_id`, `project_id`, once authenticated) and the caller's
 * `global_request_id` when it sent a well-formed X-OpenStack-Request-ID.
 */
export function registerRequestLog (app: FastifyInstance): void {
  app.addHook('onResponse', async (request, reply) => {
    request.log.info(requestLogLine(request, reply.statusCode, Math.round(reply.elapsedTime)), 'request')
  })
}
