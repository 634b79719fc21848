import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Worker } from '@temporalio/worker';
import {
  ActionClosedError,
  ActionNotFoundError,
  ActionSettledError,
  SettleClient,
  UpdateRejectedError,
  ValidationError,
  WaitTimeoutError,
  type ActionSpecInput,
} from '../../client';
import { SettleNetworks, SettleType } from '../../contract/search-attributes';
import { createTestWorker, startTestServer, uniqueId } from '../support/temporal';

let env: TestWorkflowEnvironment;
let worker: Worker;
let running: Promise<void>;
let settle: SettleClient;

beforeAll(async () => {
  env = await startTestServer();
  const taskQueue = uniqueId('client');
  worker = await createTestWorker(env, { networks: {}, adapters: {} }, { taskQueue });
  running = worker.run();
  settle = await SettleClient.connect({ env: { TEMPORAL_ADDRESS: env.address, SETTLE_TASK_QUEUE: taskQueue } });
});
afterAll(async () => {
  await settle?.close();
  worker?.shutdown();
  await running;
  await env?.teardown();
});

function awaitSpec(actionId: string, steps = ['attest']): ActionSpecInput {
  return {
    actionId,
    type: 'demo',
    steps: steps.map((id, i) => ({
      id,
      network: i === 0 ? 'attester' : 'bank',
      operation: { kind: 'await' as const },
      after: i === 0 ? [] : [{ step: steps[i - 1], stage: 'final' as const }],
    })),
  };
}

/** Starts an action and waits until it answers queries (its handlers are installed). */
async function startReady(spec: ActionSpecInput): Promise<void> {
  await settle.start(spec);
  await eventually(
    () =>
      settle.status(spec.actionId).then(
        () => true,
        () => false,
      ),
    (ready) => ready,
  );
}

async function eventually<T>(read: () => Promise<T>, ok: (value: T) => boolean, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (ok(value) || Date.now() > deadline) return value;
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('start', () => {
  it('rejects an invalid spec with the field path and rule, and starts nothing', async () => {
    const actionId = uniqueId('bad');
    const spec = { actionId, steps: [{ id: 'a', network: 'n', operation: { kind: 'await' }, after: [{ step: 'x' }] }] };
    const error = await settle.start(spec as ActionSpecInput).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).issues).toEqual([
      { path: 'steps[0].after[0].step', message: 'unknown step "x" in after' },
    ]);
    await expect(settle.status(actionId)).rejects.toBeInstanceOf(ActionNotFoundError);
  });

  it('returns the same run when the same actionId is started again, concurrently or after it closed', async () => {
    const actionId = uniqueId('idem');
    const results = await Promise.all([1, 2, 3, 4].map(() => settle.start(awaitSpec(actionId))));
    expect(results.filter((r) => r.created)).toHaveLength(1);
    expect(new Set(results.map((r) => r.runId)).size).toBe(1);

    await settle.evidence(actionId, { step: 'attest', kind: 'finalized', source: 'test' });
    await settle.waitFor(actionId, { phase: 'completed' });
    const again = await settle.start(awaitSpec(actionId));
    expect(again).toEqual({ actionId, runId: results[0].runId, created: false });
    const runs = await eventually(
      async () => {
        const found: string[] = [];
        for await (const info of settle.temporal.workflow.list({ query: `WorkflowId = '${actionId}'` }))
          found.push(info.runId);
        return found;
      },
      (found) => found.length > 0,
    );
    expect(runs).toEqual([results[0].runId]);
  });

  it('sets the route summary and the type and networks search attributes at start', async () => {
    const actionId = uniqueId('attrs');
    await startReady(awaitSpec(actionId, ['attest', 'pay']));
    const description = await settle.temporal.workflow.getHandle(actionId).describe();
    expect(await description.staticSummary()).toBe('demo: attest@attester → pay@bank');
    expect(description.typedSearchAttributes.get(SettleType)).toBe('demo');
    expect(description.typedSearchAttributes.get(SettleNetworks)).toEqual(['attester', 'bank']);
    await settle.cancel(actionId, { reason: 'test done' });
  });
});

describe('following an action', () => {
  it('reports status, waits for a step state, then for global completion', async () => {
    const actionId = uniqueId('follow');
    await startReady(awaitSpec(actionId, ['attest', 'pay']));
    const first = await settle.status(actionId);
    expect(first).toMatchObject({ actionId, type: 'demo', phase: 'running', progress: { total: 2, final: 0 } });

    await settle.evidence(actionId, { step: 'attest', kind: 'finalized', source: 'test' });
    const attested = await settle.waitFor(actionId, { step: 'attest', state: 'final' }, { pollIntervalMs: 100 });
    expect(attested.progress).toEqual({ total: 2, locallyConfirmed: 1, final: 1 });
    expect(attested.phase).toBe('running');

    await settle.evidence(actionId, { step: 'pay', kind: 'finalized', source: 'test' });
    const done = await settle.waitFor(actionId, { phase: 'completed' }, { pollIntervalMs: 100 });
    expect(done.progress).toEqual({ total: 2, locallyConfirmed: 2, final: 2 });
    expect((await settle.status(actionId)).phase).toBe('completed');
  });

  it('stops waiting when the action ends otherwise, or when the time is up', async () => {
    const actionId = uniqueId('settled');
    await startReady(awaitSpec(actionId));
    await expect(
      settle.waitFor(actionId, { phase: 'completed' }, { timeoutMs: 300, pollIntervalMs: 100 }),
    ).rejects.toBeInstanceOf(WaitTimeoutError);
    const waiting = settle.waitFor(actionId, { phase: 'completed' }, { pollIntervalMs: 100 });
    await settle.cancel(actionId, { reason: 'no longer needed', operator: 'alice' });
    const error = await waiting.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ActionSettledError);
    expect((error as ActionSettledError).phase).toBe('cancelled');
  });

  it('rejects invalid evidence before signalling, and names an unknown or closed action', async () => {
    const actionId = uniqueId('evidence');
    await startReady(awaitSpec(actionId));
    const bad = await settle
      .evidence(actionId, { step: 'attest', kind: 'confirmed', source: 'test' })
      .catch((e: unknown) => e);
    expect((bad as ValidationError).issues).toEqual([
      { path: 'confirmations', message: '"confirmed" evidence needs confirmations' },
    ]);
    expect((await settle.status(actionId)).steps[0].transitions).toEqual([]);

    await expect(
      settle.evidence(uniqueId('nobody'), { step: 'a', kind: 'finalized', source: 't' }),
    ).rejects.toBeInstanceOf(ActionNotFoundError);
    await settle.evidence(actionId, { step: 'attest', kind: 'finalized', source: 'test' });
    await settle.waitFor(actionId, { phase: 'completed' });
    await expect(settle.evidence(actionId, { step: 'attest', kind: 'finalized', source: 't' })).rejects.toBeInstanceOf(
      ActionClosedError,
    );
  });
});

describe('finding actions through visibility', () => {
  it('finds an action by a ref its evidence reported, and lists by phase, network and type', async () => {
    const actionId = uniqueId('found');
    const type = uniqueId('kind');
    const ref = `0x${actionId.replace(/[^0-9a-f]/g, '')}abc`;
    await startReady({ ...awaitSpec(actionId), type });
    await settle.evidence(actionId, {
      step: 'attest',
      kind: 'included',
      ref,
      block: { number: '1', hash: '0x01' },
      source: 'test',
    });
    const found = await eventually(
      () => settle.find({ ref }),
      (list) => list.length > 0,
    );
    expect(found).toEqual([
      expect.objectContaining({
        actionId,
        type,
        phase: 'running',
        networks: ['attester'],
        refs: [ref],
        execution: 'RUNNING',
      }),
    ]);
    expect(await settle.find({ ref: '0xnothing' })).toEqual([]);

    const listed = await eventually(
      () => settle.list({ type, phase: 'running', network: 'attester' }),
      (list) => list.length > 0,
    );
    expect(listed.map((a) => a.actionId)).toEqual([actionId]);
    expect(await settle.list({ type, network: 'bank' })).toEqual([]);
    expect(await settle.list({ type, phase: 'completed' })).toEqual([]);
    await expect(settle.find({ ref: "x' OR 1=1" })).rejects.toBeInstanceOf(ValidationError);
    await expect(settle.list({ phase: 'done' as never })).rejects.toBeInstanceOf(ValidationError);
    await settle.cancel(actionId, { reason: 'test done' });
  });
});

describe('operator updates', () => {
  it('surfaces a validator rejection as a clear error and leaves the action untouched', async () => {
    const actionId = uniqueId('ops');
    await startReady(awaitSpec(actionId));
    const error = await settle.retryStep(actionId, { step: 'attest', reason: 'try again' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UpdateRejectedError);
    expect((error as Error).message).toBe(
      `retryStep on "${actionId}" rejected: retryStep: step "attest" is waiting; only a failed or expired step can be retried`,
    );
    const unknown = await settle.retryStep(actionId, { step: 'nope', reason: 'x' }).catch((e: unknown) => e);
    expect((unknown as UpdateRejectedError).reason).toBe('retryStep: unknown step "nope"');
    expect((await settle.status(actionId)).phase).toBe('running');
  });

  it('validates update inputs before sending them', async () => {
    const actionId = uniqueId('ops-input');
    const error = await settle.compensate(actionId, { reason: ' ' }).catch((e: unknown) => e);
    expect((error as ValidationError).issues).toEqual([
      { path: 'reason', message: 'must say why (it goes into the audit trail)' },
    ]);
    await expect(
      settle.resolveStep(actionId, {
        step: 'attest',
        evidence: { kind: 'finalized', source: 'ops' },
        reason: 'checked',
      } as never),
    ).rejects.toThrow('operator: ');
  });

  it('resolves a step with operator evidence, recorded with operator and reason', async () => {
    const actionId = uniqueId('resolve');
    await startReady(awaitSpec(actionId));
    const status = await settle.resolveStep(actionId, {
      step: 'attest',
      evidence: { kind: 'finalized', source: 'ops-console' },
      reason: 'checked on the explorer',
      operator: 'alice',
    });
    expect(status.steps[0].transitions.at(-1)).toMatchObject({
      to: 'final',
      operator: 'alice',
      reason: 'checked on the explorer',
    });
    await settle.waitFor(actionId, { phase: 'completed' });
  });

  it('cancels, then refuses to compensate a cancelled action', async () => {
    const actionId = uniqueId('cancel');
    await startReady(awaitSpec(actionId));
    const cancelled = await settle.cancel(actionId, { reason: 'customer withdrew', operator: 'bob' });
    expect(cancelled.phase).toBe('cancelled');
    const error = await settle.compensate(actionId, { reason: 'again' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ActionClosedError);
    expect((error as Error).message).toBe(`action "${actionId}" is closed: compensate is not possible any more`);
    await expect(settle.cancel(uniqueId('nobody'), { reason: 'x' })).rejects.toBeInstanceOf(ActionNotFoundError);
  });
});
