/**
 * A compensation that fails is a state of its own, and an operator can run it again as a new attempt, with its own
 * transaction; what the failed attempt sent stays findable.
 */
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Worker } from '@temporalio/worker';
import { retryStepUpdate } from '../../contract/messages';
import { SettleRefs } from '../../contract/search-attributes';
import { block, evmCall, signal, startAction, stepOf, waitForStatus } from '../support/actions';
import { networkInfo, refFor, StubAdapter } from '../support/stub-adapter';
import { recordHistory } from '../support/histories';
import { createTestWorker, startTestServer, uniqueId } from '../support/temporal';

let env: TestWorkflowEnvironment;
let worker: Worker;
let running: Promise<void>;
const chainA = new StubAdapter('chainA');

beforeAll(async () => {
  env = await startTestServer();
  worker = await createTestWorker(env, { networks: { chainA: networkInfo('chainA') }, adapters: { chainA } });
  running = worker.run();
});
afterAll(async () => {
  worker?.shutdown();
  await running;
  await env?.teardown();
});

it('runs a failed compensation again as a new attempt when an operator retries it', async () => {
  const actionId = uniqueId('refund-again');
  const handle = await startAction(env, worker, {
    actionId,
    steps: [
      {
        id: 'lock',
        network: 'chainA',
        operation: evmCall('lock(bytes32 id)', ['{{action.idHash}}']),
        compensation: evmCall('unlock(bytes32 id)', ['{{action.idHash}}']),
      },
      { id: 'attest', network: 'attester', operation: { kind: 'await' }, after: [{ step: 'lock', stage: 'final' }] },
    ],
  });
  const lock = refFor(actionId, 'lock', 1);
  await waitForStatus(handle, (s) => stepOf(s, 'lock').state === 'submitted');
  await signal(handle, { ref: lock, kind: 'confirmed', block: block(5), confirmations: 2, source: 'watcher' });
  await waitForStatus(handle, (s) => stepOf(s, 'lock').state === 'final');
  // The unlock reverts (say, the escrow is paused): the compensation failed, the action waits for an operator.
  chainA.revert.add('compensation:lock');
  await signal(handle, { step: 'attest', kind: 'failed', reason: 'attester refused', source: 'attester' });
  let status = await waitForStatus(handle, (s) => s.phase === 'needs_action');
  expect(stepOf(status, 'lock').state).toBe('compensation_failed');
  expect(status.reason).toMatch(/compensation of "lock" failed/);

  chainA.revert.delete('compensation:lock');
  status = await handle.executeUpdate(retryStepUpdate, {
    args: [{ step: 'lock', reason: 'escrow unpaused', operator: 'bob' }],
  });
  expect(status.phase).toBe('compensating');
  expect(stepOf(status, 'lock').transitions.find((t) => t.operator === 'bob')).toMatchObject({
    from: 'compensation_failed',
    to: 'compensating',
    reason: 'escrow unpaused',
  });
  const unlock = refFor(actionId, 'lock', 1, 'compensation-2');
  await waitForStatus(handle, (s) => stepOf(s, 'lock').compensation?.ref === unlock);
  await signal(handle, {
    ref: unlock,
    for: 'compensation',
    kind: 'confirmed',
    block: block(9),
    confirmations: 2,
    source: 'watcher',
  });
  const result = await handle.result();
  expect(result.phase).toBe('compensated');
  const attempts = chainA.submissions.filter((s) => s.actionId === actionId && s.for === 'compensation');
  expect(attempts.map((s) => s.nonceKey?.split('/').at(-1))).toEqual(['compensation', 'compensation-2']);
  const refs = (await handle.describe()).typedSearchAttributes.get(SettleRefs);
  expect(refs).toEqual(expect.arrayContaining([lock, unlock]));
  await recordHistory('compensation-retried.exactly-once', handle);
});
