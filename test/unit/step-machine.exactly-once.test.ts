import type { FinalityPolicy } from '../../contract/action-spec';
import type { Evidence } from '../../contract/evidence';
import {
  effectExists,
  newStepRecord,
  reduceStep,
  toStepStatus,
  type StepEvent,
  type StepRecord,
  type TransitionMeta,
} from '../../workflows/machine/step';
import { trackState } from '../../workflows/machine/track';

const POLICY: FinalityPolicy = { confirmations: 2 };
const TX = `0x${'1'.repeat(64)}`;
const BLOCK = { number: '100', hash: `0x${'b'.repeat(64)}` };
const START: TransitionMeta = { at: '2026-11-26T10:00:00.000Z', source: 'settle' };
const RETRY: TransitionMeta = { at: '2026-11-26T10:30:00.000Z', source: 'update:retryStep', operator: 'alice' };

const report = (fields: Omit<Evidence, 'for' | 'source'>): StepEvent => ({
  type: 'evidence',
  evidence: { for: 'operation', source: 'watcher:chainA', ...fields },
});

function run(events: StepEvent[], step?: StepRecord, meta = START): StepRecord {
  const initial = step ?? newStepRecord({ id: 'lock', network: 'chainA', kind: 'evm.call', hasCompensation: true });
  return events.reduce((current, event) => reduceStep(current, event, POLICY, meta), initial);
}

const sentAndExpired = () =>
  run([
    { type: 'start' },
    { type: 'submitting' },
    report({ kind: 'submitted', ref: TX }),
    report({ kind: 'included', ref: TX, block: BLOCK }),
    { type: 'expire' },
  ]);

describe('the step reducer, exactly once', () => {
  describe('a retry that keeps the live transaction (keepLive)', () => {
    it('keeps the track, carries on the earlier attempt at its nonce record, and starts a new attempt', () => {
      const expired = sentAndExpired();
      expect(expired.state).toBe('expired');
      const retried = run([{ type: 'retry', keepLive: true }], expired, RETRY);
      expect(retried).toMatchObject({
        attempt: 2,
        keyAttempt: 1,
        expired: false,
        startedAt: RETRY.at,
        retiredRefs: [],
        state: 'included',
      });
      expect(retried.operation).toEqual(expired.operation);
      expect(toStepStatus(retried, POLICY)).toMatchObject({ ref: TX, block: BLOCK, confirmations: 1 });
      expect(retried.transitions.at(-1)).toMatchObject({ from: 'expired', to: 'included', operator: 'alice' });
    });

    it('lets the kept transaction make the new attempt final', () => {
      const retried = run([{ type: 'retry', keepLive: true }], sentAndExpired(), RETRY);
      const final = run([report({ kind: 'confirmed', ref: TX, block: BLOCK, confirmations: 2 })], retried);
      expect(final.state).toBe('final');
    });

    it('records the retry even when the state does not change', () => {
      const submitting = run([{ type: 'start' }, { type: 'submitting' }]);
      const retried = run([{ type: 'retry', keepLive: true }], submitting, RETRY);
      expect(retried.state).toBe('submitting');
      expect(retried.transitions.length).toBe(submitting.transitions.length + 1);
      expect(retried.transitions.at(-1)).toMatchObject({ from: 'submitting', to: 'submitting', at: RETRY.at });
    });

    it('keeps pointing at the attempt that signed, and a plain retry afterwards retires it all', () => {
      const twice = run(
        [{ type: 'retry', keepLive: true }, { type: 'expire' }, { type: 'retry', keepLive: true }],
        sentAndExpired(),
        RETRY,
      );
      expect(twice).toMatchObject({ attempt: 3, keyAttempt: 1 });
      const fresh = run([{ type: 'expire' }, { type: 'retry' }], twice, RETRY);
      expect(fresh).toMatchObject({ attempt: 4, retiredRefs: [TX], state: 'waiting' });
      expect(fresh).not.toHaveProperty('keyAttempt');
      expect(fresh.operation.sightings).toEqual({});
    });
  });

  describe('an abandoned submission', () => {
    it('goes back to waiting when its nonce owner confirms nothing was signed', () => {
      const submitting = run([{ type: 'start' }, { type: 'submitting' }]);
      const abandoned = run([{ type: 'abandoned' }], submitting);
      expect(abandoned.operation.submitting).toBe(false);
      expect(abandoned.state).toBe('waiting');
      expect(abandoned.transitions.at(-1)).toMatchObject({ from: 'submitting', to: 'waiting' });
    });

    it('changes nothing once a transaction is known: it may still be mined', () => {
      const sent = run([{ type: 'start' }, { type: 'submitting' }, report({ kind: 'submitted', ref: TX })]);
      const after = run([{ type: 'abandoned' }], sent);
      expect(after.operation).toEqual(sent.operation);
      expect(after.state).toBe('submitted');
      expect(after.transitions).toEqual(sent.transitions);
    });
  });

  describe('a failed compensation run again', () => {
    const UNDO = `0x${'c'.repeat(64)}`;
    const AGAIN = `0x${'d'.repeat(64)}`;
    const undo = (fields: Omit<Evidence, 'for' | 'source'>): StepEvent => ({
      type: 'evidence',
      evidence: { for: 'compensation', source: 'watcher:chainA', ...fields },
    });
    const compensationFailed = () =>
      run([
        { type: 'start' },
        { type: 'submitting' },
        report({ kind: 'included', ref: TX, block: BLOCK }),
        { type: 'compensate' },
        { type: 'submitting', for: 'compensation' },
        undo({ kind: 'submitted', ref: UNDO }),
        undo({ kind: 'failed', ref: UNDO, block: BLOCK, reason: 'paused' }),
      ]);

    it('is a state of its own', () => {
      const failed = compensationFailed();
      expect(failed.state).toBe('compensation_failed');
      expect(failed.transitions.at(-1)).toMatchObject({ for: 'compensation', from: 'submitted', to: 'failed' });
    });

    it('starts a new compensation attempt, keeping what the failed one sent as retired refs', () => {
      const retried = run([{ type: 'retry', for: 'compensation' }], compensationFailed(), RETRY);
      expect(retried).toMatchObject({
        state: 'compensating',
        compensationAttempt: 2,
        retiredCompensationRefs: [UNDO],
        attempt: 1,
        retiredRefs: [],
      });
      expect(retried.compensation).toEqual({
        submitting: false,
        refs: [],
        sightings: {},
        orphaned: [],
        dropped: [],
        failures: [],
      });
      // The operation's own record is untouched.
      expect(toStepStatus(retried, POLICY)).toMatchObject({ ref: TX, block: BLOCK });
      expect(retried.transitions.slice(-2)).toMatchObject([
        { from: 'compensation_failed', to: 'compensating', operator: 'alice' },
        { for: 'compensation', from: 'failed', to: 'pending', operator: 'alice' },
      ]);
    });

    it('ignores late reports about the failed compensation, and follows the new one to compensated', () => {
      let step = run([{ type: 'retry', for: 'compensation' }], compensationFailed(), RETRY);
      step = run([undo({ kind: 'failed', ref: UNDO, block: BLOCK, reason: 'paused' })], step);
      expect(step.compensation!.refs).toEqual([]);
      expect(step.state).toBe('compensating');
      step = run(
        [
          { type: 'submitting', for: 'compensation' },
          undo({ kind: 'submitted', ref: AGAIN }),
          undo({ kind: 'confirmed', ref: AGAIN, block: BLOCK, confirmations: 2 }),
        ],
        step,
      );
      expect(step.state).toBe('compensated');
      expect(toStepStatus(step, POLICY).compensation).toMatchObject({ ref: AGAIN, state: 'final' });
    });

    it('counts its attempts and keeps every retired ref', () => {
      let step = run([{ type: 'retry', for: 'compensation' }], compensationFailed(), RETRY);
      step = run(
        [
          undo({ kind: 'submitted', ref: AGAIN }),
          undo({ kind: 'failed', ref: AGAIN, reason: 'paused' }),
          { type: 'retry', for: 'compensation' },
        ],
        step,
      );
      expect(step).toMatchObject({ compensationAttempt: 3, retiredCompensationRefs: [UNDO, AGAIN] });
    });

    it('changes nothing but the audit trail for a step with no compensation under way', () => {
      const included = run([
        { type: 'start' },
        { type: 'submitting' },
        report({ kind: 'included', ref: TX, block: BLOCK }),
      ]);
      const retried = run([{ type: 'retry', for: 'compensation' }], included, RETRY);
      expect({ ...retried, transitions: [] }).toEqual({ ...included, transitions: [] });
      expect(retried).not.toHaveProperty('compensationAttempt');
    });
  });

  describe('a pending operation cancelled by a same-nonce no-op', () => {
    const NOOP = `0x${'e'.repeat(64)}`;
    /** Sent, then cancelled by a no-op; `settlesWhenFinal` as the patch `noop-final` applies it. */
    const pending = (settlesWhenFinal?: true) =>
      run([
        { type: 'start' },
        { type: 'submitting' },
        report({ kind: 'submitted', ref: TX }),
        { type: 'compensate' },
        { type: 'noop', ref: NOOP, ...(settlesWhenFinal ? { settlesWhenFinal } : {}) },
      ]);

    it('knows the no-op as one of its transactions, and stays in flight until one of them is mined', () => {
      const step = pending();
      expect(step.operation.refs).toEqual([TX, NOOP]);
      expect(step.operation.noops).toEqual([NOOP]);
      // The call is what is shown until the chain says which of the two it kept.
      expect(toStepStatus(step, POLICY)).toMatchObject({ ref: TX, refs: [TX, NOOP] });
      expect(run([{ type: 'noop', ref: TX }], step).operation.refs).toEqual([TX, NOOP]);
    });

    it('has no effect when the no-op is what the chain kept at the nonce', () => {
      const step = run([report({ kind: 'included', ref: NOOP, block: BLOCK })], pending());
      const status = toStepStatus(step, POLICY);
      expect(status.state).toBe('compensating');
      expect(step.operation.sightings[BLOCK.hash].ref).toBe(NOOP);
      expect(toStepStatus(step, POLICY)).toMatchObject({
        block: BLOCK,
        error: 'cancelled: a same-nonce no-op was mined',
      });
      const final = run([report({ kind: 'confirmed', ref: NOOP, block: BLOCK, confirmations: 5 })], step);
      expect(toStepStatus(final, POLICY).error).toBe('cancelled: a same-nonce no-op was mined');
    });

    describe('with noop-final: the no-op settles the nonce only once its block meets the policy', () => {
      const OTHER = { number: '100', hash: `0x${'c'.repeat(64)}` };
      const cancelling = () => pending(true);

      it('keeps the call in flight while the no-op is included below the policy: no decision on its effect yet', () => {
        const step = run([report({ kind: 'included', ref: NOOP, block: BLOCK })], cancelling());
        expect(trackState(step.operation, POLICY)).toBe('submitted');
        expect(effectExists(step, POLICY)).toBe(false);
        expect(toStepStatus(step, POLICY)).toMatchObject({ state: 'compensating', ref: NOOP, block: BLOCK });
        expect(toStepStatus(step, POLICY)).not.toHaveProperty('error');
      });

      it('has no effect once the no-op is final', () => {
        const step = run(
          [
            report({ kind: 'included', ref: NOOP, block: BLOCK }),
            report({ kind: 'confirmed', ref: NOOP, block: BLOCK, confirmations: 2 }),
          ],
          cancelling(),
        );
        expect(trackState(step.operation, POLICY)).toBe('failed');
        expect(toStepStatus(step, POLICY).error).toBe('cancelled: a same-nonce no-op was mined');
      });

      it('has its effect when a reorg within the policy orphans the no-op and the call is mined in its place', () => {
        const step = run(
          [
            report({ kind: 'included', ref: NOOP, block: BLOCK }),
            report({ kind: 'reorged', ref: NOOP, block: BLOCK }),
            report({ kind: 'included', ref: TX, block: OTHER }),
          ],
          cancelling(),
        );
        expect(trackState(step.operation, POLICY)).toBe('included');
        expect(effectExists(step, POLICY)).toBe(true);
      });

      it('records a no-op reported twice once', () => {
        expect(run([{ type: 'noop', ref: NOOP, settlesWhenFinal: true }], cancelling()).operation.noops).toEqual([
          NOOP,
        ]);
      });
    });

    it('before noop-final (recorded runs): the no-op settled the nonce as soon as it was included', () => {
      const step = run([report({ kind: 'included', ref: NOOP, block: BLOCK })], pending());
      expect(trackState(step.operation, POLICY)).toBe('failed');
    });

    it('has its effect when the call itself was mined instead', () => {
      const step = run([report({ kind: 'included', ref: TX, block: BLOCK })], pending());
      expect(toStepStatus(step, POLICY)).toMatchObject({ ref: TX, block: BLOCK });
      expect(toStepStatus(step, POLICY)).not.toHaveProperty('error');
    });
  });
});
