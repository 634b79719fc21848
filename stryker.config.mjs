// Mutation testing of the pure machines (`npm run test:mutation`): a rule broken on purpose must make a unit test fail.
// Slow (tens of minutes on 2 cores): not part of `npm test` nor CI. Re-run a part with e.g.
// `npm run test:mutation -- --mutate workflows/machine/track.ts` or only the changed mutants with `-- --incremental`.
/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  packageManager: 'npm',
  mutate: ['workflows/machine/**/*.ts'],
  testRunner: 'jest',
  jest: {
    projectType: 'custom',
    configFile: 'jest.config.js',
    // Only the unit tests, and without the global setup that fetches the Temporal CLI for the integration tests.
    config: { roots: ['<rootDir>/test/unit'], globalSetup: null },
    enableFindRelatedTests: false,
  },
  coverageAnalysis: 'perTest',
  checkers: ['typescript'],
  tsconfigFile: 'tsconfig.json',
  typescriptChecker: { prioritizePerformanceOverAccuracy: true },
  concurrency: 2,
  timeoutMS: 20_000,
  reporters: ['clear-text', 'progress', 'html', 'json'],
  thresholds: { high: 90, low: 85, break: 85 },
  ignorePatterns: ['/dist', '/coverage', '/.settle'],
};
