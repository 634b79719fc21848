/**
 * `npm run cluster`: the production topology on one machine, each part its own process: PostgreSQL (a cluster of its
 * own in the state folder, on a free port of 127.0.0.1), the Temporal server 1.29.1 on it (history and advanced
 * visibility, the namespace and Settle's search attributes registered), the Temporal Web UI server, two workers, one
 * chain watcher per network and the HTTP API. Without SETTLE_CONFIG (a networks file) it first starts the two local
 * chains of `npm start`. State lives in SETTLE_CLUSTER_DIR (default .settle/cluster) and survives a restart; the
 * running cluster publishes its addresses and process ids in `<state>/cluster.json`. A process that dies is restarted;
 * Ctrl-C stops everything, in order.
 *
 * `npm run cluster -- --ensure` only obtains what the cluster needs (PostgreSQL, and the Temporal server, SQL tool
 * and UI server binaries, built once from the Go module proxy) and exits.
 */
import { mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { parseOrThrow } from '../contract/validation';
import { readNetworksFile } from '../networks/config';
import { DEFAULT_CHAINS, startLocalChains, writeLocalState, type LocalChains } from './chains';
import { ensureClusterBinaries, type ClusterBinaries } from './cluster/binaries';
import { ensurePostgres, initCluster, postgresCommand, postgresReady } from './cluster/postgres';
import { apiTokensFile, clusterPorts, publish, trustTheWatchers } from './cluster/state';
import { portFree, Supervisor, type ComponentSpec } from './cluster/supervisor';
import {
  DATABASES,
  REPO_ROOT,
  registerNamespace,
  setupSchemas,
  temporalServerSpec,
  uiServerSpec,
} from './cluster/temporal';

const Port = z.string().regex(/^\d+$/, 'must be a port number').transform(Number);

export const ClusterConfigSchema = z.object({
  /** The state folder: PostgreSQL's data, secrets (mode 600), logs, the networks file, cluster.json. */
  SETTLE_CLUSTER_DIR: z.string().min(1).default('.settle/cluster'),
  /** Temporal's frontend (gRPC) and the Web UI, on 127.0.0.1. */
  SETTLE_TEMPORAL_PORT: Port.default(7233),
  SETTLE_TEMPORAL_UI_PORT: Port.default(8233),
  SETTLE_TEMPORAL_LOG_LEVEL: z.enum(['debug', 'info', 'warn', 'error']).default('warn'),
  TEMPORAL_NAMESPACE: z.string().min(1).default('default'),
  /** A networks file for the workers and watchers; without it the cluster starts the two local chains. */
  SETTLE_CONFIG: z.string().min(1).optional(),
  SETTLE_CHAIN_A_PORT: Port.optional(),
  SETTLE_CHAIN_B_PORT: Port.optional(),
  SETTLE_CLUSTER_WORKERS: z
    .string()
    .regex(/^[1-9]$/, 'must be a number of workers from 1 to 9')
    .transform(Number)
    .default(2),
});
export type ClusterConfig = z.output<typeof ClusterConfigSchema>;

export class ClusterConfigError extends Error {
  override name = 'ClusterConfigError';
}

const say = (line: string) => process.stdout.write(`${line}\n`);
const API_CREDENTIAL_KEYS = [
  'SETTLE_API_TOKENS',
  'SETTLE_API_TOKEN',
  'SETTLE_EVIDENCE_KEYS',
  'SETTLE_EVIDENCE_SECRET',
  'SETTLE_API_INSECURE_NO_AUTH',
];

/** Obtains PostgreSQL and the three binaries; no process is started. */
export async function ensureCluster(
  env: NodeJS.ProcessEnv = process.env,
): Promise<ClusterBinaries & { pgBin: string }> {
  const postgres = ensurePostgres(env);
  return { ...(await ensureClusterBinaries(env)), pgBin: postgres.binDir };
}

/** A project entry point run by Node through tsx, as `npm run …` runs it. */
function tsxProcess(name: string, script: string, env: NodeJS.ProcessEnv, ready: RegExp): ComponentSpec {
  return {
    name,
    command: process.execPath,
    args: ['--import', 'tsx', script],
    cwd: REPO_ROOT,
    env,
    ready: (output) => ready.test(output),
    readyTimeoutMs: 180_000,
  };
}

function localChainSpecs(config: ClusterConfig) {
  const ports = [config.SETTLE_CHAIN_A_PORT, config.SETTLE_CHAIN_B_PORT];
  return DEFAULT_CHAINS.map((spec, i) => (ports[i] ? { ...spec, port: ports[i] } : spec));
}

/** The ports people connect to must be free: a clear message rather than a server that exits at start. */
async function portsAreFree(config: ClusterConfig): Promise<void> {
  const wanted = [
    ['SETTLE_TEMPORAL_PORT', config.SETTLE_TEMPORAL_PORT],
    ['SETTLE_TEMPORAL_UI_PORT', config.SETTLE_TEMPORAL_UI_PORT],
    ['SETTLE_API_PORT', Number(process.env.SETTLE_API_PORT ?? 8080)],
  ] as const;
  for (const [key, port] of wanted) {
    // SETTLE_API_PORT=0 picks a free port; the API checks its own setting.
    if (Number.isInteger(port) && port > 0 && port < 65_536 && !(await portFree(port))) {
      throw new ClusterConfigError(`${key}: port ${port} on 127.0.0.1 is in use (another stack running?)`);
    }
  }
}

export async function runCluster(config: ClusterConfig): Promise<void> {
  const stateDir = path.resolve(config.SETTLE_CLUSTER_DIR);
  mkdirSync(stateDir, { recursive: true });
  const logDir = path.join(stateDir, 'logs');
  const namespace = config.TEMPORAL_NAMESPACE;
  const address = `127.0.0.1:${config.SETTLE_TEMPORAL_PORT}`;
  const uiUrl = `http://127.0.0.1:${config.SETTLE_TEMPORAL_UI_PORT}`;
  let local: LocalChains | undefined;
  let chains: Promise<LocalChains> | undefined;
  let migrating: Promise<void> | undefined;
  let published: Record<string, unknown> = { pid: process.pid, stateDir, state: 'starting' };
  // SETTLE_CONFIG is a file (made absolute: the processes run from the repository) or the JSON itself.
  const given = config.SETTLE_CONFIG;
  const givenNetworks = given && !given.trimStart().startsWith('{') ? path.resolve(given) : given;
  const supervisor = new Supervisor(logDir, say, {
    changed: () => publish(stateDir, { ...published, components: supervisor.state() }),
    failed: (error) => {
      process.stderr.write(`settle cluster: ${error.message}\n`);
      void stop(1);
    },
  });
  const update = (fields: Record<string, unknown>) => {
    published = { ...published, ...fields };
    publish(stateDir, { ...published, components: supervisor.state() });
  };

  let stopping: Promise<void> | undefined;
  const stop = (code: number) => {
    stopping ??= (async () => {
      say('settle cluster: stopping…');
      // A schema update is left to finish: PostgreSQL stopped half-way through one would need a repair.
      await migrating?.catch(() => undefined);
      await supervisor.stopAll();
      await chains?.then((started) => started.stop()).catch(() => undefined);
      rmSync(path.join(stateDir, 'cluster.json'), { force: true });
      say('settle cluster: stopped');
      process.exit(code);
    })();
    return stopping;
  };
  process.once('SIGINT', () => void stop(0));
  process.once('SIGTERM', () => void stop(0));
  process.once('SIGHUP', () => void stop(0));

  try {
    say(`settle cluster: state in ${stateDir}; logs in ${logDir}`);
    await portsAreFree(config);
    // A networks file given is read first: its mistakes are reported before anything starts.
    if (givenNetworks) readNetworksFile(givenNetworks);
    chains = config.SETTLE_CONFIG
      ? undefined
      : startLocalChains(localChainSpecs(config)).then((started) => (local = started));
    chains?.catch(() => undefined);
    const install = ensurePostgres();
    const binaries = await ensureClusterBinaries();
    const ports = await clusterPorts(stateDir);
    const pg = initCluster(install, stateDir, say);
    const db = { port: ports.postgres, user: pg.user, password: pg.password };

    await supervisor.start({
      name: 'postgres',
      ...postgresCommand(install, pg, ports.postgres),
      ready: () => postgresReady(install, ports.postgres),
      stopSignal: 'SIGINT',
      stopTimeoutMs: 30_000,
    });
    say(`settle cluster: PostgreSQL on 127.0.0.1:${ports.postgres} (${pg.dataDir}, run as ${pg.runAs.name})`);
    migrating = setupSchemas(binaries.sqlTool, db);
    await migrating;
    await supervisor.start(
      temporalServerSpec(binaries.server, {
        port: config.SETTLE_TEMPORAL_PORT,
        ports,
        db,
        logLevel: config.SETTLE_TEMPORAL_LOG_LEVEL,
      }),
    );
    await registerNamespace(address, namespace);
    say(`settle cluster: Temporal ${address}, namespace "${namespace}", visibility on PostgreSQL`);
    await supervisor.start(
      uiServerSpec(binaries.uiServer, { port: config.SETTLE_TEMPORAL_UI_PORT, temporalAddress: address, namespace }),
    );

    let networksFile = givenNetworks;
    let watcherKey: string | undefined;
    if (!networksFile) {
      const started = await chains!;
      networksFile = writeLocalState(stateDir, started.chains);
      watcherKey = trustTheWatchers(stateDir, networksFile);
      for (const chain of Object.values(started.chains)) {
        say(`settle cluster: ${chain.name}: chain id ${chain.chainId} on ${chain.rpcUrl}`);
      }
    }
    const networks = Object.keys(readNetworksFile(networksFile).networks);
    const processEnv = {
      ...process.env,
      TEMPORAL_ADDRESS: address,
      TEMPORAL_NAMESPACE: namespace,
      SETTLE_CONFIG: networksFile,
    };

    await Promise.all(
      Array.from({ length: config.SETTLE_CLUSTER_WORKERS }, (_, i) =>
        supervisor.start(
          tsxProcess(`worker-${i + 1}`, 'workers/worker/main.ts', processEnv, /settle worker: task queue/),
        ),
      ),
    );
    await Promise.all(
      networks.map((network) =>
        supervisor.start(
          tsxProcess(
            `watcher-${network}`,
            'workers/watcher/main.ts',
            {
              ...processEnv,
              SETTLE_WATCH_NETWORKS: network,
              ...(watcherKey ? { SETTLE_WATCH_SIGNING_KEY_FILE: watcherKey } : {}),
            },
            /"msg":"watcher started"/,
          ),
        ),
      ),
    );
    const ownCredentials = API_CREDENTIAL_KEYS.some((key) => process.env[key] !== undefined);
    const tokensFile = ownCredentials ? undefined : apiTokensFile(stateDir);
    await supervisor.start(
      tsxProcess(
        'api',
        'workers/api/main.ts',
        { ...processEnv, ...(tokensFile ? { SETTLE_API_TOKENS: tokensFile } : {}) },
        /settle api: listening on \S+/,
      ),
    );
    const api = /settle api: listening on (\S+)/.exec(supervisor.output('api'))?.[1];

    supervisor.markUp();
    update({
      state: 'running',
      temporal: { address, namespace, metrics: `http://127.0.0.1:${ports.metrics}/metrics` },
      ui: `${uiUrl}/namespaces/${namespace}/workflows`,
      api,
      apiTokensFile: tokensFile,
      postgres: { address: `127.0.0.1:${ports.postgres}`, user: pg.user, databases: DATABASES, dataDir: pg.dataDir },
      networksFile,
      networks,
      ...(local ? { chains: Object.fromEntries(Object.values(local.chains).map((c) => [c.name, c.rpcUrl])) } : {}),
    });
    say(
      [
        `settle cluster: Web UI ${uiUrl}/namespaces/${namespace}/workflows`,
        `settle cluster: HTTP API ${api}${tokensFile ? ` (token "operator" in ${tokensFile})` : ''}`,
        `settle cluster: ${config.SETTLE_CLUSTER_WORKERS} workers; watchers for ${networks.join(', ')}; networks file ${networksFile}`,
        `settle cluster: running (addresses and pids in ${path.join(stateDir, 'cluster.json')}); Ctrl-C stops everything`,
      ].join('\n'),
    );
  } catch (error) {
    process.stderr.write(`settle cluster: ${(error as Error).message}\n`);
    await stop(1);
  }
}

if (require.main === module) {
  if (process.argv.includes('--ensure')) {
    ensureCluster()
      .then((found) => {
        process.stderr.write(
          `settle: PostgreSQL ${found.pgBin}; Temporal server ${found.server}; SQL tool ${found.sqlTool}; UI server ${found.uiServer}\n`,
        );
      })
      .catch((error: Error) => {
        process.stderr.write(`${error.message}\n`);
        process.exit(1);
      });
  } else {
    let config: ClusterConfig;
    try {
      config = parseOrThrow(ClusterConfigSchema, process.env, 'cluster configuration', { error: ClusterConfigError });
    } catch (error) {
      process.stderr.write(`settle cluster: ${(error as Error).message}\n`);
      process.exit(1);
    }
    void runCluster(config);
  }
}
