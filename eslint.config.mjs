import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

const NODE_BUILTINS = [
  'assert',
  'buffer',
  'child_process',
  'cluster',
  'crypto',
  'dgram',
  'dns',
  'events',
  'fs',
  'fs/promises',
  'http',
  'http2',
  'https',
  'net',
  'os',
  'path',
  'perf_hooks',
  'process',
  'readline',
  'stream',
  'timers',
  'tls',
  'url',
  'util',
  'v8',
  'vm',
  'worker_threads',
  'zlib',
];

export default tseslint.config(
  {
    ignores: [
      '*.config.js',
      '*.config.mjs',
      'node_modules/**',
      'dist/**',
      'contracts/artifacts/**',
      '.settle/**',
      'coverage/**',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: { ...globals.node },
      parserOptions: { projectService: { allowDefaultProject: ['bin/*.js'] }, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-require-imports': 'off',
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },
  {
    // Workflow code runs in Temporal's deterministic sandbox: no Node, no network, no clock, no activity code.
    files: ['workflows/**/*.ts'],
    languageOptions: { globals: {} },
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [
            ...NODE_BUILTINS.flatMap((name) => [
              { name, message: 'workflows/ is deterministic: no Node built-ins' },
              { name: `node:${name}`, message: 'workflows/ is deterministic: no Node built-ins' },
            ]),
            { name: '@temporalio/worker', message: 'workflows/ must not import the worker' },
            { name: '@temporalio/client', message: 'workflows/ must not import the client' },
            { name: '@temporalio/activity', message: 'workflows/ must not import activity code' },
          ],
          patterns: [
            {
              group: ['viem', 'viem/*', 'ethers', 'axios', 'node-fetch', 'undici', 'ws'],
              message: 'workflows/ is deterministic: no network libraries',
            },
            {
              group: ['../activities', '../activities/*', '../../activities/*'],
              allowTypeImports: true,
              message: 'workflows/ may import activities by type only',
            },
          ],
        },
      ],
      'no-restricted-globals': [
        'error',
        { name: 'setTimeout', message: 'use sleep() or condition() from @temporalio/workflow' },
        { name: 'setInterval', message: 'use sleep() in a loop' },
        { name: 'fetch', message: 'network calls belong in activities' },
        { name: 'process', message: 'workflows/ cannot read the process environment' },
      ],
    },
  },
);
