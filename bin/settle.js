#!/usr/bin/env node
// The `settle` CLI: runs the TypeScript sources through tsx's CommonJS loader (no build step).
require('tsx/cjs');
const { runCli, nodeIo } = require('../client/cli/main.ts');

runCli(process.argv.slice(2), nodeIo()).then(
  (code) => process.exit(code),
  (error) => {
    process.stderr.write(`settle: ${error.stack || error.message}\n`);
    process.exit(1);
  },
);
