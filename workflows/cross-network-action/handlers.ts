/**
 * The action's messages: the `status` query, the `evidence` signal and the operator updates. Each handler turns its
 * message into a step event or a phase-machine call and executes what the machine decides.
 */
import { condition, log, setHandler } from '@temporalio/workflow';
import type { Evidence } from '../../contract/evidence';
import { EvidenceSchema } from '../../contract/evidence';
import * as messages from '../../contract/messages';
import {
  CancelInputSchema,
  CompensateInputSchema,
  ResolveStepInputSchema,
  RetryStepInputSchema,
} from '../../contract/updates';
import { formatIssues } from '../../contract/validation';
import { claimOf, isReplay, judgeClaim, proofOf, recordClaim, rememberDelivery, type Proof } from '../machine/claims';
import { refusedClaim } from '../machine/exactly-once';
import { cancel, compensate, retryCompensation, retryStep } from '../machine/phase';
import { validateActive, validateResolve, validateRetry } from '../machine/update-validators';
import { toActionStatus } from '../machine/views';
import { applyEvidence, now, type ActionRun } from './action-run';
import { advance, execute } from './follower';
import { publish } from './publish';

/** Registered before the first await, so a query or signal in the first workflow task finds its handler. */
export function installHandlers(run: ActionRun): void {
  const { state } = run;
  setHandler(messages.statusQuery, () => toActionStatus(state));
  const whenReady = async () => {
    if (!run.ready) await condition(() => run.ready);
  };
  setHandler(messages.evidenceSignal, async (raw) => {
    await whenReady();
    onEvidence(run, raw);
  });
  setHandler(messages.retryStepUpdate, async (raw) => (await whenReady(), onRetryStep(run, raw)), {
    validator: (raw) => validateRetry(state, raw),
  });
  setHandler(
    messages.compensateUpdate,
    async (raw) => (await whenReady(), onCompensate(run, CompensateInputSchema.parse(raw), 'compensate')),
    {
      validator: (raw) => validateActive(state, CompensateInputSchema, raw, 'compensate'),
    },
  );
  setHandler(messages.cancelUpdate, async (raw) => (await whenReady(), onCancel(run, raw)), {
    validator: (raw) => validateActive(state, CancelInputSchema, raw, 'cancel'),
  });
  setHandler(messages.resolveStepUpdate, async (raw) => (await whenReady(), onResolveStep(run, raw)), {
    validator: (raw) => validateResolve(state, raw),
  });
}

function onEvidence(run: ActionRun, raw: unknown): void {
  const parsed = EvidenceSchema.safeParse(raw);
  if (!parsed.success) {
    log.warn('ignoring invalid evidence signal', { issues: formatIssues(parsed.error) });
    return;
  }
  const stepId = findStep(run, parsed.data);
  if (!stepId) {
    log.warn('ignoring evidence for an unknown step', { step: parsed.data.step, ref: parsed.data.ref });
    return;
  }
  const refused = run.state.exactlyOnce ? refusedClaim(run.state, stepId, parsed.data) : undefined;
  if (refused) {
    log.warn('refusing evidence', { stepId, kind: parsed.data.kind, source: parsed.data.source, reason: refused });
    return;
  }
  // The signature is checked once, here, for all three uses.
  const proof = proofOf(run.state, parsed.data);
  if (isReplay(run.state, parsed.data, proof)) {
    log.warn('ignoring evidence already received', { stepId, kind: parsed.data.kind, source: parsed.data.source });
    return;
  }
  if (run.state.trust && !admitClaim(run, stepId, parsed.data, proof)) return;
  rememberDelivery(run.state, parsed.data, proof);
  applyEvidence(run, stepId, parsed.data);
  advance(run);
}

/**
 * Whether a claim is applied now. One from a source the step does not accept (or not proven to come from it) is
 * recorded as rejected; an unproven one about an EVM step waits for the follower's look at the chain.
 */
function admitClaim(run: ActionRun, stepId: string, evidence: Evidence, proof: Proof): boolean {
  const { state } = run;
  const decision = judgeClaim(state, stepId, evidence, proof);
  if (decision.kind === 'apply') return true;
  if (decision.kind === 'reject') {
    log.warn('rejecting a claim', { stepId, source: evidence.source, reason: decision.reason });
    recordClaim(state, claimOf(state, stepId, evidence, 'rejected', decision.reason, now()));
  } else {
    rememberDelivery(state, evidence, proof);
    state.unverified = [...(state.unverified ?? []), { stepId, evidence, at: now(), polls: 0 }];
    run.verify.add(`${stepId}:${evidence.for}`);
    state.version++;
  }
  return false;
}

/** The step evidence names, or the one whose operation (or compensation) had its ref. */
function findStep(run: ActionRun, evidence: Evidence): string | undefined {
  const { steps } = run.state;
  if (evidence.step) return steps[evidence.step] ? evidence.step : undefined;
  for (const [id, step] of Object.entries(steps)) {
    if (evidence.network && evidence.network !== step.network) continue;
    const track = evidence.for === 'compensation' ? step.compensation : step.operation;
    if (track?.refs.includes(evidence.ref!) || step.retiredRefs.includes(evidence.ref!)) return id;
  }
  return undefined;
}

/** The audit of an operator's update: who, why, when. */
function operatorMeta(input: { operator?: string }, reason: string) {
  return { at: now(), source: 'operator', reason, ...(input.operator ? { operator: input.operator } : {}) };
}

function onRetryStep(run: ActionRun, raw: unknown) {
  const input = RetryStepInputSchema.parse(raw);
  const meta = operatorMeta(input, input.reason);
  const compensation = run.state.steps[input.step].state === 'compensation_failed';
  execute(run, (compensation ? retryCompensation : retryStep)(run.state, run.followers, input.step, meta));
  return toActionStatus(run.state);
}

function onCompensate(run: ActionRun, input: { reason: string; operator?: string }, what: string) {
  execute(run, compensate(run.state, run.followers, operatorMeta(input, `${what}: ${input.reason}`)));
  publish(run);
  return toActionStatus(run.state);
}

function onCancel(run: ActionRun, raw: unknown) {
  const input = CancelInputSchema.parse(raw);
  execute(run, cancel(run.state, run.followers, operatorMeta(input, `cancel: ${input.reason}`)));
  publish(run);
  return toActionStatus(run.state);
}

function onResolveStep(run: ActionRun, raw: unknown) {
  const input = ResolveStepInputSchema.parse(raw);
  applyEvidence(
    run,
    input.step,
    { ...input.evidence, step: input.step, source: input.evidence.source },
    { operator: input.operator, reason: input.reason, source: input.evidence.source },
  );
  advance(run);
  publish(run);
  return toActionStatus(run.state);
}
