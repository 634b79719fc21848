/**
 * `npm run bench:memory`: the worker's resident memory with N pending actions, against a worker process that runs only
 * bench/workflows' `bareSignalled` with N pending bare workflows; then every one released and completed. Each action
 * is one `await` step that nobody reports yet, so it stays running (its first workflow task done, waiting for evidence
 * with no timer); each bare workflow waits for a signal. Both worker processes (bench/memory-worker.ts) run with the
 * sticky cache `maxCachedWorkflows` = BENCH_MEMORY_CACHE, by default the SDK's (sized by the heap: 2,311 workflows on
 * this machine's 4 GiB heap), as `npm run worker` does without SETTLE_WORKER_MAX_CACHED_WORKFLOWS. N grows
 * in steps (BENCH_MEMORY_STEPS, default 0,1000,5000,10000), Settle then bare at each step; RSS is read from /proc once
 * both task queues have no backlog and the newest workflows have completed their first task. Then every action gets
 * its evidence (`included`, `finalized`), every bare workflow its signal, and the bench waits until visibility counts
 * them all completed. BENCH_MEMORY_SHARED=false builds the settle worker's bundle without its shared modules
 * (workflows/shared-modules.ts): every workflow then evaluates zod, the contract and the machine on its own.
 */
import { readFileSync } from 'node:fs';
import { spawn, type ChildProcess } from 'node:child_process';
import type { Client } from '@temporalio/client';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { evidenceSignal } from '../contract/messages';
import {
  BASELINE_TASK_QUEUE,
  machineFacts,
  ROOT,
  round,
  sleep,
  startServer,
  stopProcess,
  writeResults,
} from './support';

const STEPS = (process.env.BENCH_MEMORY_STEPS ?? '0,1000,5000,10000').split(',').map(Number);
/** Empty: the SDK's default, which each worker reports. */
const CACHE = process.env.BENCH_MEMORY_CACHE ?? '';
const SHARED = (process.env.BENCH_MEMORY_SHARED ?? 'true') !== 'false';
const TASK_QUEUE = 'settle-memory';
const AT_ONCE = 50;

function rssBytes(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('VmRSS:'));
  return Number(/(\d+)/.exec(line ?? '')?.[1] ?? NaN) * 1024;
}

/** bench/memory-worker.ts as a process of its own. */
async function startMemoryWorker(
  address: string,
  kind: 'settle' | 'bare',
): Promise<{ child: ChildProcess; maxCachedWorkflows: number }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'bench/memory-worker.ts', kind], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'inherit'],
    env: {
      ...process.env,
      TEMPORAL_ADDRESS: address,
      SETTLE_TASK_QUEUE: TASK_QUEUE,
      BENCH_MEMORY_CACHE: CACHE,
      BENCH_MEMORY_SHARED: String(SHARED),
    },
  });
  const maxCachedWorkflows = await new Promise<number>((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      const running = /memory worker running \(maxCachedWorkflows (\d+)\)/.exec(chunk.toString());
      if (running) resolve(Number(running[1]));
    });
    child.once('exit', (code) => reject(new Error(`the ${kind} memory worker exited (${code})`)));
  });
  return { child, maxCachedWorkflows };
}

/** Runs `each` over `items`, AT_ONCE at a time. */
async function inBatches<T>(items: T[], each: (item: T) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < items.length; i += AT_ONCE) await Promise.all(items.slice(i, i + AT_ONCE).map(each));
}

async function startPending(client: Client, kind: 'settle' | 'bare', from: number, to: number): Promise<string[]> {
  const ids = Array.from({ length: to - from }, (_, j) => `mem-${kind}-${from + j}`);
  await inBatches(ids, (workflowId) =>
    kind === 'settle'
      ? client.workflow.start('crossNetworkAction', {
          taskQueue: TASK_QUEUE,
          workflowId,
          args: [
            {
              actionId: workflowId,
              type: 'pending',
              steps: [{ id: 'report', network: 'attester', operation: { kind: 'await' } }],
            },
          ],
        })
      : client.workflow.start('bareSignalled', { taskQueue: BASELINE_TASK_QUEUE, workflowId, args: [1] }),
  );
  return ids;
}

/** The task queue's workflow task backlog, as the server counts it. */
async function backlog(client: Client, taskQueue: string): Promise<number> {
  const response = await client.workflowService.describeTaskQueue({
    namespace: 'default',
    taskQueue: { name: taskQueue },
    taskQueueType: 1, // TASK_QUEUE_TYPE_WORKFLOW
    reportStats: true,
  });
  return Number(response.stats?.approximateBacklogCount ?? 0);
}

/** Waits until both task queues have no backlog and the newest workflows have completed their first task. */
async function settled(client: Client, ids: string[]): Promise<void> {
  for (;;) {
    const left = (await backlog(client, TASK_QUEUE)) + (await backlog(client, BASELINE_TASK_QUEUE));
    if (left === 0) break;
    await sleep(500);
  }
  for (const id of ids.slice(-20)) {
    for (;;) {
      const history = await client.workflow.getHandle(id).fetchHistory();
      if (history.events?.some((e) => e.workflowTaskCompletedEventAttributes)) break;
      await sleep(200);
    }
  }
}

async function completed(client: Client, prefix: string): Promise<number> {
  const { count } = await client.workflow.count(`WorkflowId STARTS_WITH '${prefix}' AND ExecutionStatus = 'Completed'`);
  return count;
}

async function main(): Promise<void> {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const { env } = await startServer();
  const stops: (() => Promise<unknown>)[] = [() => env.teardown()];
  try {
    const { child: settle, maxCachedWorkflows } = await startMemoryWorker(env.address, 'settle');
    stops.push(() => stopProcess(settle));
    const { child: bare } = await startMemoryWorker(env.address, 'bare');
    stops.push(() => stopProcess(bare));
    const settings = { steps: STEPS, maxCachedWorkflows, sdkDefaultCache: CACHE === '', sharedModules: SHARED };
    await sleep(2_000);
    const rows: { n: number; settleRssMb: number; bareRssMb: number; loadAverage1m: number }[] = [];
    const read = (n: number) => ({
      n,
      settleRssMb: round(rssBytes(settle.pid!) / 2 ** 20, 1),
      bareRssMb: round(rssBytes(bare.pid!) / 2 ** 20, 1),
      loadAverage1m: round(machineLoad(), 2),
    });
    let started = 0;
    const t0 = Date.now();
    for (const n of STEPS) {
      const settleIds = await startPending(env.client, 'settle', started, n);
      const bareIds = await startPending(env.client, 'bare', started, n);
      await settled(env.client, [...settleIds, ...bareIds]);
      started = n;
      await sleep(2_000);
      const row = read(n);
      process.stdout.write(
        `N=${n}: settle worker ${row.settleRssMb} MB, bare worker ${row.bareRssMb} MB ` +
          `(${Math.round((Date.now() - t0) / 1000)} s)\n`,
      );
      rows.push(row);
    }
    // The samples are kept even if the release below is cut short (it replays every evicted workflow).
    writeResults('memory', {
      benchmark: 'memory',
      machine: machineFacts(),
      settings,
      samples: rows,
      afterRelease: 'not finished',
    });
    // Released: every action's evidence, every bare workflow's signal; then all must complete.
    const total = started;
    const releasedAt = Date.now();
    await inBatches(
      Array.from({ length: total }, (_, i) => i),
      async (i) => {
        const action = env.client.workflow.getHandle(`mem-settle-${i}`);
        for (const kind of ['included', 'finalized'] as const) {
          await action.signal(evidenceSignal, {
            step: 'report',
            kind,
            source: 'watcher:attester',
            observedAt: new Date().toISOString(),
          });
        }
        await env.client.workflow.getHandle(`mem-bare-${i}`).signal('bare');
      },
    );
    let done = { settle: 0, bare: 0 };
    for (;;) {
      done = { settle: await completed(env.client, 'mem-settle-'), bare: await completed(env.client, 'mem-bare-') };
      if ((done.settle >= total && done.bare >= total) || Date.now() - releasedAt > 15 * 60_000) break;
      await sleep(2_000);
    }
    const afterRelease = { ...read(total), completedSettle: done.settle, completedBare: done.bare };
    process.stdout.write(
      `released ${total} + ${total}: ${done.settle} actions and ${done.bare} bare workflows completed in ` +
        `${Math.round((Date.now() - releasedAt) / 1000)} s; settle worker ${afterRelease.settleRssMb} MB\n`,
    );
    const slope = (pick: (r: (typeof rows)[number]) => number) => {
      const first = rows[0];
      const last = rows[rows.length - 1];
      return round(((pick(last) - pick(first)) / (last.n - first.n)) * 1000, 1);
    };
    const slopes = {
      'settle worker MB per 1,000 pending actions': slope((r) => r.settleRssMb),
      'bare worker MB per 1,000 pending workflows': slope((r) => r.bareRssMb),
      'settle ÷ bare RSS at the largest N': round(
        rows[rows.length - 1].settleRssMb / rows[rows.length - 1].bareRssMb,
        2,
      ),
      [`settle worker RSS at ${total} pending, MB (goal < 1536 at 10,000)`]: rows[rows.length - 1].settleRssMb,
      'all completed after release': Number(done.settle === total && done.bare === total),
    };
    console.table(rows);
    console.table(slopes);
    const file = writeResults('memory', {
      benchmark: 'memory',
      machine: machineFacts(),
      settings,
      samples: rows,
      afterRelease,
      slopes,
    });
    process.stdout.write(`written to ${file}\n`);
  } finally {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
  }
}

function machineLoad(): number {
  return Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
}

if (require.main === module) {
  main().catch((error) => {
    console.error(error);
    process.exit(1);
  });
}
