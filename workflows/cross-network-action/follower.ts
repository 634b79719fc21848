/**
 * Followers: one per step attempt, and one per compensation. A follower submits (unless the step is awaited or
 * already submitted), then follows its track to finality: evidence by signal, polling when it is late, submitting
 * again when the network drops or strands the transaction. Followers only report evidence; the phase machine decides.
 */
import { ActivityFailure, ApplicationFailure, condition, log, patched, sleep } from '@temporalio/workflow';
import type { NetworkInfo } from '../../contract/activity-io';
import type { EvmOperation } from '../../contract/action-spec';
import { DEPLOYMENT_ERRORS, ErrorType } from '../../contract/errors';
import type { EvidenceTarget } from '../../contract/evidence';
import { applyStepEvent, policyOf, stepSpec, templateContext } from '../machine/action';
import { inFlight } from '../machine/compensation';
import { nonceKeyOf, operationToFollow } from '../machine/exactly-once';
import { decide, expireStep, followerKey, SOURCE, timeLeft, type PhaseCommand } from '../machine/phase';
import { trackState, trackView } from '../machine/step';
import { applyEvidence, now, type ActionRun } from './action-run';
import { applyObservations, hasPendingClaims, poll, timeToFinality } from './poll';
import { learnNetwork, routed, unknownNetwork, unserved } from './routing';
import { settleClaims } from '../machine/claims';
import {
  HEARTBEATING_SUBMIT,
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
  if (spec.timeout !== undefined && !run.timed.has(key) && !(state.exactlyOnce && state.steps[stepId].expired)) {
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
    (state.exactlyOnce
      ? operationToFollow(state, stepId)
      : state.phase !== 'cancelled' &&
        (state.compensating
          ? inFlight(state, stepId)
          : !['final', 'failed', 'expired'].includes(state.steps[stepId].state)));

  // (Awaited only when needed: an extra await would reorder the commands of runs recorded without routing.)
  if (spec.operation.kind !== 'await' && unknownNetwork(run, spec.network)) await learnNetwork(run, spec.network);
  const current = trackState(state.steps[stepId].operation, policyOf(state, stepId));
  if (spec.operation.kind !== 'await' && mustSubmit(run, current)) {
    // Never submitted under this nonce key (a retry may carry on an earlier attempt's key and transaction).
    const step = state.steps[stepId];
    const fresh = !!state.lean && current === 'pending' && (step.keyAttempt ?? step.attempt) === step.attempt;
    applyStepEvent(state, stepId, { type: 'submitting' }, { at: now(), source: SOURCE });
    await submit(run, stepId, attempt, 'operation', spec.operation, fresh);
  }
  await follow(run, stepId, 'operation', active, spec.operation);
  // Done following; if the step later leaves `final` (a deep reorg), the phase machine starts a follower again.
  run.followers.steps.delete(key);
}

async function followCompensation(run: ActionRun, stepId: string): Promise<void> {
  const { state } = run;
  const operation = stepSpec(state, stepId).compensation!;
  const track = () => state.steps[stepId].compensation!;
  if (operation.kind !== 'await' && mustSubmit(run, trackState(track(), policyOf(state, stepId)), 'compensation')) {
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
  // Done: a compensation that failed may be run again by an operator, with a follower of its own.
  if (state.exactlyOnce) run.followers.compensations.delete(stepId);
}

/**
 * With it, a same-nonce no-op settles the cancelled call's nonce only once the no-op's block meets the step's finality
 * policy (`TrackFacts.noopsSettleWhenFinal`): before, the action went on as if the call had no effect as soon as the
 * no-op was included, and a reorg within the policy could still let the call be mined, an effect nobody compensated.
 */
export const NOOP_FINAL_PATCH = 'noop-final';

/**
 * Whether a follower starts by submitting. Only a pending track did, before the exactly-once rules; with them, a track
 * that was being submitted (or was sent) when the run continued as new, or whose transaction a retry carries on, is
 * submitted again under the same nonce record: the owner hands back the recorded transaction (or its replacement).
 * An operation is not sent again once compensation is decided: only what was being sent is settled.
 */
function mustSubmit(run: ActionRun, current: string, target: EvidenceTarget = 'operation'): boolean {
  if (current === 'pending') return true;
  if (!run.state.exactlyOnce) return false;
  // (Once compensation is decided, submitting a pending operation again cancels it with a same-nonce no-op.)
  if (current === 'submitting') return true;
  const settling = target === 'operation' && run.state.compensating;
  return current === 'submitted' && (!settling || !!run.state.cancelsPending);
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
  fresh = false,
): Promise<void> {
  const { state } = run;
  const spec = stepSpec(state, stepId);
  const key = `${stepId}:${target}`;
  let pause = SUBMIT_PAUSE_MS;
  // With `lean`, the submission looks for its transaction in a block for a few block times before it returns: the
  // follower then knows the inclusion at once, and its first timer is for when the policy can first be met.
  const network = state.networks[spec.network];
  const observe =
    state.lean && network?.pollable && network.blockTimeMs
      ? { finality: policyOf(state, stepId), forMs: 3 * network.blockTimeMs }
      : undefined;
  // Only the first burst is fresh: a later one may find what an earlier burst recorded.
  for (let burst = 0; ; burst++) {
    // Once compensation is decided, an operation being sent is only settled: nothing new is signed for it.
    const existingOnly = !!state.exactlyOnce && target === 'operation' && state.compensating;
    const nonceKey = state.exactlyOnce ? nonceKeyOf(state, stepId, target) : undefined;
    try {
      const result = await submitStep.executeWithOptions(
        {
          ...SUBMIT_OPTIONS,
          ...(state.exactlyOnce ? HEARTBEATING_SUBMIT : {}),
          ...routed(run, spec.network),
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
            ...(nonceKey ? { nonceKey } : {}),
            ...(existingOnly ? { existingOnly, ...(state.cancelsPending ? { cancelIfPending: true } : {}) } : {}),
            ...(fresh && burst === 0 && !existingOnly ? { fresh: true } : {}),
            ...(observe ? { observe } : {}),
          },
        ],
      );
      delete state.retrying[key];
      if (nonceKey && nonceKeyOf(state, stepId, target) !== nonceKey) {
        // The step moved on to an attempt with another transaction: this result belongs to none of its tracks.
        log.warn('dropping the result of an earlier attempt', { stepId, nonceKey, ref: result.ref });
        return;
      }
      if (state.cancelsPending && result.output?.cancels !== undefined) {
        // A no-op now holds the nonce: whichever of the two is mined (and final) settles it; only the call is an effect.
        // Asked here, not at the start: only runs that cancel a call with a no-op carry the marker.
        const settlesWhenFinal = patched(NOOP_FINAL_PATCH);
        applyStepEvent(
          state,
          stepId,
          { type: 'noop', ref: result.ref, ...(settlesWhenFinal ? { settlesWhenFinal } : {}) },
          { at: now(), source: `${SOURCE}:submit` },
        );
        return;
      }
      applyEvidence(run, stepId, {
        step: stepId,
        for: target,
        kind: 'submitted',
        ref: result.ref,
        ...(result.output ? { output: result.output } : {}),
        source: `${SOURCE}:submit`,
      });
      applyObservations(run, stepId, target, result.observations ?? [], `${SOURCE}:submit`);
      return;
    } catch (error) {
      const failure = error instanceof ActivityFailure ? error : undefined;
      const cause = failure?.cause ?? error;
      const reason = cause instanceof Error ? cause.message : String(cause);
      const type = unserved(error)
        ? ErrorType.UnknownNetwork
        : cause instanceof ApplicationFailure
          ? cause.type
          : undefined;
      if (state.exactlyOnce && type === ErrorType.NothingSubmitted && target === 'operation') {
        delete state.retrying[key];
        applyStepEvent(state, stepId, { type: 'abandoned' }, { at: now(), source: `${SOURCE}:submit`, reason });
        applyStepEvent(state, stepId, { type: 'skip' }, { at: now(), source: `${SOURCE}:submit`, reason });
        return;
      }
      // A deployment condition (no adapter, no signer, sending off here) is not a fact about the chain: wait for a
      // worker that can send, showing why, rather than failing a step whose transaction may exist.
      const deployment = !!state.exactlyOnce && typeof type === 'string' && DEPLOYMENT_ERRORS.includes(type);
      if (!deployment && (!failure || failure.retryState === 'NON_RETRYABLE_FAILURE')) {
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
      // With the exactly-once rules, compensation turns this into settling what is under way (existingOnly).
      const givenUp =
        step.attempt !== attempt ||
        (!state.exactlyOnce && (state.phase === 'cancelled' || (target === 'operation' && state.compensating)));
      if (givenUp) {
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
  // With the exactly-once rules, a track included and counting confirmations is not polled again before its policy
  // can be met (the confirmations it lacks, at the network's block time): a watcher reports the final block sooner.
  // With `lean`, one interval later still, and not cut short by the back-off cap (it is no back-off: nothing can be
  // final sooner): the watcher's final evidence then ends the wait before the timer fires, and without a watcher the
  // one poll finds the track final rather than a block short.
  const afterNews = () => {
    if (!state.exactlyOnce) return base;
    const finality = timeToFinality(track(), policyOf(state, stepId), network);
    if (state.lean && finality > 0) return finality + base;
    return Math.min(Math.max(base, finality), max);
  };
  const track = () => (target === 'operation' ? state.steps[stepId].operation : state.steps[stepId].compensation!);
  // With `lean`, a track whose inclusion is already known (its submission saw it) starts as if it had just had news.
  let interval = state.lean ? afterNews() : base;
  const key = `${stepId}:${target}`;
  const seen = () => JSON.stringify(trackView(track(), policyOf(state, stepId)));
  let lastSeen = seen();
  let lastSubmitAt = Date.now();
  const resubmitAfter = network?.resubmitAfterMs;
  // One timer per interval, not per report: evidence that arrives in time costs no timer and no poll.
  // Compensation decided while this operation is still pending: cancel it (once) with a same-nonce no-op.
  let cancelled = false;
  const mustCancel = () =>
    !!state.cancelsPending &&
    !cancelled &&
    // (With `noop-final`, a no-op already holds the nonce: sending again would only send it again.)
    !track().noopsSettleWhenFinal &&
    target === 'operation' &&
    state.compensating &&
    trackState(track(), policyOf(state, stepId)) === 'submitted';
  while (active()) {
    if (mustCancel() && operation.kind !== 'await') {
      cancelled = true;
      await submit(run, stepId, state.steps[stepId].attempt, target, operation);
      continue;
    }
    if (run.rebroadcast.delete(key) && operation.kind !== 'await') {
      await submit(run, stepId, state.steps[stepId].attempt, target, operation);
      lastSubmitAt = Date.now();
      continue;
    }
    const wake = () => !active() || run.rebroadcast.has(key) || run.verify.has(key) || mustCancel();
    // Where Settle cannot read the network itself (an awaited step), a timer would wake the run for nothing.
    const interrupted =
      state.quietWaits && !network?.pollable
        ? (await condition(wake), true)
        : await condition(wake, interval, {
            summary: `wait for evidence: ${stepId}${target === 'compensation' ? ' (compensation)' : ''} on ${spec.network}`,
          });
    // A claim waits for Settle's own look at the chain: poll now (only deployments that verify claims have them).
    const verifying = run.verify.delete(key) || hasPendingClaims(state, stepId, target);
    if (interrupted && (!verifying || !active() || run.rebroadcast.has(key))) continue;
    const current = seen();
    if ((current !== lastSeen && !verifying) || !network?.pollable) {
      // Evidence came within the interval (or cannot be pulled here): no poll; back off only when silent.
      interval = current !== lastSeen ? afterNews() : Math.min(interval * 2, max);
      lastSeen = current;
      continue;
    }
    const news = await poll(run, stepId, target);
    const unsettled = verifying && settleClaims(state, stepId, target, now());
    // With `lean`, claims still waiting for the chain are looked at again one poll interval later, not at finality.
    interval = state.lean && unsettled ? base : news ? afterNews() : Math.min(interval * 2, max);
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
