import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import type { TObject } from 'typebox'
import { validatorCompiler } from '../../../../../src/api/validation.ts'
import { ListResetJobsQuery, ResetJobParams } from '../../../../../src/api/v2/scope/reset-job-schemas.ts'
import { CreateScopeBody, ListScopesQuery, PatchScopeBody, ResetScopesBody, RULE_KEYWORD } from '../../../../../src/api/v2/scope/scope-schemas.ts'
import { RESET_JOB_STATUSES } from '../../../../../src/domain/reset-job.ts'
import { ACTIVE_WORDS, parseActive } from '../../../../../src/domain/scope-fields.ts'

type Part = 'querystring' | 'params' | 'body'
const validator = (schema: TObject, httpPart: Part) =>
  validatorCompiler({ schema, httpPart, method: 'GET', url: '/' }) as unknown as (data: unknown) => boolean

const REQUEST_SCHEMAS: Array<[string, TObject]> = [
  ['ListScopesQuery', ListScopesQuery],
  ['ResetScopesBody', ResetScopesBody],
  ['PatchScopeBody', PatchScopeBody],
  ['CreateScopeBody', CreateScopeBody],
  ['ListResetJobsQuery', ListResetJobsQuery],
  ['ResetJobParams', ResetJobParams],
]

const ruleOf = (schema: unknown) => (schema as Record<string, unknown>)[RULE_KEYWORD]

const parses = (value: boolean | number | string) => {
  try {
    parseActive(value)
    return true
  } catch {
    return false
  }
}

// Strings near the accepted words: the words in random case, with a
// character added, dropped or changed, and arbitrary text.
const randomCase = (word: string) => fc.array(fc.boolean(), { minLength: word.length, maxLength: word.length })
  .map((upper) => [...word].map((c, i) => upper[i] ? c.toUpperCase() : c).join(''))
const nearWord = fc.oneof(
  fc.constantFrom(...ACTIVE_WORDS).chain(randomCase),
  fc.tuple(fc.constantFrom(...ACTIVE_WORDS).chain(randomCase), fc.string({ maxLength: 2 }), fc.nat({ max: 5 }))
    .map(([word, extra, at]) => word.slice(0, at) + extra + word.slice(at + 1)),
  fc.constantFrom('', ' ', 'yes', 'no', 'on', '01', '1.0', 'ťrue', 'truE ', 'K'),
  fc.string({ maxLength: 6 }),
)

describe('request schemas', () => {
  it('give every property its rule, in words, for its 400', () => {
    for (const [name, schema] of REQUEST_SCHEMAS) {
      for (const [field, property] of Object.entries(schema.properties)) {
        const rule = ruleOf(property)
        assert.equal(typeof rule, 'string', `${name}.${field}`)
        assert.ok((rule as string).length > 0, `${name}.${field}`)
      }
    }
  })

  it("say an integer property's own bounds", () => {
    for (const [name, schema] of REQUEST_SCHEMAS) {
      for (const [field, property] of Object.entries(schema.properties) as Array<[string, Record<string, unknown>]>) {
        if (property.type !== 'integer') continue
        assert.equal(ruleOf(property), `an integer from ${String(property.minimum)} to ${String(property.maximum)}`, `${name}.${field}`)
      }
    }
    assert.equal(ruleOf(ListScopesQuery.properties.limit), 'an integer from 1 to 2147483647')
    assert.equal(ruleOf(ListResetJobsQuery.properties.limit), 'an integer from 1 to 1000')
  })
})

describe('active', () => {
  const patch = validator(PatchScopeBody, 'body')
  const create = validator(CreateScopeBody, 'body')
  const list = validator(ListScopesQuery, 'querystring')

  it('is accepted in a body exactly as parseActive reads it', () => {
    const value = fc.oneof(fc.boolean(), nearWord, fc.integer({ min: -3, max: 3 }), fc.double(), fc.constantFrom(0, 1, -0, 1.0, 1e0))
    fc.assert(fc.property(value, (active) => {
      const accepted = parses(active)
      assert.equal(patch({ scope_id: 'a', active }), accepted, JSON.stringify(active))
      assert.equal(create({ scope_id: 'a', active }), accepted, JSON.stringify(active))
    }), { numRuns: 2000 })
  })

  it('is accepted in a query string exactly as each comma-separated piece parses', () => {
    const item = fc.array(nearWord, { minLength: 1, maxLength: 4 }).map((pieces) => pieces.join(','))
    fc.assert(fc.property(fc.array(item, { minLength: 1, maxLength: 3 }), (items) => {
      const accepted = items.every((text) => text.split(',').every(parses))
      assert.equal(list({ active: [...items] }), accepted, JSON.stringify(items))
    }), { numRuns: 2000 })
  })
})

describe('status', () => {
  const list = validator(ListResetJobsQuery, 'querystring')

  it('accepts exactly the reset job statuses, comma-separated and/or repeated', () => {
    const piece = fc.oneof(fc.constantFrom(...RESET_JOB_STATUSES), fc.constantFrom('', 'Done', 'stuck', 'pending '), fc.string({ maxLength: 4 }))
    const item = fc.array(piece, { minLength: 1, maxLength: 4 }).map((pieces) => pieces.join(','))
    fc.assert(fc.property(fc.array(item, { minLength: 1, maxLength: 3 }), (items) => {
      const accepted = items.every((text) => text.split(',').every((s) => (RESET_JOB_STATUSES as readonly string[]).includes(s)))
      assert.equal(list({ status: [...items] }), accepted, JSON.stringify(items))
    }), { numRuns: 1000 })
    assert.equal(ruleOf(ListResetJobsQuery.properties.status), 'pending, running, done, failed or cancelled (comma-separated and/or repeated)')
  })
})
