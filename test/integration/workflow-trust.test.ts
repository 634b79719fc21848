/**
 * Evidence is a claim by a source, and the chain has the last word: a deployment that verifies claims applies a claim
 * about an EVM step at once only when a trusted source signed it; otherwise Settle reads the chain itself first, and a
 * claim the chain does not show is kept as disputed. An awaited step accepts only the sources it names.
 */
import type { WorkflowHandle } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Worker } from '@temporalio/worker';
import { ed25519 } from '@noble/curves/ed25519';
import { claimMessage } from '../../contract/claims';
import type { EvidenceInput } from '../../contract/evidence';
import { retryStepUpdate, statusQuery } from '../../contract/messages';
import type { Observation } from '../../contract/activity-io';
import { block, evmCall, scheduledActivities, signal, startAction, stepOf, waitForStatus } from '../support/actions';
import { networkInfo, refFor, StubAdapter } from '../support/stub-adapter';
import { waitFor } from '../support/chains';
import { recordHistory } from '../support/histories';
import { createTestWorker, startTestServer, uniqueId } from '../support/temporal';

let env: TestWorkflowEnvironment;
let worker: Worker;
let running: Promise<void>;
const chainA = new StubAdapter('chainA');
const watcherKey = ed25519.utils.randomPrivateKey();
const attesterKey = ed25519.utils.randomPrivateKey();
const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');
/** What chainA's RPC says when Settle polls, per ref: nothing until the test sets it. */
const chainSays = new Map<string, Observation[]>();

beforeAll(async () => {
  env = await startTestServer();
  chainA.answer = (input) => input.refs.flatMap((ref) => chainSays.get(ref) ?? []);
  worker = await createTestWorker(env, {
    networks: { chainA: networkInfo('chainA', { pollIntervalMs: 500, maxPollIntervalMs: 1_000 }) },
    adapters: { chainA },
    trust: {
      verifyClaims: true,
      sources: {
        watcher: { publicKey: hex(ed25519.getPublicKey(watcherKey)), networks: ['chainA'] },
        attester: { publicKey: hex(ed25519.getPublicKey(attesterKey)) },
      },
    },
  });
  running = worker.run();
});
afterAll(async () => {
  worker?.shutdown();
  await running;
  await env?.teardown();
});

function signed(actionId: string, evidence: EvidenceInput, key: Uint8Array): EvidenceInput {
  const message = new TextEncoder().encode(claimMessage(actionId, evidence));
  return { ...evidence, signature: hex(ed25519.sign(message, key)) };
}

it('keeps an unproven claim the chain does not show as disputed, and moves on what Settle reads itself', async () => {
  const actionId = uniqueId('forged');
  const handle = await startAction(env, worker, {
    actionId,
    steps: [{ id: 'mint', network: 'chainA', operation: evmCall('mint(bytes32 id)', ['{{action.idHash}}']) }],
  });
  const ref = refFor(actionId, 'mint', 1);
  await waitForStatus(handle, (s) => stepOf(s, 'mint').state === 'submitted');
  // Somebody who can reach Temporal claims the mint is final, under the watcher's name, without its signature.
  await signal(handle, {
    step: 'mint',
    kind: 'finalized',
    ref,
    block: block(40),
    source: 'watcher:chainA',
  });
  const disputed = await waitForStatus(handle, (s) => (s.claims ?? []).some((c) => c.verdict === 'disputed'));
  expect(stepOf(disputed, 'mint').state).toBe('submitted');
  expect(disputed.claims).toEqual([
    expect.objectContaining({ step: 'mint', kind: 'finalized', source: 'watcher:chainA', proven: false }),
  ]);
  // What Settle's own RPC reports is what moves the step.
  chainSays.set(ref, [{ kind: 'confirmed', ref, block: block(41), confirmations: 2, source: 'stub:chainA' }]);
  const result = await handle.result();
  expect(result.phase).toBe('completed');
  expect(stepOf(result, 'mint').block).toEqual(block(41));
  await recordHistory('claim-disputed.lean', handle);
});

it('applies a claim signed by a source trusted for the network at once, without reading the chain', async () => {
  const actionId = uniqueId('signed');
  const handle = await startAction(env, worker, {
    actionId,
    steps: [{ id: 'mint', network: 'chainA', operation: evmCall('mint(bytes32 id)', ['{{action.idHash}}']) }],
  });
  const ref = refFor(actionId, 'mint', 1);
  await waitForStatus(handle, (s) => stepOf(s, 'mint').state === 'submitted');
  const claim = {
    step: 'mint',
    kind: 'confirmed',
    ref,
    block: block(50),
    confirmations: 2,
    source: 'watcher:chainA',
  } as const;
  await signal(handle, signed(actionId, claim, watcherKey));
  const result = await handle.result();
  expect(result.phase).toBe('completed');
  expect(stepOf(result, 'mint').transitions.find((t) => t.to === 'final')?.source).toBe('watcher:chainA');
  expect(await scheduledActivities(handle)).not.toContain('checkStep');
  await recordHistory('claim-signed.exactly-once', handle);
});

it('takes a signature made for another action as no proof at all', async () => {
  const actionId = uniqueId('replayed');
  const handle = await startAction(env, worker, {
    actionId,
    steps: [{ id: 'mint', network: 'chainA', operation: evmCall('mint(bytes32 id)', ['{{action.idHash}}']) }],
  });
  const ref = refFor(actionId, 'mint', 1);
  await waitForStatus(handle, (s) => stepOf(s, 'mint').state === 'submitted');
  const claim = { step: 'mint', kind: 'finalized', ref, block: block(60), source: 'watcher:chainA' } as const;
  await signal(handle, signed('another-action', claim, watcherKey));
  const status = await waitForStatus(handle, (s) => (s.claims ?? []).length === 1);
  expect(status.claims![0]).toMatchObject({ verdict: 'disputed', proven: false });
  expect(stepOf(status, 'mint').state).toBe('submitted');
  await handle.terminate('test over');
});

it('settles an awaited step only on a proven claim by a source it accepts; the others are rejected, visibly', async () => {
  const actionId = uniqueId('accept-from');
  const handle = await startAction(env, worker, {
    actionId,
    steps: [{ id: 'attest', network: 'attester', operation: { kind: 'await' }, acceptFrom: ['attester'] }],
  });
  const claim = { step: 'attest', kind: 'finalized', source: 'attester' } as const;
  await signal(handle, { ...claim, source: 'mallory' });
  await signal(handle, claim);
  let status = await waitForStatus(handle, (s) => (s.claims ?? []).length === 2);
  expect(status.claims!.map((c) => [c.source, c.verdict, c.reason])).toEqual([
    ['mallory', 'rejected', 'step "attest" accepts evidence only from attester'],
    ['attester', 'rejected', 'not proven to come from "attester": no valid signature by its key'],
  ]);
  expect(stepOf(status, 'attest').state).toBe('waiting');
  await signal(handle, signed(actionId, claim, attesterKey));
  status = await handle.result();
  expect(status.phase).toBe('completed');
});

it('shows disputed and rejected claims in the status only when there are some', async () => {
  const actionId = uniqueId('no-claims');
  const handle = await startAction(env, worker, {
    actionId,
    steps: [{ id: 'attest', network: 'attester', operation: { kind: 'await' } }],
  });
  await signal(handle, { step: 'attest', kind: 'finalized', source: 'anyone' });
  const status = await handle.result();
  expect(status.phase).toBe('completed');
  expect((await handle.query(statusQuery)).claims).toBeUndefined();
});

it('applies a signed claim once: replayed after an operator’s retry, it does not fail the new attempt', async () => {
  const actionId = uniqueId('claim-replay');
  const handle = await startAction(env, worker, {
    actionId,
    onDeadline: 'hold',
    steps: [{ id: 'attest', network: 'attester', operation: { kind: 'await' }, acceptFrom: ['attester'] }],
  });
  const refusal = await failThenRetry(handle, actionId);
  // Whoever captured the refusal sends it again (through a second API process, or straight to Temporal).
  await signal(handle, refusal);
  await signal(handle, signed(actionId, { step: 'attest', kind: 'finalized', source: 'attester' }, attesterKey));
  const status = await waitForStatus(handle, (s) => s.phase === 'completed' || s.phase === 'needs_action');
  expect(status.phase).toBe('completed');
  expect(stepOf(status, 'attest').transitions.filter((t) => t.to === 'failed')).toHaveLength(1);
  await handle.result();
  await recordHistory('claim-replayed.evidence-once', handle);
});

it('remembers the deliveries it took across continue-as-new: a replay to the new run is ignored too', async () => {
  const actionId = uniqueId('replay-continued');
  const handle = await startAction(
    env,
    worker,
    {
      actionId,
      onDeadline: 'hold',
      steps: [{ id: 'attest', network: 'attester', operation: { kind: 'await' }, acceptFrom: ['attester'] }],
    },
    { historyEventLimit: 40 },
  );
  const refusal = await failThenRetry(handle, actionId);
  const first = (await handle.describe()).runId;
  // Claims from a source the step does not accept (rejected, visibly) push the run past its history limit: sent until
  // it continues as new (signals taken together in one workflow task add fewer events: no fixed count is sure to do).
  let noise = 0;
  await waitFor('the run to continue as new', async () => {
    if ((await handle.describe()).runId !== first) return true;
    await signal(handle, { step: 'attest', kind: 'finalized', source: `noise-${noise++}` });
    return undefined;
  });
  await signal(handle, refusal);
  await signal(handle, signed(actionId, { step: 'attest', kind: 'finalized', source: 'attester' }, attesterKey));
  const status = await waitForStatus(handle, (s) => s.phase === 'completed' || s.phase === 'needs_action');
  expect(status.phase).toBe('completed');
  expect(stepOf(status, 'attest').transitions.filter((t) => t.to === 'failed')).toHaveLength(1);
});

/** A signed refusal fails the awaited step `attest`; an operator retries it. Returns the refusal, to replay. */
async function failThenRetry(handle: WorkflowHandle, actionId: string): Promise<EvidenceInput> {
  const refusal = signed(
    actionId,
    { step: 'attest', kind: 'failed', reason: 'no quorum', source: 'attester' },
    attesterKey,
  );
  await signal(handle, refusal);
  await waitForStatus(handle, (s) => s.phase === 'needs_action' && stepOf(s, 'attest').state === 'failed');
  await handle.executeUpdate(retryStepUpdate, { args: [{ step: 'attest', reason: 'quorum restored' }] });
  return refusal;
}
