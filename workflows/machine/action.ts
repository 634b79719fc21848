/**
 * The action's state around the step machine: dependencies, phase, compensation order, status. Pure: no Temporal
 * imports, so it is tested on its own and replays identically.
 */
import type { NetworkInfo } from '../../contract/activity-io';
import { ancestors, type ActionSpec, type FinalityPolicy, type StepSpec } from '../../contract/action-spec';
import type { ActionStatus, FinalityViolation, Phase, Retrying, Transition } from '../../contract/status';
import {
  effectExists,
  finalityViolation,
  newStepRecord,
  reduceStep,
  toStepStatus,
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

export function toActionStatus(state: ActionState): ActionStatus {
  const steps = state.spec.steps.map((s) => {
    const status = toStepStatus(state.steps[s.id], policyOf(state, s.id));
    const retrying = state.retrying[`${s.id}:operation`] ?? state.retrying[`${s.id}:compensation`];
    return retrying ? { ...status, retrying } : status;
  });
  return {
    actionId: state.spec.actionId,
    type: state.spec.type,
    phase: state.phase,
    progress: {
      total: steps.length,
      locallyConfirmed: steps.filter((s) => s.state === 'included' || s.state === 'final').length,
      final: steps.filter((s) => s.state === 'final').length,
    },
    steps,
    alarms: state.alarms,
    phaseTransitions: state.phaseTransitions,
    ...(state.reason ? { reason: state.reason } : {}),
    startedAt: state.startedAt,
    updatedAt: state.updatedAt,
  };
}

/** Every ref the action's steps and compensations have had: for the `SettleRefs` search attribute. */
export function allRefs(state: ActionState): string[] {
  const refs = new Set<string>();
  for (const step of Object.values(state.steps)) {
    for (const ref of [...step.retiredRefs, ...step.operation.refs, ...(step.compensation?.refs ?? [])]) refs.add(ref);
  }
  return [...refs].sort();
}

/** `bridge-transfer: lock@chainA → mint@chainB`, for the Web UI's summary. */
export function routeSummary(spec: Pick<ActionSpec, 'type' | 'steps'>): string {
  return `${spec.type}: ${spec.steps.map((s) => `${s.id}@${s.network}`).join(' → ')}`;
}

/** A markdown table of the steps, shown as the run's current details in the Web UI. */
export function stepsTable(state: ActionState): string {
  const status = toActionStatus(state);
  const rows = status.steps.map((s) => {
    const confirmations = s.confirmations === undefined ? '' : String(s.confirmations);
    const need = 'confirmations' in s.finality ? `/${s.finality.confirmations}` : ` (${s.finality.tag})`;
    const compensation = s.compensation ? ` · compensation ${s.compensation.state}` : '';
    return `| ${s.id} | ${s.network} | ${s.state}${compensation} | ${s.ref ?? ''} | ${confirmations}${confirmations ? need : ''} |`;
  });
  const alarms = status.alarms.map((a) => `\n**Finality violation**: step ${a.step}: ${a.evidence}`).join('');
  return (
    [
      `**${status.phase}** · ${status.progress.locallyConfirmed}/${status.progress.total} locally confirmed · ${status.progress.final}/${status.progress.total} final`,
      '',
      '| step | network | state | ref | confirmations |',
      '| --- | --- | --- | --- | --- |',
      ...rows,
    ].join('\n') + alarms
  );
}

/** Appends the transitions recorded since the last call to the notification outbox, numbered in order. */
export function enqueueNotifications(state: ActionState): void {
  const notifications = state.notifications;
  if (!notifications) return;
  const { events, next } = newTransitions(toActionStatus(state), notifications.cursor, notifications.lastSequence);
  if (events.length === 0) return;
  notifications.outbox.push(...events);
  notifications.cursor = next;
  notifications.lastSequence += events.length;
}

export function enableNotifications(state: ActionState): void {
  state.notifications ??= { outbox: [], cursor: START_CURSOR, lastSequence: 0 };
}
