import './style.css'
import { api, ApiError, idempotencyKey, nextMarker, setUnauthorizedHandler, TOKEN_KEY, type Query } from './api.ts'
import { h, link, svg } from './dom.ts'
import { duration, lagSeconds, monthStart, utc, type Scope } from './format.ts'

const BASE = '/console/'
const main = document.getElementById('main') as HTMLElement
const dialog = document.getElementById('confirm') as HTMLDialogElement

interface Summary {
  period: number
  now: string
  active: number
  inactive: number
  lag_periods: Record<string, number>
  stuck: number
  stuck_after_periods: number
  oldest_rated_through: string | null
  median_rated_through: string | null
  cutoff: { at: string, rated_through: number, not_rated_through: number } | null
}

interface ResetJob {
  id: number
  status: string
  last_processed_timestamp: string
  scopes_total: number
  scopes_applied: number
  scopes_waiting: number
  attempts: number
  last_error: string | null
  reason: string | null
  created_at: string
  finished_at: string | null
  cancel_requested_at: string | null
  created_by?: { auth?: string, user_name?: string | null }
}

interface ScopeEvent {
  id: number
  kind: string
  created_at: string
  auth: string
  user_name: string | null
  user_id: string | null
  reason: string | null
  request_id: string | null
  job_id: number | null
  details: unknown
}

// The period and the stuck threshold, read once from the summary: the lag
// of a listed scope is computed here, coloured past that many periods.
let settings: Promise<{ period: number, late: number }> | undefined
function lagSettings (): Promise<{ period: number, late: number }> {
  settings ??= api<Summary>('GET', '/v2/scope/summary').then(
    ({ body }) => ({ period: body.period, late: body.stuck_after_periods }),
    () => ({ period: 3600, late: 3 }),
  )
  return settings
}

// ---------------------------------------------------------------- routing

function navigate (href: string, replace = false): void {
  if (replace) history.replaceState(null, '', href)
  else history.pushState(null, '', href)
  void render()
}

document.addEventListener('click', (event) => {
  const anchor = (event.target as Element).closest('a')
  if (anchor === null || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) return
  const url = new URL(anchor.href, location.href)
  if (url.origin !== location.origin || !url.pathname.startsWith(BASE)) return
  event.preventDefault()
  navigate(url.pathname + url.search)
})
window.addEventListener('popstate', () => { void render() })

setUnauthorizedHandler(() => {
  sessionStorage.removeItem(TOKEN_KEY)
  sessionStorage.removeItem(WHO_KEY)
  whoAmI()
  if (!location.pathname.endsWith('/login')) navigate(`${BASE}login?next=${encodeURIComponent(location.pathname + location.search)}`)
})

async function render (): Promise<void> {
  const path = location.pathname.slice(BASE.length).replace(/\/+$/, '')
  const query = new URLSearchParams(location.search)
  for (const a of document.querySelectorAll<HTMLAnchorElement>('nav a')) {
    if (a.dataset.nav === (path.split('/')[0] || 'overview')) a.setAttribute('aria-current', 'page')
    else a.removeAttribute('aria-current')
  }
  document.body.removeAttribute('data-ready')
  try {
    if (path === '') await overview(query)
    else if (path === 'scopes') await scopesTable(query)
    else if (path === 'scope') await oneScope(query)
    else if (path === 'new') createForm()
    else if (path === 'resets') await resetList(query)
    else if (/^resets\/\d+$/.test(path)) await resetView(Number(path.split('/')[1]))
    else if (path === 'login') loginForm(query)
    else show('Not found', h('p', {}, 'No such page in the console.'))
  } catch (error) {
    // A 401 has already brought the login form up in this page's place.
    if (error instanceof ApiError && error.status === 401) return
    show('Error', errorBox(error))
  }
  const page = path === '' ? 'overview' : path.split('/')[0]
  // What the browser tests read as the time to first render.
  performance.mark(`ready:${page}`)
  document.body.dataset.ready = page
}

function show (title: string, ...content: Node[]): void {
  document.title = `${title} · scopekeeper`
  main.replaceChildren(h('h1', {}, title), ...content)
}

function errorBox (error: unknown): HTMLElement {
  if (error instanceof ApiError && error.status === 403) {
    return h('p', { class: 'error', role: 'alert' }, 'Your role may not do this',
      error.rule === undefined ? '' : h('span', {}, ' (policy rule ', h('code', {}, error.rule), ')'), `: ${error.message}`)
  }
  const message = error instanceof Error ? error.message : String(error)
  return h('p', { class: 'error', role: 'alert' }, error instanceof ApiError ? `${error.status}: ${message}` : message)
}

/** A list that may be empty: the API answers an empty page with a 404. */
async function list<T> (path: string, query: Query): Promise<{ results: T[], next: string | undefined, headers: Headers | undefined }> {
  const answer = await api<{ results?: T[] }>('GET', path, { query, allow: [404] })
  if (answer.status === 404) return { results: [], next: undefined, headers: undefined }
  return { results: answer.body.results ?? [], next: nextMarker(answer.headers), headers: answer.headers }
}

// ---------------------------------------------------------------- overview

const BUCKETS = ['0-1', '1-2', '2-6', '6-24', '24+']

function scopesHref (filters: Query): string {
  const params = new URLSearchParams()
  for (const [key, value] of Object.entries(filters)) if (value !== undefined) params.set(key, value)
  return `${BASE}scopes?${params.toString()}`
}

/** The GET filters that list one lag bucket: rated through between now - b and now - a periods. */
function bucketFilters (bucket: string, summary: Summary): Query {
  const now = Date.parse(summary.now)
  const [from, to] = bucket.split('-').map((n) => Number.parseInt(n, 10))
  const at = (periods: number) => new Date(now - periods * summary.period * 1000).toISOString().replace(/\.\d+Z$/, 'Z')
  return {
    active: 'true',
    rated_before: from === 0 ? undefined : at(from),
    rated_after: Number.isNaN(to) || to === undefined ? undefined : at(to),
  }
}

/** Promise.all, but rejected with the first failure in the list's order, not in time. */
async function inOrder<T extends readonly unknown[]> (promises: { [K in keyof T]: Promise<T[K]> }): Promise<T> {
  const settled = await Promise.allSettled(promises)
  for (const outcome of settled) if (outcome.status === 'rejected') throw outcome.reason
  return settled.map((outcome) => (outcome as PromiseFulfilledResult<unknown>).value) as unknown as T
}

async function overview (query: URLSearchParams): Promise<void> {
  const cutoff = query.get('cutoff') ?? monthStart()
  // Read at once; of several refusals, the summary's is the one shown,
  // whichever answered first.
  const [summary, running, failed] = await inOrder([
    api<Summary>('GET', '/v2/scope/summary', { query: { cutoff } }).then((a) => a.body),
    list<ResetJob>('/v2/scope/resets', { status: 'pending,running', limit: '20' }),
    list<ResetJob>('/v2/scope/resets', { status: 'failed', limit: '20' }),
  ] as const)
  const figure = (label: string, value: number, href: string, tone = '') =>
    h('li', { class: `figure ${tone}` }, link(href, h('span', { class: 'value' }, value.toLocaleString('en')), h('span', { class: 'label' }, label)))
  const notRated = summary.cutoff?.not_rated_through ?? 0
  const form = h('form', { class: 'inline', onsubmit: (event: Event) => {
    event.preventDefault()
    const value = (form.elements.namedItem('cutoff') as HTMLInputElement).value.trim()
    navigate(`${BASE}?cutoff=${encodeURIComponent(value)}`)
  } },
  h('label', { for: 'cutoff' }, 'Cut-off (UTC)'),
  h('input', { id: 'cutoff', name: 'cutoff', value: cutoff, size: 22, 'aria-describedby': 'cutoff-help' }),
  h('button', { type: 'submit' }, 'Count'),
  h('span', { id: 'cutoff-help', class: 'help' }, 'ISO 8601; no offset means UTC'))

  show('Overview',
    h('p', { class: 'muted' }, `Measured at ${utc(summary.now)}; one period is ${duration(summary.period)}.`),
    h('ul', { class: 'figures', 'aria-label': 'Scope figures' },
      figure('active', summary.active, scopesHref({ active: 'true' })),
      figure('inactive', summary.inactive, scopesHref({ active: 'false' })),
      figure(`stuck (over ${summary.stuck_after_periods} periods behind the median)`, summary.stuck, scopesHref({ stuck: 'true' }), summary.stuck > 0 ? 'bad' : ''),
      figure(`active, not rated through ${utc(summary.cutoff?.at ?? cutoff)}`, notRated, scopesHref({ active: 'true', rated_before: cutoff }), notRated > 0 ? 'warn' : ''),
    ),
    form,
    h('h2', {}, 'Active scopes by lag (periods behind)'),
    lagChart(summary),
    h('p', { class: 'muted' }, `Oldest rated through ${utc(summary.oldest_rated_through)}, median ${utc(summary.median_rated_through)}.`),
    h('h2', {}, 'Reset jobs pending or running'),
    jobTable(running.results, 'No reset is pending or running.'),
    h('p', {}, link(`${BASE}resets?status=pending,running`, 'All pending and running resets')),
    h('h2', {}, 'Failed reset jobs'),
    jobTable(failed.results, 'No reset has failed.'),
    h('p', {}, link(`${BASE}resets?status=failed`, 'All failed resets')),
  )
}

function lagChart (summary: Summary): HTMLElement {
  const max = Math.max(1, ...BUCKETS.map((b) => summary.lag_periods[b] ?? 0))
  const width = 600
  const row = 34
  // Not role="img": each bar is a link to its scopes, named by its text.
  const chart = svg('svg', { viewBox: `0 0 ${width} ${row * BUCKETS.length}`, class: 'chart' })
  BUCKETS.forEach((bucket, i) => {
    const count = summary.lag_periods[bucket] ?? 0
    const barWidth = count === 0 ? 0 : Math.max(2, (count / max) * (width - 220))
    const anchor = svg('a', { href: scopesHref(bucketFilters(bucket, summary)), 'data-internal': 'true', class: i >= 2 ? 'late' : '' },
      svg('text', { x: 0, y: i * row + 22, class: 'axis' }, `${bucket}:`),
      svg('rect', { x: 70, y: i * row + 6, width: barWidth, height: row - 12, rx: 3, class: 'bar' }),
      svg('text', { x: 80 + barWidth, y: i * row + 22, class: 'count' }, `${count.toLocaleString('en')} scopes`))
    chart.append(anchor)
  })
  return h('figure', { class: 'chart-box' }, chart, h('figcaption', { class: 'muted' }, 'Each bar lists its scopes.'))
}

function jobTable (jobs: ResetJob[], empty: string): HTMLElement {
  if (jobs.length === 0) return h('p', { class: 'muted' }, empty)
  return h('div', { class: 'scroll' }, h('table', {},
    h('thead', {}, h('tr', {}, ...['Job', 'Status', 'Reset to', 'Progress', 'Requested', 'By', 'Reason', 'Last error'].map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', {}, ...jobs.map((job) => h('tr', {},
      h('td', {}, link(`${BASE}resets/${job.id}`, `#${job.id}`)),
      h('td', {}, h('span', { class: `status ${job.status}` }, job.status)),
      h('td', {}, utc(job.last_processed_timestamp)),
      h('td', {}, `${job.scopes_applied} / ${job.scopes_total}`),
      h('td', {}, utc(job.created_at)),
      h('td', {}, job.created_by?.user_name ?? job.created_by?.auth ?? ''),
      h('td', {}, job.reason ?? ''),
      h('td', {}, job.last_error ?? ''),
    )))))
}

// ---------------------------------------------------------------- scopes table

const TEXT_FILTERS = ['scope_id', 'scope_key', 'fetcher', 'collector'] as const
const LAG_FILTERS = ['rated_before', 'rated_after'] as const
const FILTERS = [...TEXT_FILTERS, 'active', 'stuck', ...LAG_FILTERS] as const

function filtersOf (query: URLSearchParams): Query {
  const filters: Query = {}
  for (const name of FILTERS) {
    const value = query.get(name)
    if (value !== null && value !== '') filters[name] = value
  }
  return filters
}

function selectFilter (name: string, label: string, value: string | undefined, choices: Array<[string, string]>): HTMLElement {
  return h('div', { class: 'field' }, h('label', { for: `f-${name}` }, label),
    h('select', { id: `f-${name}`, name }, ...choices.map(([v, text]) => h('option', { value: v, selected: (value ?? '') === v }, text))))
}

function textField (name: string, label: string, value: string | undefined, extra: Record<string, string> = {}): HTMLElement {
  return h('div', { class: 'field' }, h('label', { for: `f-${name}` }, label), h('input', { id: `f-${name}`, name, value: value ?? '', ...extra }))
}

async function scopesTable (query: URLSearchParams): Promise<void> {
  const filters = filtersOf(query)
  const limit = query.get('limit') ?? '50'
  const marker = query.get('marker') ?? undefined
  const previous = query.getAll('prev')
  const [page, lag] = await Promise.all([list<Scope>('/v2/scope', { ...filters, limit, marker }), lagSettings()])
  const now = Date.now()

  const form = h('form', { class: 'filters', 'aria-label': 'Filters', onsubmit: (event: Event) => {
    event.preventDefault()
    const params = new URLSearchParams()
    for (const [key, value] of new FormData(form)) if (typeof value === 'string' && value.trim() !== '') params.set(key, value.trim())
    navigate(`${BASE}scopes?${params.toString()}`)
  } },
  ...TEXT_FILTERS.map((name) => textField(name, name, filters[name], { placeholder: 'a,b' })),
  selectFilter('active', 'active', filters.active, [['', 'any'], ['true', 'active'], ['false', 'inactive']]),
  selectFilter('stuck', 'stuck', filters.stuck, [['', 'any'], ['true', 'stuck'], ['false', 'not stuck']]),
  textField('rated_before', 'not rated through (UTC)', filters.rated_before, { placeholder: '2026-12-01T00:00:00Z' }),
  textField('rated_after', 'rated through (UTC)', filters.rated_after, { placeholder: '2026-12-01T00:00:00Z' }),
  selectFilter('limit', 'per page', limit, [['20', '20'], ['50', '50'], ['100', '100'], ['500', '500']]),
  h('div', { class: 'field buttons' }, h('button', { type: 'submit' }, 'Filter'), link(`${BASE}scopes`, 'Clear')))

  selected.clear()
  const rows = page.results.map((scope) => {
    const behind = lagSeconds(scope, lag.period, now)
    const late = behind > lag.late * lag.period
    const href = `${BASE}scope?${new URLSearchParams({ scope_id: scope.scope_id, scope_key: scope.scope_key, fetcher: scope.fetcher, collector: scope.collector }).toString()}`
    return h('tr', { tabindex: 0, 'data-href': href },
      h('td', {}, h('input', { type: 'checkbox', 'aria-label': `select ${scope.scope_id}`, onchange: (event: Event) => {
        if ((event.target as HTMLInputElement).checked) selected.add(scope.scope_id)
        else selected.delete(scope.scope_id)
        onSelection()
      } })),
      h('td', {}, link(href, scope.scope_id)),
      h('td', {}, scope.scope_key), h('td', {}, scope.fetcher), h('td', {}, scope.collector),
      h('td', {}, h('span', { class: scope.active ? 'status done' : 'status inactive' }, scope.active ? 'active' : 'inactive')),
      h('td', {}, utc(scope.last_processed_timestamp)),
      h('td', { class: late && scope.active ? 'lag late' : 'lag' }, duration(behind), late && scope.active ? h('span', { class: 'sr' }, ' (late)') : ''),
      h('td', {}, utc(scope.scope_activation_toggle_date)))
  })
  const table = h('table', { 'aria-label': 'Scope states' },
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, h('span', { class: 'sr' }, 'select')), ...['scope_id', 'scope_key', 'fetcher', 'collector', 'active', 'last_processed_timestamp (state)', 'lag', 'scope_activation_toggle_date'].map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', { onkeydown: rowKeys }, ...rows))

  const here = new URLSearchParams(location.search)
  const pageHref = (nextMarkerValue: string | undefined, prev: string[]) => {
    const params = new URLSearchParams({ ...filters as Record<string, string>, limit })
    if (nextMarkerValue !== undefined) params.set('marker', nextMarkerValue)
    for (const p of prev) params.append('prev', p)
    return `${BASE}scopes?${params.toString()}`
  }
  const pager = h('nav', { class: 'pager', 'aria-label': 'Pages' },
    previous.length > 0 || marker !== undefined
      ? link(pageHref(previous.length > 0 && previous[previous.length - 1] !== '' ? previous[previous.length - 1] : undefined, previous.slice(0, -1)), '← Previous page')
      : h('span', { class: 'muted' }, 'First page'),
    page.next !== undefined ? link(pageHref(page.next, [...previous, marker ?? '']), 'Next page →') : h('span', { class: 'muted' }, 'Last page'))
  void here

  show('Scopes', form,
    h('p', { class: 'muted', 'aria-live': 'polite' }, page.results.length === 0 ? 'No scope matches these filters.' : `${page.results.length} scopes on this page. Arrow keys move between rows; Enter opens one.`),
    bulkActions(filters),
    h('div', { class: 'scroll' }, table), pager)
}

function rowKeys (event: Event): void {
  const key = (event as KeyboardEvent).key
  const row = (event.target as Element).closest('tr')
  if (row === null) return
  let target: Element | null = null
  if (key === 'ArrowDown' || key === 'j') target = row.nextElementSibling
  else if (key === 'ArrowUp' || key === 'k') target = row.previousElementSibling
  else if (key === 'Home') target = row.parentElement?.firstElementChild ?? null
  else if (key === 'End') target = row.parentElement?.lastElementChild ?? null
  else if (key === 'Enter' && event.target === row) { navigate((row as HTMLElement).dataset.href ?? BASE); return }
  else return
  event.preventDefault()
  if (target instanceof HTMLElement) target.focus()
}

/** The body filters of PUT and POST /v2/scope/activation, from GET's. */
function bodyFilters (filters: Query, withLag: boolean): Record<string, unknown> {
  const body: Record<string, unknown> = {}
  for (const name of TEXT_FILTERS) if (filters[name] !== undefined) body[name] = filters[name]
  if (withLag) {
    for (const name of LAG_FILTERS) if (filters[name] !== undefined) body[name] = filters[name]
    if (filters.stuck !== undefined) body.stuck = filters.stuck === 'true' || filters.stuck === '1'
  }
  return body
}

function describeFilters (filters: Query): string {
  const parts = Object.entries(filters).map(([k, v]) => `${k}=${v}`)
  return parts.length === 0 ? 'every scope' : parts.join(', ')
}

// The scope ids ticked on this page; a reset of them resets every row of each id.
const selected = new Set<string>()
let onSelection: () => void = () => {}

function bulkActions (filters: Query): HTMLElement {
  // PUT filters by id, key, fetcher and collector only, and resets inactive
  // scopes too: a table filtered on more cannot be reset as it stands.
  const resettable = filters.active === undefined && filters.stuck === undefined && filters.rated_before === undefined && filters.rated_after === undefined
  const activation = (active: boolean) => async () => {
    const body = { active, ...bodyFilters(filters, true) }
    if (Object.keys(body).length === 1) Object.assign(body, { all_scopes: true })
    await previewAndRun({
      title: `${active ? 'Activate' : 'Deactivate'} ${describeFilters(filters)}`,
      preview: async () => {
        const { body: dry } = await api<{ scopes_total: number, scopes_flipped: number }>('POST', '/v2/scope/activation', { query: { dry_run: 'true' }, body })
        return [`${dry.scopes_total} scopes match; ${dry.scopes_flipped} would switch to ${active ? 'active' : 'inactive'}.`]
      },
      run: async (reason) => {
        const { body: done } = await api<{ scopes_flipped: number }>('POST', '/v2/scope/activation', { body: { ...body, reason }, headers: { 'idempotency-key': idempotencyKey() } })
        return `${done.scopes_flipped} scopes switched.`
      },
      after: () => navigate(location.pathname + location.search, true),
    })
  }
  const resetSelected = h('button', { type: 'submit', disabled: true }, 'Preview reset of the selected…')
  onSelection = () => { resetSelected.disabled = selected.size === 0 }
  const resetForm = h('form', { class: 'inline', 'aria-label': 'Reset scopes', onsubmit: (event: Event) => {
    event.preventDefault()
    const to = (resetForm.elements.namedItem('reset-to') as HTMLInputElement).value.trim()
    const ofSelection = (event as SubmitEvent).submitter === resetSelected
    const body: Record<string, unknown> = ofSelection ? { scope_id: [...selected] } : bodyFilters(filters, false)
    body.last_processed_timestamp = to
    if (body.scope_id === undefined) body.all_scopes = true
    void previewAndRun({
      title: ofSelection ? `Reset the selected scope ids: ${[...selected].join(', ')}` : `Reset ${describeFilters(filters)}`,
      preview: async () => {
        const { body: dry } = await api<{ scopes_total: number, scopes_inactive: number, last_processed_timestamp: string, discard_from: string }>('PUT', '/v2/scope', { query: { dry_run: 'true' }, body })
        return [
          `${dry.scopes_total} scopes (${dry.scopes_inactive} of them inactive) would be reset to ${utc(dry.last_processed_timestamp)}.`,
          `Rated data from ${utc(dry.discard_from)} on would be discarded.`,
        ]
      },
      run: async (reason) => {
        const answer = await api<unknown>('PUT', '/v2/scope', { body: { ...body, reason }, headers: { 'idempotency-key': idempotencyKey() } })
        const location = answer.headers.get('location') ?? ''
        return Number(location.match(/\/resets\/(\d+)/)?.[1] ?? Number.NaN)
      },
      after: (job) => { if (typeof job === 'number' && !Number.isNaN(job)) navigate(`${BASE}resets/${job}`) },
    })
  } },
  h('label', { for: 'reset-to' }, 'Reset to (UTC)'),
  h('input', { id: 'reset-to', name: 'reset-to', required: true, placeholder: '2026-12-01T00:00:00Z', size: 22 }),
  h('button', { type: 'submit', disabled: !resettable }, 'Preview reset of the filtered…'),
  resetSelected,
  resettable ? '' : h('span', { class: 'help' }, 'A reset filters by scope_id, scope_key, fetcher and collector only.'))
  return h('section', { class: 'actions', 'aria-label': 'Actions on the filtered scopes' },
    h('button', { type: 'button', onclick: () => { void activation(true)() } }, 'Activate filtered…'),
    h('button', { type: 'button', onclick: () => { void activation(false)() } }, 'Deactivate filtered…'),
    resetForm)
}

// ---------------------------------------------------------------- confirmation

/**
 * Every action: its dry run first, then the operator confirms with an
 * optional reason (kept in the audit history), then the real request.
 */
async function previewAndRun<R> ({ title, preview, run, after }: {
  title: string, preview: () => Promise<Array<string | Node>>, run: (reason: string | undefined) => Promise<R>, after: (result: R) => void
}): Promise<void> {
  const body = h('div', { class: 'preview', 'aria-live': 'polite' }, h('p', {}, 'Asking the server what this would do…'))
  const reason = h('input', { id: 'confirm-reason', name: 'reason', maxlength: 1000, size: 40 })
  const confirm = h('button', { type: 'submit', class: 'primary', disabled: true }, 'Confirm')
  const cancel = h('button', { type: 'button', onclick: () => dialog.close() }, 'Cancel')
  const form = h('form', { method: 'dialog', onsubmit: (event: Event) => {
    event.preventDefault()
    confirm.disabled = true
    void (async () => {
      try {
        const result = await run(reason.value.trim() === '' ? undefined : reason.value.trim())
        dialog.close()
        after(result)
      } catch (error) {
        body.replaceChildren(errorBox(error), ...(await conflictDetails(error)))
      }
    })()
  } },
  h('h2', { id: 'confirm-title' }, title), body,
  h('div', { class: 'field' }, h('label', { for: 'confirm-reason' }, 'Reason (optional, kept in the history)'), reason),
  h('div', { class: 'buttons' }, confirm, cancel))
  dialog.replaceChildren(form)
  dialog.showModal()
  try {
    body.replaceChildren(...(await preview()).map((line) => typeof line === 'string' ? h('p', {}, line) : line))
    confirm.disabled = false
    confirm.focus()
  } catch (error) {
    body.replaceChildren(errorBox(error), ...(await conflictDetails(error)))
  }
}

// A 412 says only that the row changed: show what it is now.
let conflictScope: Query | undefined
async function conflictDetails (error: unknown): Promise<Node[]> {
  if (!(error instanceof ApiError) || error.status !== 412 || conflictScope === undefined) return []
  const now = (await list<Scope>('/v2/scope', conflictScope)).results[0]
  return [h('p', { class: 'error' }, 'Changed by someone else. Its values now:'), now === undefined ? h('p', {}, 'It no longer exists.') : fieldList(now)]
}

// ---------------------------------------------------------------- one scope

function fieldList (scope: Scope): HTMLElement {
  const rows: Array<[string, string]> = [
    ['scope_id', scope.scope_id], ['scope_key', scope.scope_key], ['fetcher', scope.fetcher], ['collector', scope.collector],
    ['active', String(scope.active)], ['last_processed_timestamp', utc(scope.last_processed_timestamp)],
    ['state (deprecated alias)', utc(scope.state)], ['scope_activation_toggle_date', utc(scope.scope_activation_toggle_date)],
  ]
  return h('dl', { class: 'fields' }, ...rows.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]))
}

async function oneScope (query: URLSearchParams): Promise<void> {
  const identity: Query = {}
  for (const name of TEXT_FILTERS) identity[name] = query.get(name) ?? undefined
  const answer = await api<{ results: Scope[] }>('GET', '/v2/scope', { query: identity, allow: [404] })
  const scope = answer.status === 404 ? undefined : answer.body.results[0]
  if (scope === undefined) { show('Scope not found', h('p', {}, `No scope ${identity.scope_id ?? ''}.`)); return }
  const etag = answer.headers.get('etag') ?? undefined
  // PATCH names the scope by its id alone; the other fields may be what changed.
  conflictScope = { scope_id: scope.scope_id }
  const [events, lag] = await Promise.all([list<ScopeEvent>('/v2/scope/events', { scope_id: scope.scope_id, limit: '100' }), lagSettings()])

  const patch = (change: Record<string, unknown>, what: string) => previewAndRun({
    title: `${what}: ${scope.scope_id}`,
    preview: async () => {
      const { body: dry } = await api<Scope>('PATCH', '/v2/scope', { query: { dry_run: 'true' }, body: { scope_id: scope.scope_id, ...change }, headers: etag === undefined ? {} : { 'if-match': etag } })
      return [h('p', {}, 'The scope would be:'), fieldList(dry)]
    },
    run: async (reason) => await api<Scope>('PATCH', '/v2/scope', {
      body: { scope_id: scope.scope_id, ...change, reason },
      headers: { 'idempotency-key': idempotencyKey(), ...(etag === undefined ? {} : { 'if-match': etag }) },
    }),
    after: ({ body }) => navigate(`${BASE}scope?${new URLSearchParams({ scope_id: body.scope_id, scope_key: body.scope_key, fetcher: body.fetcher, collector: body.collector }).toString()}`, true),
  })
  const edit = h('form', { class: 'filters', 'aria-label': 'Change fields', onsubmit: (event: Event) => {
    event.preventDefault()
    const change: Record<string, string> = {}
    for (const name of ['scope_key', 'fetcher', 'collector'] as const) {
      const value = (edit.elements.namedItem(name) as HTMLInputElement).value.trim()
      if (value !== scope[name]) change[name] = value
    }
    if (Object.keys(change).length > 0) void patch(change, 'Change')
  } },
  textField('scope_key', 'scope_key', scope.scope_key), textField('fetcher', 'fetcher', scope.fetcher), textField('collector', 'collector', scope.collector),
  h('div', { class: 'field buttons' }, h('button', { type: 'submit' }, 'Preview change…')))

  show(`Scope ${scope.scope_id}`,
    fieldList(scope),
    h('p', { class: 'muted' }, `Lag: ${duration(lagSeconds(scope, lag.period, Date.now()))}. ETag: `, h('code', { id: 'etag' }, etag ?? '(none: the id names several rows)')),
    h('section', { class: 'actions', 'aria-label': 'Actions' },
      h('button', { type: 'button', class: 'primary', onclick: () => { void patch({ active: !scope.active }, scope.active ? 'Deactivate' : 'Activate') } }, scope.active ? 'Deactivate…' : 'Activate…'),
      link(scopesHref({ scope_id: scope.scope_id }), 'Reset it from the scopes list')),
    h('h2', {}, 'Change fetcher, collector or scope_key'), edit,
    h('h2', {}, 'History'), eventTable(events.results))
}

function describeDetails (details: unknown): string {
  if (details === null || typeof details !== 'object') return ''
  const d = details as Record<string, unknown>
  const pairs = (d.changes ?? (d.active === undefined ? undefined : { active: d.active })) as Record<string, { old: unknown, new: unknown }> | undefined
  if (pairs !== undefined) return Object.entries(pairs).map(([k, v]) => `${k}: ${String(v.old)} → ${String(v.new)}`).join('; ')
  if (typeof d.old_last_processed_timestamp === 'string') return `${utc(d.old_last_processed_timestamp)} → ${utc(d.last_processed_timestamp as string)}`
  return JSON.stringify(details)
}

function eventTable (events: ScopeEvent[]): HTMLElement {
  if (events.length === 0) return h('p', { class: 'muted' }, 'No change recorded through scopekeeper.')
  return h('div', { class: 'scroll' }, h('table', { 'aria-label': 'History, newest first' },
    h('thead', {}, h('tr', {}, ...['When', 'What', 'Who', 'Why', 'Changed', 'Request'].map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', {}, ...events.map((e) => h('tr', {},
      h('td', {}, utc(e.created_at)),
      h('td', {}, e.kind, e.job_id === null ? '' : h('span', {}, ' ', link(`${BASE}resets/${e.job_id}`, `#${e.job_id}`))),
      h('td', {}, e.user_name ?? e.user_id ?? e.auth),
      h('td', {}, e.reason ?? ''),
      h('td', {}, describeDetails(e.details)),
      h('td', {}, h('code', {}, e.request_id ?? '')))))))
}

// ---------------------------------------------------------------- create

function createForm (): void {
  const form = h('form', { class: 'filters', 'aria-label': 'New scope', onsubmit: (event: Event) => {
    event.preventDefault()
    const body: Record<string, unknown> = {}
    for (const name of ['scope_id', 'scope_key', 'fetcher', 'collector', 'last_processed_timestamp']) {
      const value = (form.elements.namedItem(name) as HTMLInputElement).value.trim()
      if (value !== '') body[name] = value
    }
    body.active = (form.elements.namedItem('active') as HTMLInputElement).checked
    void previewAndRun({
      title: `Create ${String(body.scope_id)}`,
      preview: async () => {
        const { body: dry } = await api<Scope>('POST', '/v2/scope', { query: { dry_run: 'true' }, body })
        return [h('p', {}, 'The new scope would be:'), fieldList(dry)]
      },
      run: async (reason) => (await api<Scope>('POST', '/v2/scope', { body: { ...body, reason }, headers: { 'idempotency-key': idempotencyKey() } })).body,
      after: (scope) => navigate(`${BASE}scope?${new URLSearchParams({ scope_id: scope.scope_id, scope_key: scope.scope_key, fetcher: scope.fetcher, collector: scope.collector }).toString()}`),
    })
  } },
  textField('scope_id', 'scope_id (project id)', undefined, { required: 'required' }),
  textField('scope_key', 'scope_key', undefined, { placeholder: 'server default' }),
  textField('fetcher', 'fetcher', undefined, { placeholder: 'server default' }),
  textField('collector', 'collector', undefined, { placeholder: 'server default' }),
  textField('last_processed_timestamp', 'last_processed_timestamp (UTC)', undefined, { placeholder: 'start of this month' }),
  h('div', { class: 'field check' }, h('input', { type: 'checkbox', id: 'f-active', name: 'active' }), h('label', { for: 'f-active' }, 'active (a trial project starts inactive: never rated)')),
  h('div', { class: 'field buttons' }, h('button', { type: 'submit', class: 'primary' }, 'Preview…')))
  show('New scope', h('p', { class: 'muted' }, 'Register a project before it has any resources.'), form)
}

// ---------------------------------------------------------------- resets

async function resetList (query: URLSearchParams): Promise<void> {
  const status = query.get('status') ?? undefined
  const jobs = await list<ResetJob>('/v2/scope/resets', { status, limit: '100' })
  show(status === undefined ? 'Reset jobs' : `Reset jobs: ${status}`, jobTable(jobs.results, 'No reset job.'))
}

let polling: number | undefined
async function resetView (id: number): Promise<void> {
  window.clearTimeout(polling)
  const { body: job } = await api<ResetJob>('GET', `/v2/scope/resets/${id}`)
  const finished = ['done', 'failed', 'cancelled'].includes(job.status)
  const progress = h('progress', { max: Math.max(job.scopes_total, 1), value: job.scopes_applied, 'aria-labelledby': 'progress-label' })
  const cancel = h('button', { type: 'button', onclick: () => { void (async () => {
    cancel.disabled = true
    try {
      await api<ResetJob>('DELETE', `/v2/scope/resets/${id}`, { allow: [202] })
      await resetView(id)
    } catch (error) { main.append(errorBox(error)) }
  })() } }, 'Cancel this reset')
  show(`Reset #${job.id}`,
    h('p', {}, 'Status: ', h('strong', { class: `status ${job.status}`, id: 'job-status', 'aria-live': 'polite' }, job.status),
      job.cancel_requested_at === null ? '' : ` (cancel asked at ${utc(job.cancel_requested_at)})`),
    h('p', { id: 'progress-label' }, `${job.scopes_applied} of ${job.scopes_total} scopes reset to ${utc(job.last_processed_timestamp)}${job.scopes_waiting > 0 ? `; ${job.scopes_waiting} waiting for their processing lock` : ''}.`),
    progress,
    h('dl', { class: 'fields' },
      h('dt', {}, 'requested'), h('dd', {}, utc(job.created_at)),
      h('dt', {}, 'by'), h('dd', {}, job.created_by?.user_name ?? job.created_by?.auth ?? ''),
      h('dt', {}, 'reason'), h('dd', {}, job.reason ?? ''),
      h('dt', {}, 'attempts'), h('dd', {}, String(job.attempts)),
      h('dt', {}, 'finished'), h('dd', {}, utc(job.finished_at)),
      h('dt', {}, 'last error'), h('dd', {}, job.last_error ?? '')),
    finished || job.cancel_requested_at !== null ? h('span', {}) : cancel)
  // Live until it ends; a page left behind stops polling.
  if (!finished) {
    polling = window.setTimeout(() => {
      if (location.pathname === `${BASE}resets/${id}`) void resetView(id).catch((error: unknown) => main.append(errorBox(error)))
    }, 1000)
  }
}

// ---------------------------------------------------------------- login

const WHO_KEY = 'scopekeeper.who'

function loginForm (query: URLSearchParams): void {
  const failure = h('div', { 'aria-live': 'assertive' })
  const form = h('form', { class: 'filters login', 'aria-label': 'Log in with Keystone', onsubmit: (event: Event) => {
    event.preventDefault()
    const value = (name: string) => (form.elements.namedItem(name) as HTMLInputElement).value.trim()
    void (async () => {
      try {
        const { body } = await api<{ token: string, user_name: string, project_name: string, roles: string[] }>('POST', '/console/api/login', {
          body: { username: value('username'), password: (form.elements.namedItem('password') as HTMLInputElement).value, project: value('project'), user_domain: value('user_domain'), project_domain: value('project_domain') },
        })
        sessionStorage.setItem(TOKEN_KEY, body.token)
        sessionStorage.setItem(WHO_KEY, `${body.user_name} in ${body.project_name} (${body.roles.join(', ')})`)
        whoAmI()
        navigate(query.get('next') ?? BASE)
      } catch (error) {
        failure.replaceChildren(errorBox(error))
      }
    })()
  } },
  textField('username', 'User name', undefined, { required: 'required', autocomplete: 'username' }),
  textField('password', 'Password', undefined, { type: 'password', required: 'required', autocomplete: 'current-password' }),
  textField('project', 'Project', undefined, { required: 'required' }),
  textField('user_domain', 'User domain', 'Default', { required: 'required' }),
  textField('project_domain', 'Project domain', 'Default', { required: 'required' }),
  h('div', { class: 'field buttons' }, h('button', { type: 'submit', class: 'primary' }, 'Log in')))
  show('Log in', h('p', {}, 'This scopekeeper checks Keystone tokens. The server asks Keystone for yours; this tab keeps it (session storage) until you log out or close it.'), form, failure)
}

function whoAmI (): void {
  const who = document.getElementById('who')
  if (who === null) return
  who.replaceChildren(sessionStorage.getItem(TOKEN_KEY) === null
    ? ''
    : h('span', {}, h('span', { id: 'who-name' }, sessionStorage.getItem(WHO_KEY) ?? ''), ' ',
      h('button', { type: 'button', onclick: () => { sessionStorage.removeItem(TOKEN_KEY); sessionStorage.removeItem(WHO_KEY); whoAmI(); navigate(`${BASE}login`) } }, 'Log out')))
}

whoAmI()
window.addEventListener('popstate', whoAmI)
void render().then(whoAmI)
