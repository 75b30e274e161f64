// typescript-eslint's type-aware rules (issue 13), under `npm test` as
// `npm run lint` (`eslint .`). Not the recommended sets: only the rules that
// catch what tsc lets through here (a promise nobody awaits or catches, dead
// code, a type import that would load a module at run time).
import { defineConfig } from 'eslint/config'
import tseslint from 'typescript-eslint'

export default defineConfig(
  { ignores: ['dist/', 'data/', 'node_modules/'] },
  {
    files: ['{src,test,bench,scripts,bin,console}/**/*.{ts,js}'],
    languageOptions: {
      parser: tseslint.parser,
      parserOptions: {
        // tsconfig.json for src, test and bench (its include has no allowJs,
        // so the JavaScript of bin/ and scripts/ gets the default project);
        // console/tsconfig.json (DOM, bundled by Vite) for the operator console.
        projectService: { allowDefaultProject: ['bin/*.js', 'scripts/*.js'] },
        tsconfigRootDir: import.meta.dirname,
      },
    },
    plugins: { '@typescript-eslint': tseslint.plugin },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      // new Function() is eval: the one use says why it is safe.
      'no-new-func': 'error',
      // A promise left alone rejects unhandled, which ends the process on
      // Node 20, or finishes after whatever was meant to follow it.
      // node:test's describe() and it() return a promise that the runner
      // itself awaits: not to be awaited at the top of a test file.
      '@typescript-eslint/no-floating-promises': ['error', {
        allowForKnownSafeCalls: [{
          from: 'package',
          package: 'node:test',
          name: ['describe', 'it', 'test', 'suite', 'before', 'after', 'beforeEach', 'afterEach'],
        }],
      }],
      // A promise where a callback's return is ignored (an event listener, a
      // setTimeout): the same unhandled rejection, harder to see.
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/no-unused-vars': ['error', {
        args: 'after-used',
        argsIgnorePattern: '^_',
        varsIgnorePattern: '^_',
        caughtErrorsIgnorePattern: '^_',
        destructuredArrayIgnorePattern: '^_',
        // `const { error, ...rest } = r` leaves error out of rest.
        ignoreRestSiblings: true,
      }],
      // `import type { A }` when all are types, `import { a, type B }` when
      // mixed, as the code writes them: with verbatimModuleSyntax a type
      // imported as a value is an import kept at run time.
      '@typescript-eslint/consistent-type-imports': ['error', {
        prefer: 'type-imports',
        fixStyle: 'inline-type-imports',
      }],
      // and `import type { A }`, not `import { type A }`, when all are types
      // (the latter keeps an empty `import '…'`, which runs the module).
      '@typescript-eslint/no-import-type-side-effects': 'error',
    },
  },
)
