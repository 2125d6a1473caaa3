// @ts-check
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

/** Projections are pure: no I/O, no clock, no randomness (docs/architecture.md, "Rings"). */
const purityFence = {
  files: ['projections/**/*.ts'],
  rules: {
    'no-restricted-imports': [
      'error',
      {
        patterns: [
          { group: ['node:*', 'fs', 'path', 'os', 'crypto'], message: 'projections/ does no I/O.' },
          { group: ['pg', 'kysely', 'rxjs', '@electric-sql/*'], message: 'projections/ is pure.' },
          { group: ['**/src/**', '../src'], message: 'projections/ imports schema/ only.' },
        ],
      },
    ],
    'no-restricted-syntax': [
      'error',
      {
        selector: "CallExpression[callee.object.name='Date'][callee.property.name='now']",
        message: 'Pass `now` in; projections never read the clock.',
      },
      {
        selector: "NewExpression[callee.name='Date'][arguments.length=0]",
        message: 'Pass `now` in; projections never read the clock.',
      },
      {
        selector: "CallExpression[callee.object.name='Math'][callee.property.name='random']",
        message: 'Projections are deterministic.',
      },
    ],
    'no-restricted-globals': ['error', 'process', 'performance', 'setTimeout', 'setInterval'],
  },
};

export default tseslint.config(
  { ignores: ['node_modules/', 'dist/', '.headway/', 'coverage/', 'tmp/', 'test/artifacts/'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_' },
      ],
      '@typescript-eslint/consistent-type-imports': 'error',
    },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    ...tseslint.configs.disableTypeChecked,
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly', fetch: 'readonly' } },
  },
  {
    // The dashboard runs in the browser.
    files: ['src/dashboard/**/*.js'],
    languageOptions: { globals: globals.browser },
  },
  {
    files: ['test/**/*.ts', 'bench/**/*.ts'],
    rules: {
      '@typescript-eslint/no-non-null-assertion': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
    },
  },
  purityFence,
);
