/**
 * Windows of days, run in seconds on Temporal's time-skipping test server (devnet/time-skipping-server.ts): a step
 * timeout of days undoes exactly the effects that exist, an awaited step waits days without waking the run, and an
 * expired step held for days still takes its late evidence. Driven by signals and queries (the test server has no
 * visibility, and its updates do not reach the TypeScript SDK).
 */
import type { WorkflowHandle } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Worker } from '@temporalio/worker';
import { statusQuery } from '../../contract/messages';
import { evmCall, signal, startAction, stepOf } from '../support/actions';
import { recordHistory } from '../support/histories';
import { networkInfo, StubAdapter } from '../support/stub-adapter';
import { createTestWorker, startTimeSkippingServer, uniqueId } from '../support/temporal';

const EventType = temporal.api.enums.v1.EventType;
const DAY = 24 * 60 * 60 * 1000;
let env: TestWorkflowEnvironment;
const chainA = new StubAdapter('chainA');

// A server per test: each test's clock starts at today.
beforeEach(async () => {
  env = await startTimeSkippingServer();
});
afterEach(async () => {
  await env?.teardown();
});

/**
 * Waits, in real time, until the workflow has completed this many tasks. Reads the history, not the status query: the
 * test server answers queries with tasks of their own, which collide with the worker's.
 */
async function waitForTask(handle: WorkflowHandle, completed: number): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    const { events } = await handle.fetchHistory();
    if ((events ?? []).filter((e) => e.eventType === EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED).length >= completed)
      return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`the workflow never completed ${completed} tasks`);
}

async function waitForClose(handle: WorkflowHandle): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if ((await handle.describe()).status.name !== 'RUNNING') return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('the workflow never closed');
}

function workerFor(taskQueue: string): Promise<Worker> {
  return createTestWorker(
    env,
    { networks: { chainA: networkInfo('chainA', { finality: { confirmations: 1 } }) }, adapters: { chainA } },
    // No sticky cache: every task goes through the task queue (the test server's sticky queues time tasks out).
    { taskQueue, maxCachedWorkflows: 0 },
  );
}

it('gives an attestation two days, then undoes the lock it was waiting on: the unlock once, no mint', async () => {
  const actionId = uniqueId('two-days');
  const taskQueue = uniqueId('tq');
  const worker = await workerFor(taskQueue);
  const result = await worker.runUntil(async () => {
    const handle = await startAction(env, { options: { taskQueue } } as Worker, {
      actionId,
      steps: [
        {
          id: 'lock',
          network: 'chainA',
          operation: evmCall('lock(bytes32 id)', ['{{action.idHash}}']),
          compensation: evmCall('unlock(bytes32 id)', ['{{action.idHash}}']),
        },
        { id: 'attest', network: 'attester', operation: { kind: 'await' }, timeout: '2d', after: [{ step: 'lock' }] },
        {
          id: 'mint',
          network: 'chainA',
          operation: evmCall('mint(bytes32 id)', ['{{action.idHash}}']),
          after: [{ step: 'attest' }],
        },
      ],
    });
    return handle.result();
  });
  expect(result.phase).toBe('compensated');
  const attest = stepOf(result, 'attest');
  const expiry = attest.transitions.find((t) => t.to === 'expired')!;
  expect(new Date(expiry.at).getTime() - new Date(attest.startedAt!).getTime()).toBeGreaterThanOrEqual(2 * DAY);
  expect(new Date(expiry.at).getTime() - new Date(attest.startedAt!).getTime()).toBeLessThan(2 * DAY + 60 * 60_000);
  const sent = chainA.submissions.filter((s) => s.actionId === actionId).map((s) => `${s.stepId}/${s.for}`);
  expect(sent).toEqual(['lock/operation', 'lock/compensation']);
  expect(stepOf(result, 'lock').compensation?.state).toBe('final');
  expect(stepOf(result, 'mint').state).toBe('skipped');
});

it('waits days for an awaited step’s evidence without waking the run (no timer on a network Settle cannot read)', async () => {
  const actionId = uniqueId('quiet-wait');
  const taskQueue = uniqueId('tq');
  const worker = await workerFor(taskQueue);
  const result = await worker.runUntil(async () => {
    const handle = await startAction(env, { options: { taskQueue } } as Worker, {
      actionId,
      steps: [{ id: 'attest', network: 'attester', operation: { kind: 'await' } }],
    });
    await waitForTask(handle, 1);
    await env.sleep(3 * DAY);
    await signal(handle, { step: 'attest', kind: 'finalized', source: 'attester' });
    await waitForClose(handle);
    const { events } = await handle.fetchHistory();
    await recordHistory('awaited-days.quiet-waits', handle);
    return { status: await handle.result(), events: events! };
  });
  expect(result.status.phase).toBe('completed');
  expect(result.events.filter((e) => e.eventType === EventType.EVENT_TYPE_TIMER_STARTED)).toEqual([]);
  expect(result.events.length).toBeLessThan(40);
});

it('holds an expired step for days, and still takes the evidence that comes four days late', async () => {
  const actionId = uniqueId('late-evidence');
  const taskQueue = uniqueId('tq');
  const worker = await workerFor(taskQueue);
  const result = await worker.runUntil(async () => {
    const handle = await startAction(env, { options: { taskQueue } } as Worker, {
      actionId,
      deadline: '1d',
      onDeadline: 'hold',
      steps: [{ id: 'attest', network: 'attester', operation: { kind: 'await' } }],
    });
    await waitForTask(handle, 1);
    await env.sleep(DAY + 1000);
    await waitForTask(handle, 2);
    await env.sleep(4 * DAY);
    await signal(handle, { step: 'attest', kind: 'finalized', source: 'attester' });
    await waitForTask(handle, 3);
    return handle.query(statusQuery);
  });
  expect(result.phase).toBe('completed');
  expect(stepOf(result, 'attest').transitions.map((t) => t.to)).toEqual(['expired', 'final']);
  expect(result.phaseTransitions.map((t) => t.to)).toEqual(['needs_action', 'running', 'completed']);
  const [held, , completed] = result.phaseTransitions;
  const started = new Date(result.startedAt).getTime();
  expect(new Date(held.at).getTime() - started).toBeGreaterThanOrEqual(DAY);
  expect(new Date(completed.at).getTime() - new Date(held.at).getTime()).toBeGreaterThanOrEqual(4 * DAY);
});
