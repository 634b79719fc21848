/**
 * Followers: one per step attempt, and one per compensation. A follower submits (unless the step is awaited or
 * already submitted), then follows its track to finality: evidence by signal, polling when it is late, submitting
 * again when the network drops or strands the transaction. Followers only report evidence; the phase machine decides.
 */
import { ActivityFailure, condition, log, sleep } from '@temporalio/workflow';
import type { NetworkInfo, Observation } from '../../contract/activity-io';
import type { EvmOperation } from '../../contract/action-spec';
import type { EvidenceTarget } from '../../contract/evidence';
import { applyStepEvent, policyOf, stepSpec, templateContext } from '../machine/action';
import { inFlight } from '../machine/compensation';
import { decide, expireStep, followerKey, SOURCE, timeLeft, type PhaseCommand } from '../machine/phase';
import { trackState, trackView } from '../machine/step';
import { applyEvidence, now, type ActionRun } from './action-run';
import {
  CHECK_OPTIONS,
  checkStep,
  SUBMIT_BURST,
  SUBMIT_OPTIONS,
  SUBMIT_PAUSE_MAX_MS,
  SUBMIT_PAUSE_MS,
  submitStep,
} from './activity-profiles';

/** Starts what can start and moves the phase on: `decide`, then its commands, in order. */
export function advance(run: ActionRun): void {
  execute(run, decide(run.state, run.followers, now()));
}

/** Starts the followers the phase machine decided on, in its order: each sends its first commands at once. */
export function execute(run: ActionRun, commands: PhaseCommand[]): void {
  for (const command of commands) {
    if (command.kind === 'followStep') void followStep(run, command.stepId, command.attempt);
    else void followCompensation(run, command.stepId);
  }
}

/** Submits a step (unless awaited), then follows it to finality: evidence by signal, polling when it is late. */
async function followStep(run: ActionRun, stepId: string, attempt: number): Promise<void> {
  const { state } = run;
  const spec = stepSpec(state, stepId);
  const key = followerKey(stepId, attempt);
  // A step followed again (its final block was orphaned) keeps the timeout it had: it is armed once per attempt.
  if (spec.timeout !== undefined && !run.timed.has(key)) {
    run.timed.add(key);
    void stepTimer(
      run,
      stepId,
      attempt,
      spec.timeout,
      timeLeft(state.steps[stepId].startedAt!, spec.timeout, Date.now()),
    );
  }
  // Once compensation is decided, an operation is followed only while it is in flight: to learn whether it took effect.
  const active = () =>
    state.steps[stepId].attempt === attempt &&
    state.phase !== 'cancelled' &&
    (state.compensating
      ? inFlight(state, stepId)
      : !['final', 'failed', 'expired'].includes(state.steps[stepId].state));

  if (
    spec.operation.kind !== 'await' &&
    trackState(state.steps[stepId].operation, policyOf(state, stepId)) === 'pending'
  ) {
    applyStepEvent(state, stepId, { type: 'submitting' }, { at: now(), source: SOURCE });
    await submit(run, stepId, attempt, 'operation', spec.operation);
  }
  await follow(run, stepId, 'operation', active, spec.operation);
  // Done following; if the step later leaves `final` (a deep reorg), the phase machine starts a follower again.
  run.followers.steps.delete(key);
}

async function followCompensation(run: ActionRun, stepId: string): Promise<void> {
  const { state } = run;
  const operation = stepSpec(state, stepId).compensation!;
  const track = () => state.steps[stepId].compensation!;
  if (operation.kind !== 'await' && trackState(track(), policyOf(state, stepId)) === 'pending') {
    applyStepEvent(state, stepId, { type: 'submitting', for: 'compensation' }, { at: now(), source: SOURCE });
    await submit(run, stepId, state.steps[stepId].attempt, 'compensation', operation);
  }
  await follow(
    run,
    stepId,
    'compensation',
    () => !['final', 'failed'].includes(trackState(track(), policyOf(state, stepId))),
    operation,
  );
}

async function stepTimer(run: ActionRun, stepId: string, attempt: number, timeoutMs: number, remainingMs: number) {
  await sleep(remainingMs, { summary: `timeout of ${stepId} on ${stepSpec(run.state, stepId).network}` });
  expireStep(run.state, stepId, attempt, timeoutMs, now());
}

/**
 * Submits one attempt. RPC and network errors are retried in bursts; between bursts the step shows what it is
 * retrying after (`status.steps[].retrying`), so an outage is told apart from a revert, which fails the step.
 */
async function submit(
  run: ActionRun,
  stepId: string,
  attempt: number,
  target: EvidenceTarget,
  operation: EvmOperation,
): Promise<void> {
  const { state } = run;
  const spec = stepSpec(state, stepId);
  const key = `${stepId}:${target}`;
  let pause = SUBMIT_PAUSE_MS;
  for (;;) {
    try {
      const result = await submitStep.executeWithOptions(
        {
          ...SUBMIT_OPTIONS,
          retry: { ...SUBMIT_OPTIONS.retry, maximumAttempts: SUBMIT_BURST },
          summary: `${target === 'compensation' ? 'compensate' : 'submit'} ${stepId} on ${spec.network} (attempt ${attempt})`,
        },
        [
          {
            actionId: state.spec.actionId,
            stepId,
            network: spec.network,
            attempt,
            for: target,
            operation,
            context: templateContext(state),
          },
        ],
      );
      delete state.retrying[key];
      applyEvidence(run, stepId, {
        step: stepId,
        for: target,
        kind: 'submitted',
        ref: result.ref,
        ...(result.output ? { output: result.output } : {}),
        source: `${SOURCE}:submit`,
      });
      return;
    } catch (error) {
      const failure = error instanceof ActivityFailure ? error : undefined;
      const cause = failure?.cause ?? error;
      const reason = cause instanceof Error ? cause.message : String(cause);
      if (!failure || failure.retryState === 'NON_RETRYABLE_FAILURE') {
        delete state.retrying[key];
        applyEvidence(run, stepId, { step: stepId, for: target, kind: 'failed', reason, source: `${SOURCE}:submit` });
        return;
      }
      const previous = state.retrying[key];
      state.retrying[key] = {
        for: target,
        reason,
        attempts: (previous?.attempts ?? 0) + SUBMIT_BURST,
        since: previous?.since ?? now(),
      };
      state.version++;
      await sleep(pause, {
        summary: `retry ${target === 'compensation' ? 'compensation of ' : ''}${stepId} on ${spec.network}`,
      });
      pause = Math.min(pause * 2, SUBMIT_PAUSE_MAX_MS);
      const step = state.steps[stepId];
      if (step.attempt !== attempt || state.phase === 'cancelled' || (target === 'operation' && state.compensating)) {
        delete state.retrying[key];
        return;
      }
    }
  }
}

/** Waits for evidence; polls through `checkStep` when none arrives within the network's interval, backing off. */
async function follow(
  run: ActionRun,
  stepId: string,
  target: EvidenceTarget,
  active: () => boolean,
  operation: EvmOperation | { kind: 'await' },
): Promise<void> {
  const { state } = run;
  const spec = stepSpec(state, stepId);
  const network: NetworkInfo | undefined = state.networks[spec.network];
  const base = network?.pollIntervalMs ?? 30_000;
  const max = network?.maxPollIntervalMs ?? 5 * 60_000;
  let interval = base;
  const track = () => (target === 'operation' ? state.steps[stepId].operation : state.steps[stepId].compensation!);
  const key = `${stepId}:${target}`;
  const seen = () => JSON.stringify(trackView(track(), policyOf(state, stepId)));
  let lastSeen = seen();
  let lastSubmitAt = Date.now();
  const resubmitAfter = network?.resubmitAfterMs;
  // One timer per interval, not per report: evidence that arrives in time costs no timer and no poll.
  while (active()) {
    if (run.rebroadcast.delete(key) && operation.kind !== 'await') {
      await submit(run, stepId, state.steps[stepId].attempt, target, operation);
      lastSubmitAt = Date.now();
      continue;
    }
    const interrupted = await condition(() => !active() || run.rebroadcast.has(key), interval, {
      summary: `wait for evidence: ${stepId}${target === 'compensation' ? ' (compensation)' : ''} on ${spec.network}`,
    });
    if (interrupted) continue;
    const current = seen();
    if (current !== lastSeen || !network?.pollable) {
      // Evidence came within the interval (or cannot be pulled here): no poll; back off only when silent.
      interval = current !== lastSeen ? base : Math.min(interval * 2, max);
      lastSeen = current;
      continue;
    }
    const news = await poll(run, stepId, target);
    interval = news ? base : Math.min(interval * 2, max);
    // Still pending after the network's patience: submit again; the adapter replaces it with higher fees.
    const stuck =
      operation.kind !== 'await' &&
      resubmitAfter !== undefined &&
      !(target === 'operation' && state.compensating) &&
      trackState(track(), policyOf(state, stepId)) === 'submitted' &&
      Date.now() - lastSubmitAt >= resubmitAfter;
    if (stuck) {
      await submit(run, stepId, state.steps[stepId].attempt, target, operation);
      lastSubmitAt = Date.now();
    }
    lastSeen = seen();
  }
}

/** Pulls what the network says about a track; true when it changed something. */
async function poll(run: ActionRun, stepId: string, target: EvidenceTarget): Promise<boolean> {
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
  for (const observation of observations) {
    applyEvidence(run, stepId, {
      ...observation,
      step: stepId,
      for: target,
      source: observation.source ?? `${SOURCE}:poll`,
    });
  }
  return state.version !== version;
}
