// @ts-check
import js from '@eslint/js';
import reactHooks from 'eslint-plugin-react-hooks';
import tseslint from 'typescript-eslint';

/** Kysely methods that start a query or a transaction (`db.selectFrom(…)`, `db.transaction()`). */
const KYSELY_QUERY_STARTS =
  '/^(selectFrom|selectNoFrom|insertInto|replaceInto|updateTable|deleteFrom|mergeInto|transaction|executeQuery)$/';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'web/dist/**', 'bench/results/**', '**/*.js', '**/*.mjs'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true, allowBoolean: true }],
      '@typescript-eslint/consistent-type-imports': 'error',
    },
  },
  {
    // The store owns SQL: outside src/store a Kysely handle is only passed along (type imports),
    // never queried, so every query has a named store function with its dialect tests.
    files: ['src/**/*.ts'],
    ignores: ['src/store/**'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          paths: [
            {
              name: 'kysely',
              allowTypeImports: true,
              message: 'SQL belongs in src/store: add a store function there and call it.',
            },
          ],
        },
      ],
      'no-restricted-syntax': [
        'error',
        {
          selector: `CallExpression > MemberExpression.callee > Identifier.property[name=${KYSELY_QUERY_STARTS}]`,
          message: 'SQL belongs in src/store: add a store function there and call it.',
        },
      ],
    },
  },
  {
    // The CLI and the web UI speak to the server only through the API: its words (statuses,
    // DTOs, routes) come from src/contract, never from the server's modules. Tests may start a
    // real server; `slipway server` (server-command.ts) is the one command that runs it.
    files: ['src/cli/**/*.ts', 'web/**/*.{ts,tsx}'],
    ignores: ['**/*.test.ts', '**/*.test.tsx', 'src/cli/server-command.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: '^(\\.\\./)+(src/)?server(/|$)',
              message: 'The CLI and the web UI take the shared words from src/contract, not from src/server.',
            },
          ],
        },
      ],
    },
  },
  {
    // src/contract is imported by the server, the CLI and the browser: nothing but TypeBox and
    // its own modules (no Node or DOM APIs, nothing else of src/).
    files: ['src/contract/**/*.ts'],
    ignores: ['src/contract/**/*.test.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: '^(?!@sinclair/typebox(/|$)|\\./)',
              message: 'src/contract imports nothing but @sinclair/typebox and its own modules.',
            },
          ],
        },
      ],
    },
  },
  {
    // The web UI (web/tsconfig.json: DOM, JSX): the rules of hooks on top of the typed rules.
    files: ['web/**/*.{ts,tsx}'],
    ...reactHooks.configs.flat['recommended-latest'],
  },
);
