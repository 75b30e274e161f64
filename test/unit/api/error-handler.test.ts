import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import Fastify from 'fastify'
import { Type } from 'typebox'
import { notFoundMessage, registerErrorHandler, registerNotFoundHandler } from '../../../src/api/error-handler.ts'
import { validatorCompiler } from '../../../src/api/validation.ts'
import { BoundedInteger, rule } from '../../../src/api/v2/scope/scope-schemas.ts'

function app () {
  const app = Fastify()
  app.setValidatorCompiler(validatorCompiler)
  registerErrorHandler(app)
  return app
}

describe('validation messages', () => {
  it("read each property's rule from its own route and part of the request", async () => {
    const server = app()
    // One name, three rules: the words come with the property, not the name.
    server.post('/things/:n', {
      schema: {
        params: Type.Object({ n: BoundedInteger(1, 9) }),
        querystring: Type.Object({ n: Type.Optional(Type.String({ pattern: '^a+$', ...rule('one or more a') })) }),
        body: Type.Object({ n: Type.Optional(Type.Boolean(rule('a boolean'))) }),
      },
    }, async () => ({}))
    server.get('/others', { schema: { querystring: Type.Object({ n: Type.Optional(BoundedInteger(0, 3)) }) } }, async () => ({}))
    const message = async (method: 'GET' | 'POST', url: string, payload?: object) => {
      const res = await server.inject({ method, url, payload })
      assert.equal(res.statusCode, 400, url)
      return res.json().message
    }
    assert.equal(await message('POST', '/things/10', {}), 'Invalid n in the path: must be an integer from 1 to 9.')
    assert.equal(await message('POST', '/things/1?n=b', {}), 'Invalid n in the query string: must be one or more a.')
    assert.equal(await message('POST', '/things/1?n=a', { n: 'x' }), 'Invalid n in the request body: must be a boolean.')
    assert.equal(await message('GET', '/others?n=4'), 'Invalid n in the query string: must be an integer from 0 to 3.')
  })

  it('name the field and where it is when its property has no rule', async () => {
    const server = app()
    server.post('/plain/:id', {
      schema: {
        params: Type.Object({ id: Type.Integer() }),
        querystring: Type.Object({ n: Type.Optional(Type.Integer({ maximum: 5 })) }),
        body: Type.Object({ flag: Type.Optional(Type.Boolean()) }),
      },
    }, async () => ({}))
    const message = async (url: string, payload: object) => (await server.inject({ method: 'POST', url, payload })).json().message
    assert.equal(await message('/plain/x', {}), 'Invalid id in the path: must be integer.')
    assert.equal(await message('/plain/1?n=6', {}), 'Invalid n in the query string: must be <= 5.')
    assert.equal(await message('/plain/1', { flag: 3 }), 'Invalid flag in the request body: must be boolean.')
  })
})

describe('registerNotFoundHandler', () => {
  it("answers a known path's other methods with 405 and OPTIONS with 200, both with Allow; any other path with 404", async () => {
    const server = app()
    server.get('/early', async () => ({}))
    registerNotFoundHandler(server)
    server.get('/things/:id', async () => ({}))
    server.put('/things/:id', async () => ({}))

    const options = await server.inject({ method: 'OPTIONS', url: '/things/7' })
    assert.deepEqual([options.statusCode, options.headers.allow, options.body], [200, 'GET, HEAD, PUT, OPTIONS', ''])
    const other = await server.inject({ method: 'DELETE', url: '/things/7/?x=1' })
    assert.deepEqual([other.statusCode, other.headers.allow, other.json()], [405, 'GET, HEAD, PUT, OPTIONS', { message: 'The method DELETE is not allowed for /things/7/.' }])
    for (const url of ['/things', '/things/7/more', '/nowhere?x=1']) {
      const res = await server.inject({ method: 'GET', url })
      assert.deepEqual([res.statusCode, res.json()], [404, { message: notFoundMessage(url.split('?')[0]) }], url)
    }
    // Learnt from onRoute: a route added before the handler is not known to it.
    assert.equal((await server.inject({ method: 'POST', url: '/early' })).statusCode, 404)
  })
})
