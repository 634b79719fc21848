/**
 * `npm run bench:fanin`: how fast one chain watcher delivers evidence when many followed transactions change in the
 * same block, against a plain client signalling in a loop on the same server; and what the watcher costs per followed
 * action per block while nothing changes.
 *
 * Setup: a dev server, two hardhat chains, the Settle worker and the watcher as their own processes (as operators run
 * them), and the bench-only worker for the baseline. chainA's mining is paused and driven by the bench. Each batch:
 *   watcher  N single-step actions (a bridge `lock` on chainA) are submitted while no block is mined; once the watcher
 *            follows all N transactions, one block is mined (N `included` signals at once), then BENCH_IDLE_BLOCKS
 *            blocks one at a time (the idle window: nothing new to say), then the remaining confirmations at once
 *            (N `confirmed` signals at once). The workflows' own polls are out of the way (poll interval 10 min).
 *   plain    N bench/workflows' `bareSignalled(2)` workflows; a client loop signals each (an evidence-sized payload),
 *            one after the other, twice.
 * Delivery rate of a burst: (signals − 1) ÷ (server time of the last signal − server time of the first), from the
 * histories; the watcher's ratio is against the plain batch beside it (W P W P), median over repeats. The idle cost is
 * the frontend's calls (queries, lists, signals) during the idle window, per followed action per block.
 */
import type { ChildProcess } from 'node:child_process';
import { defaultPayloadConverter } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import type { ActionSpecInput } from '../contract/action-spec';
import { rpc, startLocalChains, type LocalChains } from '../devnet/chains';
import { freePort, USER, writeTestNetworksFile } from '../test/support/chains';
import { bridgeTransfer } from '../client/plans';
import { eventMs } from './billable';
import {
  BASELINE_TASK_QUEUE,
  difference,
  machineFacts,
  median,
  round,
  sleep,
  startBaselineWorker,
  startServer,
  startWatcher,
  startWorkerProcess,
  stopProcess,
  writeResults,
  type Counts,
} from './support';

const ACTIONS = Number(process.env.BENCH_FANIN_ACTIONS ?? 32);
const REPEATS = Number(process.env.BENCH_REPEATS ?? 3);
const IDLE_BLOCKS = Number(process.env.BENCH_IDLE_BLOCKS ?? 16);
/** More than the idle window: nothing becomes final in it. */
const CONFIRMATIONS = IDLE_BLOCKS + 8;
const IDLE_BLOCK_MS = 250;
const BLOCK_MS = 1_000;
const TASK_QUEUE = 'settle-fanin';
const KINDS = ['watcher', 'plain'] as const;
type Kind = (typeof KINDS)[number];

interface Batch {
  kind: Kind;
  repeat: number;
  /** Delivery rate of each burst (signals per second). */
  bursts: { signals: number; spanMs: number; perSecond: number }[];
  perSecond: number;
  /** Watcher batches: frontend calls during the idle window, per followed action per block. */
  idlePerActionPerBlock?: Counts;
}

async function main(): Promise<void> {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const stops: (() => Promise<unknown>)[] = [];
  try {
    const [{ env, requests }, local] = await Promise.all([
      startServer(),
      startLocalChains([
        { name: 'chainA', chainId: 31337, port: await freePort(), blockTimeMs: BLOCK_MS },
        { name: 'chainB', chainId: 31338, port: await freePort(), blockTimeMs: BLOCK_MS },
      ]),
    ]);
    stops.push(
      () => env.teardown(),
      () => local.stop(),
    );
    const chainA = local.chains.chainA.rpcUrl;
    // The bench mines chainA's blocks itself.
    await rpc(chainA, 'evm_setIntervalMining', [0]);
    const { configPath } = writeTestNetworksFile(local.chains, {
      confirmations: CONFIRMATIONS,
      pollIntervalMs: 600_000,
    });
    const worker = await startWorkerProcess(env.address, configPath, TASK_QUEUE);
    stops.push(() => stopProcess(worker));
    stops.push(await startBaselineWorker(env));
    const metricsPort = await freePort();
    const watcher: ChildProcess = await startWatcher(env.address, configPath, {
      SETTLE_WATCH_METRICS_PORT: String(metricsPort),
    });
    stops.push(() => stopProcess(watcher));
    const followed = async () => {
      const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
      return Number(/settle_watcher_watched_transactions\{network="chainA"\} (\d+)/.exec(text)?.[1] ?? 0);
    };

    const batches: Batch[] = [];
    for (let repeat = 0; repeat < REPEATS; repeat++) {
      for (const kind of KINDS) {
        const batch =
          kind === 'watcher'
            ? await watcherBatch(env, requests, local, followed, repeat)
            : await plainBatch(env, repeat);
        process.stdout.write(
          `repeat ${repeat + 1}/${REPEATS} ${kind}: ${batch.bursts.map((b) => round(b.perSecond)).join(', ')} signals/s\n`,
        );
        batches.push(batch);
      }
    }
    report(batches);
  } finally {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
  }
}

/** A bridge lock on chainA alone: one transaction to follow, final after CONFIRMATIONS blocks. */
function lockOnly(actionId: string, local: LocalChains): ActionSpecInput {
  const spec = bridgeTransfer({
    actionId,
    from: 'chainA',
    to: 'chainB',
    token: { escrow: local.chains.chainA.contracts.escrow, minter: local.chains.chainB.contracts.minter },
    amount: '1',
    recipient: USER,
    deadline: '30m',
  });
  return { ...spec, type: 'lock-only', steps: [spec.steps[0]] };
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

async function watcherBatch(
  env: TestWorkflowEnvironment,
  requests: () => Promise<Counts>,
  local: LocalChains,
  followed: () => Promise<number>,
  repeat: number,
): Promise<Batch> {
  const chainA = local.chains.chainA.rpcUrl;
  const run = `fanin-w-${repeat}-${Date.now().toString(36)}`;
  const ids = Array.from({ length: ACTIONS }, (_, i) => `${run}-${i}`);
  const handles = await Promise.all(
    ids.map((workflowId) =>
      env.client.workflow.start('crossNetworkAction', {
        taskQueue: TASK_QUEUE,
        workflowId,
        args: [lockOnly(workflowId, local)],
      }),
    ),
  );
  const pending = async () =>
    (await rpc<{ transactions: string[] }>(chainA, 'eth_getBlockByNumber', ['pending', false])).transactions.length;
  await until(`${ACTIONS} locks in chainA's mempool`, async () => (await pending()) >= ACTIONS, 300_000);
  await until(`the watcher following ${ACTIONS} transactions`, async () => (await followed()) >= ACTIONS);

  const signals = async () => (await requests()).SignalWorkflowExecution ?? 0;
  const before = await signals();
  await rpc(chainA, 'evm_mine');
  await until('the included signals', async () => (await signals()) - before >= ACTIONS);

  // The idle window: blocks that change nothing the workflows need to hear.
  await sleep(500);
  const idleFrom = await requests();
  for (let b = 0; b < IDLE_BLOCKS; b++) {
    await rpc(chainA, 'evm_mine');
    await sleep(IDLE_BLOCK_MS);
  }
  const idle = difference(await requests(), idleFrom);
  const per = (n: number | undefined) => round((n ?? 0) / ACTIONS / IDLE_BLOCKS, 4);
  const idlePerActionPerBlock: Counts = {
    'queries (billable)': per(idle.QueryWorkflow),
    'signals (billable)': per(idle.SignalWorkflowExecution),
    'list calls (not billable)': per((idle.ListWorkflowExecutions ?? 0) + (idle.CountWorkflowExecutions ?? 0)),
  };

  const beforeFinal = await signals();
  // One block after another as fast as the node mines them (hardhat_mine's later blocks are not all readable).
  for (let b = IDLE_BLOCKS + 1; b < CONFIRMATIONS; b++) await rpc(chainA, 'evm_mine');
  await until('the confirmed signals', async () => (await signals()) - beforeFinal >= ACTIONS).catch(async (error) => {
    const head = await rpc<string>(chainA, 'eth_blockNumber');
    throw new Error(`${String(error)}: ${(await signals()) - beforeFinal} of ${ACTIONS} (chainA head ${Number(head)})`);
  });
  await Promise.all(handles.map((h) => h.result()));

  const times: Record<string, number[]> = { included: [], confirmed: [] };
  for (const handle of handles) {
    const history = await handle.fetchHistory();
    for (const event of history.events ?? []) {
      const payload = event.workflowExecutionSignaledEventAttributes?.input?.payloads?.[0];
      if (!payload) continue;
      const evidence = defaultPayloadConverter.fromPayload<{ kind?: string; source?: string }>(payload);
      if (evidence?.source?.startsWith('watcher:') && evidence.kind && times[evidence.kind]) {
        times[evidence.kind].push(eventMs(event));
      }
    }
  }
  const bursts = Object.values(times).map(burst);
  return { kind: 'watcher', repeat, bursts, perSecond: median(bursts.map((b) => b.perSecond)), idlePerActionPerBlock };
}

async function plainBatch(env: TestWorkflowEnvironment, repeat: number): Promise<Batch> {
  const run = `fanin-p-${repeat}-${Date.now().toString(36)}`;
  const handles = await Promise.all(
    Array.from({ length: ACTIONS }, (_, i) =>
      env.client.workflow.start('bareSignalled', {
        taskQueue: BASELINE_TASK_QUEUE,
        workflowId: `${run}-${i}`,
        args: [2],
      }),
    ),
  );
  await sleep(500);
  for (const kind of ['included', 'confirmed']) {
    for (const handle of handles) {
      // About the size of the watcher's evidence.
      await handle.signal('bare', {
        step: 'lock',
        network: 'chainA',
        for: 'operation',
        kind,
        block: { number: '123', hash: `0x${'ab'.repeat(32)}` },
        source: 'watcher:chainA',
        observedAt: new Date().toISOString(),
      });
    }
  }
  await Promise.all(handles.map((h) => h.result()));
  const times: number[][] = [[], []];
  for (const handle of handles) {
    const history = await handle.fetchHistory();
    const signalled = (history.events ?? []).filter((e) => e.workflowExecutionSignaledEventAttributes);
    signalled.forEach((event, i) => times[i]?.push(eventMs(event)));
  }
  const bursts = times.map(burst);
  return { kind: 'plain', repeat, bursts, perSecond: median(bursts.map((b) => b.perSecond)) };
}

function burst(times: number[]): Batch['bursts'][number] {
  if (times.length < ACTIONS) throw new Error(`a burst had ${times.length} signals, expected ${ACTIONS}`);
  const spanMs = Math.max(...times) - Math.min(...times);
  return { signals: times.length, spanMs, perSecond: ((times.length - 1) / Math.max(spanMs, 1)) * 1000 };
}

function report(batches: Batch[]): void {
  const of = (kind: Kind) => batches.filter((b) => b.kind === kind);
  const rows: Record<string, Record<string, number>> = {};
  for (const kind of KINDS) {
    const spans = of(kind).flatMap((b) => b.bursts.map((x) => x.spanMs));
    rows[kind] = {
      'signals/s (median of bursts)': round(median(of(kind).map((b) => b.perSecond))),
      'burst span p50 ms': median(spans),
      bursts: spans.length,
    };
  }
  const perRepeat = Array.from({ length: REPEATS }, (_, r) => {
    const at = (kind: Kind) => batches.find((b) => b.kind === kind && b.repeat === r)!.perSecond;
    return at('watcher') / at('plain');
  });
  const idleKeys = Object.keys(of('watcher')[0].idlePerActionPerBlock ?? {});
  const idle = Object.fromEntries(
    idleKeys.map((k) => [k, round(median(of('watcher').map((b) => b.idlePerActionPerBlock![k])), 4)]),
  );
  const ratios = { 'watcher ÷ plain client loop (goal ≥ 0.8)': round(median(perRepeat), 3) };
  process.stdout.write(
    `\nwatcher fan-in: ${ACTIONS} followed transactions changing in one block, ${REPEATS} repeats (medians)\n`,
  );
  console.table(rows);
  console.table(ratios);
  process.stdout.write(`the watcher's calls per followed action per block, over ${IDLE_BLOCKS} idle blocks:\n`);
  console.table(idle);
  const file = writeResults('watcher-fanin', {
    benchmark: 'watcher-fanin',
    machine: machineFacts(),
    settings: {
      actions: ACTIONS,
      repeats: REPEATS,
      confirmations: CONFIRMATIONS,
      idleBlocks: IDLE_BLOCKS,
      idleBlockMs: IDLE_BLOCK_MS,
    },
    medians: { delivery: rows, idlePerActionPerBlock: idle },
    ratios: { ...ratios, perRepeat: perRepeat.map((r) => round(r, 3)) },
    samples: batches,
  });
  process.stdout.write(`written to ${file}\n`);
}

if (require.main === module) {
  main().catch((error) => {
    console.error(error);
    process.exit(1);
  });
}
