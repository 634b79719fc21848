/**
 * The Temporal server, its SQL schema tool and the Web UI server of the production topology, built once from the Go
 * module proxy and kept in the per-user cache beside the CLI (outside the checkout, so a fresh clone reuses them):
 * `~/.cache/settle/temporal-server-1.29.1/{temporal-server,temporal-sql-tool}` and
 * `~/.cache/settle/temporal-ui-server-2.42.1/temporal-ui-server`. A path in TEMPORAL_SERVER_BIN, TEMPORAL_SQL_TOOL_BIN
 * or TEMPORAL_UI_SERVER_BIN is used instead.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import path from 'node:path';
import { cacheDir as cliCacheDir } from '../temporal-cli';

export const TEMPORAL_SERVER_VERSION = '1.29.1';
/** The UI of Temporal's own releases of that time (the CLI 1.5.1 embeds the same). */
export const TEMPORAL_UI_SERVER_VERSION = '2.42.1';

export interface GoBinary {
  /** The variable that names a binary to use instead of the cached one. */
  envVar: string;
  /** The Go package, without the version. */
  goPackage: string;
  version: string;
  /** The name `go install` gives it (the package's last element). */
  builtName: string;
  /** Its name in the cache. */
  fileName: string;
  cacheSubdir: string;
}

export const TEMPORAL_SERVER: GoBinary = {
  envVar: 'TEMPORAL_SERVER_BIN',
  goPackage: 'go.temporal.io/server/cmd/server',
  version: TEMPORAL_SERVER_VERSION,
  builtName: 'server',
  fileName: 'temporal-server',
  cacheSubdir: `temporal-server-${TEMPORAL_SERVER_VERSION}`,
};

export const TEMPORAL_SQL_TOOL: GoBinary = {
  envVar: 'TEMPORAL_SQL_TOOL_BIN',
  goPackage: 'go.temporal.io/server/cmd/tools/sql',
  version: TEMPORAL_SERVER_VERSION,
  builtName: 'sql',
  fileName: 'temporal-sql-tool',
  cacheSubdir: `temporal-server-${TEMPORAL_SERVER_VERSION}`,
};

export const TEMPORAL_UI_SERVER: GoBinary = {
  envVar: 'TEMPORAL_UI_SERVER_BIN',
  goPackage: 'github.com/temporalio/ui-server/v2/cmd/server',
  version: TEMPORAL_UI_SERVER_VERSION,
  builtName: 'server',
  fileName: 'temporal-ui-server',
  cacheSubdir: `temporal-ui-server-${TEMPORAL_UI_SERVER_VERSION}`,
};

export interface ClusterBinaries {
  server: string;
  sqlTool: string;
  uiServer: string;
}

export class BinaryBuildError extends Error {
  override name = 'BinaryBuildError';
}

/** Where a binary is cached: beside the Temporal CLI's cache (SETTLE_CACHE_DIR, else XDG_CACHE_HOME/settle). */
export function cachedPath(binary: GoBinary, env: NodeJS.ProcessEnv = process.env): string {
  return path.join(path.dirname(cliCacheDir(env)), binary.cacheSubdir, binary.fileName);
}

/** The binary without building anything: the variable, else the cache. */
export function findBinary(binary: GoBinary, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const named = env[binary.envVar];
  if (named) {
    if (!existsSync(named)) throw new BinaryBuildError(`${binary.envVar}=${named} does not exist`);
    return named;
  }
  const cached = cachedPath(binary, env);
  return existsSync(cached) ? cached : undefined;
}

/**
 * Finds the three binaries, building the missing ones with `CGO_ENABLED=0 go install <package>@v<version>` (a few
 * minutes each the first time; the server and the SQL tool come from one module and build together).
 */
export async function ensureClusterBinaries(
  env: NodeJS.ProcessEnv = process.env,
  log: (line: string) => void = (line) => process.stderr.write(`${line}\n`),
): Promise<ClusterBinaries> {
  const missing = [TEMPORAL_SERVER, TEMPORAL_SQL_TOOL, TEMPORAL_UI_SERVER].filter((b) => !findBinary(b, env));
  const serverModule = missing.filter((b) => b.version === TEMPORAL_SERVER_VERSION);
  if (serverModule.length > 0) await goInstall(serverModule, env, log);
  if (missing.includes(TEMPORAL_UI_SERVER)) await goInstall([TEMPORAL_UI_SERVER], env, log);
  return {
    server: findBinary(TEMPORAL_SERVER, env)!,
    sqlTool: findBinary(TEMPORAL_SQL_TOOL, env)!,
    uiServer: findBinary(TEMPORAL_UI_SERVER, env)!,
  };
}

/** Builds binaries of one module version into a scratch GOBIN, then moves each into the cache (atomic per file). */
function goInstall(binaries: GoBinary[], env: NodeJS.ProcessEnv, log: (line: string) => void): Promise<void> {
  const go = spawnSync('go', ['env', 'GOVERSION'], { env, encoding: 'utf8' });
  const packages = binaries.map((b) => `${b.goPackage}@v${b.version}`);
  if (go.status !== 0) {
    return Promise.reject(
      new BinaryBuildError(
        `no \`go\` on PATH to build ${packages.join(', ')}: install Go 1.24+ or set ${binaries.map((b) => b.envVar).join(', ')}`,
      ),
    );
  }
  const targets = binaries.map((b) => cachedPath(b, env));
  for (const target of targets) mkdirSync(path.dirname(target), { recursive: true });
  const gobin = mkdtempSync(path.join(path.dirname(targets[0]), 'build-'));
  const started = Date.now();
  log(`settle: building ${packages.join(' and ')} with ${go.stdout.trim()} (once; cached beside ${targets[0]})…`);
  return new Promise<void>((resolve, reject) => {
    const child = spawn('go', ['install', '-v', ...packages], {
      env: { ...env, CGO_ENABLED: '0', GOBIN: gobin, GOFLAGS: '-mod=mod' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let tail = '';
    const onData = (chunk: Buffer) => (tail = (tail + chunk.toString()).slice(-4000));
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    const progress = setInterval(
      () => log(`settle: … still building (${Math.round((Date.now() - started) / 1000)} s)`),
      30_000,
    );
    const finish = (error?: Error) => {
      clearInterval(progress);
      rmSync(gobin, { recursive: true, force: true });
      if (error) reject(error);
      else resolve();
    };
    child.on('error', (error) => finish(error));
    child.on('exit', (code) => {
      if (code !== 0) return finish(new BinaryBuildError(`go install ${packages.join(' ')}: exit ${code}\n${tail}`));
      for (const [i, binary] of binaries.entries()) {
        const built = path.join(gobin, binary.builtName);
        if (!existsSync(built)) return finish(new BinaryBuildError(`go install left no ${binary.builtName} in GOBIN`));
        renameSync(built, targets[i]);
      }
      log(`settle: built in ${Math.round((Date.now() - started) / 1000)} s: ${targets.join(', ')}`);
      finish();
    });
  });
}
