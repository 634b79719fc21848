/**
 * Routing by network, with real worker processes that each hold one chain: a bridge transfer's lock is submitted by
 * the worker that holds chain A and its mint by the one that holds chain B, never by a worker that cannot send there,
 * and the network the first worker does not know is learnt from the other, not frozen as a placeholder.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { LocalChains } from '../../devnet/chains';
import { statusQuery } from '../../contract/messages';
import { bridgePlan, startTestChains, waitFor, writeTestNetworksFile } from '../support/chains';
import { startTestServer, uniqueId } from '../support/temporal';

let env: TestWorkflowEnvironment;
let local: LocalChains;
const workers = new Map<string, ChildProcess>();
const taskQueue = uniqueId('routing');
const ROOT = path.resolve(__dirname, '../..');

beforeAll(async () => {
  [env, local] = await Promise.all([startTestServer(), startTestChains()]);
  const { file, dir } = writeTestNetworksFile(local.chains, { confirmations: 2, pollIntervalMs: 500 });
  for (const network of ['chainA', 'chainB']) {
    const { baseDir: _baseDir, ...written } = file;
    const only = { ...written, networks: { [network]: file.networks[network] } };
    const configPath = path.join(dir, `${network}.json`);
    writeFileSync(configPath, JSON.stringify(only));
    workers.set(network, await startWorkerProcess(configPath));
  }
}, 180_000);

afterAll(async () => {
  await Promise.all([...workers.values()].map(stopWorker));
  await Promise.all([env?.teardown(), local?.stop()]);
}, 60_000);

async function startWorkerProcess(configPath: string): Promise<ChildProcess> {
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

it('submits each step on the worker that holds its network', async () => {
  const spec = bridgePlan(local, uniqueId('routed'), { deadline: '5m' });
  const handle = await env.client.workflow.start('crossNetworkAction', {
    taskQueue,
    workflowId: spec.actionId,
    args: [spec],
  });
  const status = await waitFor(
    'the transfer to complete',
    async () => {
      const current = await handle.query(statusQuery);
      return ['completed', 'compensated', 'failed', 'needs_action'].includes(current.phase) ? current : undefined;
    },
    150_000,
    250,
  );
  expect(status.phase).toBe('completed');

  // Which worker process ran each submission: the identity Temporal records is `<pid>@<host>`.
  const history = await handle.fetchHistory();
  const events = history.events ?? [];
  const submittedBy = new Map<string, string>();
  for (const event of events) {
    const scheduled = event.activityTaskScheduledEventAttributes;
    if (scheduled?.activityType?.name !== 'submitStep') continue;
    const started = events.find(
      (e) =>
        e.activityTaskStartedEventAttributes &&
        Number(e.activityTaskStartedEventAttributes.scheduledEventId) === Number(event.eventId),
    );
    const input = JSON.parse(Buffer.from(scheduled.input!.payloads![0].data!).toString()) as { stepId: string };
    submittedBy.set(input.stepId, String(started?.activityTaskStartedEventAttributes?.identity).split('@')[0]);
    expect(scheduled.taskQueue?.name).toMatch(new RegExp(`^${taskQueue}/chain[AB]$`));
  }
  expect(submittedBy.get('lock')).toBe(String(workers.get('chainA')!.pid));
  expect(submittedBy.get('mint')).toBe(String(workers.get('chainB')!.pid));
}, 200_000);
