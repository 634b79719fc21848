import type { FinalityPolicy } from '../../contract/action-spec';
import type { Evidence } from '../../contract/evidence';
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

const POLICY: FinalityPolicy = { confirmations: 2 };
const TX = '0xaa';
const UNDO = '0xcc';
const block = (n: number) => ({ number: String(n), hash: `0x${n.toString(16).padStart(64, '0')}` });

const report = (fields: Omit<Evidence, 'for' | 'source'> & Partial<Pick<Evidence, 'for'>>): StepEvent => ({
  type: 'evidence',
  evidence: { for: 'operation', source: 'watcher', ...fields },
});

let clock = 0;
const tick = (extra: Partial<TransitionMeta> = {}): TransitionMeta => ({
  at: new Date(Date.UTC(2026, 10, 26, 10, 0, ++clock)).toISOString(),
  source: 'watcher',
  ...extra,
});

function run(events: StepEvent[], step?: StepRecord, kind: StepRecord['kind'] = 'evm.call'): StepRecord {
  const initial = step ?? newStepRecord({ id: 'lock', network: 'chainA', kind, hasCompensation: true });
  return events.reduce((current, event) => reduceStep(current, event, POLICY, tick()), initial);
}

describe('the step reducer, event by event', () => {
  it('keeps the time a step first started', () => {
    const first = reduceStep(
      newStepRecord({ id: 'a', network: 'n', kind: 'await', hasCompensation: false }),
      { type: 'start' },
      POLICY,
      {
        at: '2026-11-26T10:00:00.000Z',
        source: 'settle',
      },
    );
    const again = reduceStep(first, { type: 'start' }, POLICY, { at: '2026-11-26T11:00:00.000Z', source: 'settle' });
    expect(again.startedAt).toBe('2026-11-26T10:00:00.000Z');
    expect(again.transitions).toEqual([]);
  });

  it('accepts a report without a ref for an EVM step being submitted, or one with a transaction known', () => {
    expect(run([{ type: 'submitting' }, report({ kind: 'included', block: block(1) })]).state).toBe('included');
    const known = run([report({ kind: 'submitted', ref: TX }), report({ kind: 'included', block: block(1) })]);
    expect(known.state).toBe('included');
    expect(run([report({ kind: 'included', block: block(1) })]).state).toBe('waiting');
  });

  it('marks a compensation as being submitted only once compensation is decided', () => {
    const early = run([{ type: 'submitting', for: 'compensation' }]);
    expect(early.compensation).toBeUndefined();
    expect(early.operation.submitting).toBe(false);
    const compensating = run([report({ kind: 'included', ref: TX, block: block(1) }), { type: 'compensate' }]);
    const submitting = run([{ type: 'submitting', for: 'compensation' }], compensating);
    expect(submitting.compensation!.submitting).toBe(true);
    expect(submitting.operation.submitting).toBe(false);
  });

  it('keeps the compensation facts when compensation is decided again', () => {
    const step = run([
      report({ kind: 'included', ref: TX, block: block(1) }),
      { type: 'compensate' },
      report({ for: 'compensation', kind: 'submitted', ref: UNDO }),
      { type: 'compensate' },
    ]);
    expect(step.compensation!.refs).toEqual([UNDO]);
  });

  it('neither expires nor submits a skipped step', () => {
    const step = run([{ type: 'skip' }, { type: 'expire' }, { type: 'submitting' }]);
    expect(step).toMatchObject({ state: 'skipped', expired: false });
    expect(step.operation.submitting).toBe(false);
  });

  it('keeps no facts about the operation of a skipped step', () => {
    const skipped = run(
      [{ type: 'skip' }, report({ kind: 'finalized', ref: TX, block: block(1) })],
      undefined,
      'await',
    );
    expect(skipped.operation.refs).toEqual([]);
    expect(skipped.operation.sightings).toEqual({});
    expect(toStepStatus(skipped, POLICY)).not.toHaveProperty('block');
  });

  it('does not skip a step that was reported on', () => {
    const awaited = run([report({ kind: 'submitted', ref: 'x' }), { type: 'skip' }], undefined, 'await');
    expect(awaited).toMatchObject({ state: 'submitted', skipped: false });
  });

  it('expires a step whose transaction failed, and a waiting one', () => {
    expect(run([report({ kind: 'failed', ref: TX, reason: 'reverted' }), { type: 'expire' }]).state).toBe('expired');
    expect(run([{ type: 'start' }, { type: 'expire' }]).state).toBe('expired');
  });

  it('starts a retried attempt now, whatever the first start was', () => {
    const step = reduceStep(run([{ type: 'start' }, { type: 'expire' }]), { type: 'retry' }, POLICY, {
      at: '2026-11-26T12:00:00.000Z',
      source: 'operator',
    });
    expect(step.startedAt).toBe('2026-11-26T12:00:00.000Z');
  });

  it('records a transition with the ref, block and confirmations it moved to, and the audit it was given', () => {
    const step = run([{ type: 'submitting' }]);
    const moved = reduceStep(step, report({ kind: 'confirmed', ref: TX, block: block(1), confirmations: 2 }), POLICY, {
      at: '2026-11-26T12:00:00.000Z',
      source: 'watcher:chainA',
    });
    expect(moved.transitions.at(-1)).toEqual({
      from: 'submitting',
      to: 'final',
      at: '2026-11-26T12:00:00.000Z',
      source: 'watcher:chainA',
      ref: TX,
      block: block(1),
      confirmations: 2,
    });
    const audited = reduceStep(step, report({ kind: 'submitted', ref: TX }), POLICY, {
      at: '2026-11-26T12:00:00.000Z',
      source: 'ops',
      operator: 'alice',
      reason: 'checked',
    });
    expect(audited.transitions.at(-1)).toEqual({
      from: 'submitting',
      to: 'submitted',
      at: '2026-11-26T12:00:00.000Z',
      source: 'ops',
      operator: 'alice',
      reason: 'checked',
      ref: TX,
    });
    expect(audited.transitions.at(-1)).not.toHaveProperty('confirmations');
    expect(audited.transitions.at(-1)).not.toHaveProperty('block');
  });

  it('records a compensation transition with its ref and block, not the operation confirmations', () => {
    const compensating = run([report({ kind: 'included', ref: TX, block: block(1) }), { type: 'compensate' }]);
    expect(compensating.transitions.filter((t) => t.for === 'compensation')).toEqual([]);
    const step = reduceStep(
      compensating,
      report({ for: 'compensation', kind: 'included', ref: UNDO, block: block(2) }),
      POLICY,
      {
        at: '2026-11-26T12:00:00.000Z',
        source: 'watcher',
      },
    );
    expect(step.transitions.at(-1)).toEqual({
      from: 'pending',
      to: 'included',
      for: 'compensation',
      at: '2026-11-26T12:00:00.000Z',
      source: 'watcher',
      ref: UNDO,
      block: block(2),
    });
    const submitting = reduceStep(compensating, { type: 'submitting', for: 'compensation' }, POLICY, tick());
    expect(submitting.transitions.at(-1)).toMatchObject({ for: 'compensation', from: 'pending', to: 'submitting' });
    expect(submitting.transitions.at(-1)).not.toHaveProperty('ref');
    expect(submitting.transitions.at(-1)).not.toHaveProperty('block');
  });

  it('records nothing for a report that changes neither the step nor its compensation', () => {
    const step = run([
      report({ kind: 'included', ref: TX, block: block(1) }),
      { type: 'compensate' },
      report({ for: 'compensation', kind: 'submitted', ref: UNDO }),
    ]);
    const again = run([report({ for: 'compensation', kind: 'submitted', ref: UNDO }), { type: 'compensate' }], step);
    expect(again.transitions).toEqual(step.transitions);
  });

  it('reports a finality violation of the operation before one of its compensation', () => {
    const both = run([
      report({ kind: 'confirmed', ref: TX, block: block(1), confirmations: 2 }),
      { type: 'compensate' },
      report({ for: 'compensation', kind: 'finalized', ref: UNDO, block: block(2) }),
      report({ for: 'compensation', kind: 'reorged', block: block(2) }),
    ]);
    expect(finalityViolation(both, POLICY)).toEqual({ for: 'compensation', block: block(2) });
    const operationToo = run([report({ kind: 'reorged', block: block(1) })], both);
    expect(finalityViolation(operationToo, POLICY)).toEqual({ for: 'operation', block: block(1) });
  });

  it('has an effect once included or final, not while only submitted', () => {
    expect(effectExists(run([report({ kind: 'submitted', ref: TX })]), POLICY)).toBe(false);
    expect(effectExists(run([report({ kind: 'included', ref: TX, block: block(1) })]), POLICY)).toBe(true);
    expect(effectExists(run([report({ kind: 'finalized', ref: TX, block: block(1) })]), POLICY)).toBe(true);
    expect(effectExists(run([report({ kind: 'failed', ref: TX, block: block(1), reason: 'x' })]), POLICY)).toBe(false);
  });

  it('shows the error of a failed step', () => {
    const failed = run([report({ kind: 'failed', ref: TX, reason: 'reverted' })]);
    expect(toStepStatus(failed, POLICY)).toMatchObject({ state: 'failed', error: 'reverted' });
  });
});
