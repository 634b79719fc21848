/**
 * What a signal may claim about an EVM step (the chain's facts are Settle's own transactions, in named blocks), and
 * what a worker that cannot send does to a step (nothing final: the step waits for one that can).
 */
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Worker } from '@temporalio/worker';
import { WorkflowUpdateFailedError } from '@temporalio/client';
import { resolveStepUpdate, statusQuery } from '../../contract/messages';
import { block, evmCall, signal, startAction, stepOf, waitForStatus } from '../support/actions';
import { networkInfo, refFor, StubAdapter } from '../support/stub-adapter';
import { createTestWorker, startTestServer, uniqueId } from '../support/temporal';

let env: TestWorkflowEnvironment;
let worker: Worker;
let running: Promise<void>;
const chainA = new StubAdapter('chainA');
const FOREIGN = `0x${'f0'.repeat(32)}`;

beforeAll(async () => {
  env = await startTestServer();
  worker = await createTestWorker(env, {
    // chainC is known (its finality policy) but this worker has no adapter for it: it cannot send there.
    networks: { chainA: networkInfo('chainA'), chainC: networkInfo('chainC') },
    adapters: { chainA },
  });
  running = worker.run();
});
afterAll(async () => {
  worker?.shutdown();
  await running;
  await env?.teardown();
});

it('never lets a signal attach a transaction Settle did not submit to an EVM step', async () => {
  const actionId = uniqueId('foreign');
  chainA.unreachable.set('pay', 3);
  const handle = await startAction(env, worker, {
    actionId,
    steps: [{ id: 'pay', network: 'chainA', operation: evmCall('pay(bytes32 id)', ['{{action.idHash}}']) }],
  });
  // While Settle's own submission is still retrying, somebody reports another transaction as the step's.
  await waitForStatus(handle, (s) => s.steps[0].retrying !== undefined);
  await signal(handle, { step: 'pay', kind: 'submitted', ref: FOREIGN, source: 'forger' });
  await signal(handle, { step: 'pay', kind: 'finalized', ref: FOREIGN, block: block(7), source: 'forger' });
  let status = await handle.query(statusQuery);
  expect(stepOf(status, 'pay').refs).not.toContain(FOREIGN);
  expect(stepOf(status, 'pay').state).toBe('submitting');
  // Settle's own transaction goes out, and only evidence about it counts.
  const own = refFor(actionId, 'pay', 1);
  status = await waitForStatus(handle, (s) => stepOf(s, 'pay').ref === own, 30_000);
  await signal(handle, { step: 'pay', kind: 'finalized', ref: FOREIGN, block: block(8), source: 'forger' });
  await signal(handle, { ref: own, kind: 'confirmed', block: block(9), confirmations: 2, source: 'watcher' });
  const result = await handle.result();
  expect(result.phase).toBe('completed');
  expect(stepOf(result, 'pay').refs).toEqual([own]);
  expect(chainA.submissions.filter((s) => s.actionId === actionId).length).toBeGreaterThanOrEqual(2);
});

it('refuses a chain claim about an EVM step that names no block, and takes one about an awaited step', async () => {
  const actionId = uniqueId('blockless');
  const handle = await startAction(env, worker, {
    actionId,
    steps: [
      { id: 'pay', network: 'chainA', operation: evmCall('pay(bytes32 id)', ['{{action.idHash}}']) },
      { id: 'attest', network: 'attester', operation: { kind: 'await' }, after: [{ step: 'pay', stage: 'final' }] },
    ],
  });
  const own = refFor(actionId, 'pay', 1);
  await waitForStatus(handle, (s) => stepOf(s, 'pay').state === 'submitted');
  // Without a block, a reorg could never take this claim back: refused.
  await signal(handle, { step: 'pay', kind: 'finalized', ref: own, source: 'watcher' });
  await signal(handle, { ref: own, kind: 'confirmed', block: block(3), confirmations: 2, source: 'watcher' });
  await waitForStatus(handle, (s) => stepOf(s, 'pay').state === 'final');
  expect(stepOf(await handle.query(statusQuery), 'pay').block).toEqual(block(3));
  // An external system reports an awaited step: no block to name.
  await signal(handle, { step: 'attest', kind: 'finalized', source: 'attester' });
  expect((await handle.result()).phase).toBe('completed');
});

it('holds a step whose worker cannot send as retrying, naming why, instead of failing it', async () => {
  const actionId = uniqueId('no-adapter');
  const handle = await startAction(env, worker, {
    actionId,
    steps: [{ id: 'pay', network: 'chainC', operation: evmCall('pay(bytes32 id)', ['{{action.idHash}}']) }],
  });
  const status = await waitForStatus(handle, (s) => s.steps[0].retrying !== undefined, 30_000);
  expect(status.phase).toBe('running');
  expect(stepOf(status, 'pay').state).toBe('submitting');
  expect(stepOf(status, 'pay').retrying?.reason).toMatch(/no adapter for network "chainC"/);
  await handle.terminate('test over');
});

it('refuses an operator’s evidence that names a transaction Settle did not submit, and leaves the action untouched', async () => {
  const actionId = uniqueId('operator-foreign');
  const handle = await startAction(env, worker, {
    actionId,
    steps: [{ id: 'pay', network: 'chainA', operation: evmCall('pay(bytes32 id)', ['{{action.idHash}}']) }],
  });
  const before = await waitForStatus(handle, (s) => stepOf(s, 'pay').state === 'submitted');
  const refused = await handle
    .executeUpdate(resolveStepUpdate, {
      args: [
        {
          step: 'pay',
          evidence: { kind: 'finalized', ref: FOREIGN, source: 'ops-console' },
          reason: 'saw it on the explorer',
          operator: 'mallory',
        },
      ],
    })
    .then(
      () => undefined,
      (error: unknown) => error,
    );
  expect(refused).toBeInstanceOf(WorkflowUpdateFailedError);
  expect(String((refused as WorkflowUpdateFailedError).cause?.message)).toContain(
    `${FOREIGN} is not a transaction Settle submitted for step "pay"`,
  );
  expect(await handle.query(statusQuery)).toEqual(before);
  // The operator may confirm Settle's own transaction without naming its block (they checked it).
  const own = refFor(actionId, 'pay', 1);
  const status = await handle.executeUpdate(resolveStepUpdate, {
    args: [
      {
        step: 'pay',
        evidence: { kind: 'finalized', ref: own, source: 'ops-console' },
        reason: 'final on the explorer',
        operator: 'alice',
      },
    ],
  });
  expect(stepOf(status, 'pay').state).toBe('final');
  await handle.result();
});
