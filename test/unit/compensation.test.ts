import type { NetworkInfo } from '../../contract/activity-io';
import { ActionSpecSchema, type ActionSpecInput } from '../../contract/action-spec';
import type { Evidence } from '../../contract/evidence';
import { applyStepEvent, initialState, type ActionState } from '../../workflows/machine/action';
import {
  anyEffectMayExist,
  compensationFailed,
  compensationPlan,
  effectOutstanding,
  inFlight,
} from '../../workflows/machine/compensation';
import type { StepEvent } from '../../workflows/machine/step';

const AT = '2026-11-26T10:00:00.000Z';
const block = (n: number) => ({ number: String(n), hash: `0x${n.toString(16).padStart(64, '0')}` });

function call(fn: string) {
  return { kind: 'evm.call' as const, signer: 'bridge', to: `0x${'a1'.padStart(40, '0')}`, function: `function ${fn}` };
}

const NETWORK: NetworkInfo = {
  network: 'chainA',
  finality: { confirmations: 2 },
  pollIntervalMs: 1_000,
  maxPollIntervalMs: 10_000,
  pollable: true,
  canSubmit: true,
};

/**
 * evm (undone by an EVM call) → awaited (nothing of ours to undo) → reported (awaited, undone by an awaited report)
 * → last (EVM, no compensation).
 */
const SPEC: ActionSpecInput = {
  actionId: 'chain',
  steps: [
    { id: 'evm', network: 'chainA', operation: call('lock()'), compensation: call('unlock()') },
    { id: 'awaited', network: 'ext', operation: { kind: 'await' }, after: [{ step: 'evm', stage: 'included' }] },
    {
      id: 'reported',
      network: 'ext',
      operation: { kind: 'await' },
      compensation: { kind: 'await' },
      after: [{ step: 'awaited', stage: 'included' }],
    },
    { id: 'last', network: 'chainA', operation: call('mint()'), after: [{ step: 'reported', stage: 'included' }] },
  ],
};

function stateOf(spec: ActionSpecInput = SPEC): ActionState {
  return initialState(ActionSpecSchema.parse(spec), { chainA: NETWORK }, AT);
}

function apply(state: ActionState, stepId: string, ...events: StepEvent[]) {
  for (const event of events) applyStepEvent(state, stepId, event, { at: AT, source: 'test' });
}

const report = (fields: Omit<Evidence, 'source' | 'for'> & Partial<Pick<Evidence, 'for'>>): StepEvent => ({
  type: 'evidence',
  evidence: { for: 'operation', source: 'watcher', ...fields },
});

describe('compensation', () => {
  describe('anyEffectMayExist', () => {
    it('is false until something is being submitted, true from then on', () => {
      const state = stateOf();
      apply(state, 'evm', { type: 'start' });
      expect(anyEffectMayExist(state)).toBe(false);
      apply(state, 'evm', { type: 'submitting' });
      expect(anyEffectMayExist(state)).toBe(true);
    });

    it('is true once a transaction is known, even with no submission marked', () => {
      const state = stateOf();
      apply(state, 'evm', report({ kind: 'dropped', ref: '0x1' }));
      expect(state.steps.evm.operation.submitting).toBe(false);
      expect(anyEffectMayExist(state)).toBe(true);
    });

    it('is true for an awaited step with a compensation once it is reported included, not for one without', () => {
      const state = stateOf();
      apply(state, 'awaited', report({ kind: 'finalized' }));
      expect(anyEffectMayExist(state)).toBe(false);
      apply(state, 'reported', report({ kind: 'included' }));
      expect(anyEffectMayExist(state)).toBe(true);
    });
  });

  describe('inFlight', () => {
    it('is an operation being sent, or sent and neither seen on chain nor dropped', () => {
      const state = stateOf();
      expect(inFlight(state, 'evm')).toBe(false);
      apply(state, 'evm', { type: 'submitting' });
      expect(inFlight(state, 'evm')).toBe(true);
      apply(state, 'evm', report({ kind: 'submitted', ref: '0x1' }));
      expect(inFlight(state, 'evm')).toBe(true);
      apply(state, 'evm', report({ kind: 'included', ref: '0x1', block: block(1) }));
      expect(inFlight(state, 'evm')).toBe(false);
      apply(state, 'evm', report({ kind: 'reorged', ref: '0x1', block: block(1) }));
      expect(inFlight(state, 'evm')).toBe(true);
      apply(state, 'evm', report({ kind: 'dropped', ref: '0x1' }));
      expect(inFlight(state, 'evm')).toBe(false);
    });

    it('keeps a dropped transaction in flight when pending operations are cancelled (its bytes may still be mined)', () => {
      const state = stateOf();
      state.cancelsPending = true;
      apply(state, 'evm', report({ kind: 'submitted', ref: '0x1' }), report({ kind: 'dropped', ref: '0x1' }));
      expect(inFlight(state, 'evm')).toBe(true);
      apply(state, 'evm', report({ kind: 'included', ref: '0x1', block: block(1) }));
      expect(inFlight(state, 'evm')).toBe(false);
      const sending = stateOf();
      sending.cancelsPending = true;
      apply(sending, 'evm', { type: 'submitting' });
      expect(inFlight(sending, 'evm')).toBe(true);
      expect(inFlight(stateOf(), 'evm')).toBe(false);
    });

    it('is in flight again when a replacement of a dropped transaction is pending', () => {
      const state = stateOf();
      apply(state, 'evm', report({ kind: 'submitted', ref: '0x1' }), report({ kind: 'dropped', ref: '0x1' }));
      expect(inFlight(state, 'evm')).toBe(false);
      apply(state, 'evm', report({ kind: 'submitted', ref: '0x2' }));
      expect(inFlight(state, 'evm')).toBe(true);
    });

    it('is never in flight once compensated, nor for a step with nothing of ours to undo', () => {
      const state = stateOf();
      apply(state, 'evm', report({ kind: 'submitted', ref: '0x1' }), { type: 'compensate' });
      expect(inFlight(state, 'evm')).toBe(false);
      apply(state, 'awaited', { type: 'submitting' });
      expect(inFlight(state, 'awaited')).toBe(false);
      apply(state, 'reported', { type: 'submitting' });
      expect(inFlight(state, 'reported')).toBe(true);
    });
  });

  describe('effectOutstanding', () => {
    it('is an effect on chain not yet undone', () => {
      const state = stateOf();
      expect(effectOutstanding(state, 'evm')).toBe(false);
      apply(state, 'evm', report({ kind: 'included', ref: '0x1', block: block(1) }));
      expect(effectOutstanding(state, 'evm')).toBe(true);
      apply(state, 'evm', { type: 'compensate' });
      expect(effectOutstanding(state, 'evm')).toBe(true);
      apply(state, 'evm', report({ kind: 'included', for: 'compensation', ref: '0xc', block: block(2) }));
      expect(effectOutstanding(state, 'evm')).toBe(true);
      apply(state, 'evm', report({ kind: 'finalized', for: 'compensation', ref: '0xc', block: block(2) }));
      expect(effectOutstanding(state, 'evm')).toBe(false);
    });

    it('is never outstanding for an awaited step without compensation', () => {
      const state = stateOf();
      apply(state, 'awaited', report({ kind: 'finalized' }));
      expect(effectOutstanding(state, 'awaited')).toBe(false);
      apply(state, 'reported', report({ kind: 'finalized' }));
      expect(effectOutstanding(state, 'reported')).toBe(true);
    });
  });

  describe('compensationPlan', () => {
    it('undoes through an awaited step: the steps after it first, then the ones before', () => {
      const state = stateOf({ ...SPEC, steps: SPEC.steps.slice(0, 3) });
      apply(state, 'evm', report({ kind: 'included', ref: '0x1', block: block(1) }));
      apply(state, 'awaited', report({ kind: 'included' }));
      apply(state, 'reported', report({ kind: 'included' }));
      expect(compensationPlan(state)).toEqual([{ kind: 'start', stepId: 'reported' }]);
      apply(state, 'reported', { type: 'compensate' }, report({ for: 'compensation', kind: 'finalized' }));
      expect(compensationPlan(state)).toEqual([{ kind: 'start', stepId: 'evm' }]);
    });

    it('waits for a dependent in flight to learn whether it has an effect', () => {
      const state = stateOf({ ...SPEC, steps: SPEC.steps.slice(0, 3) });
      apply(state, 'evm', report({ kind: 'included', ref: '0x1', block: block(1) }));
      apply(state, 'reported', { type: 'submitting' });
      expect(compensationPlan(state)).toEqual([]);
    });

    it('blocks on an effect without compensation, and holds back what it depends on', () => {
      const state = stateOf();
      apply(state, 'evm', report({ kind: 'included', ref: '0x1', block: block(1) }));
      apply(state, 'last', report({ kind: 'included', ref: '0x2', block: block(2) }));
      expect(compensationPlan(state)).toEqual([
        { kind: 'blocked', stepId: 'last', reason: 'step "last" has an effect on chainA and no compensation' },
      ]);
    });
  });

  describe('compensationFailed', () => {
    it('names the step whose compensation failed, and why', () => {
      const state = stateOf();
      expect(compensationFailed(state)).toBeUndefined();
      apply(state, 'evm', report({ kind: 'included', ref: '0x1', block: block(1) }), { type: 'compensate' });
      expect(compensationFailed(state)).toBeUndefined();
      apply(state, 'evm', report({ for: 'compensation', kind: 'failed', ref: '0xc', reason: 'paused' }));
      expect(compensationFailed(state)).toBe('compensation of "evm" failed: paused');
    });
  });
});
