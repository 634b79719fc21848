/**
 * `npm run bench:bill`: the whole Temporal bill of a bridge transfer (lock on chainA, final, mint on chainB, final)
 * and its time above the chains' floor, on real local chains under Ethereum-like timing compressed in time (a hardhat
 * block every BENCH_BLOCK_MS, 150 ms by default, standing for 12 s; 64 confirmations per step). Four kinds of batch,
 * interleaved and repeated (W P N B W P N B …), each of BENCH_TRANSFERS at once:
 *   watcher  Settle with the chain watcher running (the networks file's poll interval stays the fallback)
 *   polling  Settle with no watcher: the workflow's polls alone
 *   naive    bench/workflows' `naiveTransfer`: submit, then one activity polling the receipt every block (heartbeat)
 *   bare     bench/workflows' `bareSignalled`: completes on one signal (the floor for evidence → completed)
 * The bill of a batch is everything the server recorded while it ran, by Temporal Cloud's published rules: billable
 * events in the history of every execution (actions, nonce owners, baselines) within the batch's window, plus the
 * queries and heartbeats counted by the server's frontend (the watcher's and any client's); list calls are shown but
 * are not billable actions.
 */
import type { ChildProcess } from 'node:child_process';
import { defaultPayloadConverter } from '@temporalio/common';
import type { History } from '@temporalio/common/lib/proto-utils';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { createPublicClient, http, type PublicClient } from 'viem';
import { bridgeTransfer } from '../client/plans';
import { SettleClient } from '../client/settle-client';
import { startLocalChains, type LocalChains } from '../devnet/chains';
import type { ActionStatus } from '../contract/status';
import { freePort, USER, writeTestNetworksFile } from '../test/support/chains';
import { billable, eventMs } from './billable';
import {
  BASELINE_TASK_QUEUE,
  difference,
  HeadObserver,
  machineFacts,
  median,
  percentile,
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

const TRANSFERS = Number(process.env.BENCH_TRANSFERS ?? 4);
const REPEATS = Number(process.env.BENCH_REPEATS ?? 3);
const BLOCK_MS = Number(process.env.BENCH_BLOCK_MS ?? 150);
const CONFIRMATIONS = Number(process.env.BENCH_CONFIRMATIONS ?? 64);
const POLL_INTERVAL_MS = 4 * BLOCK_MS;
const ETHEREUM_BLOCK_MS = 12_000;
const TASK_QUEUE = 'settle-bench';
/** The fallback poll interval of the `watcher-slow-poll` batches: the time a step takes to become final. */
const SLOW_POLL_INTERVAL_MS = CONFIRMATIONS * BLOCK_MS;
const SLOW_TASK_QUEUE = 'settle-bench-slow-poll';
const KINDS = ['watcher', 'watcher-slow-poll', 'polling', 'naive', 'bare'] as const;
type Kind = (typeof KINDS)[number];

interface TransferSample {
  e2eMs: number;
  floorMs?: number;
  /** Server time of the evidence that completed the action → the client saw it completed. */
  evidenceToCompletedMs?: number;
  /** Time inside `submitStep` (scheduled → completed, both steps): signing, the nonce owner, the broadcast. */
  submitMs?: number;
}

interface Batch {
  kind: Kind;
  repeat: number;
  /** Billable actions per transfer, by part. */
  bill: Counts;
  /** Calls that are not billable actions, per transfer. */
  other: Counts;
  samples: TransferSample[];
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
    const clients: Record<string, PublicClient> = Object.fromEntries(
      Object.values(local.chains).map((c) => [c.name, createPublicClient({ transport: http(c.rpcUrl) })]),
    );
    const observer = new HeadObserver(clients);
    stops.push(() => observer.stop());
    const { configPath } = writeTestNetworksFile(local.chains, {
      confirmations: CONFIRMATIONS,
      pollIntervalMs: POLL_INTERVAL_MS,
    });
    const worker = await startWorkerProcess(env.address, configPath, TASK_QUEUE);
    stops.push(() => stopProcess(worker));
    // A second deployment on the same chains and nonce owners, whose fallback poll waits as long as finality takes.
    const slow = writeTestNetworksFile(local.chains, {
      confirmations: CONFIRMATIONS,
      pollIntervalMs: SLOW_POLL_INTERVAL_MS,
    });
    const slowWorker = await startWorkerProcess(env.address, slow.configPath, SLOW_TASK_QUEUE, `${TASK_QUEUE}-nonces`);
    stops.push(() => stopProcess(slowWorker));
    const rpcUrls = Object.fromEntries(Object.values(local.chains).map((c) => [c.name, c.rpcUrl]));
    stops.push(await startBaselineWorker(env, rpcUrls));

    const batches: Batch[] = [];
    for (let repeat = 0; repeat < REPEATS; repeat++) {
      for (const kind of KINDS) {
        let watcher: ChildProcess | undefined;
        if (kind === 'watcher') watcher = await startWatcher(env.address, configPath);
        if (kind === 'watcher-slow-poll') watcher = await startWatcher(env.address, slow.configPath);
        try {
          process.stdout.write(`repeat ${repeat + 1}/${REPEATS}: ${kind}, ${TRANSFERS} at once…\n`);
          batches.push(await runBatch(kind, repeat, env, requests, local, observer));
        } finally {
          if (watcher) await stopProcess(watcher);
        }
      }
    }
    report(batches);
  } finally {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
  }
}

async function runBatch(
  kind: Kind,
  repeat: number,
  env: TestWorkflowEnvironment,
  requests: () => Promise<Counts>,
  local: LocalChains,
  observer: HeadObserver,
): Promise<Batch> {
  const run = `${kind}-${repeat}-${Date.now().toString(36)}`;
  // The result is the final status: read from the run's close, not by a (billable) query after it.
  const statuses = new Map<string, ActionStatus>();
  const before = await requests();
  const t0 = Date.now();
  const done = await Promise.all(
    Array.from({ length: TRANSFERS }, async (_, i) => {
      const workflowId = `bill-${run}-${i}`;
      const startedAt = Date.now();
      if (kind === 'bare') {
        const handle = await env.client.workflow.start('bareSignalled', {
          taskQueue: BASELINE_TASK_QUEUE,
          workflowId,
          args: [1],
        });
        await sleep(1_000 + 100 * i);
        await handle.signal('bare');
        await handle.result();
      } else if (kind === 'naive') {
        const input = { from: 'chainA', to: 'chainB', confirmations: CONFIRMATIONS, blockTimeMs: BLOCK_MS };
        await env.client.workflow.execute('naiveTransfer', {
          taskQueue: BASELINE_TASK_QUEUE,
          workflowId,
          args: [input],
        });
      } else {
        // Started as an application starts one: through SettleClient (which sets the search attributes it can).
        const queue = kind === 'watcher' || kind === 'polling' ? TASK_QUEUE : SLOW_TASK_QUEUE;
        await new SettleClient(env.client, queue).start(transfer(workflowId, local));
        statuses.set(workflowId, await env.client.workflow.getHandle(workflowId).result());
      }
      return { workflowId, startedAt, completedAt: Date.now() };
    }),
  );
  await sleep(500);
  const t1 = Date.now();
  const calls = difference(await requests(), before);

  const bill: Counts = {};
  const add = (key: string, n: number) => (bill[key] = (bill[key] ?? 0) + n / TRANSFERS);
  for await (const info of env.client.workflow.list()) {
    if (info.closeTime && info.closeTime.getTime() < t0) continue;
    const history = await env.client.workflow.getHandle(info.workflowId, info.runId).fetchHistory();
    const part = info.type === 'signerNonces' ? 'nonce owners' : 'workflow';
    for (const [name, n] of Object.entries(billable(history, t0, t1))) if (n) add(`${part}: ${name}`, n);
  }
  add('queries (watcher, worker, clients)', calls.QueryWorkflow ?? 0);
  add('activity heartbeats', (calls.RecordActivityTaskHeartbeat ?? 0) + (calls.RecordActivityTaskHeartbeatById ?? 0));
  const other: Counts = {
    'list/count calls (not billable)':
      ((calls.ListWorkflowExecutions ?? 0) + (calls.CountWorkflowExecutions ?? 0)) / TRANSFERS,
    'update requests at the frontend': (calls.UpdateWorkflowExecution ?? 0) / TRANSFERS,
    'signal requests at the frontend': (calls.SignalWorkflowExecution ?? 0) / TRANSFERS,
  };

  const samples: TransferSample[] = [];
  for (const { workflowId, startedAt, completedAt } of done) {
    const handle = env.client.workflow.getHandle(workflowId);
    const history = await handle.fetchHistory();
    const sample: TransferSample = { e2eMs: completedAt - startedAt };
    if (kind === 'bare') sample.evidenceToCompletedMs = completedAt - lastSignalMs(history, () => true);
    if (kind !== 'naive' && kind !== 'bare') {
      const status = statuses.get(workflowId)!;
      if (status.phase !== 'completed') throw new Error(`${workflowId} ended ${status.phase}`);
      sample.floorMs = floorMs(startedAt, observer);
      sample.submitMs = activityMs(history, 'submitStep');
      if (kind !== 'polling') {
        const mint = status.steps.find((s) => s.id === 'mint')!;
        const final = mint.transitions.find((t) => t.to === 'final');
        if (!final?.source.startsWith('watcher:'))
          throw new Error(`${workflowId}: mint made final by ${final?.source}`);
        sample.evidenceToCompletedMs = completedAt - lastSignalMs(history, (e) => e.step === 'mint');
      }
    }
    samples.push(sample);
  }
  return { kind, repeat, bill: { ...bill, total: sum(Object.values(bill)) }, other, samples };
}

function transfer(actionId: string, local: LocalChains) {
  return bridgeTransfer({
    actionId,
    from: 'chainA',
    to: 'chainB',
    token: { escrow: local.chains.chainA.contracts.escrow, minter: local.chains.chainB.contracts.minter },
    amount: '1',
    recipient: USER,
    deadline: '30m',
  });
}

/**
 * The chains' own time on the critical path: the lock included in the first block after the start and final
 * CONFIRMATIONS − 1 blocks later on chainA; then the mint included in chainB's next block and final as many blocks
 * later. Measured from when the head observer first saw those blocks, so it does not depend on hardhat's timestamps.
 */
function floorMs(startedAt: number, observer: HeadObserver): number | undefined {
  const lockFinal = observer.seenAt('chainA', observer.headAt('chainA', startedAt) + CONFIRMATIONS);
  if (lockFinal === undefined) return undefined;
  const mintFinal = observer.seenAt('chainB', observer.headAt('chainB', lockFinal) + CONFIRMATIONS);
  return mintFinal === undefined ? undefined : mintFinal - startedAt;
}

/** Server time of the last signal whose payload matches. */
function lastSignalMs(history: History, pick: (evidence: { step?: string }) => boolean): number {
  let at = NaN;
  for (const event of history.events ?? []) {
    const signal = event.workflowExecutionSignaledEventAttributes;
    if (!signal) continue;
    const payload = signal.input?.payloads?.[0];
    const value = (payload && defaultPayloadConverter.fromPayload<{ step?: string } | undefined>(payload)) ?? {};
    if (pick(value)) at = eventMs(event);
  }
  return at;
}

/** Scheduled → completed of every activity of a type in a history, summed. */
function activityMs(history: History, type: string): number {
  const events = history.events ?? [];
  const scheduledAt = new Map<number, number>();
  for (const e of events) {
    if (e.activityTaskScheduledEventAttributes?.activityType?.name === type)
      scheduledAt.set(Number(e.eventId), eventMs(e));
  }
  let total = 0;
  for (const e of events) {
    const from = scheduledAt.get(Number(e.activityTaskCompletedEventAttributes?.scheduledEventId ?? -1));
    if (from !== undefined) total += eventMs(e) - from;
  }
  return total;
}

function sum(values: number[]): number {
  return values.reduce((a, b) => a + b, 0);
}

function report(batches: Batch[]): void {
  const of = (kind: Kind) => batches.filter((b) => b.kind === kind);
  const billRows: Record<string, Record<string, number>> = {};
  const parts = new Set(batches.flatMap((b) => Object.keys(b.bill)));
  for (const part of [...parts].sort((a, b) => (a === 'total' ? 1 : b === 'total' ? -1 : a.localeCompare(b)))) {
    billRows[part] = Object.fromEntries(KINDS.map((k) => [k, round(median(of(k).map((b) => b.bill[part] ?? 0)))]));
  }
  for (const name of Object.keys(batches[0].other)) {
    billRows[name] = Object.fromEntries(KINDS.map((k) => [k, round(median(of(k).map((b) => b.other[name] ?? 0)))]));
  }
  const total = (kind: Kind) => median(of(kind).map((b) => b.bill.total));
  const ratios = {
    'watcher ÷ naive (goal ≤ 0.1)': round(total('watcher') / total('naive'), 3),
    'watcher-slow-poll ÷ naive': round(total('watcher-slow-poll') / total('naive'), 3),
    'polling ÷ naive': round(total('polling') / total('naive'), 3),
    'watcher per transfer (goal ≤ 12)': round(total('watcher')),
  };

  const timeRows: Record<string, Record<string, number>> = {};
  for (const kind of KINDS) {
    const samples = of(kind).flatMap((b) => b.samples);
    const row: Record<string, number> = { n: samples.length, 'e2e p50 ms': median(samples.map((s) => s.e2eMs)) };
    const floors = samples.filter((s) => s.floorMs !== undefined);
    if (floors.length) {
      row['floor p50 ms'] = median(floors.map((s) => s.floorMs!));
      row['above floor p50 ms'] = median(floors.map((s) => s.e2eMs - s.floorMs!));
      row['in submitStep p50 ms'] = median(floors.map((s) => s.submitMs ?? NaN));
      row['above floor p99 ms'] = percentile(
        floors.map((s) => s.e2eMs - s.floorMs!),
        99,
      );
    }
    const ev = samples.filter((s) => s.evidenceToCompletedMs !== undefined).map((s) => s.evidenceToCompletedMs!);
    if (ev.length) {
      row['evidence→completed p50 ms'] = median(ev);
      row['evidence→completed p99 ms'] = percentile(ev, 99);
    }
    timeRows[kind] = row;
  }
  // Ratio per repeat (watcher batch against the bare batch beside it), then the median of those ratios.
  const perRepeat = [...new Set(batches.map((b) => b.repeat))].map((r) => {
    const p50 = (kind: Kind) =>
      median(batches.find((b) => b.kind === kind && b.repeat === r)!.samples.map((s) => s.evidenceToCompletedMs!));
    return p50('watcher') / p50('bare');
  });
  const timeRatios = {
    'evidence→completed p50, watcher ÷ bare (goal ≤ 1.2)': round(median(perRepeat)),
    'above floor p50 with the watcher, ms (goal ≤ 1000)': timeRows.watcher['above floor p50 ms'],
  };

  process.stdout.write(
    `\nbridge transfer, ${CONFIRMATIONS} confirmations per step, a block every ${BLOCK_MS} ms standing for ` +
      `${ETHEREUM_BLOCK_MS / 1000} s, poll interval ${POLL_INTERVAL_MS} ms; ${TRANSFERS} at once, ${REPEATS} repeats ` +
      `(medians over repeats)\nbillable actions per transfer:\n`,
  );
  console.table(billRows);
  console.table(ratios);
  process.stdout.write('time (wall clock; the floor is the chains’ own time, from when each block was first seen):\n');
  console.table(timeRows);
  console.table(timeRatios);
  const file = writeResults('bill', {
    benchmark: 'bill',
    machine: machineFacts(),
    settings: {
      transfers: TRANSFERS,
      repeats: REPEATS,
      blockMs: BLOCK_MS,
      standsForMs: ETHEREUM_BLOCK_MS,
      confirmations: CONFIRMATIONS,
      pollIntervalMs: POLL_INTERVAL_MS,
      slowPollIntervalMs: SLOW_POLL_INTERVAL_MS,
    },
    medians: { billPerTransfer: billRows, time: timeRows },
    ratios: { ...ratios, ...timeRatios, evidenceToCompletedPerRepeat: perRepeat.map((r) => round(r, 3)) },
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
