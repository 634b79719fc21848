/**
 * The chain watcher (`tsx workers/watcher/main.ts`, a real process) against real hardhat chains and a real Temporal server:
 * transfers completed from its evidence alone (no `checkStep` polling), sharding, reorgs below and beyond a policy,
 * SIGKILL and restart, and actions that complete by polling once it is stopped for good.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Worker } from '@temporalio/worker';
import type { BridgeParams } from '../../client/plans';
import type { LocalChains } from '../../devnet/chains';
import { buildNetworks } from '../../networks/load';
import { statusQuery } from '../../contract/messages';
import type { ActionStatus, StepStatus } from '../../contract/status';
import {
  bridgePlan,
  ChainProbe,
  freePort,
  startTestChains,
  USER,
  waitFor,
  writeTestNetworksFile,
} from '../support/chains';
import { createTestWorker, startTestServer, uniqueId } from '../support/temporal';

const ROOT = path.resolve(__dirname, '../..');
/** Actions on this queue poll only after a minute without news: whatever completes them sooner is the watcher. */
const WATCHED_QUEUE = uniqueId('watched');
/** Actions on this queue poll every 500 ms: the fallback when no watcher runs. */
const POLLING_QUEUE = uniqueId('polling');

let env: TestWorkflowEnvironment;
let local: LocalChains;
let probe: ChainProbe;
let configPath: string;
const workers: { worker: Worker; running: Promise<void> }[] = [];
const watchers = new Set<WatcherProcess>();

beforeAll(async () => {
  [env, local] = await Promise.all([startTestServer(), startTestChains()]);
  probe = new ChainProbe(local);
  const slow = writeTestNetworksFile(local.chains, { confirmations: 2, pollIntervalMs: 60_000 });
  const fast = writeTestNetworksFile(local.chains, { confirmations: 2, pollIntervalMs: 500 });
  configPath = slow.configPath;
  for (const [file, taskQueue] of [
    [slow.file, WATCHED_QUEUE],
    [fast.file, POLLING_QUEUE],
  ] as const) {
    const deps = buildNetworks(
      file,
      { TEMPORAL_ADDRESS: env.address, TEMPORAL_NAMESPACE: 'default', SETTLE_TASK_QUEUE: taskQueue },
      { client: env.client },
    );
    const worker = await createTestWorker(env, deps, { taskQueue });
    workers.push({ worker, running: worker.run() });
  }
}, 180_000);

afterAll(async () => {
  await Promise.all([...watchers].map((w) => w.stop()));
  for (const { worker, running } of workers) {
    if (worker.getState() === 'RUNNING') worker.shutdown();
    await running.catch(() => undefined);
  }
  await Promise.all([env?.teardown(), local?.stop()]);
}, 60_000);

afterEach(async () => {
  await Promise.all([...watchers].map((w) => w.stop()));
});

interface LogLine {
  msg: string;
  level: string;
  network?: string;
  action?: string;
  step?: string;
  for?: string;
  kind?: string;
  block?: { number: string; hash: string };
}

/** `workers/watcher/main.ts` as a child process; its JSON log lines are collected. */
class WatcherProcess {
  readonly lines: LogLine[] = [];
  private output = '';

  private constructor(readonly child: ChildProcess) {}

  static async start(extraEnv: Record<string, string> = {}): Promise<WatcherProcess> {
    // One process (node with tsx's loader), not the tsx CLI and its child: a SIGKILL must reach the watcher itself.
    const child = spawn(process.execPath, ['--import', 'tsx', 'workers/watcher/main.ts'], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        TEMPORAL_ADDRESS: env.address,
        TEMPORAL_NAMESPACE: 'default',
        SETTLE_CONFIG: configPath,
        SETTLE_WATCH_REFRESH: '1s',
        SETTLE_WATCH_DROP_AFTER: '1s',
        SETTLE_WATCH_METRICS_LOG_EVERY: 'off',
        ...extraEnv,
      },
    });
    const watcher = new WatcherProcess(child);
    watchers.add(watcher);
    let partial = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      partial += chunk.toString();
      const complete = partial.split('\n');
      partial = complete.pop()!;
      for (const line of complete) {
        watcher.output += `${line}\n`;
        if (line.trim()) watcher.lines.push(JSON.parse(line) as LogLine);
      }
    });
    child.stderr!.on('data', (chunk: Buffer) => (watcher.output += chunk.toString()));
    await new Promise<void>((resolve, reject) => {
      const check = setInterval(() => {
        if (watcher.lines.some((l) => l.msg === 'watcher started')) {
          clearInterval(check);
          resolve();
        }
      }, 50);
      child.once('exit', (code, signal) => {
        clearInterval(check);
        reject(new Error(`watcher exited (${code ?? signal}):\n${watcher.output}`));
      });
    });
    return watcher;
  }

  signals(actionId: string): LogLine[] {
    return this.lines.filter((l) => l.msg === 'signal' && l.action === actionId);
  }

  /** Stops it: SIGTERM (a clean stop) or SIGKILL (a crash). Resolves once the process is gone. */
  async stop(signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<void> {
    watchers.delete(this);
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.kill(signal);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }
}

function plan(actionId: string, overrides: Partial<BridgeParams> = {}) {
  return bridgePlan(local, actionId, overrides);
}

async function start(spec: ReturnType<typeof plan>, taskQueue = WATCHED_QUEUE) {
  return env.client.workflow.start('crossNetworkAction', { taskQueue, workflowId: spec.actionId, args: [spec] });
}

async function settled(handle: WorkflowHandle, timeoutMs = 90_000): Promise<ActionStatus> {
  return waitFor(
    `${handle.workflowId} to settle`,
    async () => {
      const status = await handle.query(statusQuery);
      return ['completed', 'compensated', 'failed', 'needs_action'].includes(status.phase) ? status : undefined;
    },
    timeoutMs,
    200,
  );
}

async function stepReaches(handle: WorkflowHandle, stepId: string, state: StepStatus['state']): Promise<StepStatus> {
  return waitFor(`${handle.workflowId}: ${stepId} ${state}`, async () => {
    const step = (await handle.query(statusQuery)).steps.find((s) => s.id === stepId)!;
    return step.state === state ? step : undefined;
  });
}

/** Names of the activities the workflow scheduled (checkStep is the polling fallback). */
async function activitiesRun(handle: WorkflowHandle): Promise<string[]> {
  const history = await handle.fetchHistory();
  return (history.events ?? []).flatMap((e) =>
    e.activityTaskScheduledEventAttributes?.activityType?.name
      ? [e.activityTaskScheduledEventAttributes.activityType.name]
      : [],
  );
}

const transitionsTo = (step: StepStatus, to: string) => step.transitions.filter((t) => t.to === to);
/**
 * A step's inclusion is seen by the submission itself (it looks for its transaction for a few block times) or, when it
 * comes later, reported by the watcher; its finality is the watcher's word. The watcher signals only what the workflow
 * does not know yet.
 */
function expectWatched(step: StepStatus): void {
  expect(transitionsTo(step, 'included')).toHaveLength(1);
  expect([`watcher:${step.network}`, `evm:${step.network}`]).toContain(transitionsTo(step, 'included')[0].source);
  expect(transitionsTo(step, 'final')).toEqual([expect.objectContaining({ source: `watcher:${step.network}` })]);
}
const includedByWatcher = (step: StepStatus) =>
  transitionsTo(step, 'included').filter((t) => t.source === `watcher:${step.network}`).length;
/**
 * The watcher's `included` signals for a step: one for each inclusion it made known, and at most one per inclusion (it
 * may send one the submission's own look reported a moment before it, which then changes nothing).
 */
function expectIncludedSignals(signalled: number, step: StepStatus): void {
  expect(signalled).toBeGreaterThanOrEqual(includedByWatcher(step));
  expect(signalled).toBeLessThanOrEqual(transitionsTo(step, 'included').length);
}

it('completes a bridge transfer from its evidence alone: no checkStep, one signal per transition, JSON logs and metrics', async () => {
  const metricsPort = await freePort();
  const watcher = await WatcherProcess.start({ SETTLE_WATCH_METRICS_PORT: String(metricsPort) });
  const actionId = uniqueId('watched');
  const handle = await start(plan(actionId));

  const status = await settled(handle);

  expect(status.phase).toBe('completed');
  expect(await activitiesRun(handle)).not.toContain('checkStep');
  for (const step of status.steps) expectWatched(step);
  // The mint's output has its decoded Minted event: evidence carries what checkStep would have reported.
  const mint = status.steps.find((s) => s.id === 'mint')!;
  expect(mint.output).toMatchObject({ amount: '1000', recipient: USER, txHash: mint.ref });
  const signals = watcher.signals(actionId).map((l) => `${l.step}:${l.kind}@${l.network}`);
  expect(signals.filter((l) => !l.includes(':included@'))).toEqual(
    status.steps.map((step) => `${step.id}:confirmed@${step.network}`),
  );
  for (const step of status.steps) {
    expectIncludedSignals(signals.filter((l) => l === `${step.id}:included@${step.network}`).length, step);
  }
  for (const line of watcher.signals(actionId))
    expect(line.block).toEqual(expect.objectContaining({ hash: expect.any(String) }));

  const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  expect(metrics).toMatch(/settle_watcher_signals_total\{network="chainA",kind="confirmed"\} [1-9]/);
  expect(metrics).toMatch(/settle_watcher_signals_total\{network="chainB",kind="confirmed"\} [1-9]/);
  expect(metrics).toMatch(/settle_watcher_head_lag_seconds\{network="chainA"\} \d/);
  expect(metrics).toMatch(/settle_watcher_head_block\{network="chainB"\} [1-9]/);
});

it('shards by network: one watcher per chain plus a second on chain A complete a transfer, each step once', async () => {
  const [onA, onB, alsoOnA] = await Promise.all([
    WatcherProcess.start({ SETTLE_WATCH_NETWORKS: 'chainA' }),
    WatcherProcess.start({ SETTLE_WATCH_NETWORKS: 'chainB' }),
    WatcherProcess.start({ SETTLE_WATCH_NETWORKS: 'chainA' }),
  ]);
  const actionId = uniqueId('sharded');
  const handle = await start(plan(actionId));

  const status = await settled(handle);

  expect(status.phase).toBe('completed');
  expect(await activitiesRun(handle)).not.toContain('checkStep');
  for (const step of status.steps) expectWatched(step);
  // Chain A's two watchers race for its evidence (the lock's final block, its inclusion unless the submission saw
  // it): whichever sent it, it was about chain A (their shard), and the steps still moved once each.
  const onChainA = [...onA.signals(actionId), ...alsoOnA.signals(actionId)];
  expect(new Set(onChainA.map((l) => l.network))).toEqual(new Set(['chainA']));
  expect(new Set(onB.signals(actionId).map((l) => l.network))).toEqual(new Set(['chainB']));
});

it('signals reorged when chain A reorgs the lock below its policy: the lock moves back, is sent again and the action completes once', async () => {
  const watcher = await WatcherProcess.start();
  const actionId = uniqueId('shallow');
  const snapshot = await probe.snapshot('chainA');
  const handle = await start(plan(actionId, { sourceFinality: { confirmations: 8 } }));
  const included = await stepReaches(handle, 'lock', 'included');

  await probe.revert('chainA', snapshot);
  const status = await settled(handle);

  expect(status.phase).toBe('completed');
  expect(status.alarms).toEqual([]);
  const lock = status.steps.find((s) => s.id === 'lock')!;
  expect(lock.transitions).toContainEqual(
    expect.objectContaining({ from: 'included', to: 'submitted', source: 'watcher:chainA' }),
  );
  expect(lock.ref).toBe(included.ref);
  expect(lock.block?.hash).not.toBe(included.block?.hash);
  const kinds = watcher
    .signals(actionId)
    .filter((l) => l.step === 'lock')
    .map((l) => l.kind);
  // Each inclusion the submission did not see itself was signalled; then the reorg, the drop, the final block.
  expect(kinds.filter((k) => k !== 'included')).toEqual(['reorged', 'dropped', 'confirmed']);
  expect(transitionsTo(lock, 'included')).toHaveLength(2);
  expectIncludedSignals(kinds.filter((k) => k === 'included').length, lock);
  expect(watcher.signals(actionId).find((l) => l.kind === 'reorged')?.block).toEqual(included.block);
  expect(watcher.lines.filter((l) => l.msg === 'reorg' && l.network === 'chainA').length).toBeGreaterThan(0);
  expect(await activitiesRun(handle)).not.toContain('checkStep');
  expect(await probe.events('chainA', 'Locked', actionId)).toHaveLength(1);
  expect(await probe.events('chainB', 'Minted', actionId)).toHaveLength(1);
});

it('raises a finality alarm when chain A reorgs the lock away after it was final under its policy', async () => {
  const watcher = await WatcherProcess.start();
  const actionId = uniqueId('deep');
  const snapshot = await probe.snapshot('chainA');
  // The mint waits for many confirmations, so the action is still running when the lock's finality is contradicted.
  const handle = await start(plan(actionId, { destinationFinality: { confirmations: 60 } }));
  const final = await stepReaches(handle, 'lock', 'final');

  await probe.revert('chainA', snapshot);
  const status = await waitFor('the finality alarm', async () => {
    const current = await handle.query(statusQuery);
    return current.alarms.length > 0 ? current : undefined;
  });

  expect(status.alarms).toEqual([
    expect.objectContaining({ step: 'lock', for: 'operation', finalBlock: final.block, source: 'watcher:chainA' }),
  ]);
  const lock = status.steps.find((s) => s.id === 'lock')!;
  expect(lock.state).not.toBe('final');
  expect(lock.transitions).toContainEqual(expect.objectContaining({ from: 'final', source: 'watcher:chainA' }));
  expect(watcher.signals(actionId)).toContainEqual(
    expect.objectContaining({ step: 'lock', kind: 'reorged', block: final.block }),
  );
  await handle.terminate('test over: the lock was reorged away after it was final');
});

it('rebuilds what it follows after SIGKILL: every action completes with one included and one final per step', async () => {
  const first = await WatcherProcess.start();
  const handles = await Promise.all([1, 2, 3, 4].map(() => start(plan(uniqueId('killed')))));
  // A lock in a block (the submission sees it itself, or the watcher reports it), and not final yet: the watcher dies.
  await waitFor(
    'a lock included',
    async () => {
      const statuses = await Promise.all(handles.map((h) => h.query(statusQuery)));
      return statuses.some((s) => s.steps.find((step) => step.id === 'lock')!.state === 'included');
    },
    60_000,
    20,
  );

  await first.stop('SIGKILL');
  // Blocks go by while no watcher runs (as many as a step's confirmations): locks get included and confirmed unseen.
  const killedAt = await probe.blockNumber('chainA');
  await waitFor('blocks while no watcher runs', async () => (await probe.blockNumber('chainA')) >= killedAt + 2n);
  const second = await WatcherProcess.start();
  const statuses = await Promise.all(handles.map((h) => settled(h)));

  for (const [i, status] of statuses.entries()) {
    expect(status.phase).toBe('completed');
    expect(await activitiesRun(handles[i])).not.toContain('checkStep');
    for (const step of status.steps) expectWatched(step);
  }
  // The locks' confirming blocks came while no watcher ran: the restarted one found them from Temporal and the chain.
  expect(second.lines).toContainEqual(expect.objectContaining({ msg: 'signal', step: 'lock', kind: 'confirmed' }));
});

it('is optional: stopped for good, every action still completes through polling', async () => {
  const watcher = await WatcherProcess.start();
  const handles = await Promise.all([1, 2, 3].map(() => start(plan(uniqueId('polled')), POLLING_QUEUE)));
  await waitFor('the watcher to signal', async () => watcher.lines.some((l) => l.msg === 'signal'));

  await watcher.stop('SIGTERM');
  const statuses = await Promise.all(handles.map((h) => settled(h)));

  for (const [i, status] of statuses.entries()) {
    expect(status.phase).toBe('completed');
    expect(await activitiesRun(handles[i])).toContain('checkStep');
    const mint = status.steps.find((s) => s.id === 'mint')!;
    expect(transitionsTo(mint, 'final')).toEqual([expect.objectContaining({ source: 'evm:chainB' })]);
  }
  expect(watcher.child.exitCode).toBe(0);
});
