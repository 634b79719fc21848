/**
 * Temporal's time-skipping test server (Java, `io.temporal:temporal-test-server` from Maven Central), for tests of
 * windows of days that must run in seconds. Its own main binds every interface, so a twenty-line launcher
 * (`devnet/time-skipping/LoopbackTestServer.java`) binds it to 127.0.0.1. Built once into the per-user cache (outside
 * the checkout) with Maven and javac; the result is a script the SDK runs as `<script> <port>`
 * (`TestWorkflowEnvironment.createTimeSkipping({ server: { executable: { type: 'existing-path', path } } })`).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const TEST_SERVER_VERSION = '1.31.0';
const SOURCES = path.join(__dirname, 'time-skipping');

export class TimeSkippingServerError extends Error {
  override name = 'TimeSkippingServerError';
}

export function timeSkippingDir(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.SETTLE_CACHE_DIR ?? path.join(env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'settle');
  return path.join(base, `temporal-test-server-${TEST_SERVER_VERSION}`);
}

/** The launcher script, building it when missing (Maven resolves the jars once; they stay in ~/.m2). */
export function ensureTimeSkippingServer(
  env: NodeJS.ProcessEnv = process.env,
  log: (line: string) => void = (line) => process.stderr.write(`${line}\n`),
): string {
  const dir = timeSkippingDir(env);
  const launcher = path.join(dir, 'run');
  if (existsSync(launcher) && upToDate(dir)) return launcher;
  for (const tool of ['java', 'javac', 'mvn']) {
    if (spawnSync(tool, ['-version'], { env, stdio: 'ignore' }).error) {
      throw new TimeSkippingServerError(
        `the time-skipping test server needs Java 17+ (java, javac) and Maven (mvn) on PATH; \`${tool}\` is missing ` +
          '(Debian: apt-get install openjdk-17-jdk-headless maven)',
      );
    }
  }
  log(`settle: building Temporal's time-skipping test server ${TEST_SERVER_VERSION} (once; cached at ${dir})…`);
  const work = `${dir}.build-${process.pid}`;
  rmSync(work, { recursive: true, force: true });
  mkdirSync(path.join(work, 'classes'), { recursive: true });
  try {
    for (const file of ['pom.xml', 'LoopbackTestServer.java'])
      copyFileSync(path.join(SOURCES, file), path.join(work, file));
    execFileSync(
      'mvn',
      [
        '-q',
        '-B',
        '-Dstyle.color=never',
        'dependency:build-classpath',
        `-Dmdep.outputFile=${path.join(work, 'classpath')}`,
      ],
      {
        cwd: work,
        env,
        stdio: ['ignore', 'ignore', 'inherit'],
      },
    );
    const classpath = readFileSync(path.join(work, 'classpath'), 'utf8').trim();
    execFileSync(
      'javac',
      ['-cp', classpath, '-d', path.join(work, 'classes'), path.join(work, 'LoopbackTestServer.java')],
      {
        env,
        stdio: ['ignore', 'ignore', 'inherit'],
      },
    );
    const classes = path.join(dir, 'classes');
    writeFileSync(
      path.join(work, 'run'),
      `#!/bin/sh\nexec java -cp "${classes}:${classpath}" LoopbackTestServer "$@"\n`,
    );
    chmodSync(path.join(work, 'run'), 0o755);
    rmSync(dir, { recursive: true, force: true });
    renameSync(work, dir);
  } catch (error) {
    rmSync(work, { recursive: true, force: true });
    throw new TimeSkippingServerError(`could not build the time-skipping test server: ${(error as Error).message}`);
  }
  log(`settle: time-skipping test server: ${launcher}`);
  return launcher;
}

/** The cache was built from the sources in this checkout (a changed launcher or version rebuilds it). */
function upToDate(dir: string): boolean {
  return ['pom.xml', 'LoopbackTestServer.java'].every((file) => {
    const cached = path.join(dir, file);
    return existsSync(cached) && readFileSync(cached, 'utf8') === readFileSync(path.join(SOURCES, file), 'utf8');
  });
}

if (require.main === module) {
  try {
    const launcher = ensureTimeSkippingServer();
    if (!process.argv.includes('--ensure')) process.stdout.write(`${launcher}\n`);
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n`);
    process.exit(1);
  }
}
