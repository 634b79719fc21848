import type { NetworkInfo } from '../../contract/activity-io';
import { ActionSpecSchema, type ActionSpecInput } from '../../contract/action-spec';
import type { Evidence } from '../../contract/evidence';
import type { BlockRef } from '../../contract/primitives';
import { applyStepEvent, initialState, type ActionState } from '../../workflows/machine/action';
import { nonceKeyOf } from '../../workflows/machine/exactly-once';
import {
  compensate,
  deadlineTimeLeft,
  decide,
  expireDeadline,
  expireStep,
  newFollowers,
  retryCompensation,
  retryStep,
  type Followers,
  type PhaseCommand,
} from '../../workflows/machine/phase';

const AT = '2026-11-26T10:00:00.000Z';
const LATER = '2026-11-26T10:05:00.000Z';
const LATEST = '2026-11-26T10:09:00.000Z';
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

function actionOf(spec: ActionSpecInput, exactlyOnce = true): Action {
  const state = initialState(
    ActionSpecSchema.parse(spec),
    { chainA: network('chainA'), chainB: network('chainB') },
    AT,
  );
  if (exactlyOnce) state.exactlyOnce = true;
  return { state, followers: newFollowers() };
}

/** Continue-as-new: the new run gets the state and nothing else; every follower must be derived again. */
function continuedAsNew(action: Action): Action {
  return { state: structuredClone(action.state), followers: newFollowers() };
}

const run = ({ state, followers }: Action, now = AT): PhaseCommand[] => decide(state, followers, now);

function block(n: number): BlockRef {
  return { number: String(n), hash: `0x${n.toString(16).padStart(64, '0')}` };
}

function report(action: Action, step: string, fields: Omit<Evidence, 'for' | 'source' | 'step'>, target = 'operation') {
  const evidence = { for: target, source: 'watcher', step, ...fields } as Evidence;
  applyStepEvent(action.state, step, { type: 'evidence', evidence }, { at: AT, source: 'watcher' });
}

function submitted(action: Action, step: string, target: 'operation' | 'compensation' = 'operation') {
  applyStepEvent(action.state, step, { type: 'submitting', for: target }, { at: AT, source: 'settle' });
  report(action, step, { kind: 'submitted', ref: `0x${target[0]}${step}` }, target);
}

function final(action: Action, step: string, n = 100, target: 'operation' | 'compensation' = 'operation') {
  report(action, step, { kind: 'finalized', ref: `0x${target[0]}${step}`, block: block(n) }, target);
}

const follow = (stepId: string, attempt = 1): PhaseCommand => ({ kind: 'followStep', stepId, attempt });
const undo = (stepId: string): PhaseCommand => ({ kind: 'followCompensation', stepId });

/** lock and attest final, mint's transaction sent and not yet seen. */
function mintInFlight(spec = bridge(), exactlyOnce = true): Action {
  const action = actionOf(spec, exactlyOnce);
  run(action);
  submitted(action, 'lock');
  final(action, 'lock');
  run(action);
  final(action, 'attest');
  run(action);
  submitted(action, 'mint');
  return action;
}

describe('the phase machine, exactly once', () => {
  describe('after continue-as-new', () => {
    it('follows a held step whose transaction may still be mined', () => {
      const action = actionOf(bridge({ onDeadline: 'hold' }));
      expect(run(action)).toEqual([follow('lock')]);
      submitted(action, 'lock');
      expireStep(action.state, 'lock', 1, 60_000, LATER);
      expect(run(action)).toEqual([]);
      expect(action.state.phase).toBe('needs_action');

      const next = continuedAsNew(action);
      expect(run(next)).toEqual([follow('lock')]);
      expect(run(next)).toEqual([]);
      expect(next.state.phase).toBe('needs_action');
    });

    it('follows nothing for a held step with nothing sent, or a failed one', () => {
      const action = actionOf(bridge({ onDeadline: 'hold' }));
      run(action);
      expireStep(action.state, 'lock', 1, 60_000, LATER);
      run(action);
      expect(action.state.phase).toBe('needs_action');
      expect(run(continuedAsNew(action))).toEqual([]);

      const failed = actionOf(bridge({ onDeadline: 'hold' }));
      run(failed);
      submitted(failed, 'lock');
      report(failed, 'lock', { kind: 'failed', ref: '0xolock', block: block(100), reason: 'reverted' });
      run(failed);
      expect(failed.state.phase).toBe('needs_action');
      expect(run(continuedAsNew(failed))).toEqual([]);
    });

    it('runs recorded before the rules follow nothing while held (they replay as they were)', () => {
      const action = actionOf(bridge({ onDeadline: 'hold' }), false);
      run(action);
      submitted(action, 'lock');
      expireStep(action.state, 'lock', 1, 60_000, LATER);
      run(action);
      expect(action.state.phase).toBe('needs_action');
      expect(run(continuedAsNew(action))).toEqual([]);
    });

    it('while compensating: follows the operation in flight, then the compensation it called for', () => {
      const action = mintInFlight();
      expect(compensate(action.state, action.followers, OPERATOR)).toEqual([]);
      expect(action.state.phase).toBe('compensating');

      const next = continuedAsNew(action);
      expect(run(next)).toEqual([follow('mint')]);
      report(next, 'mint', { kind: 'included', ref: '0xomint', block: block(101) });
      expect(run(next)).toEqual([undo('mint')]);

      const again = continuedAsNew(next);
      expect(run(again)).toEqual([undo('mint')]);
      final(again, 'mint', 200, 'compensation');
      expect(run(again)).toEqual([undo('lock')]);
      const last = continuedAsNew(again);
      expect(run(last)).toEqual([undo('lock')]);
      final(last, 'lock', 201, 'compensation');
      expect(run(last)).toEqual([]);
      expect(last.state.phase).toBe('compensated');
    });

    it('runs recorded before the rules do not follow an operation in flight once compensating', () => {
      const action = mintInFlight(bridge(), false);
      compensate(action.state, action.followers, OPERATOR);
      expect(run(continuedAsNew(action))).toEqual([]);
    });

    it('while held by compensation: follows every unfinished compensation, not a finished or failed one', () => {
      // right has an effect and no compensation: compensation holds for an operator after starting left's.
      const action = actionOf({
        actionId: 'pair',
        steps: [
          { id: 'right', network: 'chainB', operation: call('b()') },
          { id: 'left', network: 'chainA', operation: call('a()'), compensation: call('undoA()') },
          { id: 'middle', network: 'chainA', operation: call('m()'), compensation: call('undoM()') },
        ],
      });
      run(action);
      for (const id of ['right', 'left', 'middle']) {
        submitted(action, id);
        final(action, id);
      }
      expect(compensate(action.state, action.followers, OPERATOR)).toEqual([undo('middle'), undo('left')]);
      expect(action.state.phase).toBe('needs_action');
      expect(action.state.reason).toBe('step "right" has an effect on chainB and no compensation');

      // Both were started already: the new run follows them again, in spec order.
      expect(run(continuedAsNew(action))).toEqual([undo('left'), undo('middle')]);
      final(action, 'left', 300, 'compensation');
      expect(run(continuedAsNew(action))).toEqual([undo('middle')]);
      report(
        action,
        'middle',
        { kind: 'failed', ref: '0xcmiddle', block: block(301), reason: 'paused' },
        'compensation',
      );
      expect(run(continuedAsNew(action))).toEqual([]);
    });

    // Found by mutation testing: a transaction sent for a step whose dependency was then orphaned must still be
    // followed by a run that continued as new (the run before followed it).
    it('follows a sent transaction whose dependency was orphaned since, while the action runs', () => {
      const action = actionOf({
        actionId: 'fast-path',
        steps: [
          { id: 'lock', network: 'chainA', operation: call('lock()') },
          { id: 'mint', network: 'chainB', operation: call('mint()'), after: [{ step: 'lock', stage: 'included' }] },
        ],
      });
      run(action);
      submitted(action, 'lock');
      report(action, 'lock', { kind: 'included', ref: '0xolock', block: block(100) });
      expect(run(action)).toEqual([follow('mint')]);
      submitted(action, 'mint');
      report(action, 'lock', { kind: 'reorged', ref: '0xolock', block: block(100) });
      expect(run(action)).toEqual([]);
      expect(action.state.phase).toBe('running');
      expect(run(continuedAsNew(action))).toContainEqual(follow('mint'));
    });

    it('follows a step that was being submitted when the run continued as new', () => {
      const action = actionOf(bridge());
      run(action);
      applyStepEvent(action.state, 'lock', { type: 'submitting' }, { at: AT, source: 'settle' });
      expect(run(continuedAsNew(action))).toEqual([follow('lock')]);
    });
  });

  describe('the deadline', () => {
    it('applies once: a timer armed again after continue-as-new expires nothing an operator retried since', () => {
      const action = actionOf(bridge({ deadline: 60_000, onDeadline: 'hold' }));
      run(action);
      submitted(action, 'lock');
      expect(deadlineTimeLeft(action.state, Date.parse(AT))).toBe(60_000);
      expect(expireDeadline(action.state, action.followers, LATER)).toEqual([]);
      expect(action.state).toMatchObject({ phase: 'needs_action', deadlinePassedAt: LATER });
      expect(action.state.steps.lock.state).toBe('expired');
      expect(deadlineTimeLeft(action.state, Date.parse(LATER))).toBeUndefined();

      expect(retryStep(action.state, action.followers, 'lock', OPERATOR)).toEqual([follow('lock', 2)]);
      const next = continuedAsNew(action);
      const before = structuredClone(next.state);
      expect(expireDeadline(next.state, next.followers, LATEST)).toEqual([]);
      expect(next.state).toEqual(before);
      expect(next.state.steps.lock.state).toBe('submitted');
      expect(next.state.phase).toBe('running');
    });

    it('counts as passed even when the action was already held', () => {
      const action = actionOf(bridge({ deadline: 60_000, onDeadline: 'hold' }));
      run(action);
      submitted(action, 'lock');
      report(action, 'lock', { kind: 'failed', ref: '0xolock', block: block(100), reason: 'reverted' });
      run(action);
      expect(action.state.phase).toBe('needs_action');
      expireDeadline(action.state, action.followers, LATER);
      expect(action.state.deadlinePassedAt).toBe(LATER);
      retryStep(action.state, action.followers, 'lock', OPERATOR);
      expireDeadline(action.state, action.followers, LATEST);
      expect(action.state.phase).toBe('running');
      expect(action.state.steps.lock.state).toBe('waiting');
    });

    it('runs recorded before the rules expire again when the timer fires again (as they did)', () => {
      const action = actionOf(bridge({ deadline: 60_000, onDeadline: 'hold' }), false);
      run(action);
      submitted(action, 'lock');
      expireDeadline(action.state, action.followers, LATER);
      expect(action.state.deadlinePassedAt).toBeUndefined();
      expect(deadlineTimeLeft(action.state, Date.parse(LATER))).toBe(1);
      retryStep(action.state, action.followers, 'lock', OPERATOR);
      expireDeadline(action.state, action.followers, LATEST);
      expect(action.state.phase).toBe('needs_action');
    });

    it('with "hold": a held action goes on by itself once late evidence makes the expired step final', () => {
      const action = actionOf(bridge({ deadline: 60_000, onDeadline: 'hold' }));
      run(action);
      submitted(action, 'lock');
      expireDeadline(action.state, action.followers, LATER);
      expect(action.state.phase).toBe('needs_action');
      final(action, 'lock');
      expect(run(action)).toEqual([follow('attest')]);
      expect(action.state.phase).toBe('running');
    });

    it('with "hold": completes when late evidence makes every step final', () => {
      const action = actionOf({
        actionId: 'one',
        deadline: 60_000,
        onDeadline: 'hold',
        steps: [{ id: 'lock', network: 'chainA', operation: call('lock()') }],
      });
      run(action);
      submitted(action, 'lock');
      expireDeadline(action.state, action.followers, LATER);
      expect(action.state.phase).toBe('needs_action');
      final(action, 'lock');
      expect(run(action)).toEqual([]);
      expect(action.state.phase).toBe('completed');
    });
  });

  describe('retryStep', () => {
    it('carries on a transaction that may still be mined, at its nonce record', () => {
      const action = actionOf(bridge({ onDeadline: 'hold' }));
      run(action);
      submitted(action, 'lock');
      expireStep(action.state, 'lock', 1, 60_000, LATER);
      run(action);
      expect(retryStep(action.state, action.followers, 'lock', OPERATOR)).toEqual([follow('lock', 2)]);
      expect(action.state.steps.lock).toMatchObject({ attempt: 2, keyAttempt: 1, retiredRefs: [] });
      expect(nonceKeyOf(action.state, 'lock', 'operation')).toBe('xfer-7f3a/lock/1/operation');
      // The operator learns what the retry does with the live transaction; the phase change keeps their reason.
      expect(action.state.steps.lock.transitions.at(-1)).toMatchObject({
        from: 'expired',
        to: 'submitted',
        operator: 'alice',
        reason:
          'ops (its transaction 0xolock may still be mined: this attempt carries it on at its nonce, replaced with higher fees if it stays pending)',
      });
      expect(action.state.phaseTransitions.at(-1)).toMatchObject({ to: 'running', reason: 'ops' });
    });

    it('says so when the transaction it carries on was still being submitted', () => {
      const action = actionOf(bridge({ onDeadline: 'hold' }));
      run(action);
      applyStepEvent(action.state, 'lock', { type: 'submitting' }, { at: AT, source: 'settle' });
      expireStep(action.state, 'lock', 1, 60_000, LATER);
      run(action);
      retryStep(action.state, action.followers, 'lock', OPERATOR);
      expect(action.state.steps.lock.transitions.at(-1)!.reason).toBe(
        'ops (its transaction being submitted may still be mined: this attempt carries it on at its nonce, replaced with higher fees if it stays pending)',
      );
    });

    it('starts afresh after a failed transaction, and in runs recorded before the rules', () => {
      const failed = actionOf(bridge({ onDeadline: 'hold' }));
      run(failed);
      submitted(failed, 'lock');
      report(failed, 'lock', { kind: 'failed', ref: '0xolock', block: block(100), reason: 'reverted' });
      run(failed);
      retryStep(failed.state, failed.followers, 'lock', OPERATOR);
      expect(failed.state.steps.lock).toMatchObject({ attempt: 2, retiredRefs: ['0xolock'] });
      expect(failed.state.steps.lock.transitions.at(-1)).toMatchObject({ to: 'waiting', reason: 'ops' });
      expect(failed.state.steps.lock.keyAttempt).toBeUndefined();

      const legacy = actionOf(bridge({ onDeadline: 'hold' }), false);
      run(legacy);
      submitted(legacy, 'lock');
      expireStep(legacy.state, 'lock', 1, 60_000, LATER);
      run(legacy);
      retryStep(legacy.state, legacy.followers, 'lock', OPERATOR);
      expect(legacy.state.steps.lock).toMatchObject({ attempt: 2, retiredRefs: ['0xolock'] });
      expect(legacy.state.steps.lock.keyAttempt).toBeUndefined();
    });
  });

  describe('retrying a failed compensation', () => {
    it('holds on a failed compensation, then runs it again as a new attempt and follows it', () => {
      const action = actionOf(bridge());
      run(action);
      submitted(action, 'lock');
      final(action, 'lock');
      expect(compensate(action.state, action.followers, OPERATOR)).toEqual([undo('lock')]);
      submitted(action, 'lock', 'compensation');
      report(action, 'lock', { kind: 'failed', ref: '0xclock', block: block(300), reason: 'paused' }, 'compensation');
      expect(run(action)).toEqual([]);
      expect(action.state.phase).toBe('needs_action');
      expect(action.state.steps.lock.state).toBe('compensation_failed');

      expect(retryCompensation(action.state, action.followers, 'lock', OPERATOR)).toEqual([undo('lock')]);
      expect(action.state.phase).toBe('compensating');
      expect(action.state.steps.lock).toMatchObject({ state: 'compensating', compensationAttempt: 2 });
      expect(nonceKeyOf(action.state, 'lock', 'compensation')).toBe('xfer-7f3a/lock/1/compensation-2');
      expect(run(action)).toEqual([]);
      // A late report about the failed attempt's transaction changes nothing; the new one's settles it.
      final(action, 'lock', 301, 'compensation');
      expect(run(action)).toEqual([]);
      expect(action.state.phase).toBe('compensating');
      report(action, 'lock', { kind: 'finalized', ref: '0xclock-2', block: block(302) }, 'compensation');
      run(action);
      expect(action.state.phase).toBe('compensated');
    });
  });
});
