/**
 * A passed deadline is applied once, whatever continue-as-new does to its timer, and it counts from the workflow's
 * start, not from its first task.
 */
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Worker } from '@temporalio/worker';
import { statusQuery } from '../../contract/messages';
import { signal, startAction, stepOf, waitForStatus } from '../support/actions';
import { waitFor } from '../support/chains';
import { createTestWorker, startTestServer, uniqueId } from '../support/temporal';

let env: TestWorkflowEnvironment;
let worker: Worker;
let running: Promise<void>;

beforeAll(async () => {
  env = await startTestServer();
  worker = await createTestWorker(env, { networks: {}, adapters: {} });
  running = worker.run();
});
afterAll(async () => {
  worker?.shutdown();
  await running;
  await env?.teardown();
});

it('never applies a passed deadline again in a run that continued as new', async () => {
  const actionId = uniqueId('deadline-once');
  await startAction(
    env,
    worker,
    {
      actionId,
      deadline: '2s',
      onDeadline: 'hold',
      steps: [
        { id: 'attest', network: 'attester', operation: { kind: 'await' } },
        // Its own timeout is re-armed in the new run: that run has timers, only not the deadline's.
        { id: 'release', network: 'bank', operation: { kind: 'await' }, after: [{ step: 'attest' }], timeout: '1h' },
      ],
    },
    { historyEventLimit: 40 },
  );
  const handle = env.client.workflow.getHandle(actionId);
  await waitForStatus(handle, (s) => s.phase === 'needs_action' && s.reason === 'the action deadline passed');
  // The attestation arrives late after all: the held action goes on by itself and `release` starts.
  await signal(handle, { step: 'attest', kind: 'finalized', source: 'attester' });
  await waitForStatus(handle, (s) => s.phase === 'running' && stepOf(s, 'release').state === 'waiting');
  const before = (await handle.describe()).runId;
  // Evidence pushes the run past its history limit, sent until it continues as new (signals taken together in one
  // workflow task add fewer events: no fixed count is sure to do).
  const next = await waitFor('the run to continue as new and finish its first task', async () => {
    const runId = (await handle.describe()).runId;
    if (runId === before) {
      await signal(handle, { step: 'release', kind: 'reorged', orphanedHash: `0x${'ab'.repeat(32)}`, source: 'noise' });
      return undefined;
    }
    const history = await env.client.workflow.getHandle(actionId, runId).fetchHistory();
    return history.events?.some((e) => e.workflowTaskCompletedEventAttributes) ? runId : undefined;
  });
  // The new run arms no deadline timer (it passed), so nothing expires `release`.
  const history = await env.client.workflow.getHandle(actionId, next).fetchHistory();
  const timers = (history.events ?? [])
    .filter((e) => e.timerStartedEventAttributes)
    .map((e) => JSON.parse(Buffer.from(e.userMetadata!.summary!.data!).toString()) as string);
  expect(timers).toContain('timeout of release on bank');
  expect(timers.filter((summary) => summary.startsWith('deadline of'))).toEqual([]);
  const status = await handle.query(statusQuery);
  expect(status.phase).toBe('running');
  expect(stepOf(status, 'release').state).toBe('waiting');
  await signal(handle, { step: 'release', kind: 'finalized', source: 'bank' });
  expect((await handle.result()).phase).toBe('completed');
});

it('counts the deadline from the workflow’s start: a first task that runs late does not extend it', async () => {
  const actionId = uniqueId('late-first-task');
  const taskQueue = uniqueId('late');
  // No worker polls this queue yet: the first workflow task waits.
  const handle = await env.client.workflow.start('crossNetworkAction', {
    taskQueue,
    workflowId: actionId,
    args: [
      {
        actionId,
        deadline: '3s',
        onDeadline: 'hold',
        steps: [{ id: 'attest', network: 'attester', operation: { kind: 'await' } }],
      },
    ],
  });
  const startedAt = Date.now();
  await waitFor('the deadline to be due', async () => Date.now() - startedAt > 3_000);
  const late = await createTestWorker(env, { networks: {}, adapters: {} }, { taskQueue });
  const lateRunning = late.run();
  try {
    // Counted from the start, the deadline is already due when the first task runs: it fires at once.
    const status = await waitForStatus(handle, (s) => s.phase === 'needs_action', 10_000);
    expect(status.reason).toBe('the action deadline passed');
    expect(Date.parse(status.startedAt)).toBeLessThanOrEqual(startedAt + 1_000);
    await handle.terminate('test over');
  } finally {
    late.shutdown();
    await lateRunning;
  }
});
