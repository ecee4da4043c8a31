// Lint = the layer rules of STYLE.md ("Dependency rule"), plus a few
// correctness checks. Type-aware rules are left out to keep CI fast.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const FRAMEWORKS = ['@nestjs/*', 'typeorm', 'typeorm/*', 'class-validator', 'class-transformer', 'ioredis', 'fastify', 'pg', 'express'];

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', '.tollgate/**', 'bench/results/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-require-imports': 'off',
      'no-console': 'error',
    },
  },
  {
    // domain/: TypeScript and node:crypto only.
    files: ['src/**/domain/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: FRAMEWORKS, message: 'domain/ imports no framework (STYLE.md: dependency rule).' },
            { group: ['**/application/**', '**/infrastructure/**', '**/http/**'], message: 'domain/ depends on nothing outward.' },
          ],
        },
      ],
    },
  },
  {
    // application/: @nestjs/common's @Injectable and nothing else from frameworks; no ORM, no HTTP.
    files: ['src/**/application/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: FRAMEWORKS.filter((f) => f !== '@nestjs/*'), message: 'application/ stays free of ORM and transport.' },
            { group: ['@nestjs/*', '!@nestjs/common'], message: 'application/ uses only @Injectable() from Nest.' },
            { group: ['**/infrastructure/**', '**/http/**'], message: 'application/ depends on domain ports, not adapters or controllers.' },
          ],
        },
      ],
    },
  },
  {
    files: ['test/**/*.js', 'bin/**/*.js', 'scripts/**/*.js', 'bench/**/*.js', '*.js'],
    languageOptions: {
      globals: { require: 'readonly', module: 'writable', process: 'readonly', __dirname: 'readonly', console: 'readonly', fetch: 'readonly', URL: 'readonly', setTimeout: 'readonly' },
    },
    rules: { 'no-console': 'off', '@typescript-eslint/no-require-imports': 'off' },
  },
);
