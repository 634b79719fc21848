/**
 * `npm run compose:native`: docker-compose.yml's services with the `devnet` profile, run on this machine as the file
 * says (their commands, variables and mounted files), where Docker is not available. What Docker would provide is
 * replaced: service names and 0.0.0.0 by 127.0.0.1, ports by free ones, the config volume by a temporary folder, the
 * images' programs by the native cluster's (PostgreSQL 15, temporal-sql-tool, temporal-server and the UI server at the
 * same versions). Then a bridge transfer through the API with the devnet's token, followed until it ends, and every
 * metrics endpoint read; everything is stopped. Exit code 0 only if the transfer completed.
 */
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { bridgeTransfer } from '../../client/plans';
import { DEV_KEYS, DEFAULT_CHAINS } from '../../devnet/chains';
import { ensureCluster } from '../../devnet/cluster';
import { initCluster, postgresCommand, postgresReady } from '../../devnet/cluster/postgres';
import { freePort, portFree, portOpen, sleep, Supervisor } from '../../devnet/cluster/supervisor';
import { privateKeyToAccount } from 'viem/accounts';
import { loadCompose } from './check';
import { DEVNET_FILES } from './devnet';
import { ROOT } from './repository';

const Service = z.looseObject({
  command: z.array(z.string()).optional(),
  entrypoint: z.array(z.string()).optional(),
  environment: z.record(z.string(), z.union([z.string(), z.number()])).optional(),
  volumes: z.array(z.string()).optional(),
  deploy: z.looseObject({ replicas: z.number().optional() }).optional(),
});
const compose = z
  .object({ services: z.record(z.string(), Service) })
  .parse(loadCompose(readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8'))).services;

const say = (line: string) => process.stdout.write(`compose:native: ${line}\n`);
const interpolate = (value: string | number) => String(value).replace(/\$\{[A-Z0-9_]+:?-([^}]*)\}/g, '$1');

/** A port below 32768 (Temporal stores its hosts' ports as smallint). */
async function lowPort(): Promise<number> {
  for (;;) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    if (await portFree(port)) return port;
  }
}

/** A container path as the file on this machine its bind mount (`./x:/target`) or the config volume provides. */
function hostPath(service: string, containerPath: string, configDir: string): string {
  if (containerPath === '/etc/settle' || containerPath.startsWith('/etc/settle/')) {
    return path.join(configDir, containerPath.slice('/etc/settle'.length));
  }
  for (const volume of compose[service].volumes ?? []) {
    const [source, target] = volume.split(':');
    if (source.startsWith('.') && (containerPath === target || containerPath.startsWith(`${target}/`))) {
      return path.join(ROOT, source, containerPath.slice(target.length));
    }
  }
  return containerPath;
}

/** The service's variables as the file gives them, with Docker's addresses, ports and paths made this machine's. */
async function environment(service: string, configDir: string, extra: Record<string, string> = {}) {
  const env: Record<string, string> = { PATH: process.env.PATH ?? '', HOME: os.homedir() };
  for (const [key, raw] of Object.entries(compose[service].environment ?? {})) {
    let value = interpolate(raw);
    if (value === '0.0.0.0') value = '127.0.0.1';
    if (value.startsWith('/')) value = hostPath(service, value, configDir);
    if (/_METRICS_PORT$|^SETTLE_API_PORT$/.test(key)) value = String(await freePort());
    env[key] = value;
  }
  return { ...env, ...extra };
}

function runToEnd(name: string, command: string, args: string[], env: NodeJS.ProcessEnv): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.on('exit', (code) =>
      code === 0 ? resolve() : reject(new Error(`${name} exited ${code}:\n${output.slice(-2000)}`)),
    );
  });
}

async function main(): Promise<number> {
  for (const chain of DEFAULT_CHAINS) {
    if (!(await portFree(chain.port))) throw new Error(`port ${chain.port} (${chain.name}) is in use: stop npm start`);
  }
  const { server, sqlTool, uiServer, pgBin } = await ensureCluster();
  const stateDir = mkdtempSync(path.join(os.tmpdir(), 'settle-compose-native-'));
  chmodSync(stateDir, 0o755); // PostgreSQL's unprivileged user keeps its data folder inside
  const configDir = path.join(stateDir, 'etc-settle');
  const supervisor = new Supervisor(path.join(stateDir, 'logs'), say);
  try {
    // postgresql, then the one-shot temporal-schema job: its script, with the same temporal-sql-tool version.
    const pg = initCluster({ binDir: pgBin }, stateDir, say);
    const pgPort = await freePort();
    const postgres = postgresCommand({ binDir: pgBin }, pg, pgPort);
    await supervisor.start({ name: 'postgresql', ...postgres, ready: () => postgresReady({ binDir: pgBin }, pgPort) });
    const [shell] = compose['temporal-schema'].entrypoint!;
    const [script] = compose['temporal-schema'].command!;
    const database = { POSTGRES_SEEDS: '127.0.0.1', DB_PORT: String(pgPort), POSTGRES_USER: pg.user };
    await runToEnd('temporal-schema', shell, [hostPath('temporal-schema', script, configDir)], {
      ...(await environment('temporal-schema', configDir, { ...database, SQL_PASSWORD: pg.password })),
      PATH: `${path.dirname(sqlTool)}:${process.env.PATH}`,
    });
    say('temporal-schema: done');

    // temporal: the entrypoint's arguments, its mounted configuration, on free ports.
    const temporalPort = await lowPort();
    const ports: Record<string, string> = { FRONTEND_GRPC_PORT: String(temporalPort) };
    for (const key of [
      'FRONTEND_HTTP',
      'FRONTEND_MEMBERSHIP',
      'HISTORY_GRPC',
      'HISTORY_MEMBERSHIP',
      'MATCHING_GRPC',
    ].concat(['MATCHING_MEMBERSHIP', 'WORKER_GRPC', 'WORKER_MEMBERSHIP'])) {
      ports[`${key}_PORT`] = String(await lowPort());
    }
    const [, ...serverArgs] = compose.temporal.entrypoint!;
    await supervisor.start({
      name: 'temporal',
      command: server,
      args: serverArgs.map((arg) => (arg.startsWith('/') ? hostPath('temporal', arg, configDir) : arg)),
      env: {
        ...(await environment('temporal', configDir, { ...database, POSTGRES_PWD: pg.password, ...ports })),
        PROMETHEUS_ENDPOINT: `127.0.0.1:${await freePort()}`,
      },
      cwd: ROOT,
      ready: () => portOpen(temporalPort),
    });
    const address = `127.0.0.1:${temporalPort}`;
    const settleEnv = (service: string, extra: Record<string, string> = {}) =>
      environment(service, configDir, { TEMPORAL_ADDRESS: address, ...extra });
    const [node, ...registerArgs] = compose['temporal-register'].command!;
    await runToEnd('temporal-register', node, registerArgs, await settleEnv('temporal-register'));
    say('temporal-register: done');

    const uiPort = await freePort();
    await supervisor.start({
      name: 'temporal-ui',
      command: uiServer,
      args: ['--root', ROOT, '--config', 'deploy/temporal/ui', '--env', 'cluster', 'start'],
      env: await environment('temporal-ui', configDir, {
        TEMPORAL_ADDRESS: address,
        TEMPORAL_UI_IP: '127.0.0.1',
        TEMPORAL_UI_PORT: String(uiPort),
      }),
      ready: async () => (await fetch(`http://127.0.0.1:${uiPort}/`).catch(() => undefined))?.ok === true,
    });

    // The devnet chains, then the Settle services, each as many times as the file says.
    const metrics: [string, string][] = [];
    const settle = async (service: string, ready: RegExp, extra: Record<string, string> = {}) => {
      const [command, ...args] = compose[service].command!;
      const replicas = compose[service].deploy?.replicas ?? 1;
      let env: Record<string, string> = {};
      for (let i = 1; i <= replicas; i++) {
        const name = replicas > 1 ? `${service}-${i}` : service;
        env = await settleEnv(service, extra); // each replica its own metrics port
        await supervisor.start({ name, command, args, env, cwd: ROOT, ready: (out) => ready.test(out) });
        const port = Object.entries(env).find(([key]) => key.endsWith('_METRICS_PORT'))?.[1];
        if (port) metrics.push([name, port]);
      }
      return env;
    };
    // The chains listen on loopback here; in their container, on its interfaces.
    await settle('chains', /devnet: networks file/, {
      SETTLE_DEVNET_RPC_HOST: '127.0.0.1',
      SETTLE_DEVNET_LISTEN: '127.0.0.1',
    });
    if (!existsSync(path.join(configDir, DEVNET_FILES.ready))) throw new Error('the devnet wrote no ready marker');
    await settle('worker', /settle worker: task queue/);
    for (const name of ['watcher-chain-a', 'watcher-chain-b']) await settle(name, /"msg":"watcher started"/);
    const api = await settle('api', /settle api: listening on \S+/);
    supervisor.markUp();

    const token = z
      .object({ operator: z.object({ token: z.string() }) })
      .parse(JSON.parse(readFileSync(path.join(configDir, DEVNET_FILES.apiTokens), 'utf8'))).operator.token;
    const networks = JSON.parse(readFileSync(path.join(configDir, DEVNET_FILES.networks), 'utf8')) as {
      networks: Record<string, { policies: { bridge: { contracts: Record<string, { label: string }> } } }>;
    };
    const contract = (chain: string, label: string) =>
      Object.entries(networks.networks[chain].policies.bridge.contracts).find(([, c]) => c.label === label)![0];
    const actionId = `compose-native-${Date.now()}`;
    const spec = bridgeTransfer({
      actionId,
      from: 'chainA',
      to: 'chainB',
      token: {
        escrow: contract('chainA', 'escrow') as `0x${string}`,
        minter: contract('chainB', 'minter') as `0x${string}`,
      },
      amount: '1000',
      recipient: privateKeyToAccount(DEV_KEYS.user).address,
      deadline: '5m',
    });
    const base = `http://127.0.0.1:${api.SETTLE_API_PORT}`;
    const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
    const started = Date.now();
    const posted = await fetch(`${base}/v1/actions`, { method: 'POST', headers, body: JSON.stringify(spec) });
    if (!posted.ok) throw new Error(`POST /v1/actions: ${posted.status} ${await posted.text()}`);
    let phase = 'running';
    while (['running', 'compensating'].includes(phase) && Date.now() - started < 180_000) {
      await sleep(500);
      phase = z
        .object({ phase: z.string() })
        .parse(await (await fetch(`${base}/v1/actions/${actionId}`, { headers })).json()).phase;
    }
    say(`bridge transfer ${actionId} through the API: ${phase} in ${Date.now() - started} ms`);
    for (const [name, port] of metrics) {
      const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      const count = (prefix: string) => text.split('\n').filter((line) => line.startsWith(prefix)).length;
      say(`${name} /metrics: ${count('settle_')} settle_* and ${count('temporal_')} temporal_* samples`);
    }
    return phase === 'completed' ? 0 : 1;
  } finally {
    await supervisor.stopAll();
    rmSync(stateDir, { recursive: true, force: true });
    say('stopped');
  }
}

if (require.main === module) {
  main().then(
    (code) => process.exit(code),
    (error: Error) => {
      process.stderr.write(`compose:native: ${error.message}\n`);
      process.exit(1);
    },
  );
}
