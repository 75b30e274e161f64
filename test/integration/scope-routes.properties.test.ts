import assert from 'node:assert/strict'
import { describe, it, type TestContext } from 'node:test'
import fc from 'fast-check'
import { buildTestApp, createScopes, dumpJobs, dumpStates, type TestApp } from '../helpers/build-test-app.ts'
import { testEngines, type TestEngine } from '../helpers/test-databases.ts'

// STYLE.md §4: a fast-check property per route. Whatever the query or body,
// the status is below 500, an error is JSON with a string `message`, and a
// 4xx leaves the states and the reset jobs as they were.

type Method = 'GET' | 'PUT' | 'PATCH' | 'POST'

/** One generated request: the query string (GET) or the raw body and its content type. */
interface GeneratedRequest {
  url: string
  payload?: string
  contentType?: string
}

/** Runs per property: enough to hit every branch, small enough for the file to stay fast. */
const NUM_RUNS = 250

const SINGLE_IDS = ['alpha', 'beta', 'legacy'] as const
/** `twin` names two rows (different collectors); `legacy` has NULL key, fetcher and collector. */
const KNOWN_IDS = [...SINGLE_IDS, 'twin'] as const

/**
 * An app seeded with: two scopes created through POST (one inactive), a
 * scope_id present in two rows with different collectors, and a row as
 * CloudKitty writes it without scope_key/fetcher/collector (NULLs).
 */
async function seededApp (t: TestContext, engine: TestEngine): Promise<TestApp> {
  const testApp = await buildTestApp(t, { engine })
  await createScopes(testApp.app, [
    { scope_id: 'alpha' },
    { scope_id: 'beta', active: false, fetcher: 'gnocchi', collector: 'prometheus', last_processed_timestamp: '2019-07-16T08:55:01Z' },
    { scope_id: 'twin', collector: 'gnocchi' },
  ])
  await testApp.database.db.insertInto('cloudkitty_storage_states').values([
    {
      identifier: 'twin', scope_key: 'project_id', fetcher: 'keystone', collector: 'prometheus',
      last_processed_timestamp: '2019-01-01 00:00:00.000000', scope_activation_toggle_date: '2019-01-01 00:00:00.000000', active: 1,
    },
    {
      identifier: 'legacy', scope_key: null, fetcher: null, collector: null,
      last_processed_timestamp: '2019-01-01 00:00:00.000000', scope_activation_toggle_date: '2019-01-01 00:00:00.000000', active: 1,
    },
  ]).execute()
  return testApp
}

// ---------------------------------------------------------------- values

const ODD_STRINGS = [
  '', ' ', ',', ',,', 'a,,b', '\u0000', 'a\u0000b', '😀', '𝕏𝕐', '\u{10FFFF}', '\ud800', '\udfff', '\uffff', 'ß', 'עברית',
  'x'.repeat(41), 'x'.repeat(257), '%', '%00', '+', '&', '=', '#', '?', '/', '\\', '"', "'", '\n', '\r\n', '\t',
  'null', 'undefined', 'NaN', 'Infinity', '__proto__', 'constructor', '[object Object]',
]
const HUGE_NUMBERS = [
  '0', '-0', '1', '-1', '2147483647', '2147483648', '-2147483649', '9007199254740993', '99999999999999999999999999999',
  '1e400', '-1e400', '1e-400', '1.5', '0x10', '0b1', ' 1', '1 ', '+1', '--1', 'Infinity', '-Infinity', 'NaN',
]
const TIMESTAMPS = [
  '2019-07-16T08:55:01Z', '2019-07-16T08:55:01+02:00', '2019-07-16 08:55:01', '20190716T085501Z', '2019-07-16',
  '2019-07-16T08:55:01.123456Z', '2019-02-30T00:00:00Z', '0999-12-31T23:59:59Z', '9999-12-31T23:59:59-01:00',
  '2019-07-16T24:00:00Z', '2019-07-16T08:55:01+24:00', '2019-13-01', 'yesterday', '1563267301', '',
]
const ACTIVE_FORMS = ['true', 'false', 'TRUE', 'False', '1', '0', 'yes', 'no', 'on', '2', '-1', 'truee', ' true']
const FIELD_VALUES = ['project_id', 'domain_id', 'keystone', 'gnocchi', 'prometheus', 'source']

/** Any unicode text, including 4-byte characters, NUL and lone surrogates. */
const anyText = fc.oneof(
  { weight: 3, arbitrary: fc.string({ unit: 'binary', maxLength: 30 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', minLength: 200, maxLength: 400 }) },
  { weight: 3, arbitrary: fc.constantFrom(...ODD_STRINGS) },
)

/** Values that look like what a query parameter expects, plus the odd ones. */
const queryValue = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...KNOWN_IDS, ...FIELD_VALUES, ...ACTIVE_FORMS) },
  { weight: 3, arbitrary: fc.constantFrom(...HUGE_NUMBERS) },
  { weight: 1, arbitrary: fc.bigInt({ min: -(10n ** 40n), max: 10n ** 40n }).map(String) },
  { weight: 1, arbitrary: fc.double().map(String) },
  { weight: 3, arbitrary: anyText },
  { weight: 2, arbitrary: fc.array(fc.constantFrom(...KNOWN_IDS, ...FIELD_VALUES, '', '1', '0'), { minLength: 1, maxLength: 4 }).map((a) => a.join(',')) },
)

/** Percent-encodes the UTF-8 bytes of `text` (a lone surrogate becomes U+FFFD), keeping unreserved characters and commas. */
function percentEncode (text: string): string {
  let out = ''
  for (const byte of Buffer.from(text, 'utf8')) {
    const c = String.fromCharCode(byte)
    out += /[A-Za-z0-9\-._~,]/.test(c) ? c : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`
  }
  return out
}

/** Raw query-string fragments that no well-behaved client sends: truncated escapes, invalid UTF-8, separators. */
const ODD_ENCODINGS = [
  '%', '%2', '%G0', '%%', '%FF', '%C3', '%C0%AF', '%ED%A0%80', '%F4%90%80%80', '%F0%9F%98', '%00', '%2C', '%2c%2C',
  '+', '++', ';', '=', '==', '[]', '[0]', '%5B%5D', '%26', '%3D',
]

const encodedQueryValue = fc.oneof(
  { weight: 5, arbitrary: queryValue.map(percentEncode) },
  { weight: 1, arbitrary: fc.constantFrom(...ODD_ENCODINGS) },
  { weight: 1, arbitrary: fc.tuple(queryValue.map(percentEncode), fc.constantFrom(...ODD_ENCODINGS)).map(([a, b]) => a + b) },
)

const QUERY_PARAMS = ['scope_id', 'scope_key', 'fetcher', 'collector', 'active', 'limit', 'offset'] as const
const UNKNOWN_KEYS = [
  'foo', 'Scope_id', 'SCOPE_ID', 'scope-id', 'scope_id[]', 'scope_id[0]', 'scope_id.x', 'all_scopes', 'state',
  'last_processed_timestamp', 'page', '__proto__', 'constructor', 'hasOwnProperty', 'toString', '',
]
const queryKey = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...QUERY_PARAMS).map((k) => k as string) },
  { weight: 2, arbitrary: fc.constantFrom(...UNKNOWN_KEYS) },
  { weight: 1, arbitrary: anyText },
)

/** `key=value`, `key=` or a bare `key`. */
const queryPair = fc.tuple(queryKey.map(percentEncode), fc.option(encodedQueryValue, { nil: undefined, freq: 8 }))
  .map(([k, v]) => v === undefined ? k : `${k}=${v}`)

/** Arbitrary query strings: random, repeated and real keys, joined with `&` (sometimes doubled). */
const arbitraryQuery = fc.tuple(fc.array(queryPair, { maxLength: 8 }), fc.constantFrom('&', '&', '&', '&&'))
  .map(([pairs, sep]) => pairs.join(sep))

/** Queries a client following the contract would send, so that 200s happen too. */
const validQuery = fc.record({
  scope_id: fc.array(fc.constantFrom(...KNOWN_IDS, 'nope'), { maxLength: 3 }),
  scope_key: fc.array(fc.constantFrom('project_id', 'domain_id'), { maxLength: 2 }),
  fetcher: fc.array(fc.constantFrom('keystone', 'gnocchi'), { maxLength: 2 }),
  collector: fc.array(fc.constantFrom('gnocchi', 'prometheus'), { maxLength: 2 }),
  active: fc.array(fc.constantFrom('1', '0', 'true', 'False'), { maxLength: 2 }),
  limit: fc.option(fc.integer({ min: 1, max: 2_147_483_647 }), { nil: undefined }),
  offset: fc.option(fc.integer({ min: 0, max: 5 }), { nil: undefined }),
  commaJoined: fc.boolean(),
}).map(({ commaJoined, limit, offset, ...filters }) => {
  const pairs: string[] = []
  for (const [key, values] of Object.entries(filters)) {
    if (values.length === 0) continue
    if (commaJoined) pairs.push(`${key}=${encodeURIComponent(values.join(','))}`)
    else for (const v of values) pairs.push(`${key}=${encodeURIComponent(v)}`)
  }
  if (limit !== undefined) pairs.push(`limit=${limit}`)
  if (offset !== undefined) pairs.push(`offset=${offset}`)
  return pairs.join('&')
})

const getRequest: fc.Arbitrary<GeneratedRequest> = fc.oneof(
  { weight: 3, arbitrary: arbitraryQuery },
  { weight: 1, arbitrary: validQuery },
).map((query) => ({ url: query === '' ? '/v2/scope' : `/v2/scope?${query}` }))

// ---------------------------------------------------------------- bodies

const BODY_FIELDS = ['scope_id', 'scope_key', 'fetcher', 'collector', 'active', 'all_scopes', 'last_processed_timestamp', 'state'] as const

/** Any JSON value a field might receive: the right type, the wrong one, or an odd one. */
const fieldValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom<unknown>(...KNOWN_IDS, ...FIELD_VALUES, ...TIMESTAMPS, ...ACTIVE_FORMS, true, false, 0, 1, -1, 2, 0.5, 1e308, -0, null) },
  { weight: 2, arbitrary: anyText },
  { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 2 }) },
  { weight: 1, arbitrary: fc.array(fc.oneof(fc.constantFrom(...KNOWN_IDS, '', ','), anyText, fc.integer()), { maxLength: 4 }) },
  { weight: 1, arbitrary: fc.constantFrom<unknown>([], {}, [[]], { scope_id: 'alpha' }, ['alpha', 'beta'], 'alpha,beta', 'alpha,,twin', Number.MAX_SAFE_INTEGER + 2) },
)

/** Objects with the real field names (any subset), wrong or right types, and sometimes unknown fields. */
const fieldObject = fc.tuple(
  fc.record(Object.fromEntries(BODY_FIELDS.map((f) => [f, fieldValue])) as Record<(typeof BODY_FIELDS)[number], fc.Arbitrary<unknown>>, { requiredKeys: [] }),
  fc.option(fc.dictionary(fc.oneof(fc.constantFrom('foo', 'Scope_id', 'id', 'identifier', 'limit', 'constructor'), anyText), fieldValue, { maxKeys: 2 }), { nil: undefined, freq: 3 }),
).map(([known, extra]) => ({ ...known, ...extra }))

/** Texts that are not JSON, or JSON that parsers find hostile. */
const invalidJsonText = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.json().filter((s) => s.length > 1).chain((s) => fc.integer({ min: 1, max: s.length - 1 }).map((n) => s.slice(0, n))),
  fc.constantFrom(
    '', ' ', '{', '}', '{"scope_id":}', "{'scope_id':'alpha'}", '{"scope_id":"alpha",}', '{scope_id:"alpha"}', 'NaN', '[1,]',
    '\u0000', '\ufeff{"scope_id":"alpha"}', '{"__proto__":{"active":false}}', '{"constructor":{"prototype":{"x":1}}}',
    '{"scope_id":"alpha","scope_id":"twin"}', '{"scope_id":"\\ud800"}', '{"scope_id":"\\u0000"}', '{"active":1e999}',
    '['.repeat(100_000), '{"a":'.repeat(20_000), '{"scope_id":"' + 'x'.repeat(1_100_000) + '"}',
  ),
)

const CONTENT_TYPES = [
  'application/json; charset=utf-8', 'APPLICATION/JSON', 'application/json; charset=utf-16', 'application/json;charset=latin1',
  'text/plain', 'text/plain; charset=utf-8', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x',
  'application/octet-stream', 'application/json-patch+json', 'application/merge-patch+json', 'text/json', '', 'garbage;;;', '*/*',
]
const contentType = fc.oneof(
  { weight: 6, arbitrary: fc.constant<string | undefined>('application/json') },
  { weight: 2, arbitrary: fc.constantFrom<string | undefined>(...CONTENT_TYPES) },
  { weight: 1, arbitrary: fc.constant<string | undefined>(undefined) },
)

/** A fresh scope id for valid POSTs (and sometimes a known one: a 409). */
const newScopeId = fc.oneof(
  { weight: 4, arbitrary: fc.stringMatching(/^[a-z0-9]{1,16}$/).map((s) => `new-${s}`) },
  { weight: 1, arbitrary: fc.constantFrom(...KNOWN_IDS) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 20 }) },
)
const shortField = fc.constantFrom(...FIELD_VALUES)
const activeValue = fc.constantFrom<unknown>(true, false, 0, 1, 'true', 'FALSE', '1', '0')
const goodTimestamp = fc.constantFrom(...TIMESTAMPS.slice(0, 6))

/** Bodies a client following the contract would send, per route. */
const validBodies: Record<Exclude<Method, 'GET'>, fc.Arbitrary<unknown>> = {
  PUT: fc.record({
    target: fc.oneof(
      fc.constant<Record<string, unknown>>({ all_scopes: true }),
      fc.constantFrom(...KNOWN_IDS).map((id) => ({ scope_id: id })),
      fc.array(fc.constantFrom(...KNOWN_IDS), { minLength: 1, maxLength: 3 }).map((ids) => ({ scope_id: ids })),
      fc.array(fc.constantFrom(...KNOWN_IDS), { minLength: 1, maxLength: 3 }).map((ids) => ({ scope_id: ids.join(',') })),
    ),
    // Narrowing filters, rarely and mostly with values the seeded rows have, so that most resets match.
    narrowing: fc.option(fc.oneof(
      fc.constant({ scope_key: 'project_id' }),
      fc.constant({ fetcher: 'keystone' }),
      fc.constant({ collector: 'gnocchi,prometheus' }),
      fc.record({ scope_key: shortField, fetcher: shortField, collector: shortField }, { requiredKeys: [] }),
    ), { nil: {}, freq: 2 }),
    stamp: fc.tuple(fc.constantFrom('last_processed_timestamp', 'state'), goodTimestamp),
  }).map(({ target, narrowing, stamp }) => ({ ...target, ...narrowing, [stamp[0]]: stamp[1] })),
  PATCH: fc.record({
    scope_id: fc.constantFrom(...SINGLE_IDS),
    scope_key: shortField,
    fetcher: shortField,
    collector: shortField,
    active: activeValue,
  }, { requiredKeys: ['scope_id'] }),
  POST: fc.record({
    scope_id: newScopeId,
    scope_key: shortField,
    fetcher: shortField,
    collector: shortField,
    active: activeValue,
    last_processed_timestamp: goodTimestamp,
  }, { requiredKeys: ['scope_id'] }),
}

function bodyRequest (method: Exclude<Method, 'GET'>): fc.Arbitrary<GeneratedRequest> {
  const json = (value: fc.Arbitrary<unknown>) => fc.tuple(value, contentType)
    .map(([v, ct]) => ({ url: '/v2/scope', payload: JSON.stringify(v), contentType: ct }))
  return fc.oneof(
    { weight: 3, arbitrary: json(validBodies[method]) },
    { weight: 4, arbitrary: json(fieldObject) },
    { weight: 2, arbitrary: json(fc.jsonValue()) },
    { weight: 1, arbitrary: fc.json().map((text) => ({ url: '/v2/scope', payload: text, contentType: 'application/json' })) },
    { weight: 2, arbitrary: fc.tuple(invalidJsonText, contentType).map(([text, ct]) => ({ url: '/v2/scope', payload: text, contentType: ct })) },
    { weight: 1, arbitrary: fc.constant<GeneratedRequest>({ url: '/v2/scope' }) },
  )
}

// ---------------------------------------------------------------- the property

function describeRequest (method: Method, request: GeneratedRequest): string {
  const payload = request.payload === undefined ? '' : ` ${JSON.stringify(request.payload.slice(0, 300))}`
  return `${method} ${request.url.slice(0, 300)} [${request.contentType ?? 'no content-type'}]${payload}`
}

/**
 * Sends `request` and checks the invariants; returns the status. GET never
 * writes, so for it the tables must be unchanged whatever the status.
 */
async function sendAndCheck ({ app, database }: TestApp, method: Method, request: GeneratedRequest): Promise<number> {
  const before = { states: await dumpStates(database), jobs: await dumpJobs(database) }
  const res = await app.inject({
    method,
    url: request.url,
    ...(request.payload === undefined ? {} : { payload: request.payload }),
    headers: request.contentType === undefined ? {} : { 'content-type': request.contentType },
  })
  const what = `${describeRequest(method, request)} → ${res.statusCode} ${res.body.slice(0, 300)}`
  assert.ok(res.statusCode < 500, `5xx for ${what}`)
  assert.match(String(res.headers['x-openstack-request-id']), /^req-[0-9a-f-]{36}$/, `no request id for ${what}`)
  if (res.statusCode >= 400) {
    let body: unknown
    assert.doesNotThrow(() => { body = JSON.parse(res.body) }, `error body is not JSON for ${what}`)
    assert.equal(typeof (body as { message?: unknown } | null)?.message, 'string', `error body has no string message for ${what}`)
  }
  if ((res.statusCode >= 400 && res.statusCode < 500) || method === 'GET') {
    const after = { states: await dumpStates(database), jobs: await dumpJobs(database) }
    assert.deepEqual(after, before, `tables changed for ${what}`)
  }
  return res.statusCode
}

async function checkRoute (t: TestContext, engine: TestEngine, method: Method, requests: fc.Arbitrary<GeneratedRequest>): Promise<void> {
  const testApp = await seededApp(t, engine)
  const statuses = new Map<number, number>()
  await fc.assert(
    fc.asyncProperty(requests, async (request) => {
      const status = await sendAndCheck(testApp, method, request)
      statuses.set(status, (statuses.get(status) ?? 0) + 1)
    }),
    { numRuns: NUM_RUNS },
  )
  // The mix must reach the handlers, not only the validators.
  const seen = [...statuses.keys()]
  assert.ok(seen.some((s) => s >= 200 && s < 300), `no 2xx among ${JSON.stringify(Object.fromEntries(statuses))}`)
  assert.ok(seen.some((s) => s >= 400 && s < 500), `no 4xx among ${JSON.stringify(Object.fromEntries(statuses))}`)
}

for (const engine of testEngines()) {
  describe(`${engine}: /v2/scope under arbitrary input`, () => {
    it('GET answers below 500 with a JSON message on errors and never writes, whatever the query string', async (t) => {
      await checkRoute(t, engine, 'GET', getRequest)
    })

    it('PUT answers below 500 with a JSON message on errors and queues nothing on a 4xx, whatever the body', async (t) => {
      await checkRoute(t, engine, 'PUT', bodyRequest('PUT'))
    })

    it('PATCH answers below 500 with a JSON message on errors and changes nothing on a 4xx, whatever the body', async (t) => {
      await checkRoute(t, engine, 'PATCH', bodyRequest('PATCH'))
    })

    it('POST answers below 500 with a JSON message on errors and creates nothing on a 4xx, whatever the body', async (t) => {
      await checkRoute(t, engine, 'POST', bodyRequest('POST'))
    })
  })
}
