/**
 * The rules that keep one effective transaction per step attempt for the whole life of an action: which nonce record
 * a submission uses, which transactions are still live, and which claims about a chain a signal may make. They apply
 * to actions whose runs were started by workflow code with the `exactly-once` patch (`state.exactlyOnce`); runs
 * recorded before it replay with the rules they had. Pure: no Temporal imports.
 */
import type { Evidence, EvidenceTarget } from '../../contract/evidence';
import { policyOf, stepSpec, type ActionState } from './action';
import { inFlight } from './compensation';
import { operationClosed, trackState } from './step';

/** Whether the step's operation may still take effect: something was (or is being) sent and it has not failed. */
export function liveOperation(state: ActionState, stepId: string): boolean {
  const step = state.steps[stepId];
  if (operationClosed(step) || stepSpec(state, stepId).operation.kind === 'await') return false;
  return ['submitting', 'submitted', 'included'].includes(trackState(step.operation, policyOf(state, stepId)));
}

/**
 * Whether a step's operation must still be followed in the current phase: until it is final while the action runs;
 * while it may still take effect when held (an expired step's transaction can still be mined); while it is in flight
 * once compensation is decided (to learn whether there is an effect to undo).
 */
export function operationToFollow(state: ActionState, stepId: string): boolean {
  if (state.phase === 'cancelled') return false;
  if (state.compensating) return inFlight(state, stepId);
  const current = state.steps[stepId].state;
  if (current === 'final' || current === 'failed') return false;
  return current !== 'expired' || liveOperation(state, stepId);
}

/**
 * The key of a submission's record with the signer's nonce owner: unique to the action's first run, and the same for
 * a retry that carries on an earlier attempt's live transaction.
 */
export function nonceKeyOf(state: ActionState, stepId: string, target: EvidenceTarget): string {
  const step = state.steps[stepId];
  const prefix = state.nonceKeyPrefix ?? state.spec.actionId;
  const run = target === 'compensation' && step.compensationAttempt ? `-${step.compensationAttempt}` : '';
  return `${prefix}/${stepId}/${step.keyAttempt ?? step.attempt}/${target}${run}`;
}

const CHAIN_CLAIMS = ['included', 'confirmed', 'finalized', 'failed'];

/**
 * Why a signal's claim about an EVM step is refused, if it is. Nothing of ours is on chain before we submitted it, so a
 * claim may name only a transaction Settle submitted for that step; and a claim that the transaction is in a block
 * must name the block, so that a reorg can take it back. Awaited steps are reported by external systems: any claim.
 */
export function refusedClaim(state: ActionState, stepId: string, evidence: Evidence): string | undefined {
  const spec = stepSpec(state, stepId);
  const operation = evidence.for === 'compensation' ? spec.compensation : spec.operation;
  if (!operation || operation.kind === 'await') return undefined;
  if (evidence.kind === 'submitted') return 'only Settle reports its own submissions of an EVM step';
  const step = state.steps[stepId];
  const track = evidence.for === 'compensation' ? step.compensation : step.operation;
  if (evidence.ref && !track?.refs.includes(evidence.ref) && !step.retiredRefs.includes(evidence.ref)) {
    return `${evidence.ref} is not a transaction Settle submitted for this step`;
  }
  if (CHAIN_CLAIMS.includes(evidence.kind) && (!evidence.block || !evidence.ref)) {
    return `"${evidence.kind}" evidence for an EVM step must name its transaction (ref) and its block`;
  }
  return undefined;
}
