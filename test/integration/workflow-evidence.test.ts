import { WorkflowFailedError } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Worker } from '@temporalio/worker';
import { statusQuery } from '../../contract/messages';
import {
  ADDRESS_B,
  block,
  evmCall,
  scheduledActivities,
  signal,
  startAction,
  stepOf,
  waitForStatus,
} from '../support/actions';
import { blockHash, networkInfo, refFor, StubAdapter } from '../support/stub-adapter';
import { createTestWorker, startTestServer, uniqueId } from '../support/temporal';
import { recordHistory } from '../support/histories';

let env: TestWorkflowEnvironment;
let worker: Worker;
let running: Promise<void>;
const chainA = new StubAdapter('chainA');
const chainB = new StubAdapter('chainB');

beforeAll(async () => {
  env = await startTestServer();
  // Signals are the fast path here: polling only after a minute of silence.
  worker = await createTestWorker(env, {
    networks: { chainA: networkInfo('chainA'), chainB: networkInfo('chainB', { finality: { confirmations: 3 } }) },
    adapters: { chainA, chainB },
  });
  running = worker.run();
});
afterAll(async () => {
  worker?.shutdown();
  await running;
  await env?.teardown();
});

it('runs independent steps in parallel and starts dependants at the stage they name', async () => {
  const actionId = uniqueId('dag');
  const handle = await startAction(env, worker, {
    actionId,
    type: 'dag-test',
    steps: [
      { id: 'lockA', network: 'chainA', operation: evmCall('lock(bytes32 id)', ['{{action.idHash}}']) },
      { id: 'lockB', network: 'chainB', operation: evmCall('lock(bytes32 id)', ['{{action.idHash}}'], ADDRESS_B) },
      {
        id: 'fast',
        network: 'chainB',
        operation: evmCall('use(bytes32 ref)', ['{{steps.lockA.ref}}'], ADDRESS_B),
        after: [{ step: 'lockA', stage: 'included' }],
      },
      {
        id: 'safe',
        network: 'chainA',
        operation: evmCall('use(bytes32 ref)', ['{{steps.lockB.ref}}']),
        after: [{ step: 'lockB', stage: 'final' }],
      },
    ],
  });
  // Both roots are submitted without waiting for each other.
  let status = await waitForStatus(
    handle,
    (s) => stepOf(s, 'lockA').state === 'submitted' && stepOf(s, 'lockB').state === 'submitted',
  );
  expect(stepOf(status, 'fast').state).toBe('waiting');

  const lockA = refFor(actionId, 'lockA', 1);
  await signal(handle, { step: 'lockA', kind: 'included', ref: lockA, block: block(10), source: 'watcher:chainA' });
  status = await waitForStatus(handle, (s) => stepOf(s, 'fast').state === 'submitted');
  expect(stepOf(status, 'lockA').state).toBe('included');
  expect(status.progress).toEqual({ total: 4, locallyConfirmed: 1, final: 0 });
  // The fast path read lockA's ref through its template context.
  expect(chainB.submissions.find((s) => s.actionId === actionId && s.stepId === 'fast')?.context.steps.lockA.ref).toBe(
    lockA,
  );

  // lockB included is not enough for `safe`, which waits for finality (3 confirmations on chainB).
  const lockB = refFor(actionId, 'lockB', 1);
  await signal(handle, {
    step: 'lockB',
    kind: 'confirmed',
    ref: lockB,
    block: block(20, 'b'),
    confirmations: 2,
    source: 'watcher:chainB',
  });
  status = await waitForStatus(handle, (s) => stepOf(s, 'lockB').confirmations === 2);
  expect(stepOf(status, 'lockB').state).toBe('included');
  expect(stepOf(status, 'safe').state).toBe('waiting');
  await signal(handle, {
    step: 'lockB',
    kind: 'confirmed',
    ref: lockB,
    block: block(20, 'b'),
    confirmations: 3,
    source: 'watcher:chainB',
  });
  await waitForStatus(handle, (s) => stepOf(s, 'safe').state === 'submitted');

  for (const [step, network, fork] of [
    ['lockA', 'chainA', 'a'],
    ['fast', 'chainB', 'c'],
    ['safe', 'chainA', 'd'],
  ] as const) {
    await signal(handle, {
      step,
      kind: 'finalized',
      ref: refFor(actionId, step, 1),
      block: block(30, fork),
      source: `watcher:${network}`,
    });
  }
  const result = await handle.result();
  expect(result.phase).toBe('completed');
  expect(result.progress).toEqual({ total: 4, locallyConfirmed: 4, final: 4 });
  expect(await scheduledActivities(handle)).not.toContain('checkStep');
  await recordHistory('dag-fast-and-safe-path.exactly-once', handle);
});

it('leaves the same state for duplicated and out-of-order evidence as for the facts delivered once', async () => {
  const actionId = uniqueId('order');
  const handle = await startAction(env, worker, {
    actionId,
    steps: [
      { id: 'lock', network: 'chainB', operation: evmCall('lock(bytes32 id)', ['{{action.idHash}}'], ADDRESS_B) },
    ],
  });
  await waitForStatus(handle, (s) => stepOf(s, 'lock').state === 'submitted');
  const ref = refFor(actionId, 'lock', 1);
  // Delivered backwards and twice: 2 confirmations, inclusion, 1 confirmation, then 2 again.
  await signal(handle, { ref, kind: 'confirmed', block: block(5), confirmations: 2, source: 'w1' });
  await signal(handle, { ref, kind: 'included', block: block(5), source: 'w2' });
  await signal(handle, { ref, kind: 'confirmed', block: block(5), confirmations: 1, source: 'w1' });
  await signal(handle, { ref, kind: 'confirmed', block: block(5), confirmations: 2, source: 'w2' });
  const status = await waitForStatus(handle, (s) => stepOf(s, 'lock').confirmations === 2);
  const lock = stepOf(status, 'lock');
  expect(lock.state).toBe('included');
  expect(lock.block).toEqual(block(5));
  // One transition into `included`, however often it was reported.
  expect(lock.transitions.filter((t) => t.to === 'included')).toHaveLength(1);
  await signal(handle, { ref, kind: 'confirmed', block: block(5), confirmations: 3, source: 'w1' });
  expect((await handle.result()).phase).toBe('completed');
});

it('moves a step back when its block is orphaned, and on to final in the new block', async () => {
  const actionId = uniqueId('reorg');
  const handle = await startAction(env, worker, {
    actionId,
    steps: [{ id: 'lock', network: 'chainA', operation: evmCall('lock(bytes32 id)', ['{{action.idHash}}']) }],
  });
  await waitForStatus(handle, (s) => stepOf(s, 'lock').state === 'submitted');
  const ref = refFor(actionId, 'lock', 1);
  await signal(handle, { step: 'lock', kind: 'included', ref, block: block(7, 'a'), source: 'watcher:chainA' });
  await waitForStatus(handle, (s) => stepOf(s, 'lock').state === 'included');
  await signal(handle, { step: 'lock', kind: 'reorged', block: block(7, 'a'), source: 'watcher:chainA' });
  let status = await waitForStatus(handle, (s) => stepOf(s, 'lock').state === 'submitted');
  expect(stepOf(status, 'lock').block).toBeUndefined();
  expect(status.progress.locallyConfirmed).toBe(0);
  // A late report of the orphaned block is stale: it changes nothing.
  await signal(handle, { step: 'lock', kind: 'included', ref, block: block(7, 'a'), source: 'slow-watcher' });
  await signal(handle, { step: 'lock', kind: 'included', ref, block: block(8, 'c'), source: 'watcher:chainA' });
  status = await waitForStatus(handle, (s) => stepOf(s, 'lock').state === 'included');
  expect(stepOf(status, 'lock').block).toEqual(block(8, 'c'));
  await signal(handle, {
    step: 'lock',
    kind: 'confirmed',
    ref,
    block: block(8, 'c'),
    confirmations: 2,
    source: 'watcher:chainA',
  });
  const result = await handle.result();
  expect(result.phase).toBe('completed');
  expect(stepOf(result, 'lock').transitions.map((t) => t.to)).toEqual([
    'submitting',
    'submitted',
    'included',
    'submitted',
    'included',
    'final',
  ]);
  expect(result.alarms).toEqual([]);
  await recordHistory('reorg-then-final.lean', handle);
});

it('raises a finality violation when a final block is orphaned, and stops claiming it is final', async () => {
  const actionId = uniqueId('violation');
  const handle = await startAction(env, worker, {
    actionId,
    steps: [
      { id: 'lock', network: 'chainA', operation: evmCall('lock(bytes32 id)', ['{{action.idHash}}']) },
      { id: 'attest', network: 'attester', operation: { kind: 'await' }, after: [{ step: 'lock', stage: 'final' }] },
    ],
  });
  await waitForStatus(handle, (s) => stepOf(s, 'lock').state === 'submitted');
  const ref = refFor(actionId, 'lock', 1);
  await signal(handle, {
    step: 'lock',
    kind: 'confirmed',
    ref,
    block: block(9),
    confirmations: 2,
    source: 'watcher:chainA',
  });
  await waitForStatus(handle, (s) => stepOf(s, 'lock').state === 'final');
  await signal(handle, { step: 'lock', kind: 'reorged', block: block(9), source: 'watcher:chainA' });
  const status = await waitForStatus(handle, (s) => s.alarms.length > 0);
  expect(stepOf(status, 'lock').state).toBe('submitted');
  expect(stepOf(status, 'lock').transitions.at(-1)).toMatchObject({
    from: 'final',
    to: 'submitted',
    source: 'watcher:chainA',
  });
  expect(status.phase).toBe('running');
  expect(status.alarms[0]).toMatchObject({
    step: 'lock',
    for: 'operation',
    finalBlock: block(9),
    source: 'watcher:chainA',
  });
  await handle.terminate('test done');
});

it('follows a step again after its final block is orphaned, and completes once it is final anew', async () => {
  const chain = new StubAdapter('reorgchain');
  let reincluded = false;
  chain.answer = (input) =>
    reincluded
      ? [{ kind: 'confirmed', ref: input.refs[0], block: block(12, 'd'), confirmations: 2, source: 'stub' }]
      : [];
  const pollingWorker = await createTestWorker(env, {
    networks: { reorgchain: networkInfo('reorgchain', { pollIntervalMs: 300, maxPollIntervalMs: 300 }) },
    adapters: { reorgchain: chain },
  });
  const actionId = uniqueId('refollow');
  const result = await pollingWorker.runUntil(async () => {
    const handle = await startAction(env, pollingWorker, {
      actionId,
      steps: [
        { id: 'lock', network: 'reorgchain', operation: evmCall('lock(bytes32 id)', ['{{action.idHash}}']) },
        // Keeps the action open while lock is final, orphaned, and final again.
        { id: 'attest', network: 'attester', operation: { kind: 'await' } },
      ],
    });
    await waitForStatus(handle, (s) => stepOf(s, 'lock').state === 'submitted');
    const ref = refFor(actionId, 'lock', 1);
    await signal(handle, {
      step: 'lock',
      kind: 'confirmed',
      ref,
      block: block(11, 'c'),
      confirmations: 2,
      source: 'w',
    });
    await waitForStatus(handle, (s) => stepOf(s, 'lock').state === 'final');
    await signal(handle, { step: 'lock', kind: 'reorged', block: block(11, 'c'), source: 'w' });
    await waitForStatus(handle, (s) => s.alarms.length === 1 && stepOf(s, 'lock').state === 'submitted');
    reincluded = true;
    // Only polling can bring lock back: nothing else reports it.
    await waitForStatus(handle, (s) => stepOf(s, 'lock').state === 'final');
    await signal(handle, { step: 'attest', kind: 'finalized', source: 'attester' });
    return handle.result();
  });
  expect(result.phase).toBe('completed');
  expect(stepOf(result, 'lock').block).toEqual(block(12, 'd'));
  expect(result.alarms).toHaveLength(1);
});

it('polls through checkStep when no evidence arrives', async () => {
  const polled = new StubAdapter('slowchain');
  const pollingWorker = await createTestWorker(env, {
    networks: {
      slowchain: networkInfo('slowchain', {
        pollIntervalMs: 200,
        maxPollIntervalMs: 800,
        finality: { confirmations: 3 },
      }),
    },
    adapters: { slowchain: polled },
  });
  const actionId = uniqueId('poll');
  const result = await pollingWorker.runUntil(async () => {
    const handle = await startAction(env, pollingWorker, {
      actionId,
      steps: [{ id: 'lock', network: 'slowchain', operation: evmCall('lock(bytes32 id)', ['{{action.idHash}}']) }],
    });
    const done = await handle.result();
    await recordHistory('polling-only.lean', handle);
    expect((await scheduledActivities(handle)).filter((a) => a === 'checkStep')).toHaveLength(3);
    return done;
  });
  expect(result.phase).toBe('completed');
  expect(stepOf(result, 'lock')).toMatchObject({ state: 'final', confirmations: 3 });
  expect(stepOf(result, 'lock').transitions.at(-1)?.source).toBe('stub:slowchain');
});

it("submits again, same attempt, when a transaction stays pending past the network's patience", async () => {
  const stuck = new StubAdapter('stuckchain');
  // Nothing is seen for the first four polls; then the (replacement) transaction is found, final.
  stuck.answer = (input, nth) =>
    nth < 5 ? [] : [{ kind: 'finalized', ref: input.refs.at(-1)!, block: block(90), source: 'stub:stuckchain' }];
  const feeBumpWorker = await createTestWorker(env, {
    networks: {
      stuckchain: networkInfo('stuckchain', { pollIntervalMs: 200, maxPollIntervalMs: 200, resubmitAfterMs: 500 }),
    },
    adapters: { stuckchain: stuck },
  });
  const actionId = uniqueId('bump');
  const result = await feeBumpWorker.runUntil(async () => {
    const handle = await startAction(env, feeBumpWorker, {
      actionId,
      steps: [{ id: 'lock', network: 'stuckchain', operation: evmCall('lock(bytes32 id)', ['{{action.idHash}}']) }],
    });
    return handle.result();
  });
  expect(result.phase).toBe('completed');
  const submissions = stuck.submissions.filter((s) => s.actionId === actionId);
  expect(submissions.length).toBeGreaterThanOrEqual(2);
  expect(new Set(submissions.map((s) => s.attempt))).toEqual(new Set([1]));
});

it("backs off between polls that bring no news, up to the network's cap", async () => {
  const quiet = new StubAdapter('quietchain');
  quiet.answer = (input, nth) =>
    nth < 5 ? [] : [{ kind: 'finalized', ref: input.refs[0], block: block(95), source: 'stub:quietchain' }];
  const backoffWorker = await createTestWorker(env, {
    networks: { quietchain: networkInfo('quietchain', { pollIntervalMs: 100, maxPollIntervalMs: 400 }) },
    adapters: { quietchain: quiet },
  });
  const actionId = uniqueId('backoff');
  const waits = await backoffWorker.runUntil(async () => {
    const handle = await startAction(env, backoffWorker, {
      actionId,
      steps: [{ id: 'lock', network: 'quietchain', operation: evmCall('lock(bytes32 id)', ['{{action.idHash}}']) }],
    });
    await handle.result();
    const history = await handle.fetchHistory();
    return history.events
      ?.filter((e) => e.timerStartedEventAttributes)
      .map(
        (e) =>
          Number(e.timerStartedEventAttributes!.startToFireTimeout!.seconds ?? 0) * 1000 +
          Math.round((e.timerStartedEventAttributes!.startToFireTimeout!.nanos ?? 0) / 1e6),
      );
  });
  expect(waits).toEqual([100, 200, 400, 400, 400]);
});

it('fails at once with InvalidActionSpec for a spec that reaches the workflow invalid', async () => {
  const actionId = uniqueId('invalid');
  const handle = await env.client.workflow.start('crossNetworkAction', {
    taskQueue: worker.options.taskQueue,
    workflowId: actionId,
    args: [{ actionId, steps: [{ id: 'a', network: 'n', operation: { kind: 'await' }, after: [{ step: 'ghost' }] }] }],
  });
  const failure = await handle.result().catch((e: unknown) => e);
  expect(failure).toBeInstanceOf(WorkflowFailedError);
  const cause = (failure as WorkflowFailedError).cause as { type?: string; message: string };
  expect(cause.type).toBe('InvalidActionSpec');
  expect(cause.message).toContain('steps[0].after[0].step: unknown step "ghost" in after');
  // Failed once, not retried as a workflow task.
  const history = await handle.fetchHistory();
  expect(history.events?.filter((e) => e.workflowTaskFailedEventAttributes)).toHaveLength(0);
});

it('ignores invalid evidence signals and evidence for unknown steps', async () => {
  const actionId = uniqueId('junk');
  const handle = await startAction(env, worker, {
    actionId,
    steps: [{ id: 'attest', network: 'attester', operation: { kind: 'await' } }],
  });
  await handle.signal('evidence', { kind: 'teleported', source: 'x' });
  await handle.signal('evidence', { step: 'nope', kind: 'finalized', source: 'x' });
  await signal(handle, { step: 'attest', kind: 'included', source: 'attester' });
  const status = await waitForStatus(handle, (s) => stepOf(s, 'attest').state === 'included');
  expect(status.phase).toBe('running');
  expect(await handle.query(statusQuery)).toMatchObject({ actionId, phase: 'running' });
  await handle.terminate('test done');
});

it('takes the inclusion its submission saw, and sets its one timer for when the policy can first be met (lean)', async () => {
  const chainC = new StubAdapter('chainC');
  chainC.includedAtSubmit = true;
  const info = networkInfo('chainC', { finality: { confirmations: 12 }, blockTimeMs: 1_000, pollIntervalMs: 60_000 });
  const observing = await createTestWorker(env, { networks: { chainC: info }, adapters: { chainC } });
  const run = observing.run();
  try {
    const actionId = uniqueId('observed');
    const handle = await startAction(env, observing, {
      actionId,
      type: 'observed',
      steps: [{ id: 'pay', network: 'chainC', operation: evmCall('pay()') }],
    });
    const status = await waitForStatus(handle, (s) => stepOf(s, 'pay').state === 'included');
    expect(chainC.submissions[0].observe).toEqual({ finality: { confirmations: 12 }, forMs: 3_000 });
    expect(stepOf(status, 'pay').transitions.map((t) => [t.to, t.source])).toEqual([
      ['submitting', 'settle'],
      ['submitted', 'settle:submit'],
      ['included', 'stub:chainC'],
    ]);
    const ref = refFor(actionId, 'pay', 1);
    const mined = { number: '100', hash: blockHash(ref) };
    await signal(handle, { ref, kind: 'confirmed', block: mined, confirmations: 12, source: 'watcher' });
    expect((await handle.result()).phase).toBe('completed');
    // One timer: the 11 confirmations it lacked at 1 s a block, and one poll interval after that. No poll ran.
    const history = await handle.fetchHistory();
    const timers = (history.events ?? []).flatMap((e) => {
      const timeout = e.timerStartedEventAttributes?.startToFireTimeout;
      return timeout ? [Number(timeout.seconds ?? 0)] : [];
    });
    expect(timers).toEqual([71]);
    expect(chainC.checks).toHaveLength(0);
    await recordHistory('submission-observed.lean', handle);
  } finally {
    observing.shutdown();
    await run;
  }
});
