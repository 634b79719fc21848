import type { NetworkInfo } from '../../contract/activity-io';
import { ActionSpecSchema, type ActionSpecInput } from '../../contract/action-spec';
import type { Evidence } from '../../contract/evidence';
import type { BlockRef } from '../../contract/primitives';
import { applyStepEvent, initialState, type ActionState } from '../../workflows/machine/action';
import {
  cancel,
  compensate,
  decide,
  deadlineTimeLeft,
  expireDeadline,
  expireStep,
  followerKey,
  newFollowers,
  SOURCE,
  timeLeft,
  type Followers,
  type PhaseCommand,
} from '../../workflows/machine/phase';

const AT = '2026-11-26T10:00:00.000Z';
const LATER = '2026-11-26T10:05:00.000Z';
const OPERATOR = { at: LATER, source: 'operator', reason: 'ops', operator: 'alice' };

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

interface Action {
  state: ActionState;
  followers: Followers;
}

function actionOf(spec: ActionSpecInput): Action {
  const state = initialState(ActionSpecSchema.parse(spec), { chainA: NETWORK, chainB: NETWORK }, AT);
  return { state, followers: newFollowers() };
}

const run = ({ state, followers }: Action, now = AT): PhaseCommand[] => decide(state, followers, now);
const block = (n: number): BlockRef => ({ number: String(n), hash: `0x${n.toString(16).padStart(64, '0')}` });

function report(action: Action, step: string, fields: Omit<Evidence, 'for' | 'source' | 'step'>, target = 'operation') {
  const evidence = { for: target, source: 'watcher', step, ...fields } as Evidence;
  applyStepEvent(action.state, step, { type: 'evidence', evidence }, { at: AT, source: 'watcher' });
}

const follow = (stepId: string, attempt = 1): PhaseCommand => ({ kind: 'followStep', stepId, attempt });
const undo = (stepId: string): PhaseCommand => ({ kind: 'followCompensation', stepId });

/** Two independent EVM steps, the second undoable. */
const PAIR: ActionSpecInput = {
  actionId: 'pair',
  deadline: 60_000,
  steps: [
    { id: 'left', network: 'chainA', operation: call('a()') },
    { id: 'right', network: 'chainB', operation: call('b()'), compensation: call('undoB()') },
  ],
};

describe('the phase machine, rule by rule', () => {
  it("names itself 'settle' in the audit trail of what it does by itself", () => {
    expect(SOURCE).toBe('settle');
  });

  it('gives the reason an expired step stopped the action', () => {
    const action = actionOf({ ...PAIR, onDeadline: 'hold' });
    run(action);
    expireStep(action.state, 'left', 1, 1_000, LATER);
    run(action, LATER);
    expect(action.state).toMatchObject({ phase: 'needs_action', reason: 'step "left" expired' });
    expect(action.state.phaseTransitions.at(-1)).toEqual({
      from: 'running',
      to: 'needs_action',
      at: LATER,
      source: SOURCE,
      reason: 'step "left" expired',
    });
  });

  it('records the start of each step it starts, as its own transition source, at the time it decides', () => {
    const action = actionOf(PAIR);
    expect(run(action, LATER)).toEqual([follow('left'), follow('right')]);
    expect(action.state.steps.left.startedAt).toBe(LATER);
    expect(followerKey('left', 2)).toBe('left#2');
    expect([...action.followers.steps]).toEqual(['left#1', 'right#1']);
  });

  it('does not start a skipped step, nor one already final', () => {
    const action = actionOf(PAIR);
    applyStepEvent(action.state, 'left', { type: 'skip' }, { at: AT, source: 'test' });
    report(action, 'right', { kind: 'finalized', ref: '0xr', block: block(1) });
    expect(run(action)).toEqual([]);
  });

  describe('the deadline', () => {
    it('changes nothing for an action whose steps are all final, before the machine completed it', () => {
      const action = actionOf(PAIR);
      run(action);
      report(action, 'left', { kind: 'finalized', ref: '0xl', block: block(1) });
      report(action, 'right', { kind: 'finalized', ref: '0xr', block: block(2) });
      expect(expireDeadline(action.state, action.followers, LATER)).toEqual([]);
      expect(action.state.phase).toBe('running');
      run(action);
      expect(action.state.phase).toBe('completed');
    });

    it('expires only the steps under way: not one that never started, nor one that failed', () => {
      const action = actionOf({
        actionId: 'three',
        deadline: 60_000,
        onDeadline: 'hold',
        steps: [
          { id: 'a', network: 'chainA', operation: call('a()') },
          { id: 'b', network: 'chainA', operation: call('b()') },
          { id: 'c', network: 'chainA', operation: call('c()'), after: [{ step: 'a', stage: 'final' }] },
        ],
      });
      run(action);
      report(action, 'b', { kind: 'failed', ref: '0xb', reason: 'reverted' });
      expireDeadline(action.state, action.followers, LATER);
      expect(Object.values(action.state.steps).map((s) => s.state)).toEqual(['expired', 'failed', 'waiting']);
      expect(action.state.steps.a.transitions.at(-1)).toMatchObject({
        source: 'timer',
        reason: 'the action deadline passed',
        at: LATER,
      });
      expect(action.state.phaseTransitions.at(-1)).toMatchObject({ to: 'needs_action', source: 'timer' });
    });

    it('changes nothing once the action is held', () => {
      const action = actionOf({ ...PAIR, onDeadline: 'hold' });
      run(action);
      expireStep(action.state, 'left', 1, 1_000, AT);
      run(action);
      expect(action.state.phase).toBe('needs_action');
      expireDeadline(action.state, action.followers, LATER);
      expect(action.state.steps.right.state).toBe('waiting');
    });

    it('fires when the deadline is due, measured from the start', () => {
      const action = actionOf(PAIR);
      expect(deadlineTimeLeft(action.state, Date.parse(AT) + 59_999)).toBe(1);
      expect(deadlineTimeLeft(action.state, Date.parse(AT) + 59_000)).toBe(1_000);
      expect(timeLeft(AT, 60_000, Date.parse(AT) + 60_000)).toBe(1);
      for (const phase of ['completed', 'compensated', 'failed', 'cancelled'] as const) {
        action.state.phase = phase;
        expect(deadlineTimeLeft(action.state, Date.parse(AT))).toBeUndefined();
      }
      action.state.phase = 'needs_action';
      expect(deadlineTimeLeft(action.state, Date.parse(AT))).toBe(60_000);
    });
  });

  describe('a step timeout', () => {
    it("is recorded as the timer's doing", () => {
      const action = actionOf(PAIR);
      run(action);
      expireStep(action.state, 'left', 1, 1_000, LATER);
      expect(action.state.steps.left.transitions.at(-1)).toEqual({
        from: 'waiting',
        to: 'expired',
        at: LATER,
        source: 'timer',
        reason: 'timeout of 1000 ms passed',
      });
    });

    it('expires nothing once the action is settled', () => {
      const action = actionOf(PAIR);
      run(action);
      action.state.phase = 'failed';
      expireStep(action.state, 'left', 1, 1_000, LATER);
      expect(action.state.steps.left.state).toBe('waiting');
    });
  });

  describe('compensation', () => {
    it('skips the steps that never started and keeps the ones that did', () => {
      const action = actionOf({
        actionId: 'chain',
        steps: [
          { id: 'a', network: 'chainA', operation: call('a()'), compensation: call('undoA()') },
          { id: 'b', network: 'ext', operation: { kind: 'await' } },
          { id: 'c', network: 'chainA', operation: call('c()'), after: [{ step: 'a', stage: 'final' }] },
        ],
      });
      run(action);
      report(action, 'a', { kind: 'included', ref: '0xa', block: block(1) });
      expect(compensate(action.state, action.followers, OPERATOR)).toEqual([undo('a')]);
      expect(Object.values(action.state.steps).map((s) => s.state)).toEqual(['compensating', 'waiting', 'skipped']);
      expect(action.state.steps.a.transitions.at(-1)).toMatchObject({ source: SOURCE, reason: 'compensating' });
      expect(action.state.phaseTransitions.at(-1)).toMatchObject({ to: 'compensating', operator: 'alice' });
    });

    it('goes on compensating once the effect that blocked it is gone', () => {
      const action = actionOf({
        actionId: 'blocked',
        steps: [
          { id: 'a', network: 'chainA', operation: call('a()'), compensation: call('undoA()') },
          { id: 'b', network: 'chainB', operation: call('b()'), after: [{ step: 'a', stage: 'included' }] },
        ],
      });
      run(action);
      report(action, 'a', { kind: 'finalized', ref: '0xa', block: block(1) });
      run(action);
      report(action, 'b', { kind: 'included', ref: '0xb', block: block(2) });
      expect(compensate(action.state, action.followers, OPERATOR)).toEqual([]);
      expect(action.state).toMatchObject({
        phase: 'needs_action',
        reason: 'step "b" has an effect on chainB and no compensation',
      });
      expect(run(action)).toEqual([]);
      // Held: deciding again records nothing while the effect without compensation is there.
      const transitions = action.state.phaseTransitions.length;
      run(action);
      expect(action.state.phaseTransitions).toHaveLength(transitions);
      report(action, 'b', { kind: 'reorged', ref: '0xb', block: block(2) });
      report(action, 'b', { kind: 'dropped', ref: '0xb' });
      expect(run(action, LATER)).toEqual([undo('a')]);
      expect(action.state.phaseTransitions.slice(-1)).toEqual([
        {
          from: 'needs_action',
          to: 'compensating',
          at: LATER,
          source: SOURCE,
          reason: 'what held the action is settled',
        },
      ]);
    });

    it('stays held while a compensation has failed', () => {
      const action = actionOf(PAIR);
      run(action);
      report(action, 'right', { kind: 'included', ref: '0xr', block: block(1) });
      compensate(action.state, action.followers, OPERATOR);
      report(action, 'right', { kind: 'failed', ref: '0xc', reason: 'paused' }, 'compensation');
      run(action);
      expect(action.state.phase).toBe('needs_action');
      const transitions = action.state.phaseTransitions.length;
      run(action);
      expect(action.state.phase).toBe('needs_action');
      expect(action.state.phaseTransitions).toHaveLength(transitions);
    });

    it('fails the action when compensation is decided before anything was sent', () => {
      const action = actionOf(PAIR);
      run(action);
      expect(compensate(action.state, action.followers, OPERATOR)).toEqual([]);
      expect(action.state).toMatchObject({ phase: 'failed', reason: 'ops' });
    });
  });

  it('records when compensation ended', () => {
    const action = actionOf(PAIR);
    run(action);
    report(action, 'right', { kind: 'included', ref: '0xr', block: block(1) });
    compensate(action.state, action.followers, OPERATOR);
    report(action, 'right', { kind: 'finalized', ref: '0xc', block: block(2) }, 'compensation');
    run(action, LATER);
    expect(action.state.phaseTransitions.at(-1)).toEqual({
      from: 'compensating',
      to: 'compensated',
      at: LATER,
      source: SOURCE,
    });
  });

  describe('cancel', () => {
    it('skips the waiting steps, started or not, with the operator in the audit trail', () => {
      const action = actionOf({
        ...PAIR,
        steps: [
          ...PAIR.steps,
          { id: 'later', network: 'chainA', operation: call('c()'), after: [{ step: 'left', stage: 'final' }] },
        ],
      });
      run(action);
      expect(cancel(action.state, action.followers, OPERATOR)).toEqual([]);
      expect(action.state).toMatchObject({ phase: 'cancelled', compensating: true, reason: 'ops' });
      expect(action.state.steps.left.transitions.at(-1)).toMatchObject({ to: 'skipped', operator: 'alice' });
      expect(action.state.steps.later.state).toBe('skipped');
    });

    it('keeps an expired step expired', () => {
      const action = actionOf({ ...PAIR, onDeadline: 'hold' });
      run(action);
      expireStep(action.state, 'left', 1, 1_000, AT);
      run(action);
      cancel(action.state, action.followers, OPERATOR);
      expect(action.state.steps.left.state).toBe('expired');
      expect(action.state.steps.right.state).toBe('skipped');
    });
  });
});
