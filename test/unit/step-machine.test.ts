import type { FinalityPolicy } from '../../contract/action-spec';
import type { Evidence } from '../../contract/evidence';
import type { BlockRef } from '../../contract/primitives';
import {
  effectExists,
  finalityViolation,
  newStepRecord,
  reduceStep,
  toStepStatus,
  type StepEvent,
  type StepRecord,
  type TransitionMeta,
} from '../../workflows/machine/step';

const THREE_CONFIRMATIONS: FinalityPolicy = { confirmations: 3 };
const REF = '0x1111111111111111111111111111111111111111111111111111111111111111';
const REPLACEMENT = '0x2222222222222222222222222222222222222222222222222222222222222222';
const COMPENSATION_REF = '0xcccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc';

function block(number: number, fork = 'a'): BlockRef {
  return { number: String(number), hash: `0x${fork.repeat(2)}${number.toString(16).padStart(62, '0')}` };
}

function evidence(fields: Omit<Evidence, 'for' | 'source'> & Partial<Pick<Evidence, 'for' | 'source'>>): StepEvent {
  return { type: 'evidence', evidence: { for: 'operation', source: 'watcher:chainA', ...fields } };
}

let clock = 0;
function meta(extra: Partial<TransitionMeta> = {}): TransitionMeta {
  clock += 1;
  return { at: new Date(Date.UTC(2026, 10, 26, 10, 0, clock)).toISOString(), source: 'watcher:chainA', ...extra };
}

/** Runs events through the reducer, as the workflow does. */
function run(
  events: StepEvent[],
  policy: FinalityPolicy = THREE_CONFIRMATIONS,
  step: StepRecord = newStepRecord({ id: 'lock', network: 'chainA', kind: 'evm.call', hasCompensation: true }),
): StepRecord {
  return events.reduce((current, event) => reduceStep(current, event, policy, meta()), step);
}

const submitted: StepEvent[] = [{ type: 'start' }, { type: 'submitting' }, evidence({ kind: 'submitted', ref: REF })];
const includedAt = (b: BlockRef) => evidence({ kind: 'included', ref: REF, block: b });
const confirmedAt = (b: BlockRef, confirmations: number) =>
  evidence({ kind: 'confirmed', ref: REF, block: b, confirmations });
const reorged = (b: BlockRef) => evidence({ kind: 'reorged', ref: REF, block: b });

describe('step machine', () => {
  describe('on its own network', () => {
    it('waits until it is started and submitted', () => {
      const step = run([]);
      expect(step.state).toBe('waiting');
      expect(run([{ type: 'start' }]).state).toBe('waiting');
      expect(run([{ type: 'start' }, { type: 'submitting' }]).state).toBe('submitting');
      expect(run(submitted).state).toBe('submitted');
    });

    it('is included, not final, until its block has the confirmations its policy asks for', () => {
      const included = run([...submitted, includedAt(block(100))]);
      expect(included.state).toBe('included');
      expect(run([...submitted, includedAt(block(100)), confirmedAt(block(100), 2)]).state).toBe('included');

      const final = run([...submitted, includedAt(block(100)), confirmedAt(block(100), 3)]);
      expect(final.state).toBe('final');
      expect(toStepStatus(final, THREE_CONFIRMATIONS)).toMatchObject({
        state: 'final',
        ref: REF,
        block: block(100),
        confirmations: 3,
      });
    });

    it('counts inclusion as the first confirmation', () => {
      expect(run([...submitted, includedAt(block(100))], { confirmations: 1 }).state).toBe('final');
    });

    it('treats finalized evidence as inclusion: a finalized step is included in that block', () => {
      const step = run([...submitted, evidence({ kind: 'finalized', ref: REF, block: block(100) })], {
        tag: 'finalized',
      });
      expect(step.state).toBe('final');
      expect(toStepStatus(step, { tag: 'finalized' })).toMatchObject({ block: block(100), ref: REF });
      expect(effectExists(step, { tag: 'finalized' })).toBe(true);
    });

    it('is final under a confirmations policy when the network already finalized its block', () => {
      expect(run([...submitted, evidence({ kind: 'finalized', ref: REF, block: block(100) })]).state).toBe('final');
    });

    it.each([[{ tag: 'finalized' }], [{ tag: 'safe' }]] as [FinalityPolicy][])(
      'under %j is final only on finalized evidence, however many confirmations arrive',
      (policy) => {
        const deep = run([...submitted, includedAt(block(100)), confirmedAt(block(100), 1000)], policy);
        expect(deep.state).toBe('included');
        expect(run([...submitted, evidence({ kind: 'finalized', ref: REF, block: block(100) })], policy).state).toBe(
          'final',
        );
      },
    );

    it('moves a step back to submitted when its block is orphaned', () => {
      const step = run([...submitted, includedAt(block(100)), confirmedAt(block(100), 2), reorged(block(100))]);
      expect(step.state).toBe('submitted');
      expect(toStepStatus(step, THREE_CONFIRMATIONS)).not.toHaveProperty('block');
      expect(step.transitions.map((t) => t.to)).toEqual(['submitting', 'submitted', 'included', 'submitted']);
    });

    it('follows the transaction into the block it is mined in again after a reorg', () => {
      const step = run([
        ...submitted,
        includedAt(block(100)),
        reorged(block(100)),
        includedAt(block(101, 'b')),
        confirmedAt(block(101, 'b'), 3),
      ]);
      expect(step.state).toBe('final');
      expect(toStepStatus(step, THREE_CONFIRMATIONS)).toMatchObject({ block: block(101, 'b'), confirmations: 3 });
    });

    it('accepts a reorg report that names only the orphaned hash', () => {
      const step = run([
        ...submitted,
        includedAt(block(100)),
        evidence({ kind: 'reorged', ref: REF, orphanedHash: block(100).hash }),
      ]);
      expect(step.state).toBe('submitted');
    });

    it('keeps a block that met the policy current until its reorg is reported', () => {
      // The watcher reports the re-inclusion before the reorg of the final block: the step must not quietly go back.
      const step = run([...submitted, confirmedAt(block(100), 3), includedAt(block(101, 'b'))]);
      expect(step.state).toBe('final');
      expect(toStepStatus(step, THREE_CONFIRMATIONS)).toMatchObject({ block: block(100) });
    });

    it('raises a finality violation when a block that met the policy is orphaned, and moves the step back', () => {
      const step = run([...submitted, confirmedAt(block(100), 3), reorged(block(100))]);
      expect(finalityViolation(step, THREE_CONFIRMATIONS)).toEqual({ for: 'operation', block: block(100) });
      expect(step.state).toBe('submitted');
      expect(step.transitions.at(-1)).toMatchObject({ from: 'final', to: 'submitted' });
    });

    it('raises no finality violation when the orphaned block never met the policy', () => {
      const step = run([...submitted, confirmedAt(block(100), 2), reorged(block(100))]);
      expect(finalityViolation(step, THREE_CONFIRMATIONS)).toBeUndefined();
    });

    it('ignores duplicated evidence: the record and its transitions are unchanged', () => {
      const once = run([...submitted, includedAt(block(100)), confirmedAt(block(100), 2)]);
      const twice = run([confirmedAt(block(100), 2), includedAt(block(100))], THREE_CONFIRMATIONS, once);
      expect(twice.state).toBe(once.state);
      expect(twice.operation).toEqual(once.operation);
      expect(twice.transitions).toEqual(once.transitions);
    });

    it('ignores an older, smaller confirmation count that arrives late', () => {
      const step = run([...submitted, confirmedAt(block(100), 3), confirmedAt(block(100), 1)]);
      expect(step.state).toBe('final');
      expect(toStepStatus(step, THREE_CONFIRMATIONS).confirmations).toBe(3);
    });

    it('ignores stale evidence for an orphaned block', () => {
      const step = run([
        ...submitted,
        includedAt(block(100)),
        reorged(block(100)),
        includedAt(block(100)),
        confirmedAt(block(100), 2),
      ]);
      expect(step.state).toBe('submitted');
    });

    it('reaches the same state when the reorg arrives before the inclusion it orphans', () => {
      const step = run([...submitted, reorged(block(100)), includedAt(block(100)), includedAt(block(101, 'b'))]);
      expect(step.state).toBe('included');
      expect(toStepStatus(step, THREE_CONFIRMATIONS).block).toEqual(block(101, 'b'));
    });

    it('shows the replacement transaction, not the dropped one, whichever order the reports arrive in', () => {
      const replaced = [
        evidence({ kind: 'dropped', ref: REF, reason: 'replaced' }),
        evidence({ kind: 'submitted', ref: REPLACEMENT }),
        evidence({ kind: 'submitted', ref: REF }),
      ];
      const step = run([{ type: 'start' }, { type: 'submitting' }, ...replaced]);
      expect(toStepStatus(step, THREE_CONFIRMATIONS).ref).toBe(REPLACEMENT);
    });

    it('ignores a report without a ref that arrives before anything was submitted', () => {
      const step = run([{ type: 'start' }, evidence({ kind: 'included', block: block(100) })]);
      expect(step.state).toBe('waiting');
      expect(step.operation.sightings).toEqual({});
    });

    it('accepts a report on an awaited step at any time: an external system reports it', () => {
      const awaited = newStepRecord({ id: 'attest', network: 'attester', kind: 'await', hasCompensation: false });
      const step = run(
        [evidence({ kind: 'finalized', source: 'attester', output: { signature: '0xabc' } })],
        { tag: 'finalized' },
        awaited,
      );
      expect(step.state).toBe('final');
      expect(toStepStatus(step, { tag: 'finalized' }).output).toEqual({ signature: '0xabc' });
    });

    it('fails on a failed report, and forgets a failure in a block that was later orphaned', () => {
      const reverted = evidence({ kind: 'failed', ref: REF, block: block(100), reason: 'execution reverted' });
      const failed = run([...submitted, reverted]);
      expect(failed.state).toBe('failed');
      expect(toStepStatus(failed, THREE_CONFIRMATIONS).error).toBe('execution reverted');

      const retriedByChain = run([...submitted, reverted, reorged(block(100)), includedAt(block(101, 'b'))]);
      expect(retriedByChain.state).toBe('included');
      expect(toStepStatus(retriedByChain, THREE_CONFIRMATIONS)).not.toHaveProperty('error');
    });

    it('does not mutate the record it is given', () => {
      const before = run(submitted);
      const snapshot = JSON.parse(JSON.stringify(before));
      reduceStep(before, includedAt(block(100)), THREE_CONFIRMATIONS, meta());
      expect(before).toEqual(snapshot);
    });
  });

  describe('operator and timer events', () => {
    it('expires a step that is not final when its timeout passes', () => {
      const step = run([...submitted, includedAt(block(100)), { type: 'expire' }]);
      expect(step.state).toBe('expired');
      expect(step.transitions.at(-1)).toMatchObject({ from: 'included', to: 'expired' });
    });

    it('does not expire a step that is already final', () => {
      const step = run([...submitted, confirmedAt(block(100), 3), { type: 'expire' }]);
      expect(step.state).toBe('final');
      expect(step.expired).toBe(false);
    });

    it('lets an expired step become final when the evidence arrives late', () => {
      const step = run([...submitted, includedAt(block(100)), { type: 'expire' }, confirmedAt(block(100), 3)]);
      expect(step.state).toBe('final');
    });

    it('skips a step only while nothing was submitted or reported for it', () => {
      const waiting = newStepRecord({ id: 'mint', network: 'chainB', kind: 'evm.call', hasCompensation: false });
      expect(run([{ type: 'skip' }], THREE_CONFIRMATIONS, waiting).state).toBe('skipped');
      expect(run([{ type: 'start' }, { type: 'skip' }], THREE_CONFIRMATIONS, waiting).state).toBe('skipped');
      expect(run([{ type: 'start' }, { type: 'submitting' }, { type: 'skip' }]).state).toBe('submitting');
      expect(run([...submitted, { type: 'skip' }]).state).toBe('submitted');
    });

    it('ignores operation evidence for a skipped step', () => {
      const awaited = newStepRecord({ id: 'attest', network: 'attester', kind: 'await', hasCompensation: false });
      const step = run(
        [{ type: 'skip' }, evidence({ kind: 'finalized', source: 'attester' })],
        THREE_CONFIRMATIONS,
        awaited,
      );
      expect(step.state).toBe('skipped');
    });

    it('gives a retried step a new attempt and ignores evidence for the refs of earlier attempts', () => {
      const failed = run([...submitted, evidence({ kind: 'failed', ref: REF, reason: 'fee too low' })]);
      expect(failed.state).toBe('failed');

      const retried = run([{ type: 'retry' }], THREE_CONFIRMATIONS, failed);
      expect(retried).toMatchObject({ attempt: 2, state: 'waiting', retiredRefs: [REF], expired: false });
      expect(retried.transitions.at(-1)).toMatchObject({ from: 'failed', to: 'waiting' });

      const late = run([includedAt(block(100)), confirmedAt(block(100), 3)], THREE_CONFIRMATIONS, retried);
      expect(late.state).toBe('waiting');
      expect(late.operation.sightings).toEqual({});

      const newAttempt = run(
        [
          { type: 'submitting' },
          evidence({ kind: 'included', ref: REPLACEMENT, block: block(101) }),
          includedAt(block(100)),
        ],
        THREE_CONFIRMATIONS,
        late,
      );
      expect(newAttempt.state).toBe('included');
      expect(toStepStatus(newAttempt, THREE_CONFIRMATIONS)).toMatchObject({ ref: REPLACEMENT, block: block(101) });
    });

    it('records every transition with its time and source, and the operator and reason when one caused it', () => {
      const at = '2026-11-26T12:00:00.000Z';
      const failed = run([...submitted, evidence({ kind: 'failed', ref: REF, reason: 'fee too low' })]);
      const retried = reduceStep(failed, { type: 'retry' }, THREE_CONFIRMATIONS, {
        at,
        source: 'update:retryStep',
        operator: 'alice',
        reason: 'fee was too low',
      });
      expect(retried.transitions.at(-1)).toEqual({
        from: 'failed',
        to: 'waiting',
        at,
        source: 'update:retryStep',
        operator: 'alice',
        reason: 'fee was too low',
      });
      const included = reduceStep(run(submitted), includedAt(block(100)), THREE_CONFIRMATIONS, {
        at,
        source: 'watcher:chainA',
      });
      expect(included.transitions.at(-1)).toEqual({
        from: 'submitted',
        to: 'included',
        at,
        source: 'watcher:chainA',
        ref: REF,
        block: block(100),
        confirmations: 1,
      });
    });

    it('records nothing when an event changes no state', () => {
      const step = run([...submitted, includedAt(block(100))]);
      expect(run([confirmedAt(block(100), 2)], THREE_CONFIRMATIONS, step).transitions).toEqual(step.transitions);
    });
  });

  describe('compensation', () => {
    const compensationEvidence = (fields: Omit<Evidence, 'for' | 'source'>) =>
      evidence({ ...fields, for: 'compensation', ref: COMPENSATION_REF });

    it('ignores compensation evidence until compensation is decided', () => {
      const step = run([...submitted, confirmedAt(block(100), 3), compensationEvidence({ kind: 'submitted' })]);
      expect(step.state).toBe('final');
      expect(step.compensation).toBeUndefined();
    });

    it('tracks the compensation from compensating to compensated under the same finality policy', () => {
      const final = run([...submitted, confirmedAt(block(100), 3)]);
      const compensating = run(
        [
          { type: 'compensate' },
          { type: 'submitting', for: 'compensation' },
          compensationEvidence({ kind: 'submitted' }),
        ],
        THREE_CONFIRMATIONS,
        final,
      );
      expect(compensating.state).toBe('compensating');
      expect(compensating.transitions.slice(-3)).toMatchObject([
        { from: 'final', to: 'compensating' },
        { for: 'compensation', from: 'pending', to: 'submitting' },
        { for: 'compensation', from: 'submitting', to: 'submitted', ref: COMPENSATION_REF },
      ]);

      const included = run(
        [compensationEvidence({ kind: 'included', block: block(200) })],
        THREE_CONFIRMATIONS,
        compensating,
      );
      expect(included.state).toBe('compensating');

      const compensated = run(
        [compensationEvidence({ kind: 'confirmed', block: block(200), confirmations: 3 })],
        THREE_CONFIRMATIONS,
        included,
      );
      expect(compensated.state).toBe('compensated');
      expect(toStepStatus(compensated, THREE_CONFIRMATIONS).compensation).toMatchObject({
        state: 'final',
        ref: COMPENSATION_REF,
        block: block(200),
      });
      // The operation's own record is kept: what was undone stays visible.
      expect(toStepStatus(compensated, THREE_CONFIRMATIONS)).toMatchObject({ ref: REF, block: block(100) });
    });

    it('moves a compensation back when its block is orphaned', () => {
      const step = run([
        ...submitted,
        includedAt(block(100)),
        { type: 'compensate' },
        compensationEvidence({ kind: 'included', block: block(200) }),
        compensationEvidence({ kind: 'reorged', block: block(200) }),
      ]);
      expect(step.state).toBe('compensating');
      expect(step.transitions.filter((t) => t.for === 'compensation').map((t) => t.to)).toEqual([
        'included',
        'submitted',
      ]);
    });

    it('neither expires nor retries into submission once compensation is decided', () => {
      const step = run([...submitted, includedAt(block(100)), { type: 'compensate' }, { type: 'expire' }]);
      expect(step.state).toBe('compensating');
      expect(step.expired).toBe(false);
      expect(run([{ type: 'submitting' }], THREE_CONFIRMATIONS, step).operation.submitting).toBe(
        step.operation.submitting,
      );
    });
  });
});

describe('a reverted transaction', () => {
  it('stays failed when the block it reverted in gathers confirmations', () => {
    const { reduceStep, newStepRecord } =
      jest.requireActual<typeof import('../../workflows/machine/step')>('../../workflows/machine/step');
    const policy = { confirmations: 2 };
    const meta = { at: '2026-11-26T10:00:00Z', source: 'test' };
    const block = { number: '5', hash: '0x05' };
    let step = newStepRecord({ id: 'mint', network: 'chainB', kind: 'evm.call', hasCompensation: false });
    step = reduceStep(step, { type: 'submitting' }, policy, meta);
    const evidence = (e: object) => ({ step: 'mint', for: 'operation' as const, source: 'test', ref: '0xabc', ...e });
    step = reduceStep(
      step,
      { type: 'evidence', evidence: evidence({ kind: 'failed', reason: 'execution reverted', block }) as never },
      policy,
      meta,
    );
    step = reduceStep(
      step,
      { type: 'evidence', evidence: evidence({ kind: 'confirmed', confirmations: 3, block }) as never },
      policy,
      meta,
    );
    expect(step.state).toBe('failed');
  });
});
