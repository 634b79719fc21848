/**
 * `npm run bench:throughput`: two-step `await` actions completed per second, each step reported by two signals
 * (`included`, `finalized`) from a simulated watcher, against bench/workflows' `bareSignalled` waiting for the same
 * four signals, at the same concurrency (closed loop: each of C clients starts one, signals it, waits for its result,
 * and starts the next). Both run on Workers in this process with default settings; Settle and bare batches alternate
 * (S B S B) at each concurrency. The backlog shows as the workflow tasks' schedule-to-start time (from the histories)
 * growing while the rate stops growing. BENCH_CONCURRENCY (a list) and BENCH_REPEATS change the load.
 */
import type { History } from '@temporalio/common/lib/proto-utils';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, Runtime, Worker } from '@temporalio/worker';
import { createActivities } from '../activities';
import { SettleClient } from '../client/settle-client';
import type { ActionSpecInput } from '../contract/action-spec';
import { evidenceSignal } from '../contract/messages';
import { eventMs } from './billable';
import {
  BASELINE_TASK_QUEUE,
  machineFacts,
  median,
  percentile,
  round,
  startBaselineWorker,
  startServer,
  writeResults,
} from './support';
// The bundle the worker process builds (shared modules preloaded), as the tests run it.
import { workflowBundle } from '../test/support/temporal';

const LEVELS = (process.env.BENCH_CONCURRENCY ?? '4,16,48').split(',').map(Number);
const REPEATS = Number(process.env.BENCH_REPEATS ?? 3);
/** Actions per batch: enough for a rate, small enough for a shared 2-core machine. */
const PER_BATCH = (c: number) => Math.max(40, 3 * c);
const TASK_QUEUE = 'settle-throughput';
const KINDS = ['settle', 'bare'] as const;
type Kind = (typeof KINDS)[number];

interface Batch {
  kind: Kind;
  concurrency: number;
  repeat: number;
  completed: number;
  perSecond: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
  /** Workflow task schedule-to-start, over every task of the batch: the task queue's backlog. */
  taskWaitP50Ms: number;
  taskWaitP99Ms: number;
}

function awaitPair(actionId: string): ActionSpecInput {
  return {
    actionId,
    type: 'await-pair',
    steps: [
      { id: 'first', network: 'attester', operation: { kind: 'await' } },
      { id: 'second', network: 'attester', operation: { kind: 'await' }, after: [{ step: 'first', stage: 'final' }] },
    ],
  };
}

async function main(): Promise<void> {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const { env } = await startServer();
  const stops: (() => Promise<unknown>)[] = [() => env.teardown()];
  try {
    const worker = await Worker.create({
      connection: env.nativeConnection,
      taskQueue: TASK_QUEUE,
      workflowBundle: await workflowBundle(),
      activities: createActivities({ networks: {}, adapters: {}, routeByNetwork: false }),
    });
    const running = worker.run();
    stops.push(async () => {
      worker.shutdown();
      await running;
    });
    stops.push(await startBaselineWorker(env));

    const batches: Batch[] = [];
    for (const concurrency of LEVELS) {
      for (let repeat = 0; repeat < REPEATS; repeat++) {
        for (const kind of KINDS) {
          const batch = await runBatch(env, kind, concurrency, repeat);
          process.stdout.write(
            `C=${concurrency} ${kind} #${repeat + 1}: ${round(batch.perSecond)}/s, p50 ${batch.latencyP50Ms} ms, ` +
              `task wait p99 ${batch.taskWaitP99Ms} ms\n`,
          );
          batches.push(batch);
        }
      }
    }
    report(batches);
  } finally {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
  }
}

async function runBatch(env: TestWorkflowEnvironment, kind: Kind, concurrency: number, repeat: number) {
  const total = PER_BATCH(concurrency);
  const run = `${kind}-${concurrency}-${repeat}-${Date.now().toString(36)}`;
  const settle = new SettleClient(env.client, TASK_QUEUE);
  const latencies: number[] = [];
  const ids: string[] = [];
  let next = 0;
  const t0 = Date.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) {
        const workflowId = `tp-${run}-${next++}`;
        ids.push(workflowId);
        const startedAt = Date.now();
        if (kind === 'settle') {
          // Started as an application starts one: through SettleClient (which sets the search attributes it can).
          await settle.start(awaitPair(workflowId));
          const handle = env.client.workflow.getHandle(workflowId);
          // The simulated watcher: both steps' evidence, in order, as soon as it is known.
          for (const step of ['first', 'second']) {
            for (const kind of ['included', 'finalized'] as const) {
              const observedAt = new Date().toISOString();
              await handle.signal(evidenceSignal, { step, kind, source: 'watcher:attester', observedAt });
            }
          }
          await handle.result();
        } else {
          const handle = await env.client.workflow.start('bareSignalled', {
            taskQueue: BASELINE_TASK_QUEUE,
            workflowId,
            args: [4],
          });
          for (let i = 0; i < 4; i++) await handle.signal('bare');
          await handle.result();
        }
        latencies.push(Date.now() - startedAt);
      }
    }),
  );
  const elapsed = Date.now() - t0;
  const waits: number[] = [];
  for (const id of ids) waits.push(...taskWaits(await env.client.workflow.getHandle(id).fetchHistory()));
  return {
    kind,
    concurrency,
    repeat,
    completed: total,
    perSecond: (total * 1000) / elapsed,
    latencyP50Ms: median(latencies),
    latencyP99Ms: percentile(latencies, 99),
    taskWaitP50Ms: median(waits),
    taskWaitP99Ms: percentile(waits, 99),
  };
}

/** Workflow task scheduled → started, for every workflow task in a history. */
function taskWaits(history: History): number[] {
  const events = history.events ?? [];
  const waits: number[] = [];
  for (const event of events) {
    const scheduled = event.workflowTaskStartedEventAttributes?.scheduledEventId;
    if (scheduled === undefined || scheduled === null) continue;
    const from = events.find((e) => Number(e.eventId) === Number(scheduled));
    if (from) waits.push(eventMs(event) - eventMs(from));
  }
  return waits;
}

function report(batches: Batch[]): void {
  const rows: Record<string, Record<string, number>> = {};
  const ratios: Record<string, number> = {};
  for (const c of LEVELS) {
    const at = (kind: Kind) => batches.filter((b) => b.concurrency === c && b.kind === kind);
    for (const kind of KINDS) {
      const group = at(kind);
      rows[`C=${c} ${kind}`] = {
        'actions/s (median)': round(median(group.map((b) => b.perSecond))),
        'latency p50 ms': median(group.map((b) => b.latencyP50Ms)),
        'latency p99 ms': median(group.map((b) => b.latencyP99Ms)),
        'task wait p50 ms': median(group.map((b) => b.taskWaitP50Ms)),
        'task wait p99 ms': median(group.map((b) => b.taskWaitP99Ms)),
      };
    }
    // Each Settle batch against the bare batch run right after it, then the median.
    const perRepeat = at('settle').map((s, i) => s.perSecond / at('bare')[i].perSecond);
    ratios[`C=${c}: settle ÷ bare (goal ≥ 0.8)`] = round(median(perRepeat), 3);
  }
  process.stdout.write(
    `\ntwo-step await actions (4 signals each) vs a bare workflow waiting for 4 signals; ${REPEATS} repeats\n`,
  );
  console.table(rows);
  console.table(ratios);
  const file = writeResults('throughput', {
    benchmark: 'throughput',
    machine: machineFacts(),
    settings: { concurrency: LEVELS, repeats: REPEATS, perBatch: LEVELS.map(PER_BATCH) },
    medians: rows,
    ratios,
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
