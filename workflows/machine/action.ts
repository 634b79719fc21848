/**
 * The action's state around the step machine: dependencies, phase, notifications. Pure: no Temporal imports, so it is
 * tested on its own and replays identically. Compensation order is in `compensation.ts`, the status in `views.ts`, the
 * phase rules in `phase.ts`.
 */
import type { NetworkInfo } from '../../contract/activity-io';
import type { ActionSpec, FinalityPolicy, StepSpec } from '../../contract/action-spec';
import type { ActionStatus, Claim, FinalityViolation, Phase, Retrying, Transition } from '../../contract/status';
import type { ClaimTrust, PendingClaim } from './claims';
import {
  finalityViolation,
  newStepRecord,
  reduceStep,
  trackState,
  trackView,
  type StepEvent,
  type StepRecord,
  type TransitionMeta,
} from './step';
import type { TemplateContext } from '../../contract/templates';
import {
  newTransitions,
  START_CURSOR,
  type TransitionCursor,
  type TransitionEvent,
} from '../../contract/transition-events';

export interface ActionState {
  spec: ActionSpec;
  networks: Record<string, NetworkInfo>;
  steps: Record<string, StepRecord>;
  phase: Phase;
  phaseTransitions: Transition[];
  alarms: FinalityViolation[];
  reason?: string;
  /** Set once compensation is decided; never cleared. */
  compensating: boolean;
  startedAt: string;
  updatedAt: string;
  /** Counts every applied change, so waiters can tell that something happened. */
  version: number;
  /** Submissions retrying after RPC or network errors, by `<step>:<operation|compensation>`. */
  retrying: Record<string, Retrying>;
  /** Push notifications: transitions not yet delivered, in order, and how far the transition lists were read. */
  notifications?: { outbox: TransitionEvent[]; cursor: TransitionCursor; lastSequence: number };
  /**
   * The exactly-once rules (`machine/exactly-once.ts`) apply: set by runs of workflow code with the `exactly-once`
   * patch. Absent in runs recorded before it, which replay with the rules they had.
   */
  exactlyOnce?: boolean;
  /**
   * Once compensation is decided, a pending operation is cancelled with a same-nonce no-op, and a dropped one stays in
   * flight until its nonce is settled (patch `cancel-pending`, after `exactly-once`).
   */
  cancelsPending?: boolean;
  /** `<actionId>/<first run id>`: nonce records are unique to this action's run chain. Absent: the legacy keys. */
  nonceKeyPrefix?: string;
  /** When the action's deadline passed: it is applied once, whatever continue-as-new does to its timer. */
  deadlinePassedAt?: string;
  /** The deployment routes each network's activities to its own task queue (read once, at the start). */
  routing?: 'by-network';
  /** Whose claims the deployment trusts, and whether unproven chain claims are checked first (read once). */
  trust?: ClaimTrust;
  /** Claims not applied: rejected, or disputed by the chain (`status.claims`). */
  claims?: Claim[];
  /** Claims about EVM steps waiting for Settle's own look at the chain. */
  unverified?: PendingClaim[];
  /**
   * The deliveries of evidence received, by signature or id (`machine/claims.ts` `firstDelivery`), most recent last:
   * a replay is ignored. Present from the `evidence-once` patch on (after `exactly-once`).
   */
  seenEvidence?: string[];
  /**
   * A step on a network Settle cannot read (an awaited step) waits for evidence with no timer: before the
   * `quiet-waits` patch it woke every poll interval for nothing — 144 workflow tasks a day per awaited step.
   */
  quietWaits?: boolean;
  /**
   * Fewer billable actions (patch `lean`, which implies the four before it): submissions report the inclusion they saw,
   * polls wait one interval past the moment a policy can be met, first submissions record without a lookup, and search
   * attributes set at start are not upserted again.
   */
  lean?: boolean;
}

/** Networks with no configuration require `finalized` evidence. */
const UNCONFIGURED_POLICY: FinalityPolicy = { tag: 'finalized' };

export function policyOf(state: ActionState, stepId: string): FinalityPolicy {
  const spec = stepSpec(state, stepId);
  return spec.finality ?? state.networks[spec.network]?.finality ?? UNCONFIGURED_POLICY;
}

export function stepSpec(state: ActionState, stepId: string): StepSpec {
  const spec = state.spec.steps.find((s) => s.id === stepId);
  if (!spec) throw new Error(`unknown step ${stepId}`);
  return spec;
}

export function initialState(spec: ActionSpec, networks: Record<string, NetworkInfo>, at: string): ActionState {
  return {
    spec,
    networks,
    steps: Object.fromEntries(
      spec.steps.map((s) => [
        s.id,
        newStepRecord({ id: s.id, network: s.network, kind: s.operation.kind, hasCompensation: !!s.compensation }),
      ]),
    ),
    phase: 'running',
    phaseTransitions: [],
    alarms: [],
    compensating: false,
    retrying: {},
    startedAt: at,
    updatedAt: at,
    version: 0,
  };
}

/** Runs one event through the step machine and records what it changed at the action level (alarms). */
export function applyStepEvent(state: ActionState, stepId: string, event: StepEvent, meta: TransitionMeta): void {
  const before = state.steps[stepId];
  const policy = policyOf(state, stepId);
  const after = reduceStep(before, event, policy, meta);
  state.steps[stepId] = after;
  const violation = finalityViolation(after, policy);
  if (violation && !finalityViolation(before, policy)) {
    state.alarms.push({
      step: stepId,
      for: violation.for,
      ...(violation.block ? { finalBlock: violation.block } : {}),
      evidence: `block ${violation.block?.hash ?? '?'} was orphaned after the step was final`,
      source: meta.source,
      at: meta.at,
    });
  }
  state.updatedAt = meta.at;
  state.version++;
}

export function setPhase(state: ActionState, phase: Phase, meta: TransitionMeta): void {
  if (state.phase === phase) return;
  state.phaseTransitions.push({ from: state.phase, to: phase, ...auditOf(meta) });
  state.phase = phase;
  if (meta.reason) state.reason = meta.reason;
  state.updatedAt = meta.at;
  state.version++;
}

function auditOf(meta: TransitionMeta) {
  return {
    at: meta.at,
    source: meta.source,
    ...(meta.operator ? { operator: meta.operator } : {}),
    ...(meta.reason ? { reason: meta.reason } : {}),
  };
}

/** Whether each `after` dependency has reached its stage. A dependency that reached `final` also passed `included`. */
export function dependenciesMet(state: ActionState, stepId: string): boolean {
  return stepSpec(state, stepId).after.every(({ step, stage }) => {
    const dep = state.steps[step];
    const reached = trackState(dep.operation, policyOf(state, step));
    if (dep.compensation || dep.skipped) return false;
    return stage === 'final' ? reached === 'final' : reached === 'included' || reached === 'final';
  });
}

export function isFinal(state: ActionState, stepId: string): boolean {
  return state.steps[stepId].state === 'final';
}

export function allFinal(state: ActionState): boolean {
  return state.spec.steps.every((s) => isFinal(state, s.id));
}

export function templateContext(state: ActionState): TemplateContext {
  const steps: TemplateContext['steps'] = {};
  for (const [id, step] of Object.entries(state.steps)) {
    const view = trackView(step.operation, policyOf(state, id));
    steps[id] = {
      ...(view.ref ? { ref: view.ref } : {}),
      ...(view.block ? { block: view.block } : {}),
      ...(view.output ? { output: view.output } : {}),
    };
  }
  return { actionId: state.spec.actionId, steps };
}

/** Temporal refuses a KeywordList search attribute value over 2 KiB (JSON): the refs published stay under it. */
export const SEARCH_ATTRIBUTE_BYTES = 2 * 1024;

/**
 * The refs for the `SettleRefs` search attribute: every ref while they fit in {@link SEARCH_ATTRIBUTE_BYTES}; past that
 * the current ones first (each step's current operation and compensation), then the rest, as many as fit. The
 * status always lists them all.
 */
export function searchableRefs(state: ActionState): string[] {
  const all = allRefs(state);
  if (JSON.stringify(all).length <= SEARCH_ATTRIBUTE_BYTES) return all;
  const current = Object.values(state.steps).flatMap((step) => [
    ...step.operation.refs,
    ...(step.compensation?.refs ?? []),
  ]);
  const kept: string[] = [];
  for (const ref of [...new Set([...current, ...all])]) {
    if (JSON.stringify([...kept, ref]).length > SEARCH_ATTRIBUTE_BYTES) continue;
    kept.push(ref);
  }
  return kept.sort();
}

/** Every ref the action's steps and compensations have had: for the `SettleRefs` search attribute. */
export function allRefs(state: ActionState): string[] {
  const refs = new Set<string>();
  for (const step of Object.values(state.steps)) {
    const compensations = [...(step.retiredCompensationRefs ?? []), ...(step.compensation?.refs ?? [])];
    for (const ref of [...step.retiredRefs, ...step.operation.refs, ...compensations]) refs.add(ref);
  }
  return [...refs].sort();
}

/**
 * Appends the transitions recorded since the last call to the notification outbox, numbered in order. `status` is
 * `toActionStatus(state)`, built once by the caller.
 */
export function enqueueNotifications(state: ActionState, status: ActionStatus): void {
  const notifications = state.notifications;
  if (!notifications) return;
  const { events, next } = newTransitions(status, notifications.cursor, notifications.lastSequence);
  if (events.length === 0) return;
  notifications.outbox.push(...events);
  notifications.cursor = next;
  notifications.lastSequence += events.length;
}

export function enableNotifications(state: ActionState): void {
  state.notifications ??= { outbox: [], cursor: START_CURSOR, lastSequence: 0 };
}

/** @deprecated import it from `./views` (kept so `client/settle-client.ts` keeps working). */
