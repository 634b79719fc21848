/**
 * What every benchmark shares: a Temporal dev server whose frontend metrics count the calls that reach it, machine
 * facts, medians, a head observer, the watcher as its own process, the bench-only worker, and the results file.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode, Worker } from '@temporalio/worker';
import type { PublicClient } from 'viem';
import { ensureTemporalCli, findTemporalCli } from '../devnet/temporal-cli';
import { SETTLE_SEARCH_ATTRIBUTES } from '../contract/search-attributes';
import { freePort } from '../test/support/chains';
import { createBaselineActivities } from './baseline-activities';

export const ROOT = path.resolve(__dirname, '..');
export const BASELINE_TASK_QUEUE = 'bench-baselines';

/** A dev server on 127.0.0.1 with its Prometheus endpoint on a free port, and how to read its request counters. */
export async function startServer(): Promise<{ env: TestWorkflowEnvironment; requests: () => Promise<Counts> }> {
  const metricsPort = await freePort();
  const env = await TestWorkflowEnvironment.createLocal({
    server: {
      executable: { type: 'existing-path', path: await ensureTemporalCli() },
      ip: '127.0.0.1',
      searchAttributes: SETTLE_SEARCH_ATTRIBUTES,
      extraArgs: ['--log-level', 'error', '--metrics-port', String(metricsPort)],
    },
  });
  return { env, requests: () => frontendRequests(metricsPort) };
}

export type Counts = Record<string, number>;

/** The frontend's `service_requests` per operation in namespace `default`: every call any client made. */
async function frontendRequests(port: number): Promise<Counts> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const counts: Counts = {};
  for (const line of text.split('\n')) {
    const match = /^service_requests\{(.*)\} (\d+(?:\.\d+)?)$/.exec(line);
    if (!match || !match[1].includes('service_name="frontend"') || !match[1].includes('namespace="default"')) continue;
    const operation = /operation="([^"]+)"/.exec(match[1])?.[1];
    if (operation) counts[operation] = (counts[operation] ?? 0) + Number(match[2]);
  }
  return counts;
}

export function difference(after: Counts, before: Counts): Counts {
  return Object.fromEntries(Object.keys(after).map((k) => [k, after[k] - (before[k] ?? 0)]));
}

export function machineFacts(): Record<string, unknown> {
  let temporal = 'unknown';
  try {
    const cli = findTemporalCli();
    if (cli) temporal = execFileSync(cli, ['--version']).toString().trim();
  } catch {
    // reported as unknown
  }
  const git = (args: string[]) => {
    try {
      return execFileSync('git', args, { cwd: ROOT }).toString().trim();
    } catch {
      return 'unknown';
    }
  };
  return {
    // Other engineers change the same working tree: the commit and what differed from it when this ran.
    commit: git(['rev-parse', 'HEAD']),
    uncommittedFiles: git(['status', '--porcelain', '--untracked-files=no']).split('\n').filter(Boolean).length,
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model,
    memoryBytes: os.totalmem(),
    loadAverage: os.loadavg(),
    node: process.version,
    temporalCli: temporal,
    platform: `${os.platform()} ${os.release()}`,
    at: new Date().toISOString(),
    note: 'shared 2-core machine with other engineers running tests: modest sizes, medians over interleaved repeats',
  };
}

export function median(values: number[]): number {
  return percentile(values, 50);
}

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

export function round(value: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

export function writeResults(name: string, results: unknown): string {
  const dir = path.join(__dirname, 'results');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${name}.json`);
  writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
  return file;
}

/** The bench-only worker: the bare and naive workflows in their own bundle, on their own task queue. */
export async function startBaselineWorker(
  env: TestWorkflowEnvironment,
  rpcUrls: Record<string, string> = {},
): Promise<() => Promise<void>> {
  const { code } = await bundleWorkflowCode({ workflowsPath: require.resolve('./workflows'), logger: quietLogger });
  const worker = await Worker.create({
    connection: env.nativeConnection,
    taskQueue: BASELINE_TASK_QUEUE,
    workflowBundle: { code },
    activities: createBaselineActivities(rpcUrls),
  });
  const running = worker.run();
  return async () => {
    worker.shutdown();
    await running;
  };
}

const quietLogger = {
  log: () => undefined,
  trace: () => undefined,
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: (message: string) => process.stderr.write(`${message}\n`),
};

/** Records when each block (by hash and by number) is first seen, polling every chain's head every 25 ms. */
export class HeadObserver {
  readonly firstSeen = new Map<string, number>();
  readonly byNumber = new Map<string, Map<number, number>>();
  private stopped = false;
  private readonly loops: Promise<void>[];

  constructor(clients: Record<string, PublicClient>) {
    this.loops = Object.entries(clients).map(([name, client]) => this.follow(name, client));
  }

  private async follow(name: string, client: PublicClient): Promise<void> {
    const numbers = new Map<number, number>();
    this.byNumber.set(name, numbers);
    while (!this.stopped) {
      const block = await client.getBlock({ blockTag: 'latest' }).catch(() => undefined);
      const now = Date.now();
      if (block?.hash && !this.firstSeen.has(block.hash)) this.firstSeen.set(block.hash, now);
      if (block && !numbers.has(Number(block.number))) numbers.set(Number(block.number), now);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  /** The highest block of `chain` seen at or before `at`. */
  headAt(chain: string, at: number): number {
    let head = -1;
    for (const [n, seen] of this.byNumber.get(chain) ?? []) if (seen <= at && n > head) head = n;
    return head;
  }

  /** When block `n` of `chain` (or, if the poller skipped it, the first later block) was first seen. */
  seenAt(chain: string, n: number): number | undefined {
    const numbers = this.byNumber.get(chain)!;
    let best: number | undefined;
    for (const [m, seen] of numbers) if (m >= n && (best === undefined || seen < best)) best = seen;
    return best;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.loops);
  }
}

/** The watcher as its own process (as operators run it); resolves once it has started following. */
export function startWatcher(
  address: string,
  configPath: string,
  env: Record<string, string> = {},
): Promise<ChildProcess> {
  return startProcess(
    'workers/watcher/main.ts',
    { TEMPORAL_ADDRESS: address, SETTLE_CONFIG: configPath, ...env },
    'watcher started',
  );
}

/** The worker as its own process (`npm run worker`); resolves once its Workers run. */
export function startWorkerProcess(
  address: string,
  configPath: string,
  taskQueue: string,
  nonceTaskQueue = `${taskQueue}-nonces`,
): Promise<ChildProcess> {
  const env = {
    TEMPORAL_ADDRESS: address,
    ...(configPath ? { SETTLE_CONFIG: configPath } : {}),
    SETTLE_TASK_QUEUE: taskQueue,
    SETTLE_NONCE_TASK_QUEUE: nonceTaskQueue,
  };
  return startProcess('workers/worker/main.ts', { ...env, SETTLE_LOG_LEVEL: 'WARN' }, 'settle worker: task queue');
}

async function startProcess(script: string, env: Record<string, string>, ready: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', script], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, SETTLE_WATCH_METRICS_LOG_EVERY: 'off', ...env },
  });
  await new Promise<void>((resolve, reject) => {
    let output = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      if (process.env.BENCH_PROCESS_LOG) process.stderr.write(chunk);
      if (output.length < 100_000) output += chunk.toString();
      if (output.includes(ready)) resolve();
    });
    child.once('exit', (code) => reject(new Error(`${script} exited (${code}):\n${output}`)));
  });
  return child;
}

export async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
