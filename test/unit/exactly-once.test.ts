import type { NetworkInfo } from '../../contract/activity-io';
import { ActionSpecSchema, type ActionSpecInput } from '../../contract/action-spec';
import type { Evidence } from '../../contract/evidence';
import type { BlockRef } from '../../contract/primitives';
import { applyStepEvent, initialState, type ActionState } from '../../workflows/machine/action';
import { liveOperation, nonceKeyOf, operationToFollow, refusedClaim } from '../../workflows/machine/exactly-once';
import type { StepEvent } from '../../workflows/machine/step';

const AT = '2026-11-26T10:00:00.000Z';
const LOCK_TX = `0x${'1'.repeat(64)}`;
const UNLOCK_TX = `0x${'2'.repeat(64)}`;
const FOREIGN_TX = `0x${'f'.repeat(64)}`;
const BLOCK: BlockRef = { number: '100', hash: `0x${'b'.repeat(64)}` };

function call(fn: string) {
  return { kind: 'evm.call' as const, signer: 'bridge', to: `0x${'a1'.padStart(40, '0')}`, function: `function ${fn}` };
}

function network(name: string): NetworkInfo {
  return {
    network: name,
    finality: { confirmations: 2 },
    pollIntervalMs: 1_000,
    maxPollIntervalMs: 10_000,
    pollable: true,
    canSubmit: true,
  };
}

/** lock (EVM, undone by unlock) → attest (awaited, its undo awaited too) → mint (EVM, no compensation). */
const SPEC: ActionSpecInput = {
  actionId: 'xfer-7f3a',
  steps: [
    { id: 'lock', network: 'chainA', operation: call('lock()'), compensation: call('unlock()') },
    {
      id: 'attest',
      network: 'attester',
      operation: { kind: 'await' },
      compensation: { kind: 'await' },
      after: [{ step: 'lock', stage: 'final' }],
    },
    { id: 'mint', network: 'chainB', operation: call('mint()'), after: [{ step: 'attest', stage: 'final' }] },
  ],
};

function stateOf(spec: ActionSpecInput = SPEC): ActionState {
  const state = initialState(
    ActionSpecSchema.parse(spec),
    { chainA: network('chainA'), chainB: network('chainB') },
    AT,
  );
  state.exactlyOnce = true;
  return state;
}

function apply(state: ActionState, stepId: string, ...events: StepEvent[]) {
  for (const event of events) applyStepEvent(state, stepId, event, { at: AT, source: 'test' });
}

function evidence(fields: Omit<Evidence, 'source' | 'for'> & Partial<Pick<Evidence, 'for'>>): Evidence {
  return { for: 'operation', source: 'watcher:chainA', ...fields };
}

const reported = (fields: Parameters<typeof evidence>[0]): StepEvent => ({
  type: 'evidence',
  evidence: evidence(fields),
});
const sent = (ref = LOCK_TX, target: 'operation' | 'compensation' = 'operation'): StepEvent[] => [
  { type: 'submitting', for: target },
  reported({ kind: 'submitted', ref, for: target }),
];

describe('exactly-once rules', () => {
  describe('refusedClaim', () => {
    it('refuses a claim that an EVM step was submitted: only Settle reports its own submissions', () => {
      const state = stateOf();
      apply(state, 'lock', ...sent());
      expect(refusedClaim(state, 'lock', evidence({ kind: 'submitted', ref: LOCK_TX }))).toBe(
        'only Settle reports its own submissions of an EVM step',
      );
    });

    it('refuses a transaction Settle did not submit for the step', () => {
      const state = stateOf();
      apply(state, 'lock', ...sent());
      expect(refusedClaim(state, 'lock', evidence({ kind: 'included', ref: FOREIGN_TX, block: BLOCK }))).toBe(
        `${FOREIGN_TX} is not a transaction Settle submitted for this step`,
      );
      // Before anything was submitted, every transaction is foreign.
      expect(refusedClaim(stateOf(), 'lock', evidence({ kind: 'dropped', ref: LOCK_TX }))).toBe(
        `${LOCK_TX} is not a transaction Settle submitted for this step`,
      );
    });

    it("refuses a compensation claim naming the operation's transaction, and accepts the compensation's own", () => {
      const state = stateOf();
      apply(state, 'lock', ...sent());
      expect(
        refusedClaim(state, 'lock', evidence({ for: 'compensation', kind: 'included', ref: LOCK_TX, block: BLOCK })),
      ).toBe(`${LOCK_TX} is not a transaction Settle submitted for this step`);
      apply(state, 'lock', { type: 'compensate' }, ...sent(UNLOCK_TX, 'compensation'));
      expect(
        refusedClaim(state, 'lock', evidence({ for: 'compensation', kind: 'included', ref: UNLOCK_TX, block: BLOCK })),
      ).toBeUndefined();
      expect(
        refusedClaim(state, 'lock', evidence({ for: 'compensation', kind: 'included', ref: LOCK_TX, block: BLOCK })),
      ).toBe(`${LOCK_TX} is not a transaction Settle submitted for this step`);
    });

    it('checks an operation claim against the operation, even when the step has no EVM compensation', () => {
      expect(refusedClaim(stateOf(), 'mint', evidence({ kind: 'included', ref: FOREIGN_TX, block: BLOCK }))).toBe(
        `${FOREIGN_TX} is not a transaction Settle submitted for this step`,
      );
    });

    it('accepts claims about the transactions of earlier attempts (the reducer recognises and ignores them)', () => {
      const state = stateOf();
      apply(state, 'lock', ...sent(), reported({ kind: 'failed', ref: LOCK_TX, reason: 'fee too low' }));
      apply(state, 'lock', { type: 'retry' });
      expect(state.steps.lock.retiredRefs).toEqual([LOCK_TX]);
      expect(refusedClaim(state, 'lock', evidence({ kind: 'included', ref: LOCK_TX, block: BLOCK }))).toBeUndefined();
    });

    it.each(['included', 'confirmed', 'finalized', 'failed'] as const)(
      'refuses a blockless "%s" claim, and one that names no transaction',
      (kind) => {
        const state = stateOf();
        apply(state, 'lock', ...sent());
        const extra = {
          ...(kind === 'confirmed' ? { confirmations: 3 } : {}),
          ...(kind === 'failed' ? { reason: 'x' } : {}),
        };
        const message = `"${kind}" evidence for an EVM step must name its transaction (ref) and its block`;
        expect(refusedClaim(state, 'lock', evidence({ kind, ref: LOCK_TX, ...extra }))).toBe(message);
        expect(refusedClaim(state, 'lock', evidence({ kind, block: BLOCK, ...extra }))).toBe(message);
        expect(refusedClaim(state, 'lock', evidence({ kind, ref: LOCK_TX, block: BLOCK, ...extra }))).toBeUndefined();
      },
    );

    it('accepts reorgs and drops of its own transactions without a block', () => {
      const state = stateOf();
      apply(state, 'lock', ...sent());
      expect(refusedClaim(state, 'lock', evidence({ kind: 'reorged', ref: LOCK_TX, orphanedHash: BLOCK.hash }))).toBe(
        undefined,
      );
      expect(refusedClaim(state, 'lock', evidence({ kind: 'dropped', ref: LOCK_TX }))).toBeUndefined();
      expect(refusedClaim(state, 'lock', evidence({ kind: 'reorged', orphanedHash: BLOCK.hash }))).toBeUndefined();
    });

    it('accepts any claim about an awaited step, or an awaited compensation: an external system reports them', () => {
      const state = stateOf();
      for (const target of ['operation', 'compensation'] as const) {
        for (const claim of [
          evidence({ for: target, kind: 'submitted', ref: FOREIGN_TX }),
          evidence({ for: target, kind: 'finalized' }),
          evidence({ for: target, kind: 'included', ref: FOREIGN_TX }),
        ]) {
          expect(refusedClaim(state, 'attest', claim)).toBeUndefined();
        }
      }
    });

    it('leaves compensation claims about a step without compensation to the reducer (it ignores them)', () => {
      const state = stateOf();
      expect(refusedClaim(state, 'mint', evidence({ for: 'compensation', kind: 'finalized' }))).toBeUndefined();
    });

    it('names an unknown step', () => {
      expect(() => refusedClaim(stateOf(), 'nope', evidence({ kind: 'finalized' }))).toThrow('unknown step nope');
    });
  });

  describe('liveOperation', () => {
    it('is live while the transaction is being sent, sent, or in a block not yet final', () => {
      const state = stateOf();
      expect(liveOperation(state, 'lock')).toBe(false);
      apply(state, 'lock', { type: 'start' });
      expect(liveOperation(state, 'lock')).toBe(false);
      apply(state, 'lock', { type: 'submitting' });
      expect(liveOperation(state, 'lock')).toBe(true);
      apply(state, 'lock', reported({ kind: 'submitted', ref: LOCK_TX }));
      expect(liveOperation(state, 'lock')).toBe(true);
      apply(state, 'lock', reported({ kind: 'included', ref: LOCK_TX, block: BLOCK }));
      expect(liveOperation(state, 'lock')).toBe(true);
      apply(state, 'lock', reported({ kind: 'confirmed', ref: LOCK_TX, block: BLOCK, confirmations: 2 }));
      expect(liveOperation(state, 'lock')).toBe(false);
    });

    it('is not live once the transaction failed', () => {
      const state = stateOf();
      apply(state, 'lock', ...sent(), reported({ kind: 'failed', ref: LOCK_TX, block: BLOCK, reason: 'reverted' }));
      expect(liveOperation(state, 'lock')).toBe(false);
    });

    it('stays live for an expired step whose transaction may still be mined', () => {
      const state = stateOf();
      apply(state, 'lock', ...sent(), { type: 'expire' });
      expect(state.steps.lock.state).toBe('expired');
      expect(liveOperation(state, 'lock')).toBe(true);
    });

    it('is never live for an awaited step, nor once the step left its operation (skipped, compensating)', () => {
      const state = stateOf();
      apply(state, 'attest', { type: 'start' }, { type: 'submitting' }, reported({ kind: 'submitted', ref: 'att' }));
      expect(state.steps.attest.state).toBe('submitted');
      expect(liveOperation(state, 'attest')).toBe(false);
      apply(state, 'lock', ...sent(), { type: 'compensate' });
      expect(liveOperation(state, 'lock')).toBe(false);
      // A skipped step (its submission marked before it was skipped, as a record carried over might be).
      const skipped = stateOf();
      apply(skipped, 'mint', { type: 'submitting' });
      skipped.steps.mint.skipped = true;
      expect(liveOperation(skipped, 'mint')).toBe(false);
    });
  });

  describe('operationToFollow', () => {
    it('while running: follows a step until it is final or failed', () => {
      const state = stateOf();
      expect(operationToFollow(state, 'lock')).toBe(true);
      apply(state, 'lock', ...sent(), reported({ kind: 'included', ref: LOCK_TX, block: BLOCK }));
      expect(operationToFollow(state, 'lock')).toBe(true);
      apply(state, 'lock', reported({ kind: 'finalized', ref: LOCK_TX, block: BLOCK }));
      expect(operationToFollow(state, 'lock')).toBe(false);
      apply(state, 'mint', ...sent(), reported({ kind: 'failed', ref: LOCK_TX, reason: 'reverted' }));
      expect(state.steps.mint.state).toBe('failed');
      expect(operationToFollow(state, 'mint')).toBe(false);
    });

    it('follows an expired step only while its transaction may still take effect', () => {
      const state = stateOf();
      apply(state, 'lock', ...sent(), { type: 'expire' });
      expect(operationToFollow(state, 'lock')).toBe(true);
      apply(state, 'mint', { type: 'start' }, { type: 'expire' });
      expect(state.steps.mint.state).toBe('expired');
      expect(operationToFollow(state, 'mint')).toBe(false);
    });

    it('once compensation is decided: follows only an operation in flight, to learn whether it took effect', () => {
      const state = stateOf();
      apply(state, 'lock', ...sent());
      apply(state, 'mint', ...sent(), reported({ kind: 'included', ref: LOCK_TX, block: BLOCK }));
      state.compensating = true;
      state.phase = 'compensating';
      expect(operationToFollow(state, 'lock')).toBe(true);
      expect(operationToFollow(state, 'mint')).toBe(false);
      apply(state, 'lock', reported({ kind: 'dropped', ref: LOCK_TX }));
      expect(operationToFollow(state, 'lock')).toBe(false);
      const submitting = stateOf();
      apply(submitting, 'lock', { type: 'submitting' });
      submitting.compensating = true;
      expect(operationToFollow(submitting, 'lock')).toBe(true);
    });

    it('follows nothing once the action is cancelled', () => {
      const state = stateOf();
      apply(state, 'lock', ...sent());
      state.phase = 'cancelled';
      expect(operationToFollow(state, 'lock')).toBe(false);
    });
  });

  describe('nonceKeyOf', () => {
    it("keys a submission by the action, step, attempt and target, under the first run's prefix when there is one", () => {
      const state = stateOf();
      expect(nonceKeyOf(state, 'lock', 'operation')).toBe('xfer-7f3a/lock/1/operation');
      expect(nonceKeyOf(state, 'lock', 'compensation')).toBe('xfer-7f3a/lock/1/compensation');
      state.nonceKeyPrefix = 'xfer-7f3a/run-1';
      expect(nonceKeyOf(state, 'mint', 'operation')).toBe('xfer-7f3a/run-1/mint/1/operation');
    });

    it('gives a compensation run again a key of its own, and leaves the operation key alone', () => {
      const state = stateOf();
      apply(state, 'lock', ...sent(), { type: 'compensate' }, ...sent(UNLOCK_TX, 'compensation'));
      apply(state, 'lock', reported({ for: 'compensation', kind: 'failed', ref: UNLOCK_TX, reason: 'paused' }));
      apply(state, 'lock', { type: 'retry', for: 'compensation' });
      expect(nonceKeyOf(state, 'lock', 'compensation')).toBe('xfer-7f3a/lock/1/compensation-2');
      expect(nonceKeyOf(state, 'lock', 'operation')).toBe('xfer-7f3a/lock/1/operation');
    });

    it('gives a retry a new key, unless it carries on the live transaction of an earlier attempt', () => {
      const state = stateOf();
      apply(state, 'lock', ...sent(), reported({ kind: 'failed', ref: LOCK_TX, reason: 'fee too low' }));
      apply(state, 'lock', { type: 'retry' });
      expect(nonceKeyOf(state, 'lock', 'operation')).toBe('xfer-7f3a/lock/2/operation');

      apply(state, 'lock', ...sent(UNLOCK_TX), { type: 'expire' });
      apply(state, 'lock', { type: 'retry', keepLive: true });
      expect(state.steps.lock).toMatchObject({ attempt: 3, keyAttempt: 2 });
      expect(nonceKeyOf(state, 'lock', 'operation')).toBe('xfer-7f3a/lock/2/operation');
      // Carried on again: still the attempt that signed it.
      apply(state, 'lock', { type: 'expire' }, { type: 'retry', keepLive: true });
      expect(nonceKeyOf(state, 'lock', 'operation')).toBe('xfer-7f3a/lock/2/operation');
      // A retry that starts afresh signs under its own attempt again.
      apply(state, 'lock', { type: 'expire' }, { type: 'retry' });
      expect(state.steps.lock.keyAttempt).toBeUndefined();
      expect(nonceKeyOf(state, 'lock', 'operation')).toBe('xfer-7f3a/lock/5/operation');
    });
  });
});
