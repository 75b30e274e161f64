import { Ajv, type Options, type SchemaValidateFunction } from 'ajv'
import type { FastifySchemaCompiler } from 'fastify'
import { isTimestamp } from '../domain/timestamps.ts'
import { MAX_VALUES_KEYWORD, RULE_KEYWORD, TIMESTAMP_FORMAT } from './v2/scope/scope-schemas.ts'
import { splitFilterValues } from './v2/scope/scope-wire.ts'

// A filter's count of values spans its list items and their comma-separated
// pieces, which maxItems cannot see; checked while validating so that too
// many values are a 400 before the policy looks at them (STYLE.md §2).
const atMostValues: SchemaValidateFunction = function (max: number, data: string | string[]): boolean {
  if (splitFilterValues(data).length <= max) return true
  atMostValues.errors = [{ keyword: MAX_VALUES_KEYWORD, message: `must list at most ${max} values`, params: { limit: max } }]
  return false
}

function makeAjv (options: Options): Ajv {
  const ajv = new Ajv({
    // Unknown fields are a 400 (CONTRACT.md "Errors"), so they must fail
    // validation rather than be silently stripped as Fastify's default does.
    removeAdditional: false,
    useDefaults: true,
    allErrors: false,
    strict: false,
    ...options,
  })
  ajv.addFormat(TIMESTAMP_FORMAT, { type: 'string', validate: isTimestamp })
  ajv.addKeyword({ keyword: MAX_VALUES_KEYWORD, type: ['string', 'array'], schemaType: 'number', validate: atMostValues })
  // Words for the error message, not a check: known to ajv so that a
  // schema's rule must be a string, and so strict mode would not refuse it.
  ajv.addKeyword({ keyword: RULE_KEYWORD, schemaType: 'string' })
  return ajv
}

// A query string and a path are all text: coerce `limit=10` to a number and
// a single `scope_id=a` to a list. A JSON body has real types: `"active": "yes"` or
// `"scope_id": 12` must be refused, not coerced.
const queryAjv = makeAjv({ coerceTypes: 'array' })
const bodyAjv = makeAjv({ coerceTypes: false })

/** Fastify's schema compiler: coercing for query strings and paths, strict for bodies. */
export const validatorCompiler: FastifySchemaCompiler<unknown> = ({ schema, httpPart }) =>
  (httpPart === 'querystring' || httpPart === 'params' ? queryAjv : bodyAjv).compile(schema as object) as ReturnType<FastifySchemaCompiler<unknown>>
