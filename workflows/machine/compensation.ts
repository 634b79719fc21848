/**
 * Which effects exist and in what order they are undone: compensation runs for exactly the effects that exist, once
 * each, in reverse dependency order. Pure: no Temporal imports.
 */
import { ancestors } from '../../contract/action-spec';
import { policyOf, stepSpec, type ActionState } from './action';
import { effectExists, trackState, trackView } from './step';

/** Whether any step may have an effect on its network (submitted, included or final). */
export function anyEffectMayExist(state: ActionState): boolean {
  return Object.values(state.steps).some(
    (step) =>
      undoable(state, step.id) &&
      (step.operation.submitting || step.operation.refs.length > 0 || effectExists(step, policyOf(state, step.id))),
  );
}

/** An awaited step without a compensation reports something external: there is nothing of ours to undo. */
function undoable(state: ActionState, stepId: string): boolean {
  const spec = stepSpec(state, stepId);
  return spec.operation.kind !== 'await' || spec.compensation !== undefined;
}

/** An operation submitted and not yet seen on chain (nor dropped): whether it takes effect is still open. */
export function inFlight(state: ActionState, stepId: string): boolean {
  const step = state.steps[stepId];
  if (step.compensation || !undoable(state, stepId)) return false;
  const track = trackState(step.operation, policyOf(state, stepId));
  if (track === 'submitting') return true;
  // With the exactly-once rules a dropped transaction is in flight too: its bytes can still be mined until its nonce
  // is settled (mined, or cancelled by a no-op).
  if (state.cancelsPending) return track === 'submitted';
  const ref = trackView(step.operation, policyOf(state, stepId)).ref;
  return track === 'submitted' && !(ref && step.operation.dropped.includes(ref));
}

/**
 * Steps that depend on `stepId`, directly or through other steps: an awaited step in between has nothing to undo, but
 * the steps after it still must be undone first.
 */
function dependents(state: ActionState, stepId: string): string[] {
  return state.spec.steps.filter((s) => ancestors(s.id, state.spec.steps).has(stepId)).map((s) => s.id);
}

export type CompensationPlan = { kind: 'start'; stepId: string } | { kind: 'blocked'; stepId: string; reason: string };

/**
 * What compensation can do now, in reverse dependency order: a step's effect is undone only after every step that
 * depends on it has no effect left. A step with an effect and no compensation blocks its dependencies for good.
 */
export function compensationPlan(state: ActionState): CompensationPlan[] {
  const plan: CompensationPlan[] = [];
  for (const spec of [...state.spec.steps].reverse()) {
    const step = state.steps[spec.id];
    if (step.compensation || !undoable(state, spec.id) || !effectExists(step, policyOf(state, spec.id))) continue;
    const pending = dependents(state, spec.id).filter((id) => effectOutstanding(state, id) || inFlight(state, id));
    if (pending.length > 0) continue;
    if (!spec.compensation) {
      plan.push({
        kind: 'blocked',
        stepId: spec.id,
        reason: `step "${spec.id}" has an effect on ${spec.network} and no compensation`,
      });
    } else plan.push({ kind: 'start', stepId: spec.id });
  }
  return plan;
}

/** An effect that exists and is not yet compensated. */
export function effectOutstanding(state: ActionState, stepId: string): boolean {
  const step = state.steps[stepId];
  const policy = policyOf(state, stepId);
  if (step.compensation) return trackState(step.compensation, policy) !== 'final';
  return undoable(state, stepId) && effectExists(step, policy);
}

export function compensationFailed(state: ActionState): string | undefined {
  for (const step of Object.values(state.steps)) {
    if (step.compensation && trackState(step.compensation, policyOf(state, step.id)) === 'failed') {
      return `compensation of "${step.id}" failed: ${trackView(step.compensation, policyOf(state, step.id)).error ?? 'unknown reason'}`;
    }
  }
  return undefined;
}
