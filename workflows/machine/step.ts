/**
 * The step state machine: a pure reducer, no Temporal imports.
 *
 * A step's operation (and later its compensation) is a *track* of facts: refs submitted, blocks it was seen in,
 * confirmations per block, blocks orphaned, failures. The track's state is a function of that set of facts, not of
 * the order they arrived in, so duplicated, reordered and stale evidence leaves the same state as the same facts
 * delivered once, in order. Only the transition log depends on arrival order: it is the audit trail.
 */
import type { Evidence, EvidenceTarget } from '../../contract/evidence';
import type { FinalityPolicy } from '../../contract/action-spec';
import type { BlockRef } from '../../contract/primitives';
import type { StepStateName, StepStatus, Transition } from '../../contract/status';
import { addFacts, cloneTrack, emptyTrack, trackState, trackView, violatedSighting, type TrackFacts } from './track';

export * from './track';

export interface StepRecord {
  id: string;
  network: string;
  kind: 'evm.call' | 'evm.transfer' | 'await';
  attempt: number;
  hasCompensation: boolean;
  startedAt?: string;
  expired: boolean;
  skipped: boolean;
  operation: TrackFacts;
  compensation?: TrackFacts;
  /** Refs of earlier attempts: reports about them are recognised and ignored. */
  retiredRefs: string[];
  /**
   * The earlier attempt whose transaction this attempt carries on: a retry while that transaction may still be live
   * keeps its nonce record (and its track), so it is replaced at the same nonce and never paid twice.
   */
  keyAttempt?: number;
  /** Which run of the compensation this is: an operator may run a failed compensation again. Absent: the first. */
  compensationAttempt?: number;
  /** Refs of compensations that failed and were run again: reports about them are recognised and ignored. */
  retiredCompensationRefs?: string[];
  state: StepStateName;
  transitions: Transition[];
}

export interface TransitionMeta {
  at: string;
  source: string;
  operator?: string;
  reason?: string;
}

export type StepEvent =
  | { type: 'evidence'; evidence: Evidence }
  | { type: 'start' }
  | { type: 'submitting'; for?: EvidenceTarget }
  | { type: 'expire' }
  | { type: 'skip' }
  /** `keepLive`: the operation's transaction may still take effect: the new attempt carries it on. */
  | { type: 'retry'; keepLive?: boolean; for?: EvidenceTarget }
  /** The submission under way was given up and its nonce owner confirms nothing was signed. */
  | { type: 'abandoned' }
  /** A same-nonce no-op was sent to cancel the operation's pending transaction (compensation no longer wants it). */
  | { type: 'noop'; ref: string; settlesWhenFinal?: true }
  | { type: 'compensate' };

export function newStepRecord(spec: {
  id: string;
  network: string;
  kind: StepRecord['kind'];
  hasCompensation: boolean;
}): StepRecord {
  return {
    ...spec,
    attempt: 1,
    expired: false,
    skipped: false,
    operation: emptyTrack(),
    retiredRefs: [],
    state: 'waiting',
    transitions: [],
  };
}

/** Applies one event to a step. Pure: returns a new record, the input is left untouched. */
export function reduceStep(
  step: StepRecord,
  event: StepEvent,
  policy: FinalityPolicy,
  meta: TransitionMeta,
): StepRecord {
  const next = structuredCloneStep(step);
  switch (event.type) {
    case 'start':
      next.startedAt ??= meta.at;
      break;
    case 'submitting':
      if (event.for === 'compensation') {
        if (next.compensation) next.compensation.submitting = true;
      } else if (!operationClosed(next)) next.operation.submitting = true;
      break;
    case 'expire':
      if (!operationClosed(next) && trackState(next.operation, policy) !== 'final') next.expired = true;
      break;
    case 'skip':
      // Only a step with nothing submitted (and nothing reported) can be skipped.
      if (next.state === 'waiting') next.skipped = true;
      break;
    case 'retry':
      if (event.for === 'compensation') {
        retryCompensation(next);
        break;
      }
      if (event.keepLive) next.keyAttempt ??= next.attempt;
      else {
        next.retiredRefs = [...next.retiredRefs, ...next.operation.refs];
        next.operation = emptyTrack();
        delete next.keyAttempt;
      }
      next.attempt += 1;
      next.expired = false;
      next.startedAt = meta.at;
      break;
    case 'noop':
      if (!next.operation.refs.includes(event.ref)) next.operation.refs.push(event.ref);
      if (!next.operation.noops?.includes(event.ref))
        next.operation.noops = [...(next.operation.noops ?? []), event.ref];
      if (event.settlesWhenFinal) next.operation.noopsSettleWhenFinal = true;
      break;
    case 'abandoned':
      if (next.operation.refs.length === 0) next.operation.submitting = false;
      break;
    case 'compensate':
      next.compensation ??= emptyTrack();
      break;
    case 'evidence':
      applyEvidence(next, event.evidence);
      break;
  }
  return recordTransitions(step, next, policy, meta, event);
}

/** A failed compensation runs again as a new attempt; what the failed one sent stays known, as retired refs. */
function retryCompensation(step: StepRecord): void {
  if (!step.compensation) return;
  step.retiredCompensationRefs = [...(step.retiredCompensationRefs ?? []), ...step.compensation.refs];
  step.compensation = emptyTrack();
  step.compensationAttempt = (step.compensationAttempt ?? 1) + 1;
}

function applyEvidence(step: StepRecord, evidence: Evidence): void {
  if (evidence.for === 'compensation') {
    const retired = evidence.ref && step.retiredCompensationRefs?.includes(evidence.ref);
    if (step.compensation && !(retired && !step.compensation.refs.includes(evidence.ref!)))
      addFacts(step.compensation, evidence);
    return;
  }
  if (evidence.ref && step.retiredRefs.includes(evidence.ref) && !step.operation.refs.includes(evidence.ref)) return;
  // Nothing of ours can be on chain before we submitted it; an awaited step can be reported at any time.
  if (step.kind !== 'await' && !step.operation.submitting && step.operation.refs.length === 0 && !evidence.ref) return;
  if (step.skipped) return;
  addFacts(step.operation, evidence);
}

/** The step left its operation: skipped, or being compensated. Nothing more is submitted or expired for it. */
export function operationClosed(step: StepRecord): boolean {
  return step.skipped || step.compensation !== undefined;
}

export function deriveStepState(step: StepRecord, policy: FinalityPolicy): StepStateName {
  if (step.compensation) {
    const compensation = trackState(step.compensation, policy);
    if (compensation === 'final') return 'compensated';
    return compensation === 'failed' ? 'compensation_failed' : 'compensating';
  }
  if (step.skipped) return 'skipped';
  const state = trackState(step.operation, policy);
  if (state === 'final') return 'final';
  if (step.expired) return 'expired';
  return state === 'pending' ? 'waiting' : state;
}

export function toStepStatus(step: StepRecord, policy: FinalityPolicy): StepStatus {
  const view = trackView(step.operation, policy);
  return {
    id: step.id,
    network: step.network,
    kind: step.kind,
    state: step.state,
    attempt: step.attempt,
    finality: policy,
    ...(view.ref ? { ref: view.ref } : {}),
    refs: view.refs,
    retiredRefs: [...step.retiredRefs],
    ...(view.block ? { block: view.block } : {}),
    ...(view.confirmations !== undefined ? { confirmations: view.confirmations } : {}),
    orphaned: view.orphaned,
    ...(view.output ? { output: view.output } : {}),
    ...(view.error ? { error: view.error } : {}),
    ...(step.startedAt ? { startedAt: step.startedAt } : {}),
    ...(step.compensation ? { compensation: trackView(step.compensation, policy) } : {}),
    transitions: step.transitions,
  };
}

function recordTransitions(
  before: StepRecord,
  next: StepRecord,
  policy: FinalityPolicy,
  meta: TransitionMeta,
  event: StepEvent,
): StepRecord {
  const audit = {
    at: meta.at,
    source: meta.source,
    ...(meta.operator ? { operator: meta.operator } : {}),
    ...(meta.reason ? { reason: meta.reason } : {}),
  };
  const state = deriveStepState(next, policy);
  const view = trackView(next.operation, policy);
  if (state !== before.state || event.type === 'retry') {
    next.transitions.push({
      from: before.state,
      to: state,
      ...audit,
      ...(view.ref ? { ref: view.ref } : {}),
      ...(view.block ? { block: view.block } : {}),
      ...(view.confirmations !== undefined ? { confirmations: view.confirmations } : {}),
    });
  }
  if (next.compensation) {
    const was = before.compensation ? trackState(before.compensation, policy) : undefined;
    const now = trackState(next.compensation, policy);
    if (was !== now && was !== undefined) {
      const compensationView = trackView(next.compensation, policy);
      next.transitions.push({
        from: was,
        to: now,
        for: 'compensation',
        ...audit,
        ...(compensationView.ref ? { ref: compensationView.ref } : {}),
        ...(compensationView.block ? { block: compensationView.block } : {}),
      });
    }
  }
  next.state = state;
  return next;
}

function structuredCloneStep(step: StepRecord): StepRecord {
  return {
    ...step,
    operation: cloneTrack(step.operation),
    ...(step.compensation ? { compensation: cloneTrack(step.compensation) } : {}),
    retiredRefs: [...step.retiredRefs],
    transitions: [...step.transitions],
  };
}

/** A block the step was final in and that has since been orphaned, if any (the alarm). */
export function finalityViolation(
  step: StepRecord,
  policy: FinalityPolicy,
): { for: EvidenceTarget; block?: BlockRef } | undefined {
  for (const target of ['operation', 'compensation'] as const) {
    const track = target === 'operation' ? step.operation : step.compensation;
    const violated = track && violatedSighting(track, policy);
    if (violated)
      return { for: target, ...(violated.hash ? { block: { number: violated.number, hash: violated.hash } } : {}) };
  }
  return undefined;
}

/** Whether the step's operation has an effect on its network that compensation would have to undo. */
export function effectExists(step: StepRecord, policy: FinalityPolicy): boolean {
  const state = trackState(step.operation, policy);
  return state === 'included' || state === 'final';
}
