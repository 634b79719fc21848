/**
 * `npm start`: the embedded default stack in one command: a Temporal dev server with the Web UI (state in
 * .settle/), two local chains with the bridge contracts, and a worker; then a bridge transfer whose progress is
 * shown live. `npm start -- --once` exits after the demo (non-zero unless it completed). Ctrl-C stops every process
 * it started.
 */
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { DEFAULT_CHAINS, startLocalChains, writeLocalState, type ChainSpec } from './chains';
import { runDemoTransfer } from './demo';
import { startTemporalServer, TemporalServerConfigSchema } from './temporal-server';
import { createWriteStream } from 'node:fs';
import { trustWatcherKey } from './cluster/state';
import path from 'node:path';
import { parseWorkerConfig } from '../workers/worker/config';
import { parseWatcherConfig, runWatcher } from '../workers/watcher/main';
import { jsonLogger } from '../workers/watcher/log';
import { startWorker } from '../workers/worker/main';

function chainSpecs(env: NodeJS.ProcessEnv): ChainSpec[] {
  const ports = [env.SETTLE_CHAIN_A_PORT, env.SETTLE_CHAIN_B_PORT];
  return DEFAULT_CHAINS.map((spec, i) => (ports[i] ? { ...spec, port: Number(ports[i]) } : spec));
}

/** How long Ctrl-C waits for each part (the worker drains its activities) before going on to the next. */
const DRAIN_MS = 30_000;

async function withinDrainTime(stopping: Promise<void>): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      process.stderr.write(`settle: a part did not stop within ${DRAIN_MS / 1000} s; going on\n`);
      resolve();
    }, DRAIN_MS);
  });
  await Promise.race([stopping, late]).finally(() => clearTimeout(timer));
}

async function main(): Promise<void> {
  const once = process.argv.includes('--once');
  const serverConfig = TemporalServerConfigSchema.parse(process.env);
  const address = `${serverConfig.SETTLE_TEMPORAL_IP}:${serverConfig.SETTLE_TEMPORAL_PORT}`;
  Runtime.install({ logger: new DefaultLogger('WARN') });

  const stops: (() => Promise<void>)[] = [];
  let stopping = false;
  const stopAll = async (code: number) => {
    if (stopping) return;
    stopping = true;
    // Each part gets a bounded time to drain: one that hangs must not keep the chains and the server running.
    for (const stop of stops.reverse()) await withinDrainTime(stop()).catch(() => undefined);
    process.exit(code);
  };
  process.once('SIGINT', () => void stopAll(once ? 130 : 0));
  process.once('SIGTERM', () => void stopAll(once ? 143 : 0));

  try {
    process.stdout.write('settle: starting the Temporal dev server and two local chains…\n');
    const [server, local] = await Promise.all([
      startTemporalServer(serverConfig, { stdio: 'ignore' }).then((started) => {
        stops.push(() => started.stop());
        started.process.once('exit', () => void stopAll(stopping ? 0 : 1));
        return started;
      }),
      startLocalChains(chainSpecs(process.env)).then((started) => {
        stops.push(() => started.stop());
        return started;
      }),
    ]);
    for (const chain of Object.values(local.chains)) {
      chain.process.once('exit', () => void stopAll(stopping ? 0 : 1));
    }
    const networksFile = writeLocalState(serverConfig.SETTLE_STATE_DIR, local.chains);
    // The local stack verifies claims, as a real deployment should: the watcher signs its own with a key kept in the
    // state folder, whose public half the networks file trusts; anything else is checked against the chain first.
    const watcherKeyFile = trustWatcherKey(path.join(serverConfig.SETTLE_STATE_DIR, 'watcher.key'), networksFile);
    const config = parseWorkerConfig({ ...process.env, TEMPORAL_ADDRESS: address, SETTLE_CONFIG: networksFile });
    const worker = await startWorker(config);
    stops.push(() => worker.shutdown());
    // The chain watcher pushes confirmations as blocks arrive; its JSON log lines go to .settle/watcher.log.
    const watcherLog = createWriteStream(path.join(serverConfig.SETTLE_STATE_DIR, 'watcher.log'), { flags: 'a' });
    const watcher = await runWatcher(
      parseWatcherConfig({
        ...process.env,
        TEMPORAL_ADDRESS: address,
        SETTLE_CONFIG: networksFile,
        SETTLE_WATCH_SIGNING_KEY_FILE: watcherKeyFile,
      }),
      jsonLogger('info', (line) => watcherLog.write(line)),
    );
    stops.push(async () => {
      await watcher.stop();
      watcherLog.end();
    });
    const ui = `${server.uiUrl}/namespaces/${config.TEMPORAL_NAMESPACE}/workflows`;
    process.stdout.write(
      [
        `settle: Temporal server on ${server.address} (state in ${serverConfig.SETTLE_STATE_DIR}/); Web UI: ${ui}`,
        ...Object.values(local.chains).map(
          (c) =>
            `settle: ${c.name}: chain id ${c.chainId} on ${c.rpcUrl}, a block every ${c.blockTimeMs} ms; ` +
            `escrow ${c.contracts.escrow}, minter ${c.contracts.minter}`,
        ),
        `settle: worker on task queue "${config.SETTLE_TASK_QUEUE}" (networks file ${networksFile})`,
        `settle: chain watcher on ${Object.keys(local.chains).join(', ')} (log: ${serverConfig.SETTLE_STATE_DIR}/watcher.log); Ctrl-C stops everything`,
        '',
      ].join('\n'),
    );

    const connection = await Connection.connect({ address });
    stops.push(() => connection.close());
    const client = new Client({
      connection,
      namespace: config.TEMPORAL_NAMESPACE,
      ...(config.dataConverter ? { dataConverter: config.dataConverter } : {}),
    });
    const status = await runDemoTransfer({
      client,
      taskQueue: config.SETTLE_TASK_QUEUE,
      chains: local.chains,
      uiUrl: server.uiUrl,
      namespace: config.TEMPORAL_NAMESPACE,
    });
    if (once) {
      await stopAll(status.phase === 'completed' ? 0 : 1);
      return;
    }
    process.stdout.write('settle: the stack keeps running for more actions (see README); Ctrl-C stops everything\n');
    await worker.done;
  } catch (error) {
    process.stderr.write(`settle: ${(error as Error).message}\n`);
    await stopAll(1);
  }
}

void main();
