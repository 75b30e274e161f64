import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { FIELD_MAX_LENGTH, MAX_FILTER_VALUES, type ScopeField } from '../../src/api/v2/scope/input-limits.ts'
import { buildTestApp, call, createScopes, dumpJobs, dumpStates, type TestApp } from '../helpers/build-test-app.ts'
import { testEngines } from '../helpers/test-databases.ts'

// issue 12 §7: a field is held to one limit, with one message, on every
// route that takes it: the width of its CloudKitty column for each value
// (CONTRACT.md "Errors"), MAX_FILTER_VALUES values for a filter. Beyond
// either, a 400 naming the field and where it was sent; never a 500.

const FIELDS = Object.keys(FIELD_MAX_LENGTH) as ScopeField[]
type Location = 'query string' | 'request body'

/** One way of sending `values` of `field`: a request, and where the field travels in it. */
interface Sender {
  name: string
  location: Location
  fields: readonly ScopeField[]
  request: (field: ScopeField, values: string[]) => { method: 'GET' | 'PUT' | 'PATCH' | 'POST', url: string, body?: unknown }
}

const TS = '2019-07-16T08:55:01Z'
// Commas stay raw: encoded (%2C, as CloudKitty's client sends them) 5001
// values outgrow Node's 16 KiB request head, a 431 before any validation.
const q = (values: string[]) => values.map((v) => encodeURIComponent(v).replaceAll('%2C', ','))
let created = 0
// PUT needs a selector: scope_id when the field is another one.
const putBody = (field: ScopeField, value: unknown) => ({ ...(field === 'scope_id' ? {} : { scope_id: 'seed' }), [field]: value, state: TS })

/** Filters: the forms CloudKitty's client and others send (comma-joined, repeated, a list). */
const FILTER_SENDERS: Sender[] = [
  { name: 'GET, comma-joined', location: 'query string', fields: FIELDS, request: (f, v) => ({ method: 'GET', url: `/v2/scope?${f}=${q(v).join(',')}` }) },
  { name: 'GET, repeated', location: 'query string', fields: FIELDS, request: (f, v) => ({ method: 'GET', url: `/v2/scope?${q(v).map((x) => `${f}=${x}`).join('&')}` }) },
  { name: 'GET resets, comma-joined', location: 'query string', fields: ['scope_id'], request: (f, v) => ({ method: 'GET', url: `/v2/scope/resets?${f}=${q(v).join(',')}` }) },
  { name: 'GET resets, repeated', location: 'query string', fields: ['scope_id'], request: (f, v) => ({ method: 'GET', url: `/v2/scope/resets?${q(v).map((x) => `${f}=${x}`).join('&')}` }) },
  { name: 'PUT, comma-joined string', location: 'request body', fields: FIELDS, request: (f, v) => ({ method: 'PUT', url: '/v2/scope', body: putBody(f, v.join(',')) }) },
  { name: 'PUT, list', location: 'request body', fields: FIELDS, request: (f, v) => ({ method: 'PUT', url: '/v2/scope', body: putBody(f, v) }) },
]

/** Single values (PATCH, POST): a scope_id there is taken whole. */
const SINGLE_SENDERS: Sender[] = [
  { name: 'PATCH', location: 'request body', fields: FIELDS, request: (f, [v]) => ({ method: 'PATCH', url: '/v2/scope', body: f === 'scope_id' ? { scope_id: v } : { scope_id: 'seed', [f]: v } }) },
  { name: 'POST', location: 'request body', fields: FIELDS, request: (f, [v]) => ({ method: 'POST', url: '/v2/scope', body: f === 'scope_id' ? { scope_id: v } : { scope_id: `new-${++created}`, [f]: v } }) },
]

// Characters that fill a value: 1- to 4-byte UTF-8, astral ones (two UTF-16
// units, one character for the columns), none that a filter splits at.
const character = fc.oneof(
  fc.constantFrom('a', 'Z', '0', '-', '_', ' ', '%', '&', '+', '/', 'é', 'ß', 'ж', '中', '€', '😀', '𝕏', '\u{10FFFD}'),
  fc.integer({ min: 0x21, max: 0x10FFFF })
    .filter((c) => c !== 0x2C && (c < 0xD800 || c > 0xDFFF))
    .map((c) => String.fromCodePoint(c)),
)
const textOf = (length: number) => fc.array(character, { minLength: length, maxLength: length }).map((chars) => chars.join(''))

/** Lengths around each field's limit, and a few anywhere below it. */
const lengthFor = (field: ScopeField) => {
  const max = FIELD_MAX_LENGTH[field]
  return fc.oneof(fc.constantFrom(max - 1, max, max + 1, max + 2), fc.integer({ min: 1, max: max + 20 }))
}

async function send (testApp: TestApp, sender: Sender, field: ScopeField, values: string[]) {
  const { method, url, body } = sender.request(field, values)
  return await call(testApp.app, method, url, body)
}

function assertNamesField (res: { status: number, body: any }, field: ScopeField, location: Location, what: string): void {
  assert.equal(res.status, 400, what)
  assert.equal(typeof res.body?.message, 'string', what)
  assert.ok(res.body.message.includes(field) && res.body.message.includes(`in the ${location}`), `${what}: ${res.body.message}`)
}

for (const engine of testEngines()) {
  describe(`${engine}: input limits`, () => {
    it('holds each field to its column width on every route: at most that many characters pass, one more is a 400 naming the field and where', async (t) => {
      const testApp = await buildTestApp(t, { engine })
      await createScopes(testApp.app, [{ scope_id: 'seed' }])
      const cases = fc.constantFrom(...FIELDS).chain((field) => fc.record({
        field: fc.constant(field),
        value: lengthFor(field).chain(textOf),
        // Filters carry the value among others that fit.
        others: fc.array(textOf(3), { maxLength: 2 }),
      }))
      await fc.assert(fc.asyncProperty(cases, async ({ field, value, others }) => {
        const tooLong = [...value].length > FIELD_MAX_LENGTH[field]
        const verdicts: string[] = []
        for (const sender of [...FILTER_SENDERS, ...SINGLE_SENDERS]) {
          if (!sender.fields.includes(field)) continue
          const values = SINGLE_SENDERS.includes(sender) ? [value] : [...others, value]
          const what = `${sender.name}, ${field} of ${[...value].length} characters`
          const states = tooLong ? await dumpStates(testApp.database) : undefined
          const jobs = tooLong ? await dumpJobs(testApp.database) : undefined
          const res = await send(testApp, sender, field, values)
          assert.ok(res.status < 500, `${what}: ${res.status} ${res.text}`)
          if (tooLong) {
            assertNamesField(res, field, sender.location, what)
            assert.deepEqual(await dumpStates(testApp.database), states, `${what} changed no state`)
            assert.deepEqual(await dumpJobs(testApp.database), jobs, `${what} queued no reset`)
          } else {
            assert.notEqual(res.status, 400, `${what}: ${res.text}`)
          }
          verdicts.push(`${sender.name}: ${res.status === 400 ? 'refused' : 'accepted'}`)
        }
        assert.equal(new Set(verdicts.map((v) => v.split(': ')[1])).size, 1, verdicts.join('; '))
      }), { numRuns: 40 })
    })

    it(`holds each filter to ${MAX_FILTER_VALUES} values on every route, however they are split among parameters, items and commas`, async (t) => {
      const testApp = await buildTestApp(t, { engine })
      const cases = fc.record({
        field: fc.constantFrom(...FIELDS),
        count: fc.constantFrom(MAX_FILTER_VALUES, MAX_FILTER_VALUES + 1),
        // Where the values are cut into parameters or list items; pieces stay comma-joined.
        cuts: fc.uniqueArray(fc.integer({ min: 1, max: MAX_FILTER_VALUES - 1 }), { maxLength: 3 }),
        // Empty pieces (`a,,b`) are no values: they never count.
        empties: fc.integer({ min: 0, max: 3 }),
      })
      await fc.assert(fc.asyncProperty(cases, async ({ field, count, cuts, empties }) => {
        const values = Array.from({ length: count }, (_, i) => String(i % 10))
        const bounds = [0, ...[...cuts].sort((a, b) => a - b), count]
        const parts = bounds.slice(1).map((end, i) => values.slice(bounds[i], end).join(',') + ','.repeat(i === 0 ? empties : 0))
        const verdicts: boolean[] = []
        for (const sender of FILTER_SENDERS) {
          if (!sender.fields.includes(field)) continue
          const joined = sender.name.includes('comma-joined')
          const res = await send(testApp, sender, field, joined ? [parts.join(',')] : parts)
          const what = `${sender.name}, ${count} values of ${field} in ${joined ? 1 : parts.length} parts`
          assert.ok(res.status < 500, `${what}: ${res.status} ${res.text}`)
          if (count > MAX_FILTER_VALUES) {
            assertNamesField(res, field, sender.location, what)
            assert.match(res.body.message, new RegExp(`^Too many values for ${field} in the ${sender.location}: at most ${MAX_FILTER_VALUES}\\.$`), what)
          } else {
            assert.notEqual(res.status, 400, `${what}: ${res.text}`)
          }
          verdicts.push(res.status === 400)
        }
        assert.equal(new Set(verdicts).size, 1)
      }), { numRuns: 12 })
    })

    it('gives a field the same message for the same fault on every route, only the location differs', async (t) => {
      const testApp = await buildTestApp(t, { engine })
      for (const field of FIELDS) {
        const tooLong = 'x'.repeat(FIELD_MAX_LENGTH[field] + 1)
        const messages = new Set<string>()
        for (const sender of [...FILTER_SENDERS, ...SINGLE_SENDERS]) {
          if (!sender.fields.includes(field)) continue
          const res = await send(testApp, sender, field, [tooLong])
          assertNamesField(res, field, sender.location, `${sender.name}, ${field}`)
          messages.add(res.body.message.replace(`in the ${sender.location}`, 'in the <where>'))
        }
        assert.deepEqual([...messages], [`Invalid ${field} in the <where>: must be a non-empty string of at most ${FIELD_MAX_LENGTH[field]} characters (as a filter: such strings, comma-separated and/or in a list).`])
      }
    })

    it("words an integer's bounds as its own route sets them, and names the path for a job id", async (t) => {
      const { app } = await buildTestApp(t, { engine })
      const cases: Array<[string, string]> = [
        ['/v2/scope?limit=0', 'Invalid limit in the query string: must be an integer from 1 to 2147483647.'],
        ['/v2/scope?offset=2147483648', 'Invalid offset in the query string: must be an integer from 0 to 2147483647.'],
        ['/v2/scope?marker=x', 'Invalid marker in the query string: must be an integer from 0 to 2147483647.'],
        ['/v2/scope/resets?limit=1001', 'Invalid limit in the query string: must be an integer from 1 to 1000.'],
        ['/v2/scope/resets?offset=-1', 'Invalid offset in the query string: must be an integer from 0 to 2147483647.'],
        ['/v2/scope/resets/0', 'Invalid id in the path: must be an integer from 1 to 2147483647.'],
        ['/v2/scope/resets?status=paused', 'Invalid status in the query string: must be pending, running, done, failed or cancelled (comma-separated and/or repeated).'],
      ]
      for (const [url, message] of cases) {
        const res = await call(app, 'GET', url)
        assert.equal(res.status, 400, url)
        assert.deepEqual(res.body, { message }, url)
      }
      assert.equal((await call(app, 'GET', '/v2/scope/resets?limit=1000')).status, 200)
    })
  })
}
