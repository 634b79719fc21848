import { ActionSpecSchema, type ActionSpecInput } from '../../contract/action-spec';
import type { Evidence } from '../../contract/evidence';
import type { Phase } from '../../contract/status';
import { CompensateInputSchema } from '../../contract/updates';
import { applyStepEvent, initialState, type ActionState } from '../../workflows/machine/action';
import type { StepEvent } from '../../workflows/machine/step';
import { parseUpdate, validateActive, validateResolve, validateRetry } from '../../workflows/machine/update-validators';

const AT = '2026-11-26T10:00:00.000Z';
const TX = `0x${'1'.repeat(64)}`;
const UNDO = `0x${'2'.repeat(64)}`;
const FOREIGN = `0x${'f'.repeat(64)}`;
const BLOCK = { number: '7', hash: `0x${'b'.repeat(64)}` };

function call(fn: string) {
  return { kind: 'evm.call' as const, signer: 'bridge', to: `0x${'a1'.padStart(40, '0')}`, function: `function ${fn}` };
}

const SPEC: ActionSpecInput = {
  actionId: 'xfer',
  steps: [
    { id: 'lock', network: 'chainA', operation: call('lock()'), compensation: call('unlock()') },
    { id: 'attest', network: 'ext', operation: { kind: 'await' }, compensation: { kind: 'await' } },
    { id: 'mint', network: 'chainB', operation: call('mint()') },
    { id: 'relay', network: 'chainB', operation: call('relay()'), compensation: { kind: 'await' } },
  ],
};

function stateOf(exactlyOnce = true, phase: Phase = 'running'): ActionState {
  const state = initialState(ActionSpecSchema.parse(SPEC), {}, AT);
  if (exactlyOnce) state.exactlyOnce = true;
  state.phase = phase;
  return state;
}

function apply(state: ActionState, stepId: string, ...events: StepEvent[]) {
  for (const event of events) applyStepEvent(state, stepId, event, { at: AT, source: 'test' });
}

const report = (fields: Omit<Evidence, 'source' | 'for'> & Partial<Pick<Evidence, 'for'>>): StepEvent => ({
  type: 'evidence',
  evidence: { for: 'operation', source: 'watcher', ...fields },
});

const retry = (step: string) => ({ step, reason: 'fee was too low' });
const resolve = (step: string, evidence: Record<string, unknown>) => ({
  step,
  evidence: { kind: 'finalized', source: 'ops-console', ...evidence },
  reason: 'checked on the explorer',
  operator: 'alice',
});

/** lock's transaction sent and failed; the action held for an operator. */
function failedLock(exactlyOnce = true): ActionState {
  const state = stateOf(exactlyOnce, 'needs_action');
  apply(state, 'lock', { type: 'submitting' }, report({ kind: 'failed', ref: TX, reason: 'reverted' }));
  return state;
}

/** lock's compensation sent and reverted. */
function compensationFailed(exactlyOnce = true, phase: Phase = 'needs_action'): ActionState {
  const state = stateOf(exactlyOnce, phase);
  state.compensating = true;
  apply(state, 'lock', report({ kind: 'included', ref: TX, block: BLOCK }), { type: 'compensate' });
  apply(state, 'lock', { type: 'submitting', for: 'compensation' });
  apply(state, 'lock', report({ for: 'compensation', kind: 'failed', ref: UNDO, reason: 'paused' }));
  return state;
}

describe('the operator updates, validated before they are accepted', () => {
  describe('parseUpdate', () => {
    it('returns the parsed input, or names every bad field and its rule', () => {
      expect(parseUpdate(CompensateInputSchema, { reason: ' ok ' }, 'compensate')).toEqual({ reason: 'ok' });
      expect(() => parseUpdate(CompensateInputSchema, { reason: '', operator: 3 }, 'compensate')).toThrow(
        /^compensate: reason: must say why \(it goes into the audit trail\); operator: /,
      );
    });
  });

  describe('validateActive (compensate, cancel)', () => {
    it.each(['running', 'needs_action'] as const)('accepts an action that is %s', (phase) => {
      expect(() =>
        validateActive(stateOf(true, phase), CompensateInputSchema, { reason: 'x' }, 'compensate'),
      ).not.toThrow();
    });

    it.each(['completed', 'compensating', 'compensated', 'failed', 'cancelled'] as const)(
      'refuses an action that is %s',
      (phase) => {
        expect(() => validateActive(stateOf(true, phase), CompensateInputSchema, { reason: 'x' }, 'cancel')).toThrow(
          `cannot cancel: the action is ${phase}`,
        );
      },
    );

    it('refuses a bad input first', () => {
      expect(() => validateActive(stateOf(), CompensateInputSchema, {}, 'compensate')).toThrow(/^compensate: reason: /);
    });
  });

  describe('validateRetry', () => {
    it('accepts a failed or expired step of a running or held action', () => {
      expect(() => validateRetry(failedLock(), retry('lock'))).not.toThrow();
      const expired = stateOf();
      apply(expired, 'mint', { type: 'start' }, { type: 'expire' });
      expect(() => validateRetry(expired, retry('mint'))).not.toThrow();
    });

    it('names an unknown step, and a step in any other state', () => {
      expect(() => validateRetry(stateOf(), retry('nope'))).toThrow('retryStep: unknown step "nope"');
      expect(() => validateRetry(stateOf(), retry('lock'))).toThrow(
        'retryStep: step "lock" is waiting; only a failed or expired step can be retried',
      );
    });

    it('refuses a bad input', () => {
      expect(() => validateRetry(stateOf(), { step: 'lock' })).toThrow(/^retryStep: reason: /);
    });

    it('refuses once the action is settled, or compensation was decided', () => {
      const settled = failedLock();
      settled.phase = 'failed';
      expect(() => validateRetry(settled, retry('lock'))).toThrow(/^retryStep: the action is failed$/);
      const compensating = failedLock();
      compensating.compensating = true;
      expect(() => validateRetry(compensating, retry('lock'))).toThrow(
        'retryStep: the action is needs_action (compensation was decided)',
      );
      const running = failedLock();
      running.phase = 'running';
      expect(() => validateRetry(running, retry('lock'))).not.toThrow();
    });

    it('accepts a failed compensation of a held action under the exactly-once rules, and only then', () => {
      expect(() => validateRetry(compensationFailed(), retry('lock'))).not.toThrow();
      const rejected = 'retryStep: step "lock" is compensation_failed; only a failed or expired step can be retried';
      expect(() => validateRetry(compensationFailed(false), retry('lock'))).toThrow(rejected);
      expect(() => validateRetry(compensationFailed(true, 'compensating'), retry('lock'))).toThrow(rejected);
    });
  });

  describe('validateResolve', () => {
    it('accepts evidence about an awaited step at any time before the action settles', () => {
      expect(() => validateResolve(stateOf(), resolve('attest', {}))).not.toThrow();
      expect(() => validateResolve(stateOf(false), resolve('attest', {}))).not.toThrow();
    });

    it('names an unknown step and a bad input', () => {
      expect(() => validateResolve(stateOf(), resolve('nope', {}))).toThrow('resolveStep: unknown step "nope"');
      expect(() => validateResolve(stateOf(), { ...resolve('attest', {}), operator: '' })).toThrow(/^resolveStep: /);
    });

    it('refuses compensation evidence for a step not being compensated', () => {
      expect(() => validateResolve(stateOf(), resolve('lock', { for: 'compensation' }))).toThrow(
        'resolveStep: step "lock" is not being compensated',
      );
    });

    it('refuses operation evidence for a skipped step or one being compensated', () => {
      const skipped = stateOf();
      apply(skipped, 'attest', { type: 'skip' });
      expect(() => validateResolve(skipped, resolve('attest', {}))).toThrow('resolveStep: step "attest" is skipped');
      const compensating = compensationFailed();
      expect(() => validateResolve(compensating, resolve('lock', { ref: TX }))).toThrow(
        'resolveStep: step "lock" is compensation_failed',
      );
    });

    it("under the exactly-once rules, accepts evidence about the step's own transaction, with or without its block", () => {
      const state = failedLock();
      expect(() => validateResolve(state, resolve('lock', {}))).not.toThrow();
      expect(() => validateResolve(state, resolve('lock', { ref: TX, block: BLOCK }))).not.toThrow();
      const submitting = stateOf();
      apply(submitting, 'mint', { type: 'submitting' });
      expect(() => validateResolve(submitting, resolve('mint', {}))).not.toThrow();
    });

    it('under the exactly-once rules, refuses a transaction Settle did not submit, or a step nothing was sent for', () => {
      expect(() => validateResolve(failedLock(), resolve('lock', { ref: FOREIGN }))).toThrow(
        `resolveStep: ${FOREIGN} is not a transaction Settle submitted for step "lock"`,
      );
      expect(() => validateResolve(stateOf(), resolve('mint', { ref: FOREIGN }))).toThrow(
        `resolveStep: ${FOREIGN} is not a transaction Settle submitted for step "mint"`,
      );
      expect(() => validateResolve(stateOf(), resolve('mint', {}))).toThrow(
        'resolveStep: nothing was submitted for step "mint" (operation): there is nothing to resolve',
      );
    });

    it("under the exactly-once rules, checks compensation evidence against the compensation's own transactions", () => {
      const state = compensationFailed();
      expect(() => validateResolve(state, resolve('lock', { for: 'compensation', ref: UNDO }))).not.toThrow();
      expect(() => validateResolve(state, resolve('lock', { for: 'compensation', ref: TX }))).toThrow(
        `resolveStep: ${TX} is not a transaction Settle submitted for step "lock"`,
      );
      const unsent = stateOf();
      apply(unsent, 'lock', report({ kind: 'included', ref: TX, block: BLOCK }), { type: 'compensate' });
      expect(() => validateResolve(unsent, resolve('lock', { for: 'compensation' }))).toThrow(
        'resolveStep: nothing was submitted for step "lock" (compensation): there is nothing to resolve',
      );
      // An awaited compensation of an EVM step is reported by an external system: any ref.
      const relay = stateOf();
      apply(relay, 'relay', { type: 'submitting' }, report({ kind: 'included', ref: TX, block: BLOCK }), {
        type: 'compensate',
      });
      expect(() => validateResolve(relay, resolve('relay', { for: 'compensation', ref: FOREIGN }))).not.toThrow();
      const awaited = stateOf();
      apply(awaited, 'attest', report({ kind: 'finalized' }), { type: 'compensate' });
      expect(() => validateResolve(awaited, resolve('attest', { for: 'compensation', ref: FOREIGN }))).not.toThrow();
    });

    it('in runs recorded before the rules, accepts any transaction but needs one for an unsubmitted EVM step', () => {
      const legacy = stateOf(false);
      expect(() => validateResolve(legacy, resolve('mint', {}))).toThrow(
        `resolveStep: step "mint" has not been submitted; evidence about it needs the transaction's ref`,
      );
      expect(() => validateResolve(legacy, resolve('mint', { ref: FOREIGN }))).not.toThrow();
      expect(() => validateResolve(failedLock(false), resolve('lock', { ref: FOREIGN }))).not.toThrow();
      const submitting = stateOf(false);
      apply(submitting, 'mint', { type: 'submitting' });
      expect(() => validateResolve(submitting, resolve('mint', {}))).not.toThrow();
      const reported = stateOf(false);
      apply(reported, 'mint', report({ kind: 'submitted', ref: TX }));
      expect(reported.steps.mint.operation.submitting).toBe(false);
      expect(() => validateResolve(reported, resolve('mint', {}))).not.toThrow();
    });

    it.each(['completed', 'compensated', 'failed', 'cancelled'] as const)('refuses once the action is %s', (phase) => {
      expect(() => validateResolve(stateOf(true, phase), resolve('attest', {}))).toThrow(
        `resolveStep: the action is ${phase}`,
      );
    });
  });
});
