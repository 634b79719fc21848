/**
 * PostgreSQL for the production topology: Debian's `postgresql` package (installed with apt when missing, as root), a
 * database cluster of its own in the state folder, run as an unprivileged user (as root: `postgres`, the package's
 * user, else `nobody`), bound to 127.0.0.1 with password authentication and no Unix socket.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { secretsDir } from './state';

export class PostgresError extends Error {
  override name = 'PostgresError';
}

export interface PostgresInstall {
  /** The folder that holds `postgres`, `initdb` and `pg_isready`. */
  binDir: string;
}

/** Who runs the server: the current user, or an unprivileged one when that is root (PostgreSQL refuses root). */
export interface PostgresUser {
  name: string;
  uid: number;
  gid: number;
}

export interface PostgresCluster {
  dataDir: string;
  /** The superuser Temporal connects as, and its password (kept in the state folder, mode 600). */
  user: string;
  password: string;
  runAs: PostgresUser;
}

const BINARIES = ['postgres', 'initdb', 'pg_isready'];

/** The newest `/usr/lib/postgresql/<version>/bin` (Debian's layout), or SETTLE_PG_BIN_DIR, or PATH. */
export function findPostgres(env: NodeJS.ProcessEnv = process.env): PostgresInstall | undefined {
  const complete = (dir: string) => BINARIES.every((name) => existsSync(path.join(dir, name)));
  if (env.SETTLE_PG_BIN_DIR) {
    if (!complete(env.SETTLE_PG_BIN_DIR)) {
      throw new PostgresError(`SETTLE_PG_BIN_DIR=${env.SETTLE_PG_BIN_DIR} lacks one of ${BINARIES.join(', ')}`);
    }
    return { binDir: env.SETTLE_PG_BIN_DIR };
  }
  const debian = '/usr/lib/postgresql';
  const versions = existsSync(debian)
    ? readdirSync(debian)
        .filter((v) => /^\d+$/.test(v))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  for (const version of versions) {
    const dir = path.join(debian, version, 'bin');
    if (complete(dir)) return { binDir: dir };
  }
  const onPath = (env.PATH ?? '').split(path.delimiter).find((dir) => dir && complete(dir));
  return onPath ? { binDir: onPath } : undefined;
}

/** Finds PostgreSQL, or installs Debian's `postgresql` package when running as root. */
export function ensurePostgres(
  env: NodeJS.ProcessEnv = process.env,
  log: (line: string) => void = (line) => process.stderr.write(`${line}\n`),
): PostgresInstall {
  const found = findPostgres(env);
  if (found) return found;
  if (process.getuid?.() !== 0) {
    throw new PostgresError(
      'PostgreSQL is not installed: `sudo apt-get install postgresql` (or set SETTLE_PG_BIN_DIR to its bin folder)',
    );
  }
  log('settle: installing PostgreSQL (apt-get install postgresql)…');
  const aptEnv = { ...env, DEBIAN_FRONTEND: 'noninteractive' };
  const install = () =>
    spawnSync('apt-get', ['install', '-y', '--no-install-recommends', 'postgresql'], { env: aptEnv, stdio: 'inherit' });
  if (install().status !== 0) {
    spawnSync('apt-get', ['update'], { env: aptEnv, stdio: 'inherit' });
    if (install().status !== 0) throw new PostgresError('apt-get install postgresql failed');
  }
  const installed = findPostgres(env);
  if (!installed) throw new PostgresError('the postgresql package is installed but its binaries were not found');
  return installed;
}

/** The user the server runs as: this one, or (as root) `postgres`, else `nobody`. */
export function postgresUser(): PostgresUser {
  if (process.getuid?.() !== 0) {
    return { name: String(process.env.USER ?? process.getuid?.()), uid: process.getuid!(), gid: process.getgid!() };
  }
  for (const name of ['postgres', 'nobody']) {
    const uid = spawnSync('id', ['-u', name], { encoding: 'utf8' });
    const gid = spawnSync('id', ['-g', name], { encoding: 'utf8' });
    if (uid.status === 0 && gid.status === 0) return { name, uid: Number(uid.stdout), gid: Number(gid.stdout) };
  }
  throw new PostgresError('running as root, and neither a `postgres` nor a `nobody` user exists to run PostgreSQL');
}

/** A folder only `user` may enter, in parents anyone may traverse (as `mkdir -p` makes them). */
function privateDir(dir: string, user: PostgresUser): void {
  mkdirSync(path.dirname(dir), { recursive: true });
  mkdirSync(dir, { recursive: true });
  chmodSync(dir, 0o700);
  chownSync(dir, user.uid, user.gid);
}

function canWrite(dir: string, user: PostgresUser): boolean {
  return spawnSync('test', ['-w', dir, '-a', '-x', dir], { uid: user.uid, gid: user.gid }).status === 0;
}

/**
 * The data folder: `<stateDir>/postgres/data`. When the unprivileged user cannot reach the state folder (a checkout
 * under /root), the cluster lives in /var/lib/settle/postgres-<hash of the state folder> instead, which the state
 * folder names in `postgres/location`.
 */
function dataDirFor(stateDir: string, user: PostgresUser): string {
  const home = path.resolve(stateDir, 'postgres');
  privateDir(home, user);
  if (canWrite(home, user)) return path.join(home, 'data');
  const hash = createHash('sha256').update(home).digest('hex').slice(0, 12);
  const elsewhere = `/var/lib/settle/postgres-${hash}`;
  privateDir(elsewhere, user);
  writeFileSync(path.join(home, 'location'), `${elsewhere}/data\n`);
  return path.join(elsewhere, 'data');
}

/**
 * Makes the database cluster once (initdb, superuser `temporal` with a random password, scram-sha-256 over TCP only);
 * later runs find it and read the password back.
 */
export function initCluster(
  install: PostgresInstall,
  stateDir: string,
  log: (line: string) => void = (line) => process.stderr.write(`${line}\n`),
): PostgresCluster {
  const runAs = postgresUser();
  const dataDir = dataDirFor(stateDir, runAs);
  const passwordFile = path.join(secretsDir(stateDir), 'postgres-password');
  const user = 'temporal';
  if (existsSync(path.join(dataDir, 'PG_VERSION'))) {
    if (!existsSync(passwordFile)) throw new PostgresError(`${dataDir} exists but ${passwordFile} is missing`);
    return { dataDir, user, password: readFileSync(passwordFile, 'utf8').trim(), runAs };
  }
  const password = randomBytes(24).toString('hex');
  writeFileSync(passwordFile, `${password}\n`, { mode: 0o600 });
  chmodSync(passwordFile, 0o600);
  // initdb reads the password from a file the unprivileged user can read: one beside the data folder, removed after.
  rmSync(dataDir, { recursive: true, force: true });
  const pwfile = path.join(path.dirname(dataDir), 'initdb-password');
  writeFileSync(pwfile, `${password}\n`, { mode: 0o600 });
  chownSync(pwfile, runAs.uid, runAs.gid);
  log(`settle: creating a PostgreSQL cluster in ${dataDir} (run as ${runAs.name})…`);
  try {
    const result = spawnSync(
      path.join(install.binDir, 'initdb'),
      ['-D', dataDir, '-U', user, `--pwfile=${pwfile}`, '--auth=scram-sha-256', '--encoding=UTF8', '--locale=C'],
      { uid: runAs.uid, gid: runAs.gid, cwd: path.dirname(dataDir), encoding: 'utf8' },
    );
    if (result.status !== 0) throw new PostgresError(`initdb failed:\n${result.stdout}${result.stderr}`);
  } finally {
    rmSync(pwfile, { force: true });
  }
  return { dataDir, user, password, runAs };
}

/** The server's command line: TCP on 127.0.0.1:<port> only, logs to stderr. */
export function postgresCommand(install: PostgresInstall, cluster: PostgresCluster, port: number) {
  return {
    command: path.join(install.binDir, 'postgres'),
    args: [
      '-D',
      cluster.dataDir,
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      `port=${port}`,
      '-c',
      'unix_socket_directories=',
      '-c',
      'max_connections=200',
    ],
    uid: cluster.runAs.uid,
    gid: cluster.runAs.gid,
    cwd: cluster.dataDir,
  };
}

/** Whether the server accepts connections (pg_isready). */
export function postgresReady(install: PostgresInstall, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const check = spawn(path.join(install.binDir, 'pg_isready'), ['-q', '-h', '127.0.0.1', '-p', String(port)]);
    check.on('error', () => resolve(false));
    check.on('exit', (code) => resolve(code === 0));
  });
}
