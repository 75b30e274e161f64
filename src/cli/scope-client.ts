import { setTimeout as sleep } from 'node:timers/promises'
import { type ConnectionError, HttpTransport, type HttpResponse } from './http-transport.ts'
import { shouldRetry } from './idempotency.ts'
import { nextMarkerOf } from './link-header.ts'
import {
  DEFAULT_PAGE_SIZE,
  type ActivationBody, type ActivationReply, type CreateScopeBody, type ListResetJobsQuery, type ListScopeEventsQuery, type ListScopesQuery, type PatchScopeBody,
  type ReconcileBody, type ReconcileReply, type ResetJobReply,
  type ResetPreviewReply, type ResetScopesBody, type ScopeEventReply, type ScopeStateReply, type ScopeSummaryQuery, type ScopeSummaryReply,
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

/** Filters of a paged listing: the list query without `limit`/`offset`/`marker`. */
export type ScopeFilters = Omit<ListScopesQuery, 'limit' | 'offset' | 'marker'>

/** One page of a listing, and the `marker` of the next one when the server linked it (`Link: rel="next"`). */
export interface Page<T> {
  results: T[]
  nextMarker?: number
}

/** Headers of a PUT, PATCH or POST (scopekeeper's; CloudKitty ignores them), and `?dry_run=true`. */
export interface WriteOptions {
  /** Sent as `Idempotency-Key`: a repeat with the same key replays the first answer, so a retry acts once. */
  idempotencyKey?: string
  /** Sent as `If-Match` (PATCH): the server answers 412 when the row's ETag differs. */
  ifMatch?: string
  /** Sends `?dry_run=true`: the server answers what it would do, and changes nothing. */
  dryRun?: boolean
}

/** What DELETE /v2/scope/resets/{id} answered: 200 with a job now `cancelled`, or 202 with a running one that stops after its batch. */
export interface ResetCancelled {
  job: ResetJobReply
  /** True on 202: the job was running and ends `cancelled` after its current batch. */
  stopping: boolean
}

/** Settings of {@link ScopeClient}. */
export interface ScopeClientOptions {
  /** Base URL of the rating API, e.g. `http://127.0.0.1:8889` (the catalog's `rating` endpoint). */
  endpoint: string
  /** Keystone token sent as `X-Auth-Token`; none for a noauth API. */
  token?: string
  /** Timeouts, TLS and `--debug`; a default transport when absent. */
  transport?: HttpTransport
  /** Milliseconds before the one retry of a keyed request (idempotency.ts); 1000 by default. */
  retryDelayMs?: number
  /** Told before that retry, with the failure that caused it. */
  onRetry?: (error: ConnectionError, method: string, url: URL) => void
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
 * `ConnectionError` when the server cannot be reached. A PUT, PATCH or POST
 * sent with an `Idempotency-Key` is sent once more after a connection
 * failure (idempotency.ts `shouldRetry`): the key makes the server act once.
 * Nothing else is retried.
 */
export class ScopeClient {
  readonly endpoint: string
  private readonly token: string | undefined
  private readonly transport: HttpTransport
  private readonly retryDelayMs: number
  private readonly onRetry: ScopeClientOptions['onRetry']

  constructor (options: ScopeClientOptions) {
    this.endpoint = options.endpoint.replace(/\/+$/, '')
    this.token = options.token
    this.transport = options.transport ?? new HttpTransport()
    this.retryDelayMs = options.retryDelayMs ?? 1000
    this.onRetry = options.onRetry
  }

  /**
   * One page of scope states, in creation order (GET /v2/scope). A query
   * that matches nothing, or an offset past the end, is the server's 404
   * `No resource found for provided filters.`
   */
  async listScopes (query: ListScopesQuery = {}): Promise<ScopeStateReply[]> {
    return (await this.listScopesPage(query)).results
  }

  /** {@link listScopes}, with the next page's marker when the server sent `Link: rel="next"` (scopekeeper does on a full page). */
  async listScopesPage (query: ListScopesQuery = {}): Promise<Page<ScopeStateReply>> {
    return await this.page<ScopeStateReply>(withQuery(this.url('/v2/scope'), query))
  }

  /**
   * Every page from `offset` on, `pageSize` rows at a time (defaults to
   * 100), until a short page or a 404 past the first page. The first page
   * is read at `offset`; each next one at the marker of the previous page's
   * `Link: rel="next"`, which costs the server the same at any depth. A
   * full page without a Link (CloudKitty sends none) is followed by offset,
   * as before markers. A first page that matches nothing is the server's
   * 404, as in {@link listScopes}.
   */
  async * scopePages (filters: ScopeFilters = {}, { pageSize = DEFAULT_PAGE_SIZE, offset = 0 } = {}): AsyncGenerator<ScopeStateReply[]> {
    let marker: number | undefined
    for (let first = true; ; first = false) {
      let page: Page<ScopeStateReply>
      try {
        page = await this.listScopesPage(marker === undefined ? { ...filters, limit: pageSize, offset } : { ...filters, limit: pageSize, marker })
      } catch (error) {
        if (!first && error instanceof ApiError && error.status === 404) return
        throw error
      }
      yield page.results
      if (page.results.length < pageSize) return
      offset += page.results.length
      marker = page.nextMarker
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
  async resetScopes (body: ResetScopesBody, options: Omit<WriteOptions, 'dryRun' | 'ifMatch'> = {}): Promise<ResetAccepted> {
    const response = await this.send('PUT', this.url('/v2/scope'), body, options)
    const location = [response.headers.location].flat()[0]
    if (location === undefined) return {}
    const id = /\/resets\/(\d+)\/?$/.exec(location)?.[1]
    return { location, jobId: id === undefined ? undefined : Number(id) }
  }

  /**
   * What a reset would do (PUT /v2/scope?dry_run=true): how many scopes,
   * from when rated data would be discarded, and the first page of the
   * scopes. Nothing changes. A server that answers anything but a preview
   * (CloudKitty ignores `dry_run` and resets) is an {@link ApiError}.
   */
  async previewReset (body: ResetScopesBody, options: Omit<WriteOptions, 'dryRun' | 'ifMatch'> = {}): Promise<ResetPreviewReply> {
    await this.requireDryRun('PUT')
    const url = withQuery(this.url('/v2/scope'), { dry_run: 'true' })
    const response = await this.send('PUT', url, body, options)
    const preview = parseJson(response, 'PUT', url) as Partial<ResetPreviewReply> | null
    if (response.status !== 200 || preview?.dry_run !== true) {
      throw new ApiError(response.status, `The server answered PUT ${url.pathname}?dry_run=true with no preview` +
        `${response.status === 202 ? ': it accepted the reset as a real one' : ''}.`, requestIdOf(response))
    }
    return preview as ResetPreviewReply
  }

  /** Changes one scope's key, fetcher, collector or active flag (PATCH /v2/scope); only the fields sent change. */
  async patchScope (body: PatchScopeBody, options: WriteOptions = {}): Promise<ScopeStateReply> {
    if (options.dryRun === true) await this.requireDryRun('PATCH')
    return await this.call('PATCH', withQuery(this.url('/v2/scope'), { dry_run: options.dryRun === true ? 'true' : undefined }), body, options) as ScopeStateReply
  }

  /** Registers a scope ahead of discovery (POST /v2/scope); 409 when it already exists. */
  async createScope (body: CreateScopeBody, options: Omit<WriteOptions, 'ifMatch'> = {}): Promise<ScopeStateReply> {
    if (options.dryRun === true) await this.requireDryRun('POST')
    return await this.call('POST', withQuery(this.url('/v2/scope'), { dry_run: options.dryRun === true ? 'true' : undefined }), body, options) as ScopeStateReply
  }

  /**
   * Compares the scope states with Keystone's projects (POST
   * /v2/scope/reconcile, scopekeeper): the report, and what was done. The
   * server writes nothing unless the body says `dry_run: false`.
   */
  async reconcile (body: ReconcileBody): Promise<ReconcileReply> {
    return await this.call('POST', this.url('/v2/scope/reconcile'), body) as ReconcileReply
  }

  /**
   * Sets `active` on every scope the body's filters match, in one
   * transaction on the server (POST /v2/scope/activation, scopekeeper
   * only): the counts matched and switched. With `dry_run` in the body, what
   * would switch, and the first scopes that would.
   */
  async setActivation (body: ActivationBody, options: Omit<WriteOptions, 'dryRun' | 'ifMatch'> = {}): Promise<ActivationReply> {
    return await this.call('POST', this.url('/v2/scope/activation'), body, options) as ActivationReply
  }

  /** How far behind the matching scopes are rated (GET /v2/scope/summary, scopekeeper only). */
  async scopeSummary (query: ScopeSummaryQuery = {}): Promise<ScopeSummaryReply> {
    return await this.call('GET', withQuery(this.url('/v2/scope/summary'), query)) as ScopeSummaryReply
  }

  /** One page of a scope's audit events, newest first (GET /v2/scope/events, scopekeeper); 404 when none match. */
  async listScopeEvents (query: ListScopeEventsQuery = {}): Promise<Page<ScopeEventReply>> {
    return await this.page<ScopeEventReply>(withQuery(this.url('/v2/scope/events'), query))
  }

  /** Every page of events from `query.marker` on, following `Link: rel="next"`, until a page without one or a 404 past the first. */
  async * scopeEventPages (query: ListScopeEventsQuery = {}): AsyncGenerator<ScopeEventReply[]> {
    let marker = query.marker
    for (let first = true; ; first = false) {
      let page: Page<ScopeEventReply>
      try {
        page = await this.listScopeEvents({ ...query, marker })
      } catch (error) {
        if (!first && error instanceof ApiError && error.status === 404) return
        throw error
      }
      yield page.results
      if (page.nextMarker === undefined || page.results.length === 0) return
      marker = page.nextMarker
    }
  }

  /** One reset job and its progress (GET /v2/scope/resets/{id}, a scopekeeper extension). */
  async getResetJob (id: number): Promise<ResetJobReply> {
    return await this.call('GET', this.url(`/v2/scope/resets/${id}`)) as ResetJobReply
  }

  /**
   * Cancels a reset job (DELETE /v2/scope/resets/{id}, scopekeeper): a
   * pending one at once (200), a running one after its current batch (202);
   * a finished one is the server's 409.
   */
  async cancelResetJob (id: number): Promise<ResetCancelled> {
    const url = this.url(`/v2/scope/resets/${id}`)
    const response = await this.send('DELETE', url)
    return { job: parseJson(response, 'DELETE', url) as ResetJobReply, stopping: response.status === 202 }
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

  /**
   * Whether the server's API description (`GET /v2/openapi.json`,
   * scopekeeper's; CloudKitty has none) lists a `dry_run` query parameter
   * for `method` on /v2/scope. Any failure to read it means no.
   */
  async offersDryRun (method: 'PUT' | 'PATCH' | 'POST'): Promise<boolean> {
    try {
      const document = await this.call('GET', this.url('/v2/openapi.json')) as {
        paths?: Record<string, Record<string, { parameters?: Array<{ name?: unknown, in?: unknown }> } | undefined> | undefined>
      }
      const parameters = document.paths?.['/v2/scope']?.[method.toLowerCase()]?.parameters ?? []
      return parameters.some((p) => p.name === 'dry_run' && p.in === 'query')
    } catch (error) {
      if (error instanceof ApiError) return false
      throw error
    }
  }

  private async requireDryRun (method: 'PUT' | 'PATCH' | 'POST'): Promise<void> {
    if (await this.offersDryRun(method)) return
    throw new DryRunUnsupportedError(`The server at ${this.endpoint} does not offer dry runs of ${method} /v2/scope (no dry_run in its /v2/openapi.json), ` +
      'and would make the change for real: nothing was sent.')
  }

  private url (path: string): URL {
    return new URL(this.endpoint + path)
  }

  private async send (method: string, url: URL, body?: unknown, options: WriteOptions = {}): Promise<HttpResponse> {
    const headers: Record<string, string> = {}
    if (options.idempotencyKey !== undefined) headers['idempotency-key'] = options.idempotencyKey
    if (options.ifMatch !== undefined) headers['if-match'] = options.ifMatch
    if (this.token !== undefined) headers['x-auth-token'] = this.token
    let response: HttpResponse
    for (let attempt = 1; ; attempt++) {
      try {
        response = await this.transport.send(method, url, { headers, body })
        break
      } catch (error) {
        if (!shouldRetry({ method, idempotencyKey: options.idempotencyKey }, error, attempt)) throw error
        this.onRetry?.(error as ConnectionError, method, url)
        await sleep(this.retryDelayMs)
      }
    }
    if (response.status >= 400) throw new ApiError(response.status, errorMessage(response), requestIdOf(response))
    return response
  }

  private async call (method: string, url: URL, body?: unknown, options: WriteOptions = {}): Promise<unknown> {
    return parseJson(await this.send(method, url, body, options), method, url)
  }

  private async page<T> (url: URL): Promise<Page<T>> {
    const response = await this.send('GET', url)
    const { results } = parseJson(response, 'GET', url) as { results: T[] }
    const nextMarker = nextMarkerOf(response.headers.link)
    return nextMarker === undefined ? { results } : { results, nextMarker }
  }
}

function parseJson (response: HttpResponse, method: string, url: URL): unknown {
  try {
    return JSON.parse(response.text)
  } catch {
    throw new ApiError(response.status, `The server answered ${method} ${url.pathname} with a body that is not JSON.`, requestIdOf(response))
  }
}

/**
 * The server does not say that it takes `?dry_run=true` on this method:
 * nothing was sent, since a server that ignores the parameter (CloudKitty,
 * an older scopekeeper) would make the change for real.
 */
export class DryRunUnsupportedError extends Error {
  override name = 'DryRunUnsupportedError'
}

/** {@link ScopeClient.waitForReset} gave up; `job` is the last reading. */
export class WaitTimeoutError extends Error {
  override name = 'WaitTimeoutError'
  constructor (readonly job: ResetJobReply) {
    super(`Stopped waiting for reset ${job.id}: it is still ${job.status} (${job.scopes_applied}/${job.scopes_total} scopes applied); it goes on on the server.`)
  }
}
