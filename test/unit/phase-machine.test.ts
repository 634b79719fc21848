import type { NetworkInfo } from '../../contract/activity-io';
import { ActionSpecSchema, type ActionSpecInput } from '../../contract/action-spec';
import type { Evidence } from '../../contract/evidence';
import type { BlockRef } from '../../contract/primitives';
import { applyStepEvent, initialState, type ActionState } from '../../workflows/machine/action';
import {
  cancel,
  compensate,
  deadlineTimeLeft,
  decide,
  expireDeadline,
  expireStep,
  followerKey,
  newFollowers,
  retryStep,
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

/** lock → attest → mint, the bridge of the design brief. */
function bridge(overrides: Partial<ActionSpecInput> = {}): ActionSpecInput {
  return {
    actionId: 'xfer-7f3a',
    type: 'bridge-transfer',
    steps: [
      { id: 'lock', network: 'chainA', operation: call('lock()'), compensation: call('unlock()') },
      { id: 'attest', network: 'attester', operation: { kind: 'await' }, after: [{ step: 'lock', stage: 'final' }] },
      {
        id: 'mint',
        network: 'chainB',
        operation: call('mint()'),
        compensation: call('burn()'),
        after: [{ step: 'attest', stage: 'final' }],
      },
    ],
    ...overrides,
  };
}

interface Action {
  state: ActionState;
  followers: Followers;
}

function actionOf(spec: ActionSpecInput): Action {
  const state = initialState(
    ActionSpecSchema.parse(spec),
    { chainA: network('chainA'), chainB: network('chainB') },
    AT,
  );
  return { state, followers: newFollowers() };
}

function run({ state, followers }: Action): PhaseCommand[] {
  return decide(state, followers, AT);
}

function block(n: number): BlockRef {
  return { number: String(n), hash: `0x${n.toString(16).padStart(64, '0')}` };
}

function report(action: Action, step: string, fields: Omit<Evidence, 'for' | 'source' | 'step'>, target = 'operation') {
  const evidence = { for: target, source: 'watcher', step, ...fields } as Evidence;
  applyStepEvent(action.state, step, { type: 'evidence', evidence }, { at: AT, source: 'watcher' });
}

/** What a step follower does before its first wait: mark the operation as being submitted. */
function submitting(action: Action, step: string, target: 'operation' | 'compensation' = 'operation') {
  applyStepEvent(action.state, step, { type: 'submitting', for: target }, { at: AT, source: 'settle' });
}

function final(action: Action, step: string, n = 100, target: 'operation' | 'compensation' = 'operation') {
  report(action, step, { kind: 'finalized', ref: `0x${target[0]}${step}`, block: block(n) }, target);
}

function included(action: Action, step: string, n = 100) {
  report(action, step, { kind: 'included', ref: `0xo${step}`, block: block(n) });
}

const follow = (stepId: string, attempt = 1): PhaseCommand => ({ kind: 'followStep', stepId, attempt });
const undo = (stepId: string): PhaseCommand => ({ kind: 'followCompensation', stepId });

describe('the phase machine', () => {
  describe('running', () => {
    it('starts every step whose dependencies are met, in spec order, once', () => {
      const action = actionOf({
        actionId: 'pair',
        steps: [
          { id: 'left', network: 'chainA', operation: call('a()') },
          { id: 'right', network: 'chainB', operation: call('b()') },
        ],
      });
      expect(run(action)).toEqual([follow('left'), follow('right')]);
      expect(action.state.steps.left.startedAt).toBe(AT);
      expect(run(action)).toEqual([]);
    });

    it('starts a dependent only once its dependency reached the stage it waits for', () => {
      const action = actionOf(bridge());
      expect(run(action)).toEqual([follow('lock')]);
      submitting(action, 'lock');
      included(action, 'lock');
      expect(run(action)).toEqual([]);
      final(action, 'lock');
      expect(run(action)).toEqual([follow('attest')]);
      expect(action.state.steps.mint.startedAt).toBeUndefined();
    });

    it('completes when every step is final, and not before', () => {
      const action = actionOf(bridge());
      run(action);
      final(action, 'lock');
      run(action);
      final(action, 'attest');
      run(action);
      included(action, 'mint');
      run(action);
      expect(action.state.phase).toBe('running');
      final(action, 'mint');
      expect(run(action)).toEqual([]);
      expect(action.state.phase).toBe('completed');
    });

    it('follows a step again when its final block is orphaned after its follower ended', () => {
      const action = actionOf(bridge());
      run(action);
      final(action, 'lock');
      run(action);
      action.followers.steps.delete(followerKey('lock', 1));
      report(action, 'lock', { kind: 'reorged', ref: '0xolock', block: block(100) });
      expect(run(action)).toEqual([follow('lock')]);
    });
  });

  describe('trouble', () => {
    it('compensates the effects in reverse dependency order and skips steps that never started', () => {
      const action = actionOf(bridge());
      run(action);
      final(action, 'lock');
      run(action);
      final(action, 'attest');
      run(action);
      submitting(action, 'mint');
      report(action, 'mint', { kind: 'failed', ref: '0xomint', reason: 'execution reverted', block: block(101) });
      expect(run(action)).toEqual([undo('lock')]);
      expect(action.state.phase).toBe('compensating');
      expect(action.state.reason).toBe('step "mint" failed: execution reverted');
      final(action, 'lock', 200, 'compensation');
      expect(run(action)).toEqual([]);
      expect(action.state.phase).toBe('compensated');
    });

    it('undoes a dependent effect before the effect it depends on', () => {
      const action = actionOf(bridge());
      run(action);
      final(action, 'lock');
      run(action);
      final(action, 'attest');
      run(action);
      included(action, 'mint');
      expect(compensate(action.state, action.followers, OPERATOR)).toEqual([undo('mint')]);
      expect(run(action)).toEqual([]);
      final(action, 'mint', 200, 'compensation');
      expect(run(action)).toEqual([undo('lock')]);
      final(action, 'lock', 201, 'compensation');
      run(action);
      expect(action.state.phase).toBe('compensated');
    });

    it('fails, compensating nothing, when a step fails before any effect exists', () => {
      const action = actionOf({
        actionId: 'quoted',
        steps: [
          { id: 'quote', network: 'pricer', operation: { kind: 'await' } },
          { id: 'lock', network: 'chainA', operation: call('lock()'), after: [{ step: 'quote', stage: 'final' }] },
        ],
      });
      run(action);
      report(action, 'quote', { kind: 'failed', reason: 'no quote' });
      expect(run(action)).toEqual([]);
      expect(action.state.phase).toBe('failed');
      expect(action.state.steps.lock.state).toBe('skipped');
    });

    it('ends compensated, compensating nothing, when the only submission reverted', () => {
      const action = actionOf(bridge());
      run(action);
      submitting(action, 'lock');
      report(action, 'lock', { kind: 'failed', reason: 'execution reverted' });
      expect(run(action)).toEqual([]);
      expect(action.state.phase).toBe('compensated');
      expect(action.state.steps.lock.compensation).toBeUndefined();
    });

    it('waits for an operation in flight to learn whether it took effect before compensating', () => {
      const action = actionOf(bridge());
      run(action);
      final(action, 'lock');
      run(action);
      final(action, 'attest');
      run(action);
      submitting(action, 'mint');
      report(action, 'mint', { kind: 'submitted', ref: '0xomint' });
      expect(compensate(action.state, action.followers, OPERATOR)).toEqual([]);
      expect(action.state.phase).toBe('compensating');
      report(action, 'mint', { kind: 'included', ref: '0xomint', block: block(101) });
      expect(run(action)).toEqual([undo('mint')]);
    });

    it('holds for an operator when a step with no compensation has an effect', () => {
      const spec = bridge();
      spec.steps[2] = { ...spec.steps[2], compensation: undefined };
      const action = actionOf(spec);
      run(action);
      final(action, 'lock');
      run(action);
      final(action, 'attest');
      run(action);
      included(action, 'mint');
      expect(compensate(action.state, action.followers, OPERATOR)).toEqual([]);
      expect(action.state.phase).toBe('needs_action');
      expect(action.state.reason).toBe('step "mint" has an effect on chainB and no compensation');
    });

    it('holds when a compensation fails, and goes on once an operator settles it', () => {
      const action = actionOf(bridge());
      run(action);
      final(action, 'lock');
      expect(compensate(action.state, action.followers, OPERATOR)).toEqual([undo('lock')]);
      report(action, 'lock', { kind: 'failed', ref: '0xclock', reason: 'paused' }, 'compensation');
      expect(run(action)).toEqual([]);
      expect(action.state.phase).toBe('needs_action');
      expect(action.state.reason).toBe('compensation of "lock" failed: paused');
      final(action, 'lock', 300, 'compensation');
      run(action);
      expect(action.state.phase).toBe('compensated');
    });
  });

  describe('onDeadline: "hold"', () => {
    it('holds a failed step for an operator, starting nothing, until a retry starts a new attempt', () => {
      const action = actionOf(bridge({ onDeadline: 'hold' }));
      run(action);
      submitting(action, 'lock');
      report(action, 'lock', { kind: 'failed', reason: 'no funds' });
      expect(run(action)).toEqual([]);
      expect(action.state.phase).toBe('needs_action');
      expect(run(action)).toEqual([]);
      expect(retryStep(action.state, action.followers, 'lock', OPERATOR)).toEqual([follow('lock', 2)]);
      expect(action.state.phase).toBe('running');
    });

    it('goes on by itself when late evidence makes the expired step final', () => {
      const action = actionOf(bridge({ onDeadline: 'hold' }));
      run(action);
      expireStep(action.state, 'lock', 1, 60_000, LATER);
      run(action);
      expect(action.state.phase).toBe('needs_action');
      final(action, 'lock');
      expect(run(action)).toEqual([follow('attest')]);
      expect(action.state.phase).toBe('running');
    });
  });

  describe('the deadline', () => {
    it('expires the steps under way and compensates', () => {
      const action = actionOf(bridge({ deadline: 60_000 }));
      run(action);
      final(action, 'lock');
      run(action);
      expect(expireDeadline(action.state, action.followers, LATER)).toEqual([undo('lock')]);
      expect(action.state.steps.attest.state).toBe('expired');
      expect(action.state.steps.mint.state).toBe('skipped');
      expect(action.state.phaseTransitions.at(-1)).toMatchObject({
        to: 'compensating',
        source: 'timer',
        reason: 'the action deadline passed',
      });
    });

    it('with "hold", expires the steps under way and starts nothing', () => {
      const action = actionOf(bridge({ deadline: 60_000, onDeadline: 'hold' }));
      run(action);
      final(action, 'lock');
      run(action);
      expect(expireDeadline(action.state, action.followers, LATER)).toEqual([]);
      expect(run(action)).toEqual([]);
      expect(action.state.phase).toBe('needs_action');
      expect(action.state.steps.mint.state).toBe('waiting');
    });

    it('changes nothing once the action is completed', () => {
      const action = actionOf({
        actionId: 'one',
        deadline: 60_000,
        steps: [{ id: 'a', network: 'x', operation: { kind: 'await' } }],
      });
      run(action);
      final(action, 'a');
      run(action);
      const before = structuredClone(action.state);
      expect(expireDeadline(action.state, action.followers, LATER)).toEqual([]);
      expect(action.state).toEqual(before);
    });

    it('fires at the deadline after the start, at once when it is already past, never once settled', () => {
      const action = actionOf(bridge({ deadline: 60_000 }));
      expect(deadlineTimeLeft(action.state, Date.parse(AT) + 15_000)).toBe(45_000);
      expect(deadlineTimeLeft(action.state, Date.parse(AT) + 90_000)).toBe(1);
      action.state.phase = 'compensated';
      expect(deadlineTimeLeft(action.state, Date.parse(AT))).toBeUndefined();
      expect(deadlineTimeLeft(actionOf(bridge()).state, Date.parse(AT))).toBeUndefined();
      expect(timeLeft(AT, 1_000, Date.parse(AT))).toBe(1_000);
    });
  });

  describe('a step timeout', () => {
    it('expires the attempt it was armed for, not a later one', () => {
      const action = actionOf(bridge({ onDeadline: 'hold' }));
      run(action);
      submitting(action, 'lock');
      report(action, 'lock', { kind: 'failed', reason: 'no funds' });
      run(action);
      retryStep(action.state, action.followers, 'lock', OPERATOR);
      expireStep(action.state, 'lock', 1, 60_000, LATER);
      expect(action.state.steps.lock.state).toBe('waiting');
      expireStep(action.state, 'lock', 2, 60_000, LATER);
      expect(action.state.steps.lock.state).toBe('expired');
      expect(action.state.steps.lock.transitions.at(-1)).toMatchObject({ reason: 'timeout of 60000 ms passed' });
    });

    it('does not expire a final step, nor one whose compensation is decided', () => {
      const action = actionOf(bridge());
      run(action);
      final(action, 'lock');
      expireStep(action.state, 'lock', 1, 60_000, LATER);
      expect(action.state.steps.lock.state).toBe('final');
      run(action);
      compensate(action.state, action.followers, OPERATOR);
      expireStep(action.state, 'attest', 1, 60_000, LATER);
      expect(action.state.steps.attest.state).toBe('waiting');
    });
  });

  describe('cancel', () => {
    it('before any effect: skips every waiting step and starts nothing', () => {
      const action = actionOf(bridge());
      run(action);
      expect(cancel(action.state, action.followers, OPERATOR)).toEqual([]);
      expect(action.state.phase).toBe('cancelled');
      expect(Object.values(action.state.steps).map((s) => s.state)).toEqual(['skipped', 'skipped', 'skipped']);
    });

    it('after a submission: compensates what may exist', () => {
      const action = actionOf(bridge());
      run(action);
      submitting(action, 'lock');
      expect(cancel(action.state, action.followers, OPERATOR)).toEqual([]);
      expect(action.state.phase).toBe('compensating');
      included(action, 'lock');
      expect(run(action)).toEqual([undo('lock')]);
    });
  });
});
