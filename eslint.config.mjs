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

const DETERMINISTIC_PATHS = [
  ...NODE_BUILTINS.flatMap((name) => [
    { name, message: 'workflows/ and contract/ are deterministic: no Node built-ins' },
    { name: `node:${name}`, message: 'workflows/ and contract/ are deterministic: no Node built-ins' },
  ]),
  { name: '@temporalio/worker', message: 'workflows/ and contract/ must not import the worker' },
  { name: '@temporalio/client', message: 'workflows/ and contract/ must not import the client' },
  { name: '@temporalio/activity', message: 'workflows/ and contract/ must not import activity code' },
];
const DETERMINISTIC_PATTERNS = [
  {
    group: ['viem', 'viem/*', 'ethers', 'axios', 'node-fetch', 'undici', 'ws'],
    message: 'workflows/ and contract/ are deterministic: no network libraries',
  },
  {
    group: [
      '**/activities',
      '**/activities/*',
      '**/networks',
      '**/networks/*',
      '**/networks/**',
      '**/client',
      '**/client/*',
      '**/workers/*',
      '**/workers/**',
    ],
    message: 'dependencies point one way: workflows/ and contract/ import only contract/ and workflows/',
  },
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
      '.stryker-tmp/**',
      'reports/**',
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
    // Workflow code runs in Temporal's deterministic sandbox, and the contract is bundled into it: no Node, no network,
    // no clock, no activity or network code. So is the worker's workflow interceptor module (workflow-metrics.ts).
    files: ['workflows/**/*.ts', 'contract/**/*.ts', 'workers/worker/workflow-metrics.ts'],
    languageOptions: { globals: {} },
    rules: {
      'no-restricted-imports': ['error', { paths: DETERMINISTIC_PATHS, patterns: DETERMINISTIC_PATTERNS }],
      'no-restricted-globals': [
        'error',
        { name: 'setTimeout', message: 'use sleep() or condition() from @temporalio/workflow' },
        { name: 'setInterval', message: 'use sleep() in a loop' },
        { name: 'fetch', message: 'network calls belong in activities' },
        { name: 'process', message: 'workflows/ cannot read the process environment' },
      ],
    },
  },
  {
    // The machines are pure reducers: no Temporal at all, so they are tested (and mutated) on their own.
    files: ['workflows/machine/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [
            ...DETERMINISTIC_PATHS,
            // These contract modules load Temporal (failures, message and search-attribute definitions).
            ...['', '/index', '/errors', '/messages', '/search-attributes'].map((module) => ({
              name: `../../contract${module}`,
              message: 'workflows/machine/ is pure: import only the contract modules that load no Temporal',
            })),
          ],
          patterns: [
            ...DETERMINISTIC_PATTERNS,
            { group: ['@temporalio/*'], message: 'workflows/machine/ is pure: no Temporal imports' },
            {
              group: ['../cross-network-action', '../cross-network-action/*', '../signer-nonces'],
              message: 'workflows/machine/ is imported by the workflows, not the reverse',
            },
          ],
        },
      ],
    },
  },
  {
    // One concept, one small file: the code under these folders stays readable in one sitting.
    files: ['workflows/**/*.ts', 'contract/**/*.ts', 'networks/**/*.ts', 'activities/**/*.ts'],
    rules: { 'max-lines': ['error', { max: 300, skipBlankLines: true, skipComments: true }] },
  },
);
