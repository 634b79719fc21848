/**
 * Finds a Temporal CLI (which embeds the dev server and the Web UI), or obtains one, in this order:
 * 1. `TEMPORAL_CLI` (a path); 2. `temporal` on PATH; 3. the per-user cache (outside the checkout);
 * 4. the official release download, where the network allows; 5. `go install …/cli/cmd/temporal@v1.5.1`
 * with Go 1.25+ (later tags carry a `replace` directive and cannot be go-installed).
 * The result is cached, so only the first run pays for the download or the build.
 */
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const TEMPORAL_CLI_VERSION = '1.5.1';
const GO_PACKAGE = `github.com/temporalio/cli/cmd/temporal@v${TEMPORAL_CLI_VERSION}`;

export class TemporalCliNotFoundError extends Error {
  override name = 'TemporalCliNotFoundError';
}

export function cacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.SETTLE_CACHE_DIR ?? path.join(env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'settle');
  return path.join(base, `temporal-cli-${TEMPORAL_CLI_VERSION}`);
}

export function cachedBinaryPath(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(cacheDir(env), process.platform === 'win32' ? 'temporal.exe' : 'temporal');
}

/** The CLI without obtaining anything: env, PATH or cache. */
export function findTemporalCli(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.TEMPORAL_CLI) {
    if (!existsSync(env.TEMPORAL_CLI))
      throw new TemporalCliNotFoundError(`TEMPORAL_CLI=${env.TEMPORAL_CLI} does not exist`);
    return env.TEMPORAL_CLI;
  }
  const onPath = whichSync('temporal', env);
  if (onPath) return onPath;
  const cached = cachedBinaryPath(env);
  return existsSync(cached) ? cached : undefined;
}

/** Finds the CLI, or downloads or builds it into the cache. */
export async function ensureTemporalCli(
  env: NodeJS.ProcessEnv = process.env,
  log: (line: string) => void = (line) => process.stderr.write(`${line}\n`),
): Promise<string> {
  const found = findTemporalCli(env);
  if (found) return found;
  const target = cachedBinaryPath(env);
  mkdirSync(path.dirname(target), { recursive: true });
  const attempts: string[] = [];

  try {
    log(`settle: downloading Temporal CLI v${TEMPORAL_CLI_VERSION}…`);
    await download(target);
    log(`settle: Temporal CLI cached at ${target}`);
    return target;
  } catch (error) {
    attempts.push(`download: ${(error as Error).message}`);
  }

  const go = goVersion(env);
  if (go && (go.major > 1 || go.minor >= 25)) {
    log(
      `settle: building Temporal CLI v${TEMPORAL_CLI_VERSION} with Go ${go.major}.${go.minor} (a few minutes, once; cached at ${target})…`,
    );
    try {
      await goInstall(target, env, log);
      return target;
    } catch (error) {
      attempts.push(`go install: ${(error as Error).message}`);
    }
  } else {
    attempts.push(
      go ? `go install: Go ${go.major}.${go.minor} is too old (needs 1.25+)` : 'go install: no `go` on PATH',
    );
  }

  throw new TemporalCliNotFoundError(
    [
      'No Temporal CLI could be found or obtained. Any one of these fixes it:',
      '  - install the Temporal CLI (https://docs.temporal.io/cli) so that `temporal` is on PATH, or set TEMPORAL_CLI=/path/to/temporal',
      `  - allow downloads from temporal.download, or`,
      `  - install Go 1.25+ so that Settle can run \`go install ${GO_PACKAGE}\``,
      'What was tried:',
      ...attempts.map((a) => `  - ${a}`),
    ].join('\n'),
  );
}

async function download(target: string): Promise<void> {
  const platform = process.platform === 'darwin' ? 'darwin' : process.platform === 'win32' ? 'windows' : 'linux';
  const arch = process.arch === 'arm64' ? 'arm64' : 'amd64';
  const url = `https://temporal.download/cli/archive/v${TEMPORAL_CLI_VERSION}?platform=${platform}&arch=${arch}`;
  const response = await fetch(url, { signal: AbortSignal.timeout(60_000) });
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  const work = mkdtempSync(path.join(path.dirname(target), 'download-'));
  try {
    const archive = path.join(work, 'temporal.tar.gz');
    const { writeFileSync } = await import('node:fs');
    writeFileSync(archive, Buffer.from(await response.arrayBuffer()));
    const untar = spawnSync('tar', ['-xzf', archive, '-C', work], { stdio: 'inherit' });
    if (untar.status !== 0) throw new Error('could not unpack the archive');
    const binary = path.join(work, path.basename(target));
    if (!existsSync(binary)) throw new Error('the archive holds no temporal binary');
    chmodSync(binary, 0o755);
    renameSync(binary, target);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

function goInstall(target: string, env: NodeJS.ProcessEnv, log: (line: string) => void): Promise<void> {
  const gobin = mkdtempSync(path.join(path.dirname(target), 'build-'));
  const started = Date.now();
  return new Promise<void>((resolve, reject) => {
    const child = spawn('go', ['install', '-v', GO_PACKAGE], {
      env: { ...env, CGO_ENABLED: '0', GOBIN: gobin, GOFLAGS: '-mod=mod' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let lines = 0;
    let tail = '';
    const progress = setInterval(() => {
      log(
        `settle: … still building Temporal CLI (${Math.round((Date.now() - started) / 1000)}s, ${lines} packages so far)`,
      );
    }, 15_000);
    const onData = (chunk: Buffer) => {
      const text = chunk.toString();
      lines += text.split('\n').filter(Boolean).length;
      tail = (tail + text).slice(-4000);
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('error', (error) => {
      clearInterval(progress);
      reject(error);
    });
    child.on('exit', (code) => {
      clearInterval(progress);
      const built = path.join(gobin, path.basename(target));
      if (code === 0 && existsSync(built)) {
        renameSync(built, target);
        rmSync(gobin, { recursive: true, force: true });
        log(`settle: built Temporal CLI in ${Math.round((Date.now() - started) / 1000)}s → ${target}`);
        resolve();
      } else {
        rmSync(gobin, { recursive: true, force: true });
        reject(new Error(`exit ${code}\n${tail}`));
      }
    });
  });
}

function goVersion(env: NodeJS.ProcessEnv): { major: number; minor: number } | undefined {
  const result = spawnSync('go', ['env', 'GOVERSION'], { env, encoding: 'utf8' });
  const match = result.status === 0 ? /go(\d+)\.(\d+)/.exec(result.stdout) : null;
  return match ? { major: Number(match[1]), minor: Number(match[2]) } : undefined;
}

function whichSync(name: string, env: NodeJS.ProcessEnv): string | undefined {
  for (const dir of (env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    if (existsSync(candidate)) return candidate;
  }
  return undefined;
}

if (require.main === module) {
  ensureTemporalCli()
    .then((bin) => {
      if (process.argv.includes('--ensure')) process.stderr.write(`settle: Temporal CLI: ${bin}\n`);
      else process.stdout.write(`${bin}\n`);
    })
    .catch((error: Error) => {
      process.stderr.write(`${error.message}\n`);
      process.exit(1);
    });
}
