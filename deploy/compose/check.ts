/**
 * Checks docker-compose.yml without Docker: against the Compose Specification's JSON schema, vendored as
 * deploy/compose-spec.schema.json (github.com/compose-spec/compose-spec, schema/compose-spec.json at commit
 * 170098ba07d9f53c383a41bfd4c5166b0a4529a6, Apache License 2.0; CI has no internet), and against the repository and the
 * native run (deploy/compose/repository.ts): image tags pinned to the native versions, Settle's commands entry files of
 * npm scripts or compose jobs present in the image, mounted files present, every SETTLE_* / TEMPORAL_* variable one
 * that the process reads, the server run with the native configuration, the native topology.
 *
 *   npx tsx deploy/compose/check.ts [docker-compose.yml]   # prints each problem; exit code 1 if there is one
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import Ajv from 'ajv';
import draft07 from 'ajv/dist/refs/json-schema-draft-07.json';
import { parse } from 'yaml';
import { z } from 'zod';
import { DEFAULT_CHAINS } from '../../devnet/chains';
import { TEMPORAL_SERVER_VERSION, TEMPORAL_UI_SERVER_VERSION } from '../../devnet/cluster/binaries';
import { DATABASES, DYNAMIC_CONFIG_FILE, SERVER_CONFIG_DIR, SERVER_CONFIG_ENV } from '../../devnet/cluster/temporal';
import { DEVNET_FILES } from './devnet';
import {
  devnetDir,
  dockerIgnored,
  FILE_KEYS,
  NATIVE_POSTGRES_MAJOR,
  NATIVE_WORKERS,
  nativeServer,
  nativeUi,
  ownVariables,
  packageJson,
  PROCESSES,
  read,
  realRepository,
  ROOT,
  runtimePackages,
  type Repository,
} from './repository';

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

export const ajv = new Ajv({ allErrors: true, strict: false });
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

export const TSX = ['node', '--import', 'tsx'];

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

/** A compose file's text as Compose reads it (YAML merge keys included). */
export function loadCompose(text: string): unknown {
  return parse(text, { merge: true }) as unknown;
}

if (require.main === module) {
  const file = process.argv[2] ?? path.join(ROOT, 'docker-compose.yml');
  const problems = composeProblems(loadCompose(readFileSync(file, 'utf8')));
  for (const problem of problems) process.stderr.write(`${problem}\n`);
  process.stdout.write(problems.length ? `${file}: ${problems.length} problems\n` : `${file}: no problem found\n`);
  process.exit(problems.length ? 1 : 0);
}
