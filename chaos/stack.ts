/**
 * The stack a chaos run attacks, all real processes on 127.0.0.1: a Temporal dev server on a database file (with
 * `limit.historyCount.suggestContinueAsNew` set low, so actions and nonce owners continue as new many times), two
 * hardhat chains with the bridge deployed, workers sharing one task queue and one signer (each reaching the chains
 * through its own fault proxy), the chain watcher (its claims signed and trusted, as in the local stack) and the HTTP
 * API.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ed25519 } from '@noble/curves/ed25519';
import { Client, Connection } from '@temporalio/client';
import { DEV_KEYS, localNetworksFile, startLocalChains, type LocalChains } from '../devnet/chains';
import { ensureTemporalCli } from '../devnet/temporal-cli';
import { SEARCH_ATTRIBUTE_FLAGS } from '../contract/search-attributes';
import { claimPublicKey } from '../workers/watcher/claim-signer';
import { freePort, portOpen } from '../test/support/processes';
import { ManagedProcess } from './processes';
import { RpcProxy, TransactionLedger, TrapBoard } from './rpc-proxy';

export const ROOT = path.resolve(__dirname, '..');
export const TASK_QUEUE = 'settle-chaos';

export interface StackOptions {
  dir: string;
  /** The code the processes run: the committed HEAD, or the working tree as it is when the run starts. */
  code: 'head' | 'worktree';
  workers: number;
  confirmations: number;
  suggestContinueAsNew: number;
  feeBumpAfterMs: number;
  blockTimes: { chainA: number; chainB: number };
}

export interface Stack {
  dir: string;
  temporalAddress: string;
  temporal: ManagedProcess;
  local: LocalChains;
  workers: ManagedProcess[];
  watcher: ManagedProcess;
  api: ManagedProcess;
  apiUrl: string;
  apiToken: string;
  ledgers: Record<string, TransactionLedger>;
  traps: TrapBoard;
  proxies: RpcProxy[];
  client: () => Client;
  reconnect(): Promise<void>;
  logFiles: string[];
  stop(): Promise<void>;
}

/**
 * A copy of the code, made once when the run starts, that every process (and every restart) runs: a worker restarted
 * mid-run must run the code the others run, even if the checkout changes meanwhile. node_modules is linked, not copied.
 */
export function pinCode(dir: string, code: 'head' | 'worktree'): string {
  const target = path.join(dir, 'code');
  mkdirSync(target, { recursive: true });
  if (code === 'head') {
    execFileSync('sh', ['-c', `git -C "${ROOT}" archive HEAD | tar -x -C "${target}"`]);
  } else {
    const files = execFileSync('git', ['-C', ROOT, 'ls-files', '-z'], { maxBuffer: 64 * 1024 * 1024 })
      .toString()
      .split('\0')
      .filter(Boolean);
    for (const file of files) {
      if (!existsSync(path.join(ROOT, file))) continue;
      mkdirSync(path.dirname(path.join(target, file)), { recursive: true });
      copyFileSync(path.join(ROOT, file), path.join(target, file));
    }
  }
  symlinkSync(path.join(ROOT, 'node_modules'), path.join(target, 'node_modules'));
  return target;
}

function tsxProcess(name: string, script: string, env: NodeJS.ProcessEnv, dir: string, ready: RegExp) {
  // `node --import tsx`: one process per component, so a SIGKILL hits the component itself.
  return new ManagedProcess({
    name,
    command: process.execPath,
    args: ['--import', 'tsx', script],
    cwd: path.join(dir, 'code'),
    env,
    logFile: path.join(dir, `${name}.log`),
    ready,
    readyTimeoutMs: 180_000,
  });
}

export async function startStack(options: StackOptions): Promise<Stack> {
  const { dir } = options;
  mkdirSync(dir, { recursive: true });
  pinCode(dir, options.code);
  const stops: (() => Promise<void>)[] = [];
  const stopAll = async () => {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
  };
  try {
    const port = await freePort();
    const temporalAddress = `127.0.0.1:${port}`;
    const temporal = new ManagedProcess({
      name: 'temporal',
      command: await ensureTemporalCli(),
      args: [
        'server',
        'start-dev',
        '--ip',
        '127.0.0.1',
        '--port',
        String(port),
        '--headless',
        '--db-filename',
        path.join(dir, 'temporal.db'),
        '--log-level',
        'error',
        '--dynamic-config-value',
        `limit.historyCount.suggestContinueAsNew=${options.suggestContinueAsNew}`,
        ...SEARCH_ATTRIBUTE_FLAGS.flatMap((flag) => ['--search-attribute', flag]),
      ],
      logFile: path.join(dir, 'temporal.log'),
      ready: () => portOpen(port),
    });
    stops.push(() => temporal.close());
    const [, local] = await Promise.all([
      temporal.start(),
      startLocalChains([
        { name: 'chainA', chainId: 31337, port: await freePort(), blockTimeMs: options.blockTimes.chainA },
        { name: 'chainB', chainId: 31338, port: await freePort(), blockTimeMs: options.blockTimes.chainB },
      ]),
    ]);
    stops.push(() => local.stop());

    const keyFile = path.join(dir, 'bridge.key');
    writeFileSync(keyFile, `${DEV_KEYS.bridge}\n`, { mode: 0o600 });
    const watcherKeyFile = path.join(dir, 'watcher.key');
    const watcherKey = Buffer.from(ed25519.utils.randomPrivateKey()).toString('hex');
    writeFileSync(watcherKeyFile, `${watcherKey}\n`, { mode: 0o600 });
    const networksFile = (rpcUrls?: Record<string, string>) => {
      const file = localNetworksFile(local.chains, {
        keyFile,
        confirmations: options.confirmations,
        pollIntervalMs: 2_000,
        ...(rpcUrls ? { rpcUrls } : {}),
      });
      for (const network of Object.values(file.networks)) {
        Object.assign(network, { feeBumpAfter: options.feeBumpAfterMs });
      }
      return {
        ...file,
        trust: { verifyClaims: true, sources: { watcher: { publicKey: claimPublicKey(watcherKey) } } },
      };
    };
    const write = (name: string, content: unknown) => {
      const file = path.join(dir, name);
      writeFileSync(file, JSON.stringify(content, null, 2));
      return file;
    };
    const sharedConfig = write('settle.config.json', networksFile());

    const ledgers = Object.fromEntries(Object.keys(local.chains).map((name) => [name, new TransactionLedger()]));
    const traps = new TrapBoard();
    const proxies: RpcProxy[] = [];
    const temporalEnv = { TEMPORAL_ADDRESS: temporalAddress, TEMPORAL_NAMESPACE: 'default' };
    const workers: ManagedProcess[] = [];
    for (let i = 0; i < options.workers; i++) {
      const name = `worker-${i + 1}`;
      const rpcUrls: Record<string, string> = {};
      for (const chain of Object.values(local.chains)) {
        const proxy = new RpcProxy(name, chain.rpcUrl, ledgers[chain.name], traps);
        await proxy.start();
        stops.push(() => proxy.stop());
        proxies.push(proxy);
        rpcUrls[chain.name] = proxy.url;
      }
      const config = write(`${name}.config.json`, networksFile(rpcUrls));
      const worker = tsxProcess(
        name,
        'workers/worker/main.ts',
        { ...temporalEnv, SETTLE_TASK_QUEUE: TASK_QUEUE, SETTLE_CONFIG: config, SETTLE_LOG_LEVEL: 'WARN' },
        dir,
        /settle worker:/,
      );
      stops.push(() => worker.close());
      workers.push(worker);
    }
    const watcher = tsxProcess(
      'watcher',
      'workers/watcher/main.ts',
      {
        ...temporalEnv,
        SETTLE_CONFIG: sharedConfig,
        SETTLE_WATCH_SIGNING_KEY_FILE: watcherKeyFile,
        SETTLE_WATCH_METRICS_LOG_EVERY: 'off',
        SETTLE_LOG_LEVEL: 'INFO',
      },
      dir,
      /watcher started/,
    );
    stops.push(() => watcher.close());
    const apiPort = await freePort();
    const apiToken = `chaos-${Math.random().toString(36).slice(2)}-token`;
    const api = tsxProcess(
      'api',
      'workers/api/main.ts',
      {
        ...temporalEnv,
        SETTLE_TASK_QUEUE: TASK_QUEUE,
        SETTLE_API_HOST: '127.0.0.1',
        SETTLE_API_PORT: String(apiPort),
        SETTLE_API_TOKEN: apiToken,
        SETTLE_API_RATE_LIMIT: '100000',
        SETTLE_API_LOG_LEVEL: 'warn',
      },
      dir,
      /settle api: listening/,
    );
    stops.push(() => api.close());
    // Workers bundle the workflow code at start: one at a time leaves the second core to the others.
    for (const worker of workers) await worker.start();
    await Promise.all([watcher.start(), api.start()]);

    let connection = await Connection.connect({ address: temporalAddress });
    let client = new Client({ connection, namespace: 'default' });
    stops.push(() => connection.close());
    return {
      dir,
      temporalAddress,
      temporal,
      local,
      workers,
      watcher,
      api,
      apiUrl: `http://127.0.0.1:${apiPort}`,
      apiToken,
      ledgers,
      traps,
      proxies,
      client: () => client,
      async reconnect() {
        const previous = connection;
        connection = await Connection.connect({ address: temporalAddress });
        client = new Client({ connection, namespace: 'default' });
        await previous.close().catch(() => undefined);
      },
      logFiles: [temporal, ...workers, watcher, api].map((p) => p.spec.logFile),
      stop: stopAll,
    };
  } catch (error) {
    await stopAll();
    throw error;
  }
}
