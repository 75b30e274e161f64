import { HttpTransport, type HttpResponse } from './http-transport.ts'
import {
  DEFAULT_PAGE_SIZE,
  type CreateScopeBody, type ListResetJobsQuery, type ListScopesQuery, type PatchScopeBody, type ResetJobReply, type ResetScopesBody,
  type ScopeStateReply,
} from './wire.ts'

/**
 * The API answered with an error status. `message` is the server's own
 * sentence (`{"message": …}`, or Keystone's `{"error": {"message": …}}`);
 * the CLI prints it and exits 1.
 */
export class ApiError extends Error {
  override name = 'ApiError'
  constructor (readonly status: number, message: string, readonly requestId?: string) {
    super(message)
  }
}

/** What PUT /v2/scope answered: CloudKitty's 202 `{}`, plus where to watch it when the server offers that. */
export interface ResetAccepted {
  /** The `Location` header (scopekeeper's is absolute: `https://…/v2/scope/resets/<id>`), absent on CloudKitty. */
  location?: string
  /** The reset job's id, read from `location`. */
  jobId?: number
}

/** Filters of a paged listing: the list query without `limit`/`offset`. */
export type ScopeFilters = Omit<ListScopesQuery, 'limit' | 'offset'>

/** Settings of {@link ScopeClient}. */
export interface ScopeClientOptions {
  /** Base URL of the rating API, e.g. `http://127.0.0.1:8889` (the catalog's `rating` endpoint). */
  endpoint: string
  /** Keystone token sent as `X-Auth-Token`; none for a noauth API. */
  token?: string
  /** Timeouts, TLS and `--debug`; a default transport when absent. */
  transport?: HttpTransport
}

/** A job is over when it is `done`, `failed` or `cancelled`; `pending` after a failed attempt is retried. */
export function isFinished (job: ResetJobReply): boolean {
  return job.status === 'done' || job.status === 'failed' || job.status === 'cancelled'
}

function requestIdOf (response: HttpResponse): string | undefined {
  const id = response.headers['x-openstack-request-id']
  return Array.isArray(id) ? id[0] : id
}

function errorMessage (response: HttpResponse): string {
  try {
    const body = JSON.parse(response.text) as { message?: unknown, error?: { message?: unknown }, faultstring?: unknown }
    const message = body.message ?? body.error?.message ?? body.faultstring
    if (typeof message === 'string' && message !== '') return message
  } catch { /* not JSON: a proxy's page, for instance */ }
  const text = response.text.replace(/<[^>]*>/g, ' ').replace(/\s+/g, ' ').trim().slice(0, 200)
  return text === '' ? `HTTP ${response.status}` : text
}

/** Appends `params` to `url`, repeating array values; undefined values are left out. */
function withQuery (url: URL, params: Record<string, unknown>): URL {
  for (const [name, value] of Object.entries(params)) {
    if (value === undefined) continue
    for (const v of [value].flat()) url.searchParams.append(name, String(v))
  }
  return url
}

/**
 * A typed client of scopekeeper's and CloudKitty's `/v2/scope` API: its
 * request and reply types are the client's own description of the wire
 * (wire.ts), which the CLI's tests hold to the server's schemas.
 *
 * Every method throws {@link ApiError} on an error status and
 * `ConnectionError` when the server cannot be reached. Nothing is retried:
 * PUT, PATCH and POST are not idempotent in general.
 */
export class ScopeClient {
  readonly endpoint: string
  private readonly token: string | undefined
  private readonly transport: HttpTransport

  constructor (options: ScopeClientOptions) {
    this.endpoint = options.endpoint.replace(/\/+$/, '')
    this.token = options.token
    this.transport = options.transport ?? new HttpTransport()
  }

  /**
   * One page of scope states, in creation order (GET /v2/scope). A query
   * that matches nothing, or an offset past the end, is the server's 404
   * `No resource found for provided filters.`
   */
  async listScopes (query: ListScopesQuery = {}): Promise<ScopeStateReply[]> {
    const body = await this.call('GET', withQuery(this.url('/v2/scope'), query)) as { results: ScopeStateReply[] }
    return body.results
  }

  /**
   * Every page from `offset` on, `pageSize` rows at a time (defaults to 100),
   * until a short page or a 404 past the first page. A first page that
   * matches nothing is the server's 404, as in {@link listScopes}.
   */
  async * scopePages (filters: ScopeFilters = {}, { pageSize = DEFAULT_PAGE_SIZE, offset = 0 } = {}): AsyncGenerator<ScopeStateReply[]> {
    for (let first = true; ; first = false) {
      let page: ScopeStateReply[]
      try {
        page = await this.listScopes({ ...filters, limit: pageSize, offset })
      } catch (error) {
        if (!first && error instanceof ApiError && error.status === 404) return
        throw error
      }
      yield page
      if (page.length < pageSize) return
      offset += page.length
    }
  }

  /** Every scope state matching `filters`, all pages collected. */
  async listAllScopes (filters: ScopeFilters = {}, paging: { pageSize?: number, offset?: number } = {}): Promise<ScopeStateReply[]> {
    const all: ScopeStateReply[] = []
    for await (const page of this.scopePages(filters, paging)) all.push(...page)
    return all
  }

  /**
   * Asks for a reset (PUT /v2/scope). The server records it durably and
   * answers 202 before applying it; {@link waitForReset} follows it.
   */
  async resetScopes (body: ResetScopesBody): Promise<ResetAccepted> {
    const response = await this.send('PUT', this.url('/v2/scope'), body)
    const location = [response.headers.location].flat()[0]
    if (location === undefined) return {}
    const id = /\/resets\/(\d+)\/?$/.exec(location)?.[1]
    return { location, jobId: id === undefined ? undefined : Number(id) }
  }

  /** Changes one scope's key, fetcher, collector or active flag (PATCH /v2/scope); only the fields sent change. */
  async patchScope (body: PatchScopeBody): Promise<ScopeStateReply> {
    return await this.call('PATCH', this.url('/v2/scope'), body) as ScopeStateReply
  }

  /** Registers a scope ahead of discovery (POST /v2/scope); 409 when it already exists. */
  async createScope (body: CreateScopeBody): Promise<ScopeStateReply> {
    return await this.call('POST', this.url('/v2/scope'), body) as ScopeStateReply
  }

  /** One reset job and its progress (GET /v2/scope/resets/{id}, a scopekeeper extension). */
  async getResetJob (id: number): Promise<ResetJobReply> {
    return await this.call('GET', this.url(`/v2/scope/resets/${id}`)) as ResetJobReply
  }

  /** Reset jobs, newest first (GET /v2/scope/resets, a scopekeeper extension). */
  async listResetJobs (query: ListResetJobsQuery = {}): Promise<ResetJobReply[]> {
    const body = await this.call('GET', withQuery(this.url('/v2/scope/resets'), query)) as { results: ResetJobReply[] }
    return body.results
  }

  /**
   * Polls a reset job every `intervalMs` (defaults to 1000) until it is
   * `done` or `failed`, calling `onProgress` with each reading, and resolves
   * with the last one. Throws a `WaitTimeoutError` after `timeoutMs`
   * (defaults to no limit); the reset itself goes on on the server.
   */
  async waitForReset (id: number, { intervalMs = 1000, timeoutMs, onProgress }: {
    intervalMs?: number, timeoutMs?: number, onProgress?: (job: ResetJobReply) => void
  } = {}): Promise<ResetJobReply> {
    const deadline = timeoutMs === undefined ? Infinity : Date.now() + timeoutMs
    for (;;) {
      const job = await this.getResetJob(id)
      onProgress?.(job)
      if (isFinished(job)) return job
      if (Date.now() + intervalMs > deadline) throw new WaitTimeoutError(job)
      await new Promise((resolve) => setTimeout(resolve, intervalMs))
    }
  }

  private url (path: string): URL {
    return new URL(this.endpoint + path)
  }

  private async send (method: string, url: URL, body?: unknown): Promise<HttpResponse> {
    const headers: Record<string, string> = this.token === undefined ? {} : { 'x-auth-token': this.token }
    const response = await this.transport.send(method, url, { headers, body })
    if (response.status >= 400) throw new ApiError(response.status, errorMessage(response), requestIdOf(response))
    return response
  }

  private async call (method: string, url: URL, body?: unknown): Promise<unknown> {
    const response = await this.send(method, url, body)
    try {
      return JSON.parse(response.text)
    } catch {
      throw new ApiError(response.status, `The server answered ${method} ${url.pathname} with a body that is not JSON.`, requestIdOf(response))
    }
  }
}

/** {@link ScopeClient.waitForReset} gave up; `job` is the last reading. */
export class WaitTimeoutError extends Error {
  override name = 'WaitTimeoutError'
  constructor (readonly job: ResetJobReply) {
    super(`Stopped waiting for reset ${job.id}: it is still ${job.status} (${job.scopes_applied}/${job.scopes_total} scopes applied); it goes on on the server.`)
  }
}
