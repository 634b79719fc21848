import { WorkflowUpdateFailedError } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Worker } from '@temporalio/worker';
import type { crossNetworkAction } from '../../workflows/cross-network-action/workflow';
import {
  cancelUpdate,
  compensateUpdate,
  resolveStepUpdate,
  retryStepUpdate,
  statusQuery,
} from '../../contract/messages';
import { SettleClient } from '../../client/settle-client';
import { ADDRESS_B, block, evmCall, signal, startAction, stepOf, waitForStatus } from '../support/actions';
import { recordHistory } from '../support/histories';
import { SettlePhase, SettleType } from '../../contract/search-attributes';
import { networkInfo, refFor, StubAdapter } from '../support/stub-adapter';
import { createTestWorker, startTestServer, uniqueId } from '../support/temporal';

let env: TestWorkflowEnvironment;
let worker: Worker;
let running: Promise<void>;
const chainA = new StubAdapter('chainA');
const chainB = new StubAdapter('chainB');

beforeAll(async () => {
  env = await startTestServer();
  worker = await createTestWorker(env, {
    networks: {
      chainA: networkInfo('chainA', { finality: { confirmations: 1 } }),
      chainB: networkInfo('chainB', { finality: { confirmations: 1 } }),
    },
    adapters: { chainA, chainB },
  });
  running = worker.run();
});
afterAll(async () => {
  worker?.shutdown();
  await running;
  await env?.teardown();
});

/** lock@chainA → approve@chainB (after lock included) → attest (awaited, times out): both effects get undone. */
function threeStepSpec(actionId: string, extra: Record<string, unknown> = {}) {
  return {
    actionId,
    type: 'compensation-test',
    ...extra,
    steps: [
      {
        id: 'lock',
        network: 'chainA',
        operation: evmCall('lock(bytes32 id)', ['{{action.idHash}}']),
        compensation: evmCall('unlock(bytes32 id)', ['{{action.idHash}}']),
      },
      {
        id: 'approve',
        network: 'chainB',
        operation: evmCall('approve(bytes32 id)', ['{{action.idHash}}'], ADDRESS_B),
        after: [{ step: 'lock', stage: 'included' as const }],
        compensation: evmCall('revoke(bytes32 id)', ['{{action.idHash}}'], ADDRESS_B),
      },
      {
        id: 'attest',
        network: 'attester',
        operation: { kind: 'await' as const },
        after: [{ step: 'approve' }],
        timeout: '2s',
      },
    ],
  };
}

async function confirm(
  handle: Awaited<ReturnType<typeof startAction>>,
  step: string,
  actionId: string,
  target: 'operation' | 'compensation' = 'operation',
) {
  await signal(handle, {
    step,
    for: target,
    kind: 'confirmed',
    ref: refFor(actionId, step, 1, target),
    block: block(target === 'operation' ? 40 : 50, step === 'lock' ? 'a' : 'b'),
    confirmations: 1,
    source: 'test-watcher',
  });
}

it('compensates every effect in reverse dependency order when a step times out, and skips steps never started', async () => {
  const actionId = uniqueId('timeout');
  const handle = await startAction(env, worker, threeStepSpec(actionId));
  await waitForStatus(handle, (s) => stepOf(s, 'lock').state === 'submitted');
  await confirm(handle, 'lock', actionId);
  await waitForStatus(handle, (s) => stepOf(s, 'approve').state === 'submitted');
  await confirm(handle, 'approve', actionId);
  // attest never comes: after 2 s it expires and compensation starts with `approve`, the last effect.
  let status = await waitForStatus(
    handle,
    (s) => s.phase === 'compensating' && stepOf(s, 'approve').compensation?.state === 'submitted',
  );
  expect(stepOf(status, 'attest').state).toBe('expired');
  expect(stepOf(status, 'lock').state).toBe('final');
  expect(chainA.submissions.filter((s) => s.actionId === actionId && s.for === 'compensation')).toHaveLength(0);

  await confirm(handle, 'approve', actionId, 'compensation');
  status = await waitForStatus(handle, (s) => stepOf(s, 'lock').compensation?.state === 'submitted');
  expect(stepOf(status, 'approve').state).toBe('compensated');
  await confirm(handle, 'lock', actionId, 'compensation');
  const result = await handle.result();
  expect(result.phase).toBe('compensated');
  expect(result.steps.map((s) => s.state)).toEqual(['compensated', 'compensated', 'expired']);
  const order = [...chainA.submissions, ...chainB.submissions].filter(
    (s) => s.actionId === actionId && s.for === 'compensation',
  );
  expect(order.map((s) => s.stepId).sort()).toEqual(['approve', 'lock']);
  expect(result.phaseTransitions.map((t) => t.to)).toEqual(['compensating', 'compensated']);
  await recordHistory('timeout-compensated.lean', handle);
});

it('compensates when the action deadline passes, skipping steps that never started', async () => {
  const actionId = uniqueId('deadline');
  const spec = threeStepSpec(actionId, { deadline: '3s' });
  spec.steps[2] = { ...spec.steps[2], timeout: undefined as never };
  const handle = await startAction(env, worker, JSON.parse(JSON.stringify(spec)));
  await waitForStatus(handle, (s) => stepOf(s, 'lock').state === 'submitted');
  await confirm(handle, 'lock', actionId);
  // approve is submitted but never confirmed; attest never starts.
  let status = await waitForStatus(handle, (s) => s.phase === 'compensating', 10_000);
  expect(status.reason).toBe('the action deadline passed');
  expect(stepOf(status, 'attest').state).toBe('skipped');
  expect(stepOf(status, 'approve').state).toBe('expired');
  // approve's fate is still open (in flight): it is cancelled with a same-nonce no-op, and lock's compensation waits.
  expect(stepOf(status, 'lock').compensation).toBeUndefined();
  const noop = refFor(actionId, 'approve', 1, 'noop');
  await waitForStatus(handle, (s) => (stepOf(s, 'approve').refs ?? []).includes(noop));
  // The no-op is what the chain keeps at that nonce: approve never took effect.
  await signal(handle, { ref: noop, kind: 'confirmed', block: block(90), confirmations: 1, source: 'test-watcher' });
  status = await waitForStatus(handle, (s) => stepOf(s, 'lock').compensation?.state === 'submitted');
  await confirm(handle, 'lock', actionId, 'compensation');
  const result = await handle.result();
  expect(result.phase).toBe('compensated');
  expect(chainB.submissions.filter((s) => s.actionId === actionId && s.for === 'compensation')).toHaveLength(0);
  await recordHistory('deadline-cancels-in-flight.cancel-pending', handle);
});

it('holds for an operator, whose retry carries the expired step’s live transaction on at its nonce', async () => {
  const actionId = uniqueId('hold');
  const handle = await startAction(env, worker, {
    actionId,
    onDeadline: 'hold',
    steps: [
      {
        id: 'mint',
        network: 'chainB',
        operation: evmCall('mint(bytes32 id)', ['{{action.idHash}}'], ADDRESS_B),
        timeout: '1s',
      },
    ],
  });
  let status = await waitForStatus(handle, (s) => s.phase === 'needs_action', 10_000);
  expect(stepOf(status, 'mint').state).toBe('expired');

  status = await handle.executeUpdate(retryStepUpdate, {
    args: [{ step: 'mint', reason: 'fee was too low', operator: 'alice' }],
  });
  expect(status.phase).toBe('running');
  const mint = stepOf(status, 'mint');
  expect(mint.attempt).toBe(2);
  // The first attempt's transaction may still be mined: the retry follows it (and replaces it at its nonce).
  expect(mint.transitions.find((t) => t.operator === 'alice')).toMatchObject({
    from: 'expired',
    to: 'submitted',
    reason: `fee was too low (its transaction ${refFor(actionId, 'mint', 1)} may still be mined: this attempt carries it on at its nonce, replaced with higher fees if it stays pending)`,
    source: 'operator',
  });
  await waitForStatus(handle, () => chainB.submissions.filter((s) => s.actionId === actionId).length === 2);
  const submissions = chainB.submissions.filter((s) => s.actionId === actionId);
  expect(submissions.map((s) => s.attempt)).toEqual([1, 2]);
  expect(submissions[1].nonceKey).toBe(submissions[0].nonceKey);
  expect(submissions[0].nonceKey).toMatch(new RegExp(`^${actionId}/[^/]+/mint/1/operation$`));

  await signal(handle, {
    ref: refFor(actionId, 'mint', 1),
    kind: 'confirmed',
    block: block(61),
    confirmations: 1,
    source: 'watcher',
  });
  const result = await handle.result();
  expect(result.phase).toBe('completed');
  expect(stepOf(result, 'mint').ref).toBe(refFor(actionId, 'mint', 1));
  await recordHistory('hold-retry-live-completed.exactly-once', handle);
});

it('gives a retried step whose transaction reverted a new attempt with a transaction of its own', async () => {
  const actionId = uniqueId('retry-reverted');
  chainB.revert.add('redo');
  const handle = await startAction(env, worker, {
    actionId,
    onDeadline: 'hold',
    steps: [
      { id: 'redo', network: 'chainB', operation: evmCall('mint(bytes32 id)', ['{{action.idHash}}'], ADDRESS_B) },
    ],
  });
  await waitForStatus(handle, (s) => s.phase === 'needs_action' && stepOf(s, 'redo').state === 'failed', 10_000);
  chainB.revert.delete('redo');
  const status = await handle.executeUpdate(retryStepUpdate, {
    args: [{ step: 'redo', reason: 'fixed the allowance' }],
  });
  expect(stepOf(status, 'redo').transitions.find((t) => t.reason === 'fixed the allowance')).toMatchObject({
    from: 'failed',
    to: 'waiting',
  });
  await waitForStatus(handle, (s) => stepOf(s, 'redo').state === 'submitted');
  const submissions = chainB.submissions.filter((s) => s.actionId === actionId);
  expect(submissions.map((s) => s.nonceKey?.split('/').slice(-2).join('/'))).toEqual(['1/operation', '2/operation']);
  // A late report about the first attempt's transaction is recognised and ignored.
  await signal(handle, {
    ref: refFor(actionId, 'redo', 1),
    kind: 'confirmed',
    block: block(60),
    confirmations: 1,
    source: 'late',
  });
  await signal(handle, {
    ref: refFor(actionId, 'redo', 2),
    kind: 'confirmed',
    block: block(62),
    confirmations: 1,
    source: 'watcher',
  });
  const result = await handle.result();
  expect(result.phase).toBe('completed');
  expect(stepOf(result, 'redo').ref).toBe(refFor(actionId, 'redo', 2));
});

it('lets an operator resolve an awaited step with evidence, recorded with name and reason', async () => {
  const actionId = uniqueId('resolve');
  const handle = await startAction(env, worker, {
    actionId,
    onDeadline: 'hold',
    steps: [{ id: 'attest', network: 'attester', operation: { kind: 'await' }, timeout: '1s' }],
  });
  await waitForStatus(handle, (s) => s.phase === 'needs_action', 10_000);
  const status = await handle.executeUpdate(resolveStepUpdate, {
    args: [
      {
        step: 'attest',
        evidence: {
          kind: 'finalized',
          source: 'ops-console',
          observedAt: '2026-11-26T10:00:00Z',
          output: { attestation: '0xfeed' },
        },
        reason: 'checked on the explorer',
        operator: 'alice',
      },
    ],
  });
  const attest = stepOf(status, 'attest');
  expect(attest.state).toBe('final');
  expect(attest.output).toEqual({ attestation: '0xfeed' });
  expect(attest.transitions.at(-1)).toMatchObject({
    from: 'expired',
    to: 'final',
    operator: 'alice',
    reason: 'checked on the explorer',
    source: 'ops-console',
  });
  expect((await handle.result()).phase).toBe('completed');
  await recordHistory('resolve-held-step.exactly-once', handle);
});

it('rejects invalid updates with a message naming the problem and leaves the action untouched', async () => {
  const actionId = uniqueId('validate');
  const handle = await startAction(env, worker, {
    actionId,
    steps: [{ id: 'attest', network: 'attester', operation: { kind: 'await' } }],
  });
  await waitForStatus(handle, (s) => s.phase === 'running');
  const before = await handle.query(statusQuery);
  const reject = (promise: Promise<unknown>) =>
    promise.then(
      () => undefined,
      (e: unknown) => e as WorkflowUpdateFailedError,
    );

  const unknownStep = await reject(handle.executeUpdate(retryStepUpdate, { args: [{ step: 'mint', reason: 'x' }] }));
  expect(unknownStep).toBeInstanceOf(WorkflowUpdateFailedError);
  expect(String((unknownStep as WorkflowUpdateFailedError).cause?.message)).toContain('unknown step "mint"');

  const notFailed = await reject(handle.executeUpdate(retryStepUpdate, { args: [{ step: 'attest', reason: 'x' }] }));
  expect(String((notFailed as WorkflowUpdateFailedError).cause?.message)).toContain(
    'step "attest" is waiting; only a failed or expired step can be retried',
  );

  const noReason = await reject(handle.executeUpdate(compensateUpdate, { args: [{ reason: '' }] }));
  expect(String((noReason as WorkflowUpdateFailedError).cause?.message)).toContain('reason: must say why');

  const badEvidence = await reject(
    handle.executeUpdate(resolveStepUpdate, {
      args: [{ step: 'attest', evidence: { kind: 'confirmed', source: 'ops' }, reason: 'r', operator: 'bob' }],
    }),
  );
  expect(String((badEvidence as WorkflowUpdateFailedError).cause?.message)).toContain(
    '"confirmed" evidence needs confirmations',
  );

  const after = await handle.query(statusQuery);
  expect(after).toEqual(before);
  // Rejected updates leave no trace in history either.
  const history = await handle.fetchHistory();
  expect(history.events?.filter((e) => e.workflowExecutionUpdateAcceptedEventAttributes)).toHaveLength(0);
  await handle.terminate('test done');
});

it('cancels before any effect: nothing is submitted and the action is cancelled', async () => {
  const actionId = uniqueId('cancel');
  const handle = await startAction(env, worker, {
    actionId,
    steps: [
      { id: 'attest', network: 'attester', operation: { kind: 'await' } },
      {
        id: 'mint',
        network: 'chainB',
        operation: evmCall('mint(bytes32 id)', ['{{action.idHash}}'], ADDRESS_B),
        after: [{ step: 'attest' }],
      },
    ],
  });
  await waitForStatus(handle, (s) => s.phase === 'running');
  const status = await handle.executeUpdate(cancelUpdate, { args: [{ reason: 'customer withdrew', operator: 'bob' }] });
  expect(status.phase).toBe('cancelled');
  expect(status.phaseTransitions.at(-1)).toMatchObject({
    to: 'cancelled',
    operator: 'bob',
    reason: 'cancel: customer withdrew',
  });
  const result = await handle.result();
  expect(result.steps.map((s) => s.state)).toEqual(['skipped', 'skipped']);
  expect(chainB.submissions.filter((s) => s.actionId === actionId)).toHaveLength(0);
});

it('cancels after an effect by compensating it', async () => {
  const actionId = uniqueId('cancel-late');
  const handle = await startAction(env, worker, threeStepSpec(actionId));
  await waitForStatus(handle, (s) => stepOf(s, 'lock').state === 'submitted');
  await confirm(handle, 'lock', actionId);
  await waitForStatus(handle, (s) => stepOf(s, 'approve').state === 'submitted');
  const status = await handle.executeUpdate(cancelUpdate, { args: [{ reason: 'wrong amount' }] });
  expect(status.phase).toBe('compensating');
  // approve was in flight: it is confirmed late, and is compensated before lock.
  await confirm(handle, 'approve', actionId);
  await waitForStatus(handle, (s) => stepOf(s, 'approve').compensation?.state === 'submitted');
  await confirm(handle, 'approve', actionId, 'compensation');
  await waitForStatus(handle, (s) => stepOf(s, 'lock').compensation?.state === 'submitted');
  await confirm(handle, 'lock', actionId, 'compensation');
  const result = await handle.result();
  expect(result.phase).toBe('compensated');
  expect(stepOf(result, 'attest').state).toBe('skipped');
  await recordHistory('cancel-after-effect.exactly-once', handle);
});

it('compensates on operator request, and on a reverted step', async () => {
  const actionId = uniqueId('revert');
  chainB.revert.add('approve');
  try {
    const handle = await startAction(env, worker, threeStepSpec(actionId));
    await waitForStatus(handle, (s) => stepOf(s, 'lock').state === 'submitted');
    await confirm(handle, 'lock', actionId);
    const status = await waitForStatus(handle, (s) => s.phase === 'compensating');
    expect(stepOf(status, 'approve')).toMatchObject({
      state: 'failed',
      error: expect.stringContaining('execution reverted'),
    });
    await waitForStatus(handle, (s) => stepOf(s, 'lock').compensation?.state === 'submitted');
    await confirm(handle, 'lock', actionId, 'compensation');
    expect((await handle.result()).phase).toBe('compensated');
    await recordHistory('revert-compensated.lean', handle);
  } finally {
    chainB.revert.delete('approve');
  }

  const manual = uniqueId('manual');
  const handle = await startAction(env, worker, threeStepSpec(manual));
  await waitForStatus(handle, (s) => stepOf(s, 'lock').state === 'submitted');
  await confirm(handle, 'lock', manual);
  await waitForStatus(handle, (s) => stepOf(s, 'approve').state === 'submitted');
  await confirm(handle, 'approve', manual);
  await waitForStatus(handle, (s) => stepOf(s, 'approve').state === 'final');
  const status = await handle.executeUpdate(compensateUpdate, {
    args: [{ reason: 'fraud suspected', operator: 'carol' }],
  });
  expect(status.phase).toBe('compensating');
  expect(status.phaseTransitions.at(-1)).toMatchObject({ operator: 'carol', reason: 'compensate: fraud suspected' });
  await handle.terminate('test done');
});

it('shows a submission retrying after RPC errors, apart from a revert, and goes on when the RPC is back', async () => {
  const actionId = uniqueId('outage');
  chainA.unreachable.set('lock', 3);
  const handle = await startAction(env, worker, {
    actionId,
    steps: [{ id: 'lock', network: 'chainA', operation: evmCall('lock(bytes32 id)', ['{{action.idHash}}']) }],
  });
  const status = await waitForStatus(handle, (s) => stepOf(s, 'lock').retrying !== undefined, 20_000);
  expect(stepOf(status, 'lock')).toMatchObject({
    state: 'submitting',
    retrying: { for: 'operation', attempts: 3, reason: expect.stringContaining('ECONNREFUSED') },
  });
  expect(stepOf(status, 'lock').error).toBeUndefined();
  const submitted = await waitForStatus(handle, (s) => stepOf(s, 'lock').state === 'submitted', 30_000);
  expect(stepOf(submitted, 'lock').retrying).toBeUndefined();
  await handle.terminate('test done');
});

it('continues as new with its full state, transitions included', async () => {
  const actionId = uniqueId('can');
  const handle = await startAction(
    env,
    worker,
    {
      actionId,
      steps: [
        {
          id: 'lock',
          network: 'chainA',
          operation: evmCall('lock(bytes32 id)', ['{{action.idHash}}']),
          finality: { confirmations: 3 },
        },
      ],
    },
    { historyEventLimit: 40 },
  );
  await waitForStatus(handle, (s) => stepOf(s, 'lock').state === 'submitted');
  const firstRun = (await handle.describe()).runId;
  const ref = refFor(actionId, 'lock', 1);
  // Reorg churn grows the history until the run continues as new.
  for (let i = 1; i <= 12; i++) {
    await signal(handle, { ref, kind: 'included', block: block(100 + i, 'e'), source: 'watcher' });
    await signal(handle, { ref, kind: 'reorged', block: block(100 + i, 'e'), source: 'watcher' });
  }
  const status = await waitForStatus(handle, (s) => stepOf(s, 'lock').transitions.length >= 26);
  const latest = env.client.workflow.getHandle<typeof crossNetworkAction>(actionId);
  expect((await latest.describe()).runId).not.toBe(firstRun);
  expect(stepOf(status, 'lock').transitions.filter((t) => t.to === 'included')).toHaveLength(12);
  await signal(latest, { ref, kind: 'confirmed', block: block(200, 'f'), confirmations: 3, source: 'watcher' });
  const result = await latest.result();
  expect(result.phase).toBe('completed');
  expect(stepOf(result, 'lock').transitions[0]).toMatchObject({ from: 'waiting', to: 'submitting' });
  // A run that continued as new may send the recorded transaction again: one nonce record, one transaction.
  const submissions = chainA.submissions.filter((s) => s.actionId === actionId);
  expect(new Set(submissions.map((s) => s.nonceKey)).size).toBe(1);
});

it('keeps search attributes current and findable through visibility', async () => {
  const actionId = uniqueId('visible');
  const handle = await startAction(env, worker, {
    actionId,
    type: 'bridge-transfer',
    steps: [
      { id: 'lock', network: 'chainA', operation: evmCall('lock(bytes32 id)', ['{{action.idHash}}']) },
      { id: 'attest', network: 'attester', operation: { kind: 'await' }, after: [{ step: 'lock' }] },
    ],
  });
  await waitForStatus(handle, (s) => stepOf(s, 'lock').state === 'submitted');
  const ref = refFor(actionId, 'lock', 1);
  const find = async (query: string) => {
    const ids: string[] = [];
    for await (const wf of env.client.workflow.list({ query })) ids.push(wf.workflowId);
    return ids;
  };
  const eventually = async (query: string) => {
    for (let i = 0; i < 100; i++) {
      if ((await find(query)).includes(actionId)) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`not found by ${query}`);
  };
  await eventually(`SettleRefs = '${ref}'`);
  // The Web UI shows a table of the steps as the run's current details.
  const metadata = (await handle.query('__temporal_workflow_metadata')) as { currentDetails?: string };
  expect(metadata.currentDetails).toContain('| lock | chainA | submitted |');
  expect(metadata.currentDetails).toContain('0/2 locally confirmed');
  await eventually(`SettlePhase = 'running' AND SettleType = 'bridge-transfer' AND SettleNetworks = 'attester'`);
  await signal(handle, { ref, kind: 'confirmed', block: block(70), confirmations: 1, source: 'watcher' });
  await signal(handle, { step: 'attest', kind: 'finalized', source: 'attester' });
  await handle.result();
  await eventually(`SettlePhase = 'completed' AND SettleNetworks = 'chainA'`);
  // Few upserts: one at start, one per new ref, one per phase change (besides the SDK's own TemporalChangeVersion
  // upsert that records which patches the run has).
  const history = await handle.fetchHistory();
  const upserts = (history.events ?? []).filter((e) => {
    const fields = e.upsertWorkflowSearchAttributesEventAttributes?.searchAttributes?.indexedFields;
    return fields && Object.keys(fields).some((name) => name !== 'TemporalChangeVersion');
  });
  expect(upserts.length).toBeLessThanOrEqual(3);
});

it('upserts no search attribute the start already set, and records one patch marker (lean)', async () => {
  const actionId = uniqueId('lean');
  // Started as SettleClient starts an action: type, networks and the first phase set at start.
  await new SettleClient(env.client, worker.options.taskQueue).start({
    actionId,
    type: 'bridge-transfer',
    steps: [
      { id: 'lock', network: 'chainA', operation: evmCall('lock(bytes32 id)', ['{{action.idHash}}']) },
      { id: 'attest', network: 'attester', operation: { kind: 'await' }, after: [{ step: 'lock' }] },
    ],
  });
  const handle = env.client.workflow.getHandle<typeof crossNetworkAction>(actionId);
  await waitForStatus(handle, (s) => stepOf(s, 'lock').state === 'submitted');
  const ref = refFor(actionId, 'lock', 1);
  await signal(handle, { ref, kind: 'confirmed', block: block(70), confirmations: 1, source: 'watcher' });
  await signal(handle, { step: 'attest', kind: 'finalized', source: 'attester' });
  expect((await handle.result()).phase).toBe('completed');
  const history = await handle.fetchHistory();
  await recordHistory('search-attributes-at-start.lean', handle);
  const upserts = (history.events ?? []).flatMap((e) => {
    const fields = e.upsertWorkflowSearchAttributesEventAttributes?.searchAttributes?.indexedFields;
    return fields ? [Object.keys(fields).sort()] : [];
  });
  const markers = (history.events ?? []).flatMap((e) => {
    const attributes = e.markerRecordedEventAttributes;
    return attributes?.markerName === 'core_patch' ? [attributes] : [];
  });
  // One marker (the lean patch stands for the four before it), so one TemporalChangeVersion upsert.
  expect(markers).toHaveLength(1);
  expect(upserts.filter((names) => names.includes('TemporalChangeVersion'))).toHaveLength(1);
  // Once for the ref, once for the completed phase: never the type or the networks, which the start had set.
  const own = upserts.filter((names) => !names.includes('TemporalChangeVersion'));
  expect(own).toEqual([
    ['SettlePhase', 'SettleRefs'],
    ['SettlePhase', 'SettleRefs'],
  ]);
  const description = await handle.describe();
  expect(description.typedSearchAttributes.get(SettlePhase)).toBe('completed');
  expect(description.typedSearchAttributes.get(SettleType)).toBe('bridge-transfer');
});
