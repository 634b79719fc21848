/**
 * `npm run bench:memory`: the worker's resident memory with N pending actions, against a worker process that runs only
 * bench/workflows' `bareSignalled` with N pending bare workflows. Each action is one `await` step that nobody reports,
 * so it stays running (its first workflow task done, waiting on a timer and a signal); each bare workflow waits for a
 * signal that never comes. Both worker processes run with default settings (sticky cache included) on one dev
 * server; N grows in steps (BENCH_MEMORY_STEPS, default 0,300,600,900), Settle then bare at each step, and RSS is read
 * from /proc once every started workflow has completed its first task.
 */
import { readFileSync } from 'node:fs';
import { spawn, type ChildProcess } from 'node:child_process';
import type { Client } from '@temporalio/client';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import {
  BASELINE_TASK_QUEUE,
  machineFacts,
  ROOT,
  round,
  sleep,
  startServer,
  startWorkerProcess,
  stopProcess,
  writeResults,
} from './support';

const STEPS = (process.env.BENCH_MEMORY_STEPS ?? '0,300,600,900').split(',').map(Number);
const TASK_QUEUE = 'settle-memory';

function rssBytes(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('VmRSS:'));
  return Number(/(\d+)/.exec(line ?? '')?.[1] ?? NaN) * 1024;
}

/** bench/workflows on their own task queue, as a process of its own (the bare baseline's worker). */
async function startBaselineProcess(address: string): Promise<ChildProcess> {
  const script =
    "const { Worker, NativeConnection } = require('@temporalio/worker');" +
    '(async () => {' +
    `const connection = await NativeConnection.connect({ address: '${address}' });` +
    `const worker = await Worker.create({ connection, taskQueue: '${BASELINE_TASK_QUEUE}', ` +
    "workflowsPath: require.resolve('./bench/workflows') });" +
    "const running = worker.run(); console.log('baseline worker running'); await running; })()" +
    '.catch((e) => { console.error(e); process.exit(1); });';
  const child = spawn(process.execPath, ['--import', 'tsx', '-e', script], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => chunk.toString().includes('baseline worker running') && resolve());
    child.once('exit', (code) => reject(new Error(`the baseline worker exited (${code})`)));
  });
  return child;
}

async function startPending(client: Client, kind: 'settle' | 'bare', from: number, to: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = from; i < to; i += 20) {
    const batch = Array.from({ length: Math.min(20, to - i) }, (_, j) => `mem-${kind}-${i + j}`);
    await Promise.all(
      batch.map((workflowId) =>
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
      ),
    );
    ids.push(...batch);
  }
  return ids;
}

/** Waits until every workflow's first task has completed (the worker holds its state). */
async function settled(client: Client, ids: string[]): Promise<void> {
  for (const id of ids) {
    for (;;) {
      const history = await client.workflow.getHandle(id).fetchHistory();
      if (history.events?.some((e) => e.workflowTaskCompletedEventAttributes)) break;
      await sleep(100);
    }
  }
}

async function main(): Promise<void> {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const { env } = await startServer();
  const stops: (() => Promise<unknown>)[] = [() => env.teardown()];
  try {
    const settle = await startWorkerProcess(env.address, '', TASK_QUEUE);
    stops.push(() => stopProcess(settle));
    const bare = await startBaselineProcess(env.address);
    stops.push(() => stopProcess(bare));
    await sleep(2_000);
    const rows: { n: number; settleRssMb: number; bareRssMb: number }[] = [];
    let started = 0;
    for (const n of STEPS) {
      const settleIds = await startPending(env.client, 'settle', started, n);
      const bareIds = await startPending(env.client, 'bare', started, n);
      await settled(env.client, [...settleIds, ...bareIds]);
      started = n;
      await sleep(2_000);
      const row = {
        n,
        settleRssMb: round(rssBytes(settle.pid!) / 2 ** 20, 1),
        bareRssMb: round(rssBytes(bare.pid!) / 2 ** 20, 1),
      };
      process.stdout.write(`N=${n}: settle worker ${row.settleRssMb} MB, bare worker ${row.bareRssMb} MB\n`);
      rows.push(row);
    }
    const slope = (pick: (r: (typeof rows)[number]) => number) => {
      const first = rows[0];
      const last = rows[rows.length - 1];
      return round(((pick(last) - pick(first)) / (last.n - first.n)) * 1000, 1);
    };
    const slopes = {
      'settle worker MB per 1,000 pending actions': slope((r) => r.settleRssMb),
      'bare worker MB per 1,000 pending workflows': slope((r) => r.bareRssMb),
    };
    console.table(rows);
    console.table(slopes);
    const file = writeResults('memory', {
      benchmark: 'memory',
      machine: machineFacts(),
      settings: { steps: STEPS },
      samples: rows,
      slopes,
    });
    process.stdout.write(`written to ${file}\n`);
  } finally {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
  }
}

if (require.main === module) {
  main().catch((error) => {
    console.error(error);
    process.exit(1);
  });
}
