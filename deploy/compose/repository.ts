/**
 * What docker-compose.yml is checked against (deploy/compose/check.ts): the repository (package.json and its lock, the
 * Dockerfile, .dockerignore, the files) and the native run (`npm run cluster`: its versions, the server's command line
 * and variables, the number of workers), read from the code that defines them rather than copied.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import path from 'node:path';
import { z } from 'zod';
import { CodecEnvSchema } from '../../client/codec/keys';
import { ClientEnvSchema } from '../../client/config';
import { ClusterConfigSchema } from '../../devnet/cluster';
import { temporalServerSpec, uiServerSpec, type TemporalPorts } from '../../devnet/cluster/temporal';
import { ApiConfigSchema } from '../../workers/api/config';
import { WatcherConfigSchema } from '../../workers/watcher/config';
import { WorkerConfigSchema } from '../../workers/worker/config';
import { DevnetComposeConfigSchema } from './devnet';

export const ROOT = path.resolve(__dirname, '../..');
export const read = (file: string) => readFileSync(path.join(ROOT, file), 'utf8');

/** PostgreSQL's major version in the native run: Debian bookworm's package (devnet/cluster/postgres.ts). */
export const NATIVE_POSTGRES_MAJOR = '15';
/** Workers the native run starts by default. */
export const NATIVE_WORKERS = ClusterConfigSchema.parse({}).SETTLE_CLUSTER_WORKERS;
/** Where the devnet chains write their files: the config volume's mount point. */
export const devnetDir = DevnetComposeConfigSchema.parse({}).SETTLE_STATE_DIR;

export const packageJson = z
  .object({
    version: z.string(),
    engines: z.object({ node: z.string() }),
    scripts: z.record(z.string(), z.string()),
  })
  .parse(JSON.parse(read('package.json')));

const keysOf = (schema: z.ZodObject) => Object.keys(schema.shape);
/** Temporal's standard variables, as the package that reads them (@temporalio/envconfig) names them. */
export const TEMPORAL_STANDARD = [
  ...new Set(
    readFileSync(require.resolve('@temporalio/envconfig/lib/envconfig-toml.js'), 'utf8').match(/TEMPORAL_[A-Z_]+/g) ??
      [],
  ),
];
const connection = [...TEMPORAL_STANDARD, ...keysOf(CodecEnvSchema)];
const apiEnvSchema = (ApiConfigSchema as unknown as { in: z.ZodObject }).in;

export interface SettleProcess {
  /** SETTLE_* and TEMPORAL_* variables this process reads. */
  reads: string[];
  /** Parses the values the compose file gives (file-valued keys aside: their files exist only in the container). */
  schema: z.ZodType;
}
export const FILE_KEYS = [
  'SETTLE_CONFIG',
  'SETTLE_WATCH_SIGNING_KEY_FILE',
  'SETTLE_API_TOKENS',
  'SETTLE_EVIDENCE_KEYS',
];
const withoutFileKeys = (schema: z.ZodObject) =>
  z.object(Object.fromEntries(Object.entries(schema.shape).filter(([key]) => !FILE_KEYS.includes(key))));

/** Settle's processes by entry file: the variables each one's configuration reads. */
export const PROCESSES: Record<string, SettleProcess> = {
  'workers/worker/main.ts': {
    reads: [...keysOf(WorkerConfigSchema), ...connection],
    schema: WorkerConfigSchema,
  },
  'workers/watcher/main.ts': {
    reads: [...keysOf(WatcherConfigSchema), ...connection],
    schema: withoutFileKeys(WatcherConfigSchema),
  },
  'workers/api/main.ts': {
    reads: [...keysOf(apiEnvSchema), ...keysOf(ClientEnvSchema), ...connection],
    schema: withoutFileKeys(apiEnvSchema),
  },
  'deploy/compose/devnet.ts': { reads: keysOf(DevnetComposeConfigSchema), schema: DevnetComposeConfigSchema },
  'deploy/compose/register.ts': { reads: TEMPORAL_STANDARD, schema: z.object({}) },
};

const samplePorts = Object.fromEntries(
  ['frontendHttp', 'frontendMembership', 'history', 'historyMembership']
    .concat(['matching', 'matchingMembership', 'worker', 'workerMembership', 'metrics'])
    .map((name, i) => [name, 7300 + i]),
) as unknown as TemporalPorts;
const db = { port: 5432, user: 'temporal', password: 'x' };

/** A native part's spec as it is built with an empty environment: only the variables it sets itself. */
function ownSpec<T>(build: () => T): T {
  const environment = process.env;
  process.env = {};
  try {
    return build();
  } finally {
    process.env = environment;
  }
}
/** The native server's command line and the variables it sets (its configuration file reads them). */
export const nativeServer = ownSpec(() =>
  temporalServerSpec('temporal-server', { port: 7233, ports: samplePorts, db, logLevel: 'warn' }),
);
/** The native UI server's variables (those of Temporal's UI image). */
export const nativeUi = ownSpec(() =>
  uiServerSpec('temporal-ui-server', { port: 8233, temporalAddress: '127.0.0.1:7233', namespace: 'x' }),
);
export const ownVariables = (env: NodeJS.ProcessEnv | undefined) => Object.keys(env ?? {});

/** Whether .dockerignore keeps a file out of the image (Docker's rules: patterns from the root, `!` re-includes). */
export function dockerIgnored(file: string, dockerignore: string): boolean {
  let ignored = false;
  for (const raw of dockerignore.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const negated = line.startsWith('!');
    const pattern = (negated ? line.slice(1) : line).replace(/^\/+|\/+$/g, '');
    const source = pattern
      .split(/(\*\*|\*|\?)/)
      .map((part) => ({ '**': '.*', '*': '[^/]*', '?': '[^/]' })[part] ?? part.replace(/[.+^${}()|[\]\\]/g, '\\$&'))
      .join('');
    if (new RegExp(`^${source}(/.*)?$`).test(file)) ignored = !negated;
  }
  return ignored;
}

/** Top-level packages of package-lock.json that are not development-only: what `npm ci --omit=dev` installs. */
export function productionPackages(): Set<string> {
  const lock = z
    .object({ packages: z.record(z.string(), z.looseObject({ dev: z.boolean().optional() })) })
    .parse(JSON.parse(read('package-lock.json')));
  return new Set(
    Object.entries(lock.packages)
      .filter(([where, entry]) => /^node_modules\/(@[^/]+\/)?[^/]+$/.test(where) && !entry.dev)
      .map(([where]) => where.slice('node_modules/'.length)),
  );
}

/** The packages a file imports at run time, following its relative imports (type-only imports left out). */
export function runtimePackages(entry: string, seen = new Set<string>()): Set<string> {
  const packages = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    const text = read(file).replace(/^\s*(import|export) type [^;]*;/gms, '');
    const specifiers = /(?:\bfrom\s+|^import\s+|\brequire(?:\.resolve)?\(|\bimport\()'([^']+)'/gm;
    for (const [, specifier] of text.matchAll(specifiers)) {
      if (specifier.startsWith('.')) {
        const base = path.join(path.dirname(file), specifier);
        const found = [base, `${base}.ts`, `${base}/index.ts`].find(
          (f) => f.endsWith('.ts') && existsSync(path.join(ROOT, f)) && statSync(path.join(ROOT, f)).isFile(),
        );
        if (found) visit(found);
      } else if (!specifier.startsWith('node:') && !builtinModules.includes(specifier)) {
        packages.add(
          specifier
            .split('/')
            .slice(0, specifier.startsWith('@') ? 2 : 1)
            .join('/'),
        );
      }
    }
  };
  visit(entry);
  return packages;
}

export interface Repository {
  dockerfile: string;
  dockerignore: string;
  /** The packages a production install (`npm ci --omit=dev`, as in the Dockerfile) provides, from package-lock.json. */
  installed: ReadonlySet<string>;
  exists(file: string): boolean;
}

export const realRepository: Repository = {
  dockerfile: read('Dockerfile'),
  dockerignore: read('.dockerignore'),
  installed: productionPackages(),
  exists: (file) => existsSync(path.join(ROOT, file)),
};
