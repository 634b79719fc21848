import {
  ActivityFailure,
  type ActivityOptions,
  allHandlersFinished,
  ApplicationFailure,
  condition,
  continueAsNew,
  log,
  proxyActivities,
  proxyLocalActivities,
  setCurrentDetails,
  setHandler,
  sleep,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { NetworkInfo, Observation, SettleActivities } from '../../contract/activity-io';
import {
  allFinal,
  allRefs,
  applyStepEvent,
  dependenciesMet,
  enableNotifications,
  enqueueNotifications,
  initialState,
  policyOf,
  setPhase,
  stepSpec,
  templateContext,
  type ActionState,
} from '../machine/action';
import {
  anyEffectMayExist,
  compensationFailed,
  compensationPlan,
  effectOutstanding,
  inFlight,
} from '../machine/compensation';
import { stepsTable, toActionStatus } from '../machine/views';
import {
  cancelUpdate,
  compensateUpdate,
  evidenceSignal,
  resolveStepUpdate,
  retryStepUpdate,
  statusQuery,
} from '../../contract/messages';
import { ActionSpecSchema, type ActionSpec, type ActionSpecInput, type EvmOperation } from '../../contract/action-spec';
import { EvidenceSchema, type Evidence, type EvidenceTarget } from '../../contract/evidence';
import { formatIssues, ValidationError } from '../../contract/validation';
import {
  CancelInputSchema,
  CompensateInputSchema,
  ResolveStepInputSchema,
  RetryStepInputSchema,
} from '../../contract/updates';
import { SettleNetworks, SettlePhase, SettleRefs, SettleType } from '../../contract/search-attributes';
import { TERMINAL_PHASES } from '../../contract/status';
import { validateActive, validateResolve, validateRetry } from '../machine/update-validators';
import { trackState, trackView, type TransitionMeta } from '../machine/step';

const SUBMIT_OPTIONS: ActivityOptions = {
  // A submission is a few RPC calls; a worker that died mid-submit is noticed after this, and the retry rebroadcasts.
  startToCloseTimeout: '20s',
  // RPC and network errors are retried without end (backing off); a revert is final and becomes `failed` evidence.
  retry: {
    initialInterval: '1s',
    backoffCoefficient: 2,
    maximumInterval: '30s',
    nonRetryableErrorTypes: ['ExecutionReverted', 'InvalidOperation', 'UnknownNetwork'],
  },
};
// The workflow's own poll loop backs off between polls; a failed poll is just a poll without news.
const CHECK_OPTIONS: ActivityOptions = {
  startToCloseTimeout: '30s',
  retry: { initialInterval: '1s', maximumAttempts: 3 },
};
const { submitStep, checkStep } = proxyActivities<SettleActivities>(SUBMIT_OPTIONS);
/** Activity attempts per burst, then a pause (doubling up to the cap) shown in the status as `retrying`. */
const SUBMIT_BURST = 3;
const SUBMIT_PAUSE_MS = 5_000;
const SUBMIT_PAUSE_MAX_MS = 60_000;
const { describeDeployment } = proxyLocalActivities<SettleActivities>({ startToCloseTimeout: '10s' });
// A receiver that is down is retried with backoff for a day; after that the event is dropped (and logged).
const NOTIFY_OPTIONS: ActivityOptions = {
  startToCloseTimeout: '30s',
  scheduleToCloseTimeout: '24h',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '5m' },
};
const { deliverNotification } = proxyActivities<SettleActivities>(NOTIFY_OPTIONS);
const NOTIFICATION_DRAIN_LIMIT = '24h';

/** Internal state carried across continue-as-new; callers pass only the ActionSpec. */
export interface ContinuedAction {
  state?: ActionState;
  /** Continue as new after this many history events even if Temporal has not suggested it yet (tests). */
  historyEventLimit?: number;
}

const SOURCE = 'settle';

/**
 * Runs one multi-network action: a DAG of steps, each confirmed on its own network, with deadlines, compensation
 * and operator updates. Workflow ID = actionId.
 */
export async function crossNetworkAction(
  input: ActionSpecInput,
  continued: ContinuedAction = {},
): Promise<ReturnType<typeof toActionStatus>> {
  const spec = validateSpec(input);
  // Handlers are registered before the first await, so a query or signal in the first task finds them; evidence
  // and updates wait until the networks' finality policies are known.
  const state: ActionState = continued.state ?? initialState(spec, {}, now());
  state.retrying ??= {};
  const runner = new ActionRunner(state);
  runner.install();
  if (!continued.state) {
    const deployment = await describeDeployment({
      networks: [...new Set(spec.steps.map((s) => s.network))],
      webhook: spec.webhook !== undefined,
    });
    state.networks = deployment.networks;
    if (deployment.notifications) enableNotifications(state);
    else if (spec.webhook)
      log.warn('the action names a webhook, but this worker has no SETTLE_WEBHOOK_SECRET to sign it');
  }
  runner.ready = true;
  return runner.run(input, continued);
}

function validateSpec(input: unknown): ActionSpec {
  const parsed = ActionSpecSchema.safeParse(input);
  if (!parsed.success) {
    throw ApplicationFailure.nonRetryable(`invalid ActionSpec:\n${formatIssues(parsed.error)}`, 'InvalidActionSpec', {
      issues: ValidationError.fromZod('ActionSpec', parsed.error).issues,
    });
  }
  if (parsed.data.actionId !== workflowInfo().workflowId) {
    throw ApplicationFailure.nonRetryable(
      `invalid ActionSpec:\nactionId: must equal the workflow ID (${workflowInfo().workflowId}), got "${parsed.data.actionId}"`,
      'InvalidActionSpec',
    );
  }
  return parsed.data;
}

function now(): string {
  return new Date().toISOString();
}

class ActionRunner {
  /** One follower per step attempt; a retry starts a new one and the old one stops. */
  private readonly running = new Set<string>();
  private readonly timed = new Set<string>();
  private readonly rebroadcast = new Set<string>();
  private readonly compensationRunning = new Set<string>();
  private published = { phase: '', refs: '' };
  ready = false;

  constructor(private readonly state: ActionState) {}

  install(): void {
    setHandler(statusQuery, () => toActionStatus(this.state));
    const whenReady = async () => {
      if (!this.ready) await condition(() => this.ready);
    };
    setHandler(evidenceSignal, async (raw) => {
      await whenReady();
      this.onEvidence(raw);
    });
    setHandler(retryStepUpdate, async (raw) => (await whenReady(), this.retryStep(raw)), {
      validator: (raw) => validateRetry(this.state, raw),
    });
    setHandler(
      compensateUpdate,
      async (raw) => (await whenReady(), this.compensate(CompensateInputSchema.parse(raw), 'compensate')),
      {
        validator: (raw) => validateActive(this.state, CompensateInputSchema, raw, 'compensate'),
      },
    );
    setHandler(cancelUpdate, async (raw) => (await whenReady(), this.cancel(raw)), {
      validator: (raw) => validateActive(this.state, CancelInputSchema, raw, 'cancel'),
    });
    setHandler(resolveStepUpdate, async (raw) => (await whenReady(), this.resolveStep(raw)), {
      validator: (raw) => validateResolve(this.state, raw),
    });
  }

  async run(input: ActionSpecInput, continued: ContinuedAction): Promise<ReturnType<typeof toActionStatus>> {
    this.publish();
    if (this.state.notifications) void this.deliverNotifications(this.state.notifications);
    const deadline = this.state.spec.deadline;
    if (deadline !== undefined && !TERMINAL_PHASES.includes(this.state.phase)) {
      const remaining = Date.parse(this.state.startedAt) + deadline - Date.now();
      void this.deadlineTimer(Math.max(remaining, 1));
    }
    for (;;) {
      this.advance();
      this.publish();
      if (TERMINAL_PHASES.includes(this.state.phase)) break;
      const version = this.state.version;
      const limit = continued.historyEventLimit;
      const tooLong = () =>
        workflowInfo().continueAsNewSuggested || (limit !== undefined && workflowInfo().historyLength > limit);
      await condition(() => this.state.version !== version || tooLong());
      if (tooLong() && this.state.version === version) {
        await condition(allHandlersFinished);
        await continueAsNew<typeof crossNetworkAction>(input, { ...continued, state: this.state });
      }
    }
    await condition(allHandlersFinished);
    // The last transitions (the terminal phase among them) are delivered before the run closes; the phase is final.
    const outbox = this.state.notifications?.outbox;
    if (outbox && !(await condition(() => outbox.length === 0, NOTIFICATION_DRAIN_LIMIT))) {
      log.warn('closing with undelivered notifications', { undelivered: outbox.length });
    }
    return toActionStatus(this.state);
  }

  /** One delivery at a time, in sequence order: at least once, never blocking or failing the action. */
  private async deliverNotifications(notifications: NonNullable<ActionState['notifications']>): Promise<void> {
    for (;;) {
      await condition(() => notifications.outbox.length > 0);
      const event = notifications.outbox[0];
      try {
        await deliverNotification.executeWithOptions(
          {
            ...NOTIFY_OPTIONS,
            summary: `notify #${event.sequence}: ${event.step ?? 'phase'} ${event.from} → ${event.to}`,
          },
          [{ url: this.state.spec.webhook, actionId: this.state.spec.actionId, sequence: event.sequence, event }],
        );
      } catch (error) {
        log.warn('dropping a notification that could not be delivered', {
          sequence: event.sequence,
          error: String(error),
        });
      }
      notifications.outbox.shift();
    }
  }

  /** Starts what can start, and moves the phase on from what the steps say. */
  private advance(): void {
    const { state } = this;
    if (state.phase === 'running') {
      const failed = state.spec.steps.find(
        (s) => state.steps[s.id].state === 'failed' || state.steps[s.id].state === 'expired',
      );
      if (allFinal(state)) {
        setPhase(state, 'completed', { at: now(), source: SOURCE });
      } else if (failed) {
        const step = state.steps[failed.id];
        const reason =
          step.state === 'expired'
            ? `step "${failed.id}" expired`
            : `step "${failed.id}" failed: ${trackView(step.operation, policyOf(state, failed.id)).error ?? ''}`;
        this.onTrouble(reason);
      } else {
        for (const spec of state.spec.steps) {
          const key = `${spec.id}#${state.steps[spec.id].attempt}`;
          if (
            !this.running.has(key) &&
            !state.steps[spec.id].skipped &&
            dependenciesMet(state, spec.id) &&
            state.steps[spec.id].state !== 'final'
          ) {
            this.running.add(key);
            void this.followStep(spec.id, state.steps[spec.id].attempt);
          }
        }
      }
    }
    if (state.phase === 'needs_action') this.resumeIfSettled();
    if (state.phase === 'compensating') this.advanceCompensation();
  }

  /** A held action goes on by itself once late evidence (or an operator) settles what held it. */
  private resumeIfSettled(): void {
    const { state } = this;
    const meta = { at: now(), source: SOURCE, reason: 'what held the action is settled' };
    if (state.compensating) {
      if (!compensationFailed(state) && !compensationPlan(state).some((p) => p.kind === 'blocked'))
        setPhase(state, 'compensating', meta);
    } else if (!state.spec.steps.some((s) => ['failed', 'expired'].includes(state.steps[s.id].state))) {
      setPhase(state, 'running', meta);
      this.advance();
    }
  }

  /** A failed or expired step, or a passed deadline: compensate, or hold for an operator. */
  private onTrouble(reason: string, source = SOURCE): void {
    if (this.state.spec.onDeadline === 'hold') {
      setPhase(this.state, 'needs_action', { at: now(), source, reason });
    } else {
      this.beginCompensation({ at: now(), source, reason });
    }
  }

  private beginCompensation(meta: TransitionMeta): void {
    const { state } = this;
    state.compensating = true;
    for (const spec of state.spec.steps) {
      const step = state.steps[spec.id];
      if (step.state === 'waiting' && !step.startedAt) applyStepEvent(state, spec.id, { type: 'skip' }, meta);
    }
    if (!anyEffectMayExist(state)) {
      setPhase(state, 'failed', meta);
      return;
    }
    setPhase(state, 'compensating', meta);
    this.advanceCompensation();
  }

  private advanceCompensation(): void {
    const { state } = this;
    const failure = compensationFailed(state);
    if (failure) {
      setPhase(state, 'needs_action', { at: now(), source: SOURCE, reason: failure });
      return;
    }
    for (const item of compensationPlan(state)) {
      if (item.kind === 'blocked') {
        setPhase(state, 'needs_action', { at: now(), source: SOURCE, reason: item.reason });
        return;
      }
      applyStepEvent(state, item.stepId, { type: 'compensate' }, { at: now(), source: SOURCE, reason: 'compensating' });
      if (!this.compensationRunning.has(item.stepId)) {
        this.compensationRunning.add(item.stepId);
        void this.followCompensation(item.stepId);
      }
    }
    const outstanding = state.spec.steps.some((s) => effectOutstanding(state, s.id) || inFlight(state, s.id));
    if (!outstanding) setPhase(state, 'compensated', { at: now(), source: SOURCE });
  }

  /** Submits a step (unless awaited), then follows it to finality: evidence by signal, polling when it is late. */
  private async followStep(stepId: string, attempt: number): Promise<void> {
    const { state } = this;
    const spec = stepSpec(state, stepId);
    applyStepEvent(state, stepId, { type: 'start' }, { at: now(), source: SOURCE });
    const key = `${stepId}#${attempt}`;
    // A step followed again (its final block was orphaned) keeps the timeout it had: it is armed once per attempt.
    if (spec.timeout !== undefined && !this.timed.has(key)) {
      this.timed.add(key);
      const remaining = Date.parse(state.steps[stepId].startedAt!) + spec.timeout - Date.now();
      void this.stepTimer(stepId, attempt, spec.timeout, Math.max(remaining, 1));
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
      await this.submit(stepId, attempt, 'operation', spec.operation);
    }
    await this.follow(stepId, 'operation', active, spec.operation);
    // Done following; if the step later leaves `final` (a deep reorg), `advance()` follows it again.
    this.running.delete(key);
  }

  private async followCompensation(stepId: string): Promise<void> {
    const spec = stepSpec(this.state, stepId);
    const operation = spec.compensation!;
    const track = () => this.state.steps[stepId].compensation!;
    if (operation.kind !== 'await' && trackState(track(), policyOf(this.state, stepId)) === 'pending') {
      applyStepEvent(this.state, stepId, { type: 'submitting', for: 'compensation' }, { at: now(), source: SOURCE });
      await this.submit(stepId, this.state.steps[stepId].attempt, 'compensation', operation);
    }
    await this.follow(
      stepId,
      'compensation',
      () => !['final', 'failed'].includes(trackState(track(), policyOf(this.state, stepId))),
      operation,
    );
  }

  /**
   * Submits one attempt. RPC and network errors are retried in bursts; between bursts the step shows what it is
   * retrying after (`status.steps[].retrying`), so an outage is told apart from a revert, which fails the step.
   */
  private async submit(
    stepId: string,
    attempt: number,
    target: EvidenceTarget,
    operation: EvmOperation,
  ): Promise<void> {
    const spec = stepSpec(this.state, stepId);
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
              actionId: this.state.spec.actionId,
              stepId,
              network: spec.network,
              attempt,
              for: target,
              operation,
              context: templateContext(this.state),
            },
          ],
        );
        delete this.state.retrying[key];
        this.apply(stepId, {
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
          delete this.state.retrying[key];
          this.apply(stepId, { step: stepId, for: target, kind: 'failed', reason, source: `${SOURCE}:submit` });
          return;
        }
        const previous = this.state.retrying[key];
        this.state.retrying[key] = {
          for: target,
          reason,
          attempts: (previous?.attempts ?? 0) + SUBMIT_BURST,
          since: previous?.since ?? now(),
        };
        this.state.version++;
        await sleep(pause, {
          summary: `retry ${target === 'compensation' ? 'compensation of ' : ''}${stepId} on ${spec.network}`,
        });
        pause = Math.min(pause * 2, SUBMIT_PAUSE_MAX_MS);
        const step = this.state.steps[stepId];
        if (
          step.attempt !== attempt ||
          this.state.phase === 'cancelled' ||
          (target === 'operation' && this.state.compensating)
        ) {
          delete this.state.retrying[key];
          return;
        }
      }
    }
  }

  /** Waits for evidence; polls through `checkStep` when none arrives within the network's interval, backing off. */
  private async follow(
    stepId: string,
    target: EvidenceTarget,
    active: () => boolean,
    operation: EvmOperation | { kind: 'await' },
  ): Promise<void> {
    const spec = stepSpec(this.state, stepId);
    const network: NetworkInfo | undefined = this.state.networks[spec.network];
    const base = network?.pollIntervalMs ?? 30_000;
    const max = network?.maxPollIntervalMs ?? 5 * 60_000;
    let interval = base;
    const track = () =>
      target === 'operation' ? this.state.steps[stepId].operation : this.state.steps[stepId].compensation!;
    const key = `${stepId}:${target}`;
    const seen = () => JSON.stringify(trackView(track(), policyOf(this.state, stepId)));
    let lastSeen = seen();
    let lastSubmitAt = Date.now();
    const resubmitAfter = network?.resubmitAfterMs;
    // One timer per interval, not per report: evidence that arrives in time costs no timer and no poll.
    while (active()) {
      if (this.rebroadcast.delete(key) && operation.kind !== 'await') {
        await this.submit(stepId, this.state.steps[stepId].attempt, target, operation);
        lastSubmitAt = Date.now();
        continue;
      }
      const interrupted = await condition(() => !active() || this.rebroadcast.has(key), interval, {
        summary: `wait for evidence: ${stepId}${target === 'compensation' ? ' (compensation)' : ''} on ${spec.network}`,
      });
      if (interrupted) continue;
      const now = seen();
      if (now !== lastSeen || !network?.pollable) {
        // Evidence came within the interval (or cannot be pulled here): no poll; back off only when silent.
        interval = now !== lastSeen ? base : Math.min(interval * 2, max);
        lastSeen = now;
        continue;
      }
      const news = await this.poll(stepId, target);
      interval = news ? base : Math.min(interval * 2, max);
      // Still pending after the network's patience: submit again; the adapter replaces it with higher fees.
      const stuck =
        operation.kind !== 'await' &&
        resubmitAfter !== undefined &&
        !(target === 'operation' && this.state.compensating) &&
        trackState(track(), policyOf(this.state, stepId)) === 'submitted' &&
        Date.now() - lastSubmitAt >= resubmitAfter;
      if (stuck) {
        await this.submit(stepId, this.state.steps[stepId].attempt, target, operation);
        lastSubmitAt = Date.now();
      }
      lastSeen = seen();
    }
  }

  private async poll(stepId: string, target: EvidenceTarget): Promise<boolean> {
    const spec = stepSpec(this.state, stepId);
    const step = this.state.steps[stepId];
    const track = target === 'operation' ? step.operation : step.compensation!;
    const policy = policyOf(this.state, stepId);
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
            actionId: this.state.spec.actionId,
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
    const version = this.state.version;
    for (const observation of observations) {
      this.apply(stepId, { ...observation, step: stepId, for: target, source: observation.source ?? `${SOURCE}:poll` });
    }
    return this.state.version !== version;
  }

  private async stepTimer(stepId: string, attempt: number, timeoutMs: number, remainingMs: number): Promise<void> {
    await sleep(remainingMs, { summary: `timeout of ${stepId} on ${stepSpec(this.state, stepId).network}` });
    const step = this.state.steps[stepId];
    if (
      step.attempt !== attempt ||
      step.state === 'final' ||
      TERMINAL_PHASES.includes(this.state.phase) ||
      this.state.compensating
    )
      return;
    applyStepEvent(
      this.state,
      stepId,
      { type: 'expire' },
      { at: now(), source: 'timer', reason: `timeout of ${timeoutMs} ms passed` },
    );
  }

  private async deadlineTimer(remainingMs: number): Promise<void> {
    await sleep(remainingMs, { summary: `deadline of ${this.state.spec.actionId}` });
    const { state } = this;
    if (state.phase !== 'running' || allFinal(state)) return;
    const meta = { at: now(), source: 'timer', reason: 'the action deadline passed' };
    for (const spec of state.spec.steps) {
      const step = state.steps[spec.id];
      if (step.startedAt && !['final', 'failed', 'expired', 'skipped'].includes(step.state))
        applyStepEvent(state, spec.id, { type: 'expire' }, meta);
    }
    this.onTrouble('the action deadline passed', 'timer');
  }

  /** Evidence from any route goes through the same reducer. */
  private apply(stepId: string, raw: unknown, audit: Partial<TransitionMeta> = {}): void {
    const parsed = EvidenceSchema.safeParse(raw);
    if (!parsed.success) {
      log.warn('ignoring invalid evidence', { stepId, issues: formatIssues(parsed.error) });
      return;
    }
    const evidence = parsed.data;
    applyStepEvent(
      this.state,
      stepId,
      { type: 'evidence', evidence },
      { at: evidence.observedAt ?? now(), source: evidence.source, ...audit },
    );
    if (evidence.kind === 'dropped' && evidence.ref) {
      const track =
        evidence.for === 'operation' ? this.state.steps[stepId].operation : this.state.steps[stepId].compensation;
      const inDoubt = track && trackState(track, policyOf(this.state, stepId)) === 'submitted';
      // Once compensating, a dropped operation is no effect to chase; a dropped compensation is sent again.
      if (inDoubt && (evidence.for === 'compensation' || !this.state.compensating))
        this.rebroadcast.add(`${stepId}:${evidence.for}`);
    }
  }

  private onEvidence(raw: unknown): void {
    const parsed = EvidenceSchema.safeParse(raw);
    if (!parsed.success) {
      log.warn('ignoring invalid evidence signal', { issues: formatIssues(parsed.error) });
      return;
    }
    const stepId = this.findStep(parsed.data);
    if (!stepId) {
      log.warn('ignoring evidence for an unknown step', { step: parsed.data.step, ref: parsed.data.ref });
      return;
    }
    this.apply(stepId, parsed.data);
    this.advance();
  }

  private findStep(evidence: Evidence): string | undefined {
    if (evidence.step) return this.state.steps[evidence.step] ? evidence.step : undefined;
    for (const [id, step] of Object.entries(this.state.steps)) {
      if (evidence.network && evidence.network !== step.network) continue;
      const track = evidence.for === 'compensation' ? step.compensation : step.operation;
      if (track?.refs.includes(evidence.ref!) || step.retiredRefs.includes(evidence.ref!)) return id;
    }
    return undefined;
  }

  private retryStep(raw: unknown) {
    const input = RetryStepInputSchema.parse(raw);
    const meta = {
      at: now(),
      source: 'operator',
      reason: input.reason,
      ...(input.operator ? { operator: input.operator } : {}),
    };
    applyStepEvent(this.state, input.step, { type: 'retry' }, meta);
    setPhase(this.state, 'running', meta);
    this.advance();
    return toActionStatus(this.state);
  }

  private compensate(input: { reason: string; operator?: string }, what: string) {
    const meta = {
      at: now(),
      source: 'operator',
      reason: `${what}: ${input.reason}`,
      ...(input.operator ? { operator: input.operator } : {}),
    };
    this.beginCompensation(meta);
    this.publish();
    return toActionStatus(this.state);
  }

  private cancel(raw: unknown) {
    const input = CancelInputSchema.parse(raw);
    if (anyEffectMayExist(this.state)) return this.compensate(input, 'cancel');
    const meta = {
      at: now(),
      source: 'operator',
      reason: `cancel: ${input.reason}`,
      ...(input.operator ? { operator: input.operator } : {}),
    };
    this.state.compensating = true;
    for (const spec of this.state.spec.steps) {
      if (this.state.steps[spec.id].state === 'waiting') applyStepEvent(this.state, spec.id, { type: 'skip' }, meta);
    }
    setPhase(this.state, 'cancelled', meta);
    this.publish();
    return toActionStatus(this.state);
  }

  private resolveStep(raw: unknown) {
    const input = ResolveStepInputSchema.parse(raw);
    this.apply(
      input.step,
      { ...input.evidence, step: input.step, source: input.evidence.source },
      { operator: input.operator, reason: input.reason, source: input.evidence.source },
    );
    this.advance();
    this.publish();
    return toActionStatus(this.state);
  }

  /** Search attributes only when the phase or the refs change; the steps table for the Web UI every time. */
  private publish(): void {
    const status = toActionStatus(this.state);
    enqueueNotifications(this.state, status);
    const refs = allRefs(this.state);
    const refsKey = refs.join(',');
    if (this.published.phase !== this.state.phase || this.published.refs !== refsKey) {
      upsertSearchAttributes([
        { key: SettlePhase, value: this.state.phase },
        ...(this.published.phase
          ? []
          : [
              { key: SettleType, value: this.state.spec.type },
              { key: SettleNetworks, value: [...new Set(this.state.spec.steps.map((s) => s.network))] },
            ]),
        ...(refs.length > 0 ? [{ key: SettleRefs, value: refs }] : []),
      ]);
      this.published = { phase: this.state.phase, refs: refsKey };
    }
    setCurrentDetails(stepsTable(status));
  }
}
