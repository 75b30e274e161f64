// Which folder of src/ may import which (issue 13). test/unit/layers.test.ts
// cruises src/ with these rules under `npm test`; by hand:
//   npx depcruise src
// CommonJS (.cjs) because dependency-cruiser loads its configuration with
// require(); the package itself is ESM ("type": "module").

// Rule paths are relative to the cruise's baseDir (the repository root).
// A package (each name a regular expression) is matched wherever it resolves
// (node_modules/<name>/…, or the DefinitelyTyped @types/<name> that an
// `import type` may resolve to) and, if it cannot be resolved, by its bare
// name: a missing node_modules must not hide an import from a rule.
const packages = (...names) => {
  const alternatives = names.join('|')
  return `(^|/)node_modules/(@types/)?(${alternatives})(/|$)|^(${alternatives})(/|$)`
}

// The database (and the coordination backends') client libraries. amqplib is
// the oslo.messaging transport of src/reset, not a database driver; os-lock
// is a file lock (src/storage/coordination/file-coordinator.ts).
const DATABASE_DRIVERS = packages('pg', 'pg-pool', 'pg-cursor', 'pg-protocol', 'mysql2', 'mysql', 'better-sqlite3', 'sqlite3', 'ioredis', 'redis')
const KYSELY = packages('kysely')
const FASTIFY = packages('fastify', '@fastify/[^/]+')

// What the operator client must not load: everything of the server.
const SERVER = [
  '^src/(api|domain|storage|config|auth|reset)/',
  '^src/(logger|app|server)\\.ts$'
]

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'api-not-storage',
      comment:
        'The HTTP layer reaches the database through the domain services, never directly: ' +
        'src/api/** must not import src/storage/**, not even its types ' +
        '(a route that knows a table\'s shape couples the wire format to the schema).',
      severity: 'error',
      from: { path: '^src/api/' },
      to: { path: '^src/storage/' }
    },
    {
      name: 'domain-not-frameworks',
      comment:
        'The domain (scope states, reset jobs, their rules) is plain TypeScript, testable and ' +
        'reusable without an HTTP server or a query builder: src/domain/** imports neither ' +
        'Fastify (fastify, @fastify/*) nor Kysely. Storage implements the interfaces the domain declares.',
      severity: 'error',
      from: { path: '^src/domain/' },
      to: { path: [FASTIFY, KYSELY] }
    },
    {
      name: 'drivers-only-in-storage',
      comment:
        'Only src/storage/** talks to a database or a coordination backend: the drivers ' +
        '(pg, mysql2, better-sqlite3, ioredis…) are imported nowhere else, so engine quirks ' +
        '(error codes, type parsers, pools) stay in one folder.',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/storage/' },
      to: { path: DATABASE_DRIVERS }
    },
    {
      name: 'sql-only-in-storage',
      comment:
        'SQL only in storage: Kysely (queries, transactions, its types) is imported only ' +
        'from src/storage/**; the other layers call repositories.',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/storage/' },
      to: { path: KYSELY }
    },
    {
      name: 'cli-client-not-server',
      comment:
        'The operator client (`scopekeeper scope …`) is an HTTP client of the API: it imports ' +
        'nothing of the server (api, domain, storage, config, auth, reset, logger, app, server), ' +
        'so it starts fast, never opens a database, and could ship apart. The one exception is ' +
        'the binary\'s command dispatcher, src/cli/main.ts, which starts serve, worker and migrate, ' +
        'with src/cli/process-signals.ts, which only main.ts uses for those processes.',
      severity: 'error',
      from: { path: '^src/cli/', pathNot: '^src/cli/(main|process-signals)\\.ts$' },
      to: { path: SERVER }
    },
    {
      name: 'cli-client-not-dispatcher',
      comment:
        'Closes the exception above: the rest of src/cli/** must not import main.ts or ' +
        'process-signals.ts either, or it would reach the server through them.',
      severity: 'error',
      from: { path: '^src/cli/', pathNot: '^src/cli/main\\.ts$' },
      to: { path: '^src/cli/(main|process-signals)\\.ts$' }
    },
    {
      name: 'no-circular',
      comment:
        'A cycle between modules makes their load order matter (an ESM binding read before ' +
        'its module ran throws) and means neither can be understood or tested alone.',
      severity: 'error',
      from: {},
      to: { circular: true }
    },
    {
      name: 'not-to-unresolvable',
      comment:
        'Every import must resolve to a file or an installed package: an import the cruiser ' +
        'cannot follow is one the rules above cannot see.',
      severity: 'error',
      from: {},
      to: { couldNotResolve: true }
    }
  ],
  options: {
    // `import type` and `import { type X }` count: types couple layers too.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    doNotFollow: { path: 'node_modules' },
    // Node's own resolution of the package.json "exports" field, for ESM
    // (import) and for the createRequire() loads of the drivers (require),
    // and the types an `import type` of a package resolves to.
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      mainFields: ['module', 'main', 'types', 'typings'],
      extensions: ['.ts', '.d.ts', '.js', '.mjs', '.cjs', '.json']
    }
  }
}
