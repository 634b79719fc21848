/**
 * The action's phase machine: from the steps' states it decides which step followers to start, which compensations
 * to start, and which phase the action enters. Pure: it mutates the state it is given (as `applyStepEvent` and
 * `setPhase` do) and returns commands; the workflow only executes them, in the order returned, so what an action
 * starts depends on its state and on which followers run, nothing else.
 *
 * @example
 * const commands = decide(state, followers, now);
 * for (const c of commands) if (c.kind === 'followStep') void followStep(c.stepId, c.attempt);
 */
import { isTerminalPhase } from '../../contract/status';
import { allFinal, applyStepEvent, dependenciesMet, policyOf, setPhase, type ActionState } from './action';
import { anyEffectMayExist, compensationFailed, compensationPlan, effectOutstanding, inFlight } from './compensation';
import { liveOperation, operationToFollow } from './exactly-once';
import { trackState, trackView, type TransitionMeta } from './step';

/** The source of the transitions the action makes by itself. */
export const SOURCE = 'settle';

/** What the workflow does for a decision: start one follower. */
export type PhaseCommand =
  /** Submit the step's operation (unless awaited, or already submitted) and follow it to finality. */
  | { kind: 'followStep'; stepId: string; attempt: number }
  /** Submit the step's compensation (unless already submitted) and follow it to finality. */
  | { kind: 'followCompensation'; stepId: string };

/**
 * Followers started and not finished. `decide` records each follower it starts; the workflow forgets a step follower
 * when it ends (a step whose final block is orphaned is then followed again). Not carried across continue-as-new: the
 * new run starts followers again from the state. With the exactly-once rules that is every piece of work: steps
 * while running, and in every phase each operation that may still take effect and each unfinished compensation
 * (`followInFlight`). Runs recorded before those rules followed only running steps again.
 */
export interface Followers {
  /** Step followers, by {@link followerKey}: one per step attempt. */
  steps: Set<string>;
  /** Compensation followers, by step id. */
  compensations: Set<string>;
}

export function newFollowers(): Followers {
  return { steps: new Set(), compensations: new Set() };
}

export function followerKey(stepId: string, attempt: number): string {
  return `${stepId}#${attempt}`;
}

interface Decision {
  state: ActionState;
  followers: Followers;
  now: string;
  commands: PhaseCommand[];
}

/**
 * Starts what can start, and moves the phase on from what the steps say: `completed` once every step is final; on a
 * failed or expired step, compensation (or `needs_action` with `onDeadline: "hold"`); a held action goes on once what
 * held it is settled; compensation advances in reverse dependency order and ends `compensated`.
 */
export function decide(state: ActionState, followers: Followers, now: string): PhaseCommand[] {
  return decideWith(state, followers, now, advance);
}

/** The action's deadline passed: steps under way expire, then compensation or hold. Ignored once settled. */
export function expireDeadline(state: ActionState, followers: Followers, now: string): PhaseCommand[] {
  return decideWith(state, followers, now, (d) => {
    if (state.exactlyOnce) {
      // Applied once: a timer armed again after continue-as-new never expires a step an operator retried since.
      if (state.deadlinePassedAt) return;
      state.deadlinePassedAt = now;
    }
    if (state.phase !== 'running' || allFinal(state)) return;
    const meta = { at: now, source: 'timer', reason: 'the action deadline passed' };
    for (const spec of state.spec.steps) {
      const step = state.steps[spec.id];
      if (step.startedAt && !['final', 'failed', 'expired', 'skipped'].includes(step.state))
        applyStepEvent(state, spec.id, { type: 'expire' }, meta);
    }
    onTrouble(d, 'the action deadline passed', 'timer');
  });
}

/** A step attempt's timeout passed: it expires, unless it is final, retried, or the action has moved past it. */
export function expireStep(state: ActionState, stepId: string, attempt: number, timeoutMs: number, now: string): void {
  const step = state.steps[stepId];
  if (step.attempt !== attempt || step.state === 'final' || isTerminalPhase(state.phase) || state.compensating) return;
  applyStepEvent(
    state,
    stepId,
    { type: 'expire' },
    { at: now, source: 'timer', reason: `timeout of ${timeoutMs} ms passed` },
  );
}

/** The operator's `compensate`: compensate now whatever effects exist. */
export function compensate(state: ActionState, followers: Followers, meta: TransitionMeta): PhaseCommand[] {
  return decideWith(state, followers, meta.at, (d) => beginCompensation(d, meta));
}

/** The operator's `cancel`: before any effect, stop (nothing is submitted); after one, compensate. */
export function cancel(state: ActionState, followers: Followers, meta: TransitionMeta): PhaseCommand[] {
  if (anyEffectMayExist(state)) return compensate(state, followers, meta);
  state.compensating = true;
  for (const spec of state.spec.steps) {
    if (state.steps[spec.id].state === 'waiting') applyStepEvent(state, spec.id, { type: 'skip' }, meta);
  }
  setPhase(state, 'cancelled', meta);
  return [];
}

/** The operator's `retryStep`: a new attempt of a failed or expired step, and the action runs again. */
export function retryStep(
  state: ActionState,
  followers: Followers,
  stepId: string,
  meta: TransitionMeta,
): PhaseCommand[] {
  // A transaction that may still be mined is carried on, at its nonce: a retry never signs a second one beside it.
  const keepLive = !!state.exactlyOnce && liveOperation(state, stepId);
  // The operator learns, in the transition the update returns, what the retry does with the live transaction.
  const ref = keepLive ? trackView(state.steps[stepId].operation, policyOf(state, stepId)).ref : undefined;
  const carried = keepLive
    ? {
        ...meta,
        reason: `${meta.reason} (its transaction ${ref ?? 'being submitted'} may still be mined: this attempt carries it on at its nonce, replaced with higher fees if it stays pending)`,
      }
    : meta;
  applyStepEvent(state, stepId, keepLive ? { type: 'retry', keepLive } : { type: 'retry' }, carried);
  setPhase(state, 'running', meta);
  return decide(state, followers, meta.at);
}

/** The operator's `retryStep` of a step whose compensation failed: the compensation runs again, as a new attempt. */
export function retryCompensation(
  state: ActionState,
  followers: Followers,
  stepId: string,
  meta: TransitionMeta,
): PhaseCommand[] {
  applyStepEvent(state, stepId, { type: 'retry', for: 'compensation' }, meta);
  followers.compensations.delete(stepId);
  setPhase(state, 'compensating', meta);
  return decide(state, followers, meta.at);
}

/** Milliseconds until `duration` after `since` (at least 1, so a timer that is already due still fires). */
export function timeLeft(since: string, duration: number, nowMs: number): number {
  return Math.max(Date.parse(since) + duration - nowMs, 1);
}

/** When the action's deadline timer must fire, if it has a deadline and is not settled. */
export function deadlineTimeLeft(state: ActionState, nowMs: number): number | undefined {
  const deadline = state.spec.deadline;
  if (deadline === undefined || isTerminalPhase(state.phase)) return undefined;
  if (state.exactlyOnce && state.deadlinePassedAt) return undefined;
  return timeLeft(state.startedAt, deadline, nowMs);
}

function decideWith(
  state: ActionState,
  followers: Followers,
  now: string,
  body: (d: Decision) => void,
): PhaseCommand[] {
  const decision: Decision = { state, followers, now, commands: [] };
  body(decision);
  return decision.commands;
}

function advance(d: Decision): void {
  const { state } = d;
  if (state.phase === 'running') {
    const failed = state.spec.steps.find(
      (s) => state.steps[s.id].state === 'failed' || state.steps[s.id].state === 'expired',
    );
    if (allFinal(state)) {
      setPhase(state, 'completed', { at: d.now, source: SOURCE });
    } else if (failed) {
      const step = state.steps[failed.id];
      const reason =
        step.state === 'expired'
          ? `step "${failed.id}" expired`
          : `step "${failed.id}" failed: ${trackView(step.operation, policyOf(state, failed.id)).error ?? ''}`;
      onTrouble(d, reason);
    } else {
      startSteps(d);
    }
  }
  if (state.phase === 'needs_action') resumeIfSettled(d);
  if (state.phase === 'compensating') advanceCompensation(d);
  if (state.exactlyOnce && (state.phase === 'needs_action' || state.phase === 'compensating')) followInFlight(d);
}

/**
 * Whatever may still take effect is followed in every phase, and again in a run that continued as new: an operation
 * sent (or being sent) and not settled, and every compensation started and not finished.
 */
function followInFlight(d: Decision): void {
  const { state } = d;
  for (const spec of state.spec.steps) {
    const step = state.steps[spec.id];
    const key = followerKey(spec.id, step.attempt);
    if (!d.followers.steps.has(key) && liveOperation(state, spec.id) && operationToFollow(state, spec.id)) {
      d.followers.steps.add(key);
      d.commands.push({ kind: 'followStep', stepId: spec.id, attempt: step.attempt });
    }
    const compensation = step.compensation;
    if (!compensation || d.followers.compensations.has(spec.id)) continue;
    if (['final', 'failed'].includes(trackState(compensation, policyOf(state, spec.id)))) continue;
    d.followers.compensations.add(spec.id);
    d.commands.push({ kind: 'followCompensation', stepId: spec.id });
  }
}

/** Every step whose dependencies are met starts (or is followed again, after its final block was orphaned). */
function startSteps(d: Decision): void {
  const { state } = d;
  for (const spec of state.spec.steps) {
    const step = state.steps[spec.id];
    const key = followerKey(spec.id, step.attempt);
    // A transaction already sent is followed whatever became of its dependencies since (a reorg of the block the fast
    // path started on): it may still take effect.
    const ready = dependenciesMet(state, spec.id) || (!!state.exactlyOnce && liveOperation(state, spec.id));
    if (!d.followers.steps.has(key) && !step.skipped && ready && step.state !== 'final') {
      d.followers.steps.add(key);
      applyStepEvent(state, spec.id, { type: 'start' }, { at: d.now, source: SOURCE });
      d.commands.push({ kind: 'followStep', stepId: spec.id, attempt: step.attempt });
    }
  }
}

/** A held action goes on by itself once late evidence (or an operator) settles what held it. */
function resumeIfSettled(d: Decision): void {
  const { state } = d;
  const meta = { at: d.now, source: SOURCE, reason: 'what held the action is settled' };
  if (state.compensating) {
    if (!compensationFailed(state) && !compensationPlan(state).some((p) => p.kind === 'blocked'))
      setPhase(state, 'compensating', meta);
  } else if (!state.spec.steps.some((s) => ['failed', 'expired'].includes(state.steps[s.id].state))) {
    setPhase(state, 'running', meta);
    advance(d);
  }
}

/** A failed or expired step, or a passed deadline: compensate, or hold for an operator. */
function onTrouble(d: Decision, reason: string, source = SOURCE): void {
  if (d.state.spec.onDeadline === 'hold') {
    setPhase(d.state, 'needs_action', { at: d.now, source, reason });
  } else {
    beginCompensation(d, { at: d.now, source, reason });
  }
}

/** Steps that never started are skipped; with no effect that may exist the action has failed, else it compensates. */
function beginCompensation(d: Decision, meta: TransitionMeta): void {
  const { state } = d;
  state.compensating = true;
  for (const spec of state.spec.steps) {
    const step = state.steps[spec.id];
    if (step.state === 'waiting' && !step.startedAt) applyStepEvent(state, spec.id, { type: 'skip' }, meta);
  }
  if (!anyEffectMayExist(state)) {
    setPhase(state, 'failed', meta);
    return;
  }
  setPhase(state, 'compensating', meta);
  advanceCompensation(d);
}

function advanceCompensation(d: Decision): void {
  const { state } = d;
  const failure = compensationFailed(state);
  if (failure) {
    setPhase(state, 'needs_action', { at: d.now, source: SOURCE, reason: failure });
    return;
  }
  for (const item of compensationPlan(state)) {
    if (item.kind === 'blocked') {
      setPhase(state, 'needs_action', { at: d.now, source: SOURCE, reason: item.reason });
      return;
    }
    applyStepEvent(state, item.stepId, { type: 'compensate' }, { at: d.now, source: SOURCE, reason: 'compensating' });
    if (!d.followers.compensations.has(item.stepId)) {
      d.followers.compensations.add(item.stepId);
      d.commands.push({ kind: 'followCompensation', stepId: item.stepId });
    }
  }
  const outstanding = state.spec.steps.some((s) => effectOutstanding(state, s.id) || inFlight(state, s.id));
  if (!outstanding) setPhase(state, 'compensated', { at: d.now, source: SOURCE });
}
