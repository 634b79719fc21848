import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { cachedBinaryPath, findTemporalCli, TemporalCliNotFoundError } from '../../devnet/temporal-cli';

let root: string;
beforeEach(() => {
  root = mkdtempSync(path.join(os.tmpdir(), 'settle-cli-'));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

function executable(file: string): string {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, '#!/bin/sh\n');
  chmodSync(file, 0o755);
  return file;
}

describe('finding the Temporal CLI', () => {
  it('prefers TEMPORAL_CLI, then PATH, then the per-user cache', () => {
    const onPath = executable(path.join(root, 'bin', 'temporal'));
    const explicit = executable(path.join(root, 'elsewhere', 'temporal'));
    const env = { PATH: path.join(root, 'bin'), SETTLE_CACHE_DIR: path.join(root, 'cache') };
    const cached = executable(cachedBinaryPath(env));

    expect(findTemporalCli({ ...env, TEMPORAL_CLI: explicit })).toBe(explicit);
    expect(findTemporalCli(env)).toBe(onPath);
    expect(findTemporalCli({ ...env, PATH: '' })).toBe(cached);
  });

  it('keeps the cache outside the checkout, keyed by the CLI version', () => {
    const env = { HOME: root, XDG_CACHE_HOME: path.join(root, '.cache') };
    expect(cachedBinaryPath(env)).toBe(path.join(root, '.cache', 'settle', 'temporal-cli-1.5.1', 'temporal'));
    expect(cachedBinaryPath(env).startsWith(process.cwd())).toBe(false);
  });

  it('finds nothing (so it will download or build) when no source has one', () => {
    expect(
      findTemporalCli({ PATH: path.join(root, 'empty'), SETTLE_CACHE_DIR: path.join(root, 'cache') }),
    ).toBeUndefined();
  });

  it('says so when TEMPORAL_CLI names a file that does not exist', () => {
    expect(() => findTemporalCli({ TEMPORAL_CLI: path.join(root, 'missing') })).toThrow(TemporalCliNotFoundError);
  });
});
