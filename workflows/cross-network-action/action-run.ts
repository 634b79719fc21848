/**
 * What one run of the action workflow holds besides the carried state: which followers and timers are running, and
 * the one route by which evidence (signal, poll, submission, operator) reaches the step machine.
 */
import { log } from '@temporalio/workflow';
import { EvidenceSchema } from '../../contract/evidence';
import { formatIssues } from '../../contract/validation';
import { applyStepEvent, policyOf, type ActionState } from '../machine/action';
import { newFollowers, type Followers } from '../machine/phase';
import { trackState, type TransitionMeta } from '../machine/step';

export interface ActionRun {
  readonly state: ActionState;
  /** Followers started and not finished: input to the phase machine, which records what it starts. */
  readonly followers: Followers;
  /** Step attempts whose timeout is armed: once per attempt, even when the step is followed again. */
  readonly timed: Set<string>;
  /** Tracks (`<step>:<operation|compensation>`) reported dropped while in doubt: their follower submits again. */
  readonly rebroadcast: Set<string>;
  /** Tracks with a claim waiting for Settle's own look at the chain: their follower polls at once. */
  readonly verify: Set<string>;
  /** What the search attributes last said, so they are upserted only on a change. */
  published: { phase: string; refs: string };
  /** Evidence and updates wait until the networks' finality policies are known. */
  ready: boolean;
}

export function newRun(state: ActionState): ActionRun {
  return {
    state,
    followers: newFollowers(),
    timed: new Set(),
    rebroadcast: new Set(),
    // Claims carried across continue-as-new are checked again in the new run.
    verify: new Set((state.unverified ?? []).map((c) => `${c.stepId}:${c.evidence.for}`)),
    published: { phase: '', refs: '' },
    ready: false,
  };
}

/** The workflow's clock (deterministic in the sandbox), as the ISO time transitions record. */
export function now(): string {
  return new Date().toISOString();
}

/** Evidence from any route goes through the same reducer. */
export function applyEvidence(run: ActionRun, stepId: string, raw: unknown, audit: Partial<TransitionMeta> = {}): void {
  const { state } = run;
  const parsed = EvidenceSchema.safeParse(raw);
  if (!parsed.success) {
    log.warn('ignoring invalid evidence', { stepId, issues: formatIssues(parsed.error) });
    return;
  }
  const evidence = parsed.data;
  applyStepEvent(
    state,
    stepId,
    { type: 'evidence', evidence },
    { at: evidence.observedAt ?? now(), source: evidence.source, ...audit },
  );
  if (evidence.kind === 'dropped' && evidence.ref) {
    const track = evidence.for === 'operation' ? state.steps[stepId].operation : state.steps[stepId].compensation;
    const inDoubt = track && trackState(track, policyOf(state, stepId)) === 'submitted';
    // Once compensating, a dropped operation is no effect to chase; a dropped compensation is sent again.
    if (inDoubt && (evidence.for === 'compensation' || !state.compensating))
      run.rebroadcast.add(`${stepId}:${evidence.for}`);
  }
}
