/**
 * The pull path: what a follower asks the network itself (`checkStep`) when evidence is late, and how long it waits
 * before asking again.
 */
import { log } from '@temporalio/workflow';
import type { NetworkInfo, Observation } from '../../contract/activity-io';
import type { FinalityPolicy } from '../../contract/action-spec';
import type { EvidenceTarget } from '../../contract/evidence';
import { policyOf, stepSpec } from '../machine/action';
import { SOURCE } from '../machine/phase';
import { trackView, type TrackFacts } from '../machine/step';
import { applyEvidence, type ActionRun } from './action-run';
import { CHECK_OPTIONS, checkStep } from './activity-profiles';
import { routed } from './routing';

/** How long, at least, until a track's policy can be met: the confirmations it lacks at the block time. */
export function timeToFinality(track: TrackFacts, policy: FinalityPolicy, network: NetworkInfo | undefined): number {
  const view = trackView(track, policy);
  if (view.state !== 'included' || !('confirmations' in policy) || !network?.blockTimeMs) return 0;
  return Math.max(policy.confirmations - (view.confirmations ?? 0), 0) * network.blockTimeMs;
}

export function hasPendingClaims(state: ActionRun['state'], stepId: string, target: EvidenceTarget): boolean {
  return !!state.unverified?.some((c) => c.stepId === stepId && c.evidence.for === target);
}

/** What an adapter observed of a track (on a poll, or right after a submission), as evidence, in order. */
export function applyObservations(
  run: ActionRun,
  stepId: string,
  target: EvidenceTarget,
  observations: readonly Observation[],
  source: string,
): void {
  for (const observation of observations) {
    applyEvidence(run, stepId, { ...observation, step: stepId, for: target, source: observation.source ?? source });
  }
}

/** Pulls what the network says about a track; true when it changed something. */
export async function poll(run: ActionRun, stepId: string, target: EvidenceTarget): Promise<boolean> {
  const { state } = run;
  const spec = stepSpec(state, stepId);
  const step = state.steps[stepId];
  const track = target === 'operation' ? step.operation : step.compensation!;
  const policy = policyOf(state, stepId);
  const view = trackView(track, policy);
  let observations: Observation[];
  try {
    observations = await checkStep.executeWithOptions(
      {
        ...CHECK_OPTIONS,
        ...routed(run, spec.network),
        summary: `check ${stepId}${target === 'compensation' ? ' (compensation)' : ''} on ${spec.network}`,
      },
      [
        {
          actionId: state.spec.actionId,
          stepId,
          network: spec.network,
          for: target,
          attempt: step.attempt,
          refs: [...track.refs],
          finality: policy,
          ...(view.block ? { knownBlock: view.block } : {}),
        },
      ],
    );
  } catch (error) {
    log.warn('checkStep failed; will poll again', { stepId, network: spec.network, error: String(error) });
    return false;
  }
  const version = state.version;
  applyObservations(run, stepId, target, observations, `${SOURCE}:poll`);
  return state.version !== version;
}
