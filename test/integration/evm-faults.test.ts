/**
 * Faults with the worker as a real separate process (`tsx workers/worker/main.ts`): killed with SIGKILL right after it
 * broadcast the lock, and an RPC that is unreachable for 30 s.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { LocalChains } from '../../devnet/chains';
import { statusQuery } from '../../contract/messages';
import { bridgePlan, ChainProbe, RpcOutage, startTestChains, waitFor, writeTestNetworksFile } from '../support/chains';
import { startTestServer, uniqueId } from '../support/temporal';

let env: TestWorkflowEnvironment;
let local: LocalChains;
let probe: ChainProbe;
let outage: RpcOutage;
let configPath: string;
let marker: string;
const workers: ChildProcess[] = [];
const taskQueue = uniqueId('evm-faults');
const ROOT = path.resolve(__dirname, '../..');

beforeAll(async () => {
  [env, local] = await Promise.all([startTestServer(), startTestChains()]);
  probe = new ChainProbe(local);
  const upstream = new URL(local.chains.chainA.rpcUrl);
  outage = new RpcOutage({ host: upstream.hostname, port: Number(upstream.port) });
  await outage.start();
  const written = writeTestNetworksFile(local.chains, { rpcUrls: { chainA: outage.url }, killAfterBroadcast: true });
  marker = written.marker;
  configPath = written.configPath;
}, 180_000);

afterAll(async () => {
  await Promise.all(workers.map(stopWorker));
  await outage?.stop();
  await Promise.all([env?.teardown(), local?.stop()]);
}, 60_000);

/** Starts `tsx workers/worker/main.ts` against the test server; resolves once it polls the task queue. */
async function startWorkerProcess(): Promise<ChildProcess> {
  // `node --import tsx`: one process, so the SIGKILL hits the worker itself (the tsx CLI would be a parent).
  const child = spawn(process.execPath, ['--import', 'tsx', 'workers/worker/main.ts'], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      TEMPORAL_ADDRESS: env.address,
      TEMPORAL_NAMESPACE: 'default',
      SETTLE_TASK_QUEUE: taskQueue,
      SETTLE_CONFIG: configPath,
      SETTLE_LOG_LEVEL: 'WARN',
    },
  });
  workers.push(child);
  let output = '';
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('settle worker:')) resolve();
    });
    child.once('exit', (code, signal) => reject(new Error(`worker exited (${code ?? signal}):\n${output}`)));
  });
  return child;
}

async function stopWorker(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

function plan(actionId: string) {
  return bridgePlan(local, actionId, { amount: '700', deadline: '5m' });
}

async function settled(actionId: string, timeoutMs = 180_000) {
  const handle = env.client.workflow.getHandle(actionId);
  return waitFor(
    `${actionId} to settle`,
    async () => {
      const status = await handle.query(statusQuery);
      return ['completed', 'compensated', 'failed', 'needs_action'].includes(status.phase) ? status : undefined;
    },
    timeoutMs,
    500,
  );
}

it('sends exactly one lock transaction when the worker is SIGKILLed right after broadcasting it and restarted', async () => {
  const actionId = uniqueId('crash');
  const nonceBefore = await probe.sentCount('chainA');
  const worker = await startWorkerProcess();
  const killed = new Promise<NodeJS.Signals | null>((resolve) =>
    worker.once('exit', (_code, signal) => resolve(signal)),
  );
  await env.client.workflow.start('crossNetworkAction', { taskQueue, workflowId: actionId, args: [plan(actionId)] });

  expect(await killed).toBe('SIGKILL');
  expect(existsSync(marker)).toBe(true);
  await startWorkerProcess();

  const status = await settled(actionId);
  expect(status.phase).toBe('completed');
  expect(await probe.events('chainA', 'Locked', actionId)).toHaveLength(1);
  expect(await probe.events('chainB', 'Minted', actionId)).toHaveLength(1);
  // One transaction from the bridge signer on chain A: the lock, signed once, broadcast again after the crash.
  expect(await probe.sentCount('chainA')).toBe(nonceBefore + 1);
  const lock = status.steps.find((s) => s.id === 'lock')!;
  expect(lock.attempt).toBe(1);
  expect(new Set(lock.transitions.map((t) => t.ref).filter(Boolean)).size).toBe(1);
}, 240_000);

it('completes without help when chain A is unreachable for 30 s and then back', async () => {
  const actionId = uniqueId('outage');
  if (!workers.some((w) => w.exitCode === null && w.signalCode === null)) await startWorkerProcess();
  await outage.down();
  const began = Date.now();
  await env.client.workflow.start('crossNetworkAction', { taskQueue, workflowId: actionId, args: [plan(actionId)] });

  await new Promise((r) => setTimeout(r, 30_000));
  const during = await env.client.workflow.getHandle(actionId).query(statusQuery);
  expect(during.phase).toBe('running');
  expect(during.steps[0].state).toBe('submitting');
  await outage.up();

  const status = await settled(actionId);
  expect(Date.now() - began).toBeGreaterThanOrEqual(30_000);
  expect(status.phase).toBe('completed');
  expect(await probe.events('chainA', 'Locked', actionId)).toHaveLength(1);
  expect(await probe.events('chainB', 'Minted', actionId)).toHaveLength(1);
}, 240_000);
