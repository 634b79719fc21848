/**
 * docker-compose.yml, checked without Docker: against the Compose Specification's JSON schema, vendored as
 * deploy/compose-spec.schema.json (github.com/compose-spec/compose-spec, schema/compose-spec.json at commit
 * 170098ba07d9f53c383a41bfd4c5166b0a4529a6, Apache License 2.0; CI has no internet), and against the repository and the
 * native run (`npm run cluster`): image tags pinned to the native versions, Settle's commands being npm scripts or
 * files that exist in the image, every mounted file present, every SETTLE_* / TEMPORAL_* variable one that the process
 * reads, the server run with the native configuration. Each rule is also shown failing on a mutated copy.
 */
import { execFileSync } from 'node:child_process';
import { builtinModules } from 'node:module';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Ajv from 'ajv';
import draft07 from 'ajv/dist/refs/json-schema-draft-07.json';
import { parse } from 'yaml';
import { z } from 'zod';
import { CodecEnvSchema } from '../../client/codec/keys';
import { ClientEnvSchema } from '../../client/config';
import { DevnetComposeConfigSchema, DEVNET_FILES, writeDevnetState } from '../../deploy/compose/devnet';
import { DEFAULT_CHAINS } from '../../devnet/chains';
import { ClusterConfigSchema } from '../../devnet/cluster';
import { TEMPORAL_SERVER_VERSION, TEMPORAL_UI_SERVER_VERSION } from '../../devnet/cluster/binaries';
import {
  DATABASES,
  DYNAMIC_CONFIG_FILE,
  SERVER_CONFIG_DIR,
  SERVER_CONFIG_ENV,
  temporalServerSpec,
  uiServerSpec,
  type TemporalPorts,
} from '../../devnet/cluster/temporal';
import { NetworksFileSchema } from '../../networks/config';
import { ApiConfigSchema } from '../../workers/api/config';
import { WatcherConfigSchema } from '../../workers/watcher/config';
import { WorkerConfigSchema } from '../../workers/worker/config';

const ROOT = path.resolve(__dirname, '../..');
const read = (file: string) => readFileSync(path.join(ROOT, file), 'utf8');

/** PostgreSQL's major version in the native run: Debian bookworm's package (devnet/cluster/postgres.ts). */
const NATIVE_POSTGRES_MAJOR = '15';
/** Workers the native run starts by default. */
const NATIVE_WORKERS = ClusterConfigSchema.parse({}).SETTLE_CLUSTER_WORKERS;
/** Where the devnet chains write their files: the config volume's mount point. */
const devnetDir = DevnetComposeConfigSchema.parse({}).SETTLE_STATE_DIR;

// ---------------------------------------------------------------------------------------------------------------------
// What the repository says

const packageJson = z
  .object({
    version: z.string(),
    engines: z.object({ node: z.string() }),
    scripts: z.record(z.string(), z.string()),
  })
  .parse(JSON.parse(read('package.json')));

const keysOf = (schema: z.ZodObject) => Object.keys(schema.shape);
/** Temporal's standard variables, as the package that reads them (@temporalio/envconfig) names them. */
const TEMPORAL_STANDARD = [
  ...new Set(
    readFileSync(require.resolve('@temporalio/envconfig/lib/envconfig-toml.js'), 'utf8').match(/TEMPORAL_[A-Z_]+/g) ??
      [],
  ),
];
const connection = [...TEMPORAL_STANDARD, ...keysOf(CodecEnvSchema)];
const apiEnvSchema = (ApiConfigSchema as unknown as { in: z.ZodObject }).in;

interface SettleProcess {
  /** SETTLE_* and TEMPORAL_* variables this process reads. */
  reads: string[];
  /** Parses the values the compose file gives (file-valued keys aside: their files exist only in the container). */
  schema: z.ZodType;
}
const FILE_KEYS = ['SETTLE_CONFIG', 'SETTLE_WATCH_SIGNING_KEY_FILE', 'SETTLE_API_TOKENS', 'SETTLE_EVIDENCE_KEYS'];
const withoutFileKeys = (schema: z.ZodObject) =>
  z.object(Object.fromEntries(Object.entries(schema.shape).filter(([key]) => !FILE_KEYS.includes(key))));

/** Settle's processes by entry file: the variables each one's configuration reads. */
const PROCESSES: Record<string, SettleProcess> = {
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
/** The native server's command line and the variables it sets (its configuration file reads them). */
const nativeServer = temporalServerSpec('temporal-server', { port: 7233, ports: samplePorts, db, logLevel: 'warn' });
const nativeUi = uiServerSpec('temporal-ui-server', { port: 8233, temporalAddress: '127.0.0.1:7233', namespace: 'x' });
const ownVariables = (env: NodeJS.ProcessEnv | undefined) => Object.keys(env ?? {}).filter((k) => !(k in process.env));

/** Whether .dockerignore keeps a file out of the image (Docker's rules: patterns from the root, `!` re-includes). */
function dockerIgnored(file: string, dockerignore: string): boolean {
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
function productionPackages(): Set<string> {
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
function runtimePackages(entry: string, seen = new Set<string>()): Set<string> {
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

// ---------------------------------------------------------------------------------------------------------------------
// The checker

const ServiceSchema = z.looseObject({
  image: z.string().optional(),
  build: z.unknown().optional(),
  command: z.union([z.string(), z.array(z.string())]).optional(),
  entrypoint: z.union([z.string(), z.array(z.string())]).optional(),
  environment: z.record(z.string(), z.union([z.string(), z.number(), z.boolean(), z.null()])).optional(),
  volumes: z
    .array(z.union([z.string(), z.looseObject({ source: z.string().optional(), target: z.string() })]))
    .optional(),
  ports: z.array(z.union([z.string(), z.number(), z.looseObject({ host_ip: z.string().optional() })])).optional(),
  deploy: z.looseObject({ replicas: z.union([z.number(), z.string()]).optional() }).optional(),
  profiles: z.array(z.string()).optional(),
  depends_on: z.record(z.string(), z.looseObject({ required: z.boolean().optional() })).optional(),
  healthcheck: z.looseObject({ test: z.union([z.string(), z.array(z.string())]).optional() }).optional(),
});
type Service = z.infer<typeof ServiceSchema>;
const ComposeSchema = z.looseObject({
  services: z.record(z.string(), ServiceSchema),
  volumes: z.record(z.string(), z.unknown()).optional(),
});

export interface Repository {
  dockerfile: string;
  dockerignore: string;
  /** The packages a production install (`npm ci --omit=dev`, as in the Dockerfile) provides, from package-lock.json. */
  installed: ReadonlySet<string>;
  exists(file: string): boolean;
}

const realRepository: Repository = {
  dockerfile: read('Dockerfile'),
  dockerignore: read('.dockerignore'),
  installed: productionPackages(),
  exists: (file) => existsSync(path.join(ROOT, file)),
};

const ajv = new Ajv({ allErrors: true, strict: false });
// The spec names its meta-schema by https; Ajv ships the same draft-07 meta-schema under its http id.
ajv.addMetaSchema({ ...draft07, $id: 'https://json-schema.org/draft-07/schema' });
const validateSpec = ajv.compile(JSON.parse(read('deploy/compose-spec.schema.json')) as object);

/** `${NAME:-default}` and `${NAME-default}` become their default, as with nothing set in the environment. */
const interpolate = (value: string) =>
  value.replace(/\$\{[A-Z0-9_]+:?-([^}]*)\}/g, '$1').replace(/\$\{[A-Z0-9_]+\}/g, '');
const list = (value: string | string[] | undefined) => (typeof value === 'string' ? value.split(/\s+/) : (value ?? []));
const imageOf = (service: Service) => {
  const [name, tag] = (service.image ?? '').split(':');
  return { name, tag: tag ?? '' };
};

/** The service's mounts as [source, target]; a bind mount's source is a repository path (`./x` → `x`). */
function mounts(service: Service): { source: string; target: string; bind: boolean }[] {
  return (service.volumes ?? []).map((volume) => {
    const [source, target] =
      typeof volume === 'string' ? interpolate(volume).split(':') : [volume.source ?? '', volume.target];
    const bind = source.startsWith('.') || source.startsWith('/');
    return { source: bind ? path.posix.normalize(source) : source, target, bind };
  });
}

/** The repository path a container path is mounted from, if a bind mount covers it. */
function repositoryPath(service: Service, containerPath: string): string | undefined {
  for (const mount of mounts(service)) {
    if (mount.bind && (containerPath === mount.target || containerPath.startsWith(`${mount.target}/`))) {
      return path.posix.join(mount.source, containerPath.slice(mount.target.length));
    }
  }
  return undefined;
}

const TSX = ['node', '--import', 'tsx'];

/**
 * The Settle entry file a command runs: `node --import tsx <file>` (as the native cluster runs it) where the file is
 * an npm script's (`tsx <file>`) or a compose job's (deploy/compose/), or `npm run <script>` of a `tsx <file>` script.
 */
function entryFile(name: string, command: string[], problems: string[] = []): string | undefined {
  if (command[0] === 'npm' && command[1] === 'run') {
    const script = packageJson.scripts[command[2]];
    if (!script) return void problems.push(`${name}: npm run ${command[2]} is not a script of package.json`);
    const [runner, file] = script.split(/\s+/);
    if (runner !== 'tsx' || !file) return void problems.push(`${name}: npm run ${command[2]} is not "tsx <file>"`);
    return file;
  }
  if (command.length === TSX.length + 1 && TSX.every((word, i) => command[i] === word)) {
    const file = command[TSX.length];
    const script = Object.values(packageJson.scripts).includes(`tsx ${file}`);
    if (!script && !file.startsWith('deploy/compose/')) {
      return void problems.push(`${name}: runs ${file}, which is neither an npm script's nor a compose job's`);
    }
    return file;
  }
  return void problems.push(`${name}: runs ${JSON.stringify(command)}, neither node --import tsx <file> nor npm run`);
}

function checkSettleService(name: string, service: Service, compose: z.infer<typeof ComposeSchema>, repo: Repository) {
  const problems: string[] = [];
  if (service.build !== '.')
    problems.push(`${name}: image ${service.image} must be built from the Dockerfile (build: .)`);
  if (imageOf(service).tag !== packageJson.version) {
    problems.push(`${name}: image ${service.image} is not tagged with package.json's version ${packageJson.version}`);
  }
  const entry = entryFile(name, list(service.command), problems);
  if (!entry) return problems;
  if (!repo.exists(entry)) return [...problems, `${name}: runs ${entry}, which does not exist`];
  if (dockerIgnored(entry, repo.dockerignore)) problems.push(`${name}: runs ${entry}, which .dockerignore leaves out`);
  for (const dependency of runtimePackages(entry)) {
    if (!repo.installed.has(dependency)) {
      problems.push(`${name}: ${entry} imports ${dependency}, which npm ci --omit=dev does not install`);
    }
  }
  const process = PROCESSES[entry];
  if (!process) return [...problems, `${name}: ${entry} is not a process whose configuration this test knows`];
  const env = Object.fromEntries(
    Object.entries(service.environment ?? {}).map(([key, value]) => [key, interpolate(String(value ?? ''))]),
  );
  for (const key of Object.keys(env).filter((k) => /^(SETTLE|TEMPORAL)_/.test(k))) {
    if (!process.reads.includes(key) && !key.startsWith('TEMPORAL_GRPC_META_')) {
      problems.push(`${name}: ${key} is not read by ${entry}`);
    }
  }
  const parsed = process.schema.safeParse(env);
  if (!parsed.success) {
    problems.push(`${name}: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  }
  // Files handed over in the config volume: those the devnet chains service writes there.
  for (const key of FILE_KEYS.filter((k) => env[k] !== undefined)) {
    const inVolume = mounts(service).find((m) => env[key].startsWith(`${m.target}/`));
    if (!inVolume) problems.push(`${name}: ${key}=${env[key]} is not in a mounted folder`);
    else if (!inVolume.bind && !Object.values<string>(DEVNET_FILES).includes(env[key].slice(devnetDir.length + 1))) {
      problems.push(
        `${name}: ${key}=${env[key]} is not a file the devnet chains write (${Object.values(DEVNET_FILES)})`,
      );
    }
  }
  for (const mount of mounts(service).filter((m) => !m.bind)) {
    if (!compose.volumes || !(mount.source in compose.volumes))
      problems.push(`${name}: volume ${mount.source} undeclared`);
  }
  return problems;
}

function checkTemporal(name: string, service: Service): string[] {
  const problems: string[] = [];
  const [binary, ...args] = list(service.entrypoint);
  const flag = (option: string) => args[args.indexOf(option) + 1];
  const configDir = repositoryPath(service, path.posix.join(flag('--root') ?? '', flag('--config') ?? ''));
  const nativeFlags = (nativeServer.args ?? []).filter(
    (a, i, all) =>
      !['--root', '--config', '--env'].includes(all[i - 1] ?? '') && !['--root', '--config', '--env'].includes(a),
  );
  const ownFlags = args.filter(
    (a, i) =>
      !['--root', '--config', '--env'].includes(args[i - 1] ?? '') && !['--root', '--config', '--env'].includes(a),
  );
  if (binary !== 'temporal-server' || configDir !== SERVER_CONFIG_DIR || flag('--env') !== SERVER_CONFIG_ENV) {
    problems.push(
      `${name}: must run temporal-server with the native configuration ${SERVER_CONFIG_DIR}/${SERVER_CONFIG_ENV}.yaml`,
    );
  }
  if (JSON.stringify(ownFlags) !== JSON.stringify(nativeFlags)) {
    problems.push(`${name}: flags ${ownFlags.join(' ')} differ from the native run's ${nativeFlags.join(' ')}`);
  }
  const template = read(`${SERVER_CONFIG_DIR}/${SERVER_CONFIG_ENV}.yaml`);
  const nativeVariables = ownVariables(nativeServer.env);
  for (const key of Object.keys(service.environment ?? {})) {
    if (!nativeVariables.includes(key) || !template.includes(`env "${key}"`)) {
      problems.push(`${name}: ${key} is not a variable of the native server's configuration`);
    }
  }
  const dynamic = String(service.environment?.DYNAMIC_CONFIG_FILE_PATH ?? '');
  if (repositoryPath(service, dynamic) !== DYNAMIC_CONFIG_FILE) {
    problems.push(`${name}: DYNAMIC_CONFIG_FILE_PATH=${dynamic} is not the native ${DYNAMIC_CONFIG_FILE}`);
  }
  return problems;
}

function checkSchemaJob(name: string, service: Service, repo: Repository): string[] {
  const script = list(service.command)[0] ?? '';
  const file = repositoryPath(service, script);
  if (!file || !repo.exists(file)) return [`${name}: runs ${script}, which no mounted repository file provides`];
  const text = read(file);
  const missing = [DATABASES.history, DATABASES.visibility, 'postgresql/v12/temporal', 'postgresql/v12/visibility'];
  return missing
    .filter((word) => !text.includes(word))
    .map((word) => `${name}: ${file} does not set up ${word} as the native run does`);
}

/** Everything wrong with a compose file, each problem naming the service and the rule it breaks. */
export function composeProblems(document: unknown, repo: Repository = realRepository): string[] {
  if (!validateSpec(document)) {
    return (validateSpec.errors ?? []).map((e) => `schema: ${e.instancePath || '/'} ${e.message}`);
  }
  const compose = ComposeSchema.parse(document);
  const problems: string[] = [];
  const services = Object.entries(compose.services);
  for (const [name, service] of services) {
    const { name: image, tag } = imageOf(service);
    if (!/\d/.test(tag) || tag === 'latest')
      problems.push(`${name}: image ${service.image} is not pinned to a version`);
    for (const port of service.ports ?? []) {
      const host = typeof port === 'object' ? port.host_ip : String(port).split(':').slice(0, -2).join(':');
      if (host !== '127.0.0.1') problems.push(`${name}: publishes ${JSON.stringify(port)} beyond 127.0.0.1`);
    }
    for (const mount of mounts(service).filter((m) => m.bind)) {
      if (!repo.exists(mount.source)) problems.push(`${name}: mounts ${mount.source}, which does not exist`);
    }
    for (const [dependency, options] of Object.entries(service.depends_on ?? {})) {
      const target = compose.services[dependency];
      if (!target) problems.push(`${name}: depends on ${dependency}, which is not a service`);
      else if (target.profiles?.length && !service.profiles?.length && options.required !== false) {
        problems.push(`${name}: depends on ${dependency} (profile ${target.profiles}) without required: false`);
      }
    }
    if (image === 'settle') problems.push(...checkSettleService(name, service, compose, repo));
    else if (image === 'temporalio/server') {
      if (tag !== TEMPORAL_SERVER_VERSION)
        problems.push(`${name}: ${service.image}, the native server is ${TEMPORAL_SERVER_VERSION}`);
      problems.push(...checkTemporal(name, service));
    } else if (image === 'temporalio/admin-tools') {
      if (!tag.startsWith(`${TEMPORAL_SERVER_VERSION}-`) && tag !== TEMPORAL_SERVER_VERSION) {
        problems.push(`${name}: ${service.image} is not the admin tools of server ${TEMPORAL_SERVER_VERSION}`);
      }
      problems.push(...checkSchemaJob(name, service, repo));
    } else if (image === 'temporalio/ui') {
      if (tag !== TEMPORAL_UI_SERVER_VERSION)
        problems.push(`${name}: ${service.image}, the native UI is ${TEMPORAL_UI_SERVER_VERSION}`);
      for (const key of Object.keys(service.environment ?? {}).filter((k) => !ownVariables(nativeUi.env).includes(k))) {
        problems.push(`${name}: ${key} is not a variable of the native UI server's configuration`);
      }
    } else if (image === 'postgres') {
      const [, major, debian] = /^(\d+)\.\d+-(\w+)$/.exec(tag) ?? [];
      const nodeDebian = /^FROM node:[\d.]+-(\w+)/m.exec(repo.dockerfile)?.[1];
      if (major !== NATIVE_POSTGRES_MAJOR || debian !== nodeDebian) {
        problems.push(
          `${name}: ${service.image} is not PostgreSQL ${NATIVE_POSTGRES_MAJOR}.x on ${nodeDebian} (native)`,
        );
      }
    } else problems.push(`${name}: image ${image} is not part of the native topology`);
  }
  problems.push(...checkTopology(services));
  problems.push(...checkDockerfile(repo));
  return problems;
}

/** The processes of the native run, each as often: workers, a watcher per network, the API, the one-shot jobs. */
function checkTopology(services: [string, Service][]): string[] {
  const problems: string[] = [];
  const running = (entry: string) => services.filter(([name, s]) => entryFile(name, list(s.command)) === entry);
  const workers = running('workers/worker/main.ts').reduce((n, [, s]) => n + Number(s.deploy?.replicas ?? 1), 0);
  if (workers !== NATIVE_WORKERS) problems.push(`worker: ${workers} replicas, the native run has ${NATIVE_WORKERS}`);
  const watched = running('workers/watcher/main.ts').map(([, s]) => String(s.environment?.SETTLE_WATCH_NETWORKS ?? ''));
  const networks = DEFAULT_CHAINS.map((chain) => chain.name);
  if (JSON.stringify([...watched].sort()) !== JSON.stringify([...networks].sort())) {
    problems.push(`watchers: one per network (${networks}) wanted, found ${JSON.stringify(watched)}`);
  }
  for (const entry of ['workers/api/main.ts', 'deploy/compose/register.ts', 'deploy/compose/devnet.ts']) {
    if (running(entry).length !== 1) problems.push(`topology: ${entry} should run in exactly one service`);
  }
  const [chainsName, chains] = running('deploy/compose/devnet.ts')[0] ?? [];
  if (chains && JSON.stringify(chains.profiles) !== '["devnet"]')
    problems.push(`${chainsName}: not in the devnet profile only`);
  const ready = path.posix.join(devnetDir, DEVNET_FILES.ready);
  if (chains && !list(chains.healthcheck?.test).includes(ready)) {
    problems.push(`${chainsName}: its health check must wait for ${ready}, written once the devnet is complete`);
  }
  return problems;
}

function checkDockerfile(repo: Repository): string[] {
  const problems: string[] = [];
  const [, major] = /^FROM node:(\d+)\.\d+\.\d+-\w+-slim$/m.exec(repo.dockerfile) ?? [];
  const engine = /(\d+)/.exec(packageJson.engines.node)?.[1];
  if (!major || major !== engine || major !== process.versions.node.split('.')[0]) {
    problems.push(`Dockerfile: FROM must pin node:<x.y.z>-<debian>-slim with the native Node ${process.versions.node}`);
  }
  if (!/^RUN npm ci --omit=dev\b/m.test(repo.dockerfile))
    problems.push('Dockerfile: must install with npm ci --omit=dev');
  if (!/^COPY \. \.$/m.test(repo.dockerfile)) problems.push('Dockerfile: must COPY . . (the sources tsx runs)');
  const cmd = /^CMD (\[.*\])$/m.exec(repo.dockerfile)?.[1];
  const entry = cmd ? entryFile('Dockerfile', z.array(z.string()).parse(JSON.parse(cmd)), problems) : undefined;
  if (!entry || !repo.exists(entry))
    problems.push(`Dockerfile: CMD ${cmd} does not run an entry file of the repository`);
  return problems;
}

// ---------------------------------------------------------------------------------------------------------------------

const composeText = read('docker-compose.yml');
const load = () => parse(composeText, { merge: true }) as { services: Record<string, Record<string, unknown>> };

/** A copy of docker-compose.yml with one change. */
function mutated(change: (compose: ReturnType<typeof load>) => void): unknown {
  const copy = load();
  change(copy);
  return copy;
}

describe('docker-compose.yml', () => {
  it('is valid against the Compose Specification and consistent with the repository and the native run', () => {
    expect(composeProblems(load())).toEqual([]);
  });

  it('is checked against a schema that is the vendored Compose Specification, itself a valid draft-07 schema', () => {
    expect(ajv.validateSchema(JSON.parse(read('deploy/compose-spec.schema.json')) as object)).toBe(true);
    expect(composeProblems({ services: { worker: { image: 'settle:0.1.0', replica: 2 } } })).toEqual([
      'schema: /services/worker must NOT have additional properties',
    ]);
  });

  it("runs the schema job's script from the repository: POSIX sh, executable", () => {
    const file = path.join(ROOT, 'deploy/compose/setup-postgres.sh');
    expect(execFileSync('sh', ['-n', file]).toString()).toBe('');
    expect(statSync(file).mode & 0o111).not.toBe(0);
  });

  it('has the devnet chains write, with the native functions, the files the other services are given', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'settle-compose-'));
    try {
      const chain = (name: string, port: number) => ({
        name,
        chainId: port,
        rpcUrl: `http://0.0.0.0:${port}`,
        blockTimeMs: 1000,
        process: undefined as never,
        stop: async () => undefined,
        contracts: {
          token: `0x${'1'.repeat(40)}`,
          escrow: `0x${'2'.repeat(40)}`,
          minter: `0x${'3'.repeat(40)}`,
        } as const,
      });
      const files = writeDevnetState(dir, { chainA: chain('chainA', 8545), chainB: chain('chainB', 8546) }, 'chains');
      for (const [what, file] of Object.entries(DEVNET_FILES)) {
        expect(files[what as keyof typeof files]).toBe(path.resolve(dir, file));
      }
      const networks = NetworksFileSchema.parse(JSON.parse(readFileSync(files.networks, 'utf8')));
      expect(Object.values(networks.networks).map((n) => n.rpcUrls)).toEqual([
        ['http://chains:8545'],
        ['http://chains:8546'],
      ]);
      expect(networks.trust?.verifyClaims).toBe(true);
      for (const secret of [files.watcherKey, files.apiTokens]) expect(statSync(secret).mode & 0o077).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('finds an image tag that is not the native version, or not pinned', () => {
    const server = mutated((c) => (c.services.temporal.image = 'temporalio/server:1.29.0'));
    expect(composeProblems(server)).toContain(
      `temporal: temporalio/server:1.29.0, the native server is ${TEMPORAL_SERVER_VERSION}`,
    );
    const ui = mutated((c) => (c.services['temporal-ui'].image = 'temporalio/ui:latest'));
    expect(composeProblems(ui)).toEqual(
      expect.arrayContaining([
        'temporal-ui: image temporalio/ui:latest is not pinned to a version',
        `temporal-ui: temporalio/ui:latest, the native UI is ${TEMPORAL_UI_SERVER_VERSION}`,
      ]),
    );
    const tools = mutated((c) => (c.services['temporal-schema'].image = 'temporalio/admin-tools:1.30.1'));
    expect(composeProblems(tools)).toContain(
      `temporal-schema: temporalio/admin-tools:1.30.1 is not the admin tools of server ${TEMPORAL_SERVER_VERSION}`,
    );
    const postgres = mutated((c) => (c.services.postgresql.image = 'postgres:16.4-bookworm'));
    expect(composeProblems(postgres)).toContain(
      'postgresql: postgres:16.4-bookworm is not PostgreSQL 15.x on bookworm (native)',
    );
  });

  it('finds a command that is not an npm script, or a file that does not exist', () => {
    const script = mutated((c) => (c.services.api.command = ['npm', 'run', 'http-api']));
    expect(composeProblems(script)).toContain('api: npm run http-api is not a script of package.json');
    const file = mutated((c) => (c.services.chains.command = [...TSX, 'deploy/compose/chains.ts']));
    expect(composeProblems(file)).toContain('chains: runs deploy/compose/chains.ts, which does not exist');
    const notAScript = mutated((c) => (c.services.api.command = [...TSX, 'workers/api/app.ts']));
    expect(composeProblems(notAScript)).toContain(
      "api: runs workers/api/app.ts, which is neither an npm script's nor a compose job's",
    );
    const exposed = mutated((c) => (c.services.api.ports = ['8080:8080']));
    expect(composeProblems(exposed)).toContain('api: publishes "8080:8080" beyond 127.0.0.1');
    const mount = mutated((c) => (c.services.temporal.volumes = ['./deploy/temporal-server:/etc/settle-temporal:ro']));
    expect(composeProblems(mount)).toContain('temporal: mounts deploy/temporal-server, which does not exist');
  });

  it('finds a variable the process does not read, or a value its configuration refuses', () => {
    const unread = mutated(
      (c) => ((c.services['watcher-chain-a'].environment as Record<string, string>).SETTLE_TASK_QUEUE = 'x'),
    );
    expect(composeProblems(unread)).toContain(
      'watcher-chain-a: SETTLE_TASK_QUEUE is not read by workers/watcher/main.ts',
    );
    const misspelt = mutated((c) => ((c.services.worker.environment as Record<string, string>).SETTLE_TASKQUEUE = 'x'));
    expect(composeProblems(misspelt)).toContain('worker: SETTLE_TASKQUEUE is not read by workers/worker/main.ts');
    const value = mutated((c) => ((c.services.worker.environment as Record<string, string>).SETTLE_LOG_LEVEL = 'LOUD'));
    expect(composeProblems(value).join('\n')).toMatch(/^worker: SETTLE_LOG_LEVEL: /m);
    const server = mutated((c) => ((c.services.temporal.environment as Record<string, string>).NUM_SHARDS = '8'));
    expect(composeProblems(server)).toContain(
      "temporal: NUM_SHARDS is not a variable of the native server's configuration",
    );
    const file = mutated(
      (c) => ((c.services.api.environment as Record<string, string>).SETTLE_API_TOKENS = '/etc/settle/tokens.json'),
    );
    expect(composeProblems(file).join('\n')).toMatch(
      /^api: SETTLE_API_TOKENS=\/etc\/settle\/tokens.json is not a file the devnet chains write/m,
    );
  });

  it('finds a topology that is not the native one', () => {
    const replicas = mutated((c) => (c.services.worker.deploy = { replicas: 1 }));
    expect(composeProblems(replicas)).toContain(`worker: 1 replicas, the native run has ${NATIVE_WORKERS}`);
    const oneWatcher = mutated((c) => delete c.services['watcher-chain-b']);
    expect(composeProblems(oneWatcher).join('\n')).toMatch(/^watchers: one per network/m);
    const config = mutated((c) => ((c.services.temporal.entrypoint as string[])[6] = 'development-sql'));
    expect(composeProblems(config).join('\n')).toMatch(
      /^temporal: must run temporal-server with the native configuration/m,
    );
    const flags = mutated((c) => (c.services.temporal.entrypoint as string[]).splice(7, 1));
    expect(composeProblems(flags).join('\n')).toMatch(
      /^temporal: flags start differ from the native run's --allow-no-auth start$/m,
    );
    const ui = mutated(
      (c) => ((c.services['temporal-ui'].environment as Record<string, string>).TEMPORAL_UI_PORT_X = '1'),
    );
    expect(composeProblems(ui)).toContain(
      "temporal-ui: TEMPORAL_UI_PORT_X is not a variable of the native UI server's configuration",
    );
    const health = mutated(
      (c) => (c.services.chains.healthcheck = { test: ['CMD', 'test', '-f', '/etc/settle/settle.config.json'] }),
    );
    expect(composeProblems(health)).toContain(
      'chains: its health check must wait for /etc/settle/devnet.ready, written once the devnet is complete',
    );
    const required = mutated(
      (c) => ((c.services.api.depends_on as Record<string, { required?: boolean }>).chains.required = true),
    );
    expect(composeProblems(required)).toContain('api: depends on chains (profile devnet) without required: false');
  });

  it('finds a Dockerfile or .dockerignore that would not build what the services run', () => {
    const ignoring = { ...realRepository, dockerignore: `${realRepository.dockerignore}\nworkers/watcher\n` };
    expect(composeProblems(load(), ignoring)).toContain(
      'watcher-chain-a: runs workers/watcher/main.ts, which .dockerignore leaves out',
    );
    const dev = { ...realRepository, dockerfile: realRepository.dockerfile.replace('npm ci --omit=dev', 'npm ci') };
    expect(composeProblems(load(), dev)).toContain('Dockerfile: must install with npm ci --omit=dev');
    const cmd = {
      ...realRepository,
      dockerfile: realRepository.dockerfile.replace(/^CMD .*$/m, 'CMD ["npm", "run", "wrk"]'),
    };
    expect(composeProblems(load(), cmd)).toContain('Dockerfile: npm run wrk is not a script of package.json');
    const withoutViem = new Set([...realRepository.installed].filter((name) => name !== 'viem'));
    expect(composeProblems(load(), { ...realRepository, installed: withoutViem })).toEqual(
      expect.arrayContaining([
        'worker: workers/worker/main.ts imports viem, which npm ci --omit=dev does not install',
        'watcher-chain-a: workers/watcher/main.ts imports viem, which npm ci --omit=dev does not install',
      ]),
    );
    expect(realRepository.installed.has('jest')).toBe(false); // a development dependency stays out of the image
    const node = {
      ...realRepository,
      dockerfile: realRepository.dockerfile.replace(/FROM node:\S+/, 'FROM node:22-slim'),
    };
    expect(composeProblems(load(), node).join('\n')).toMatch(/^Dockerfile: FROM must pin node/m);
  });
});
