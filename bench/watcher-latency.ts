/**
 * `npm run bench:watcher`: how soon after its finalising block a step is final in its workflow, with the chain
 * watcher running and polling out of the way (pollInterval 60 s). Real Temporal dev server, two hardhat chains with
 * 1 s blocks, an in-process worker, the watcher as its own process; 50 bridge transfers (lock → final → mint), 2
 * confirmations per step. BENCH_TRANSFERS and BENCH_CONCURRENCY change the load.
 *
 * For each step: the finalising block is the first block with which the step's inclusion block has the policy's
 * confirmations. Its delay is measured to the completion of the workflow task that applied the watcher's evidence
 * (Temporal's own event time), from the block's timestamp and from the moment an independent 25 ms head poller first
 * saw the block. A hardhat node's block clock is off ours by a constant of a few seconds (deployment blocks are each
 * stamped a second after their parent, and the node keeps that offset); the "block timestamp → block first seen" row
 * measures it, and "block first seen → applied" is the figure that does not depend on it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import type { History } from '@temporalio/common/lib/proto-utils';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, Runtime, Worker } from '@temporalio/worker';
import { createPublicClient, http, type PublicClient } from 'viem';
import { createActivities } from '../activities';
import { bridgeTransfer } from '../client/plans';
import { startLocalChains, type LocalChains } from '../devnet/chains';
import { ensureTemporalCli } from '../devnet/temporal-cli';
import { buildNetworks } from '../networks/load';
import { statusQuery } from '../contract/messages';
import type { EvidenceInput } from '../contract/evidence';
import type { ActionStatus } from '../contract/status';
import { SETTLE_SEARCH_ATTRIBUTES } from '../contract/search-attributes';
import { freePort, USER, writeTestNetworksFile } from '../test/support/chains';
import { machineFacts, writeResults } from './support';
// The bundle the worker process builds (shared modules preloaded), as the tests run it.
import { workflowBundle } from '../test/support/temporal';

const TRANSFERS = Number(process.env.BENCH_TRANSFERS ?? 50);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 5);
const BLOCK_TIME_MS = 1_000;
const CONFIRMATIONS = 2;
const TASK_QUEUE = 'bench-watcher';
const ROOT = path.resolve(__dirname, '..');

interface Sample {
  actionId: string;
  step: string;
  network: string;
  /** Finalising block's timestamp → the workflow task that applied the evidence completed. */
  fromTimestampMs: number;
  /** The bench's own poller first saw the finalising block → applied. */
  fromFirstSeenMs: number;
  /** The bench's own poller first saw the finalising block → the final transition's `at` (the watcher's observedAt). */
  toObservedMs: number;
  /** How far the block's timestamp is behind the moment the poller first saw it (hardhat's clock vs ours). */
  timestampLagMs: number;
}

/** Records when each block hash is first seen, polling every chain's head every 25 ms. */
class HeadObserver {
  readonly firstSeen = new Map<string, number>();
  private stopped = false;
  private readonly loops: Promise<void>[];

  constructor(clients: PublicClient[]) {
    this.loops = clients.map((client) => this.follow(client));
  }

  private async follow(client: PublicClient): Promise<void> {
    while (!this.stopped) {
      const block = await client.getBlock({ blockTag: 'latest' }).catch(() => undefined);
      if (block?.hash && !this.firstSeen.has(block.hash)) this.firstSeen.set(block.hash, Date.now());
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.loops);
  }
}

async function main(): Promise<void> {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const stops: (() => Promise<unknown>)[] = [];
  try {
    const [env, local] = await Promise.all([
      TestWorkflowEnvironment.createLocal({
        server: {
          executable: { type: 'existing-path', path: await ensureTemporalCli() },
          ip: '127.0.0.1',
          searchAttributes: SETTLE_SEARCH_ATTRIBUTES,
          extraArgs: ['--log-level', 'error'],
        },
      }),
      startLocalChains([
        { name: 'chainA', chainId: 31337, port: await freePort(), blockTimeMs: BLOCK_TIME_MS },
        { name: 'chainB', chainId: 31338, port: await freePort(), blockTimeMs: BLOCK_TIME_MS },
      ]),
    ]);
    stops.push(
      () => env.teardown(),
      () => local.stop(),
    );
    const clients = Object.fromEntries(
      Object.values(local.chains).map((c) => [c.name, createPublicClient({ transport: http(c.rpcUrl) })]),
    );
    const observer = new HeadObserver(Object.values(clients));
    stops.push(() => observer.stop());

    const { file, configPath } = writeTestNetworksFile(local.chains, {
      confirmations: CONFIRMATIONS,
      pollIntervalMs: 60_000,
    });
    const deps = buildNetworks(
      file,
      { TEMPORAL_ADDRESS: env.address, TEMPORAL_NAMESPACE: 'default', SETTLE_TASK_QUEUE: TASK_QUEUE },
      { client: env.client },
    );
    const worker = await Worker.create({
      connection: env.nativeConnection,
      taskQueue: TASK_QUEUE,
      workflowBundle: await workflowBundle(),
      activities: createActivities(deps),
    });
    const running = worker.run();
    stops.push(async () => {
      worker.shutdown();
      await running;
    });
    const watcher = await startWatcher(env.address, configPath);
    stops.push(() => stopProcess(watcher));

    process.stdout.write(`running ${TRANSFERS} bridge transfers, ${CONCURRENCY} at a time…\n`);
    const handles: WorkflowHandle[] = [];
    const run = Date.now().toString(36);
    let next = 0;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < TRANSFERS) {
          const actionId = `bench-${run}-${next++}`;
          const handle = await env.client.workflow.start('crossNetworkAction', {
            taskQueue: TASK_QUEUE,
            workflowId: actionId,
            args: [transfer(actionId, local)],
          });
          handles.push(handle);
          await handle.result();
        }
      }),
    );

    const samples: Sample[] = [];
    let polls = 0;
    for (const handle of handles) {
      const status = await handle.query(statusQuery);
      if (status.phase !== 'completed') throw new Error(`${handle.workflowId} ended ${status.phase}`);
      const history = await handle.fetchHistory();
      polls += activityNames(history).filter((name) => name === 'checkStep').length;
      for (const step of status.steps) {
        samples.push(await measure(handle.workflowId, status, step.id, history, clients[step.network], observer));
      }
    }
    report(samples, polls, handles.length);
  } finally {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
  }
}

function transfer(actionId: string, local: LocalChains) {
  return bridgeTransfer({
    actionId,
    from: 'chainA',
    to: 'chainB',
    token: { escrow: local.chains.chainA.contracts.escrow, minter: local.chains.chainB.contracts.minter },
    amount: '1',
    recipient: USER,
    deadline: '10m',
  });
}

async function measure(
  actionId: string,
  status: ActionStatus,
  stepId: string,
  history: History,
  client: PublicClient,
  observer: HeadObserver,
): Promise<Sample> {
  const step = status.steps.find((s) => s.id === stepId)!;
  const final = step.transitions.find((t) => t.to === 'final');
  if (!final?.block || !final.source.startsWith('watcher:')) {
    throw new Error(`${actionId}: ${stepId} was not made final by the watcher (${final?.source ?? 'no final'})`);
  }
  const finalising = await client.getBlock({ blockNumber: BigInt(final.block.number) + BigInt(CONFIRMATIONS - 1) });
  const timestampMs = Number(finalising.timestamp) * 1000;
  const applied = appliedAt(history, stepId);
  const firstSeen = observer.firstSeen.get(finalising.hash!);
  if (firstSeen === undefined) throw new Error(`the head poller never saw block ${finalising.number}`);
  return {
    actionId,
    step: stepId,
    network: step.network,
    fromTimestampMs: applied - timestampMs,
    fromFirstSeenMs: applied - firstSeen,
    toObservedMs: Date.parse(final.at) - firstSeen,
    timestampLagMs: firstSeen - timestampMs,
  };
}

/** When the workflow task that applied the evidence making the step final completed (server time). */
function appliedAt(history: History, stepId: string): number {
  const events = history.events ?? [];
  const index = events.findIndex((event) => {
    const payload = event.workflowExecutionSignaledEventAttributes?.input?.payloads?.[0];
    if (!payload) return false;
    const evidence = defaultPayloadConverter.fromPayload<EvidenceInput>(payload);
    return evidence.step === stepId && (evidence.kind === 'confirmed' || evidence.kind === 'finalized');
  });
  const completed = events.slice(index + 1).find((e) => e.workflowTaskCompletedEventAttributes);
  if (index < 0 || !completed?.eventTime) throw new Error(`no applied evidence for ${stepId}`);
  const { seconds, nanos } = completed.eventTime;
  return Number(seconds) * 1000 + Math.floor((nanos ?? 0) / 1e6);
}

function activityNames(history: History): string[] {
  return (history.events ?? []).flatMap((e) => {
    const name = e.activityTaskScheduledEventAttributes?.activityType?.name;
    return name ? [name] : [];
  });
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

function report(samples: Sample[], polls: number, transfers: number): void {
  const rows: Record<string, Record<string, number>> = {};
  const groups: [string, Sample[]][] = [
    ['lock (chainA)', samples.filter((s) => s.step === 'lock')],
    ['mint (chainB)', samples.filter((s) => s.step === 'mint')],
    ['all steps', samples],
  ];
  for (const [name, group] of groups) {
    for (const [measure, pick] of [
      ['block timestamp → applied', (s: Sample) => s.fromTimestampMs],
      ['block first seen → applied', (s: Sample) => s.fromFirstSeenMs],
      ['block first seen → watcher observedAt', (s: Sample) => s.toObservedMs],
      ['block timestamp → block first seen', (s: Sample) => s.timestampLagMs],
    ] as const) {
      const values = group.map(pick);
      rows[`${name}: ${measure}`] = {
        n: values.length,
        'p50 ms': percentile(values, 50),
        'p99 ms': percentile(values, 99),
        'max ms': Math.max(...values),
      };
    }
  }
  process.stdout.write(
    `${transfers} transfers, ${CONFIRMATIONS} confirmations per step, ${BLOCK_TIME_MS} ms blocks, ` +
      `checkStep polls in all histories: ${polls}\n`,
  );
  console.table(rows);
  const settings = { transfers, concurrency: CONCURRENCY, blockTimeMs: BLOCK_TIME_MS, confirmations: CONFIRMATIONS };
  const file = writeResults('watcher-latency', {
    benchmark: 'watcher-latency',
    machine: machineFacts(),
    settings,
    checkStepPolls: polls,
    percentiles: rows,
    samples,
  });
  process.stdout.write(`written to ${file}\n`);
}

/** The watcher as its own process (as operators run it); resolves once it has started following. */
async function startWatcher(address: string, configPath: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'workers/watcher/main.ts'], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'inherit'],
    env: {
      ...process.env,
      TEMPORAL_ADDRESS: address,
      SETTLE_CONFIG: configPath,
      SETTLE_WATCH_METRICS_LOG_EVERY: 'off',
    },
  });
  await new Promise<void>((resolve, reject) => {
    let output = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      if (process.env.BENCH_WATCHER_LOG) process.stderr.write(chunk);
      if (output.length < 100_000) output += chunk.toString();
      if (output.includes('"msg":"watcher started"')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`the watcher exited (${code}):\n${output}`)));
  });
  return child;
}

async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

if (require.main === module) {
  main().catch((error) => {
    console.error(error);
    process.exit(1);
  });
}
