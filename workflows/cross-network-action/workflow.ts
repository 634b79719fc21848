/**
 * `crossNetworkAction`: one multi-network action per run. The phase rules are the pure machine in `machine/phase.ts`;
 * this file is the entry, the main loop and continue-as-new; messages are in `handlers.ts`, the followers of steps and
 * compensations in `follower.ts`, search attributes and notifications in `publish.ts`.
 */
import { allHandlersFinished, condition, continueAsNew, log, patched, sleep, workflowInfo } from '@temporalio/workflow';
import { ActionSpecSchema, type ActionSpec, type ActionSpecInput } from '../../contract/action-spec';
import { ErrorType, nonRetryable } from '../../contract/errors';
import type { ActionStatus } from '../../contract/status';
import { isTerminalPhase } from '../../contract/status';
import { formatIssues, ValidationError } from '../../contract/validation';
import { enableNotifications, initialState, type ActionState } from '../machine/action';
import { deadlineTimeLeft, expireDeadline } from '../machine/phase';
import { toActionStatus } from '../machine/views';
import { newRun, now, type ActionRun } from './action-run';
import { describeDeployment, NOTIFICATION_DRAIN_LIMIT } from './activity-profiles';
import { advance, execute } from './follower';
import { installHandlers } from './handlers';
import { deliverNotifications, publish, publishedAtStart } from './publish';

/**
 * The command sequence changed with the exactly-once rules (`machine/exactly-once.ts`): runs recorded before replay
 * without them; every run started by this code (a continued run too) has them.
 */
export const EXACTLY_ONCE_PATCH = 'exactly-once';

/** With it, compensation cancels a pending operation with a same-nonce no-op (see `ActionState.cancelsPending`). */
export const CANCEL_PENDING_PATCH = 'cancel-pending';

/** With it, a delivery of evidence is applied once: a replayed one is ignored (see `ActionState.seenEvidence`). */
export const EVIDENCE_ONCE_PATCH = 'evidence-once';

/** With it, an awaited step waits for its evidence with no timer (see `ActionState.quietWaits`). */
export const QUIET_WAITS_PATCH = 'quiet-waits';

/**
 * Fewer billable actions per action (issue 13's whole bill): this one marker stands for the four patches above (each
 * marker costs a `TemporalChangeVersion` upsert); a submission looks for its transaction in a block before it returns
 * (`SubmitStepInput.observe`), and a track whose inclusion is known is polled one poll interval after its policy can
 * first be met (the watcher's final evidence comes first, so no timer fires and no `checkStep` runs), except while
 * claims wait for the chain; a first submission records its nonce without a lookup (`SubmitStepInput.fresh`); search
 * attributes the start already set are not upserted again (see `ActionState.lean`).
 */
export const LEAN_PATCH = 'lean';

/** Internal state carried across continue-as-new; callers pass only the ActionSpec. */
export interface ContinuedAction {
  state?: ActionState;
  /** Continue as new after this many history events even if Temporal has not suggested it yet (tests). */
  historyEventLimit?: number;
}

/**
 * Runs one multi-network action: a DAG of steps, each confirmed on its own network, with deadlines, compensation
 * and operator updates. Workflow ID = actionId.
 */
export async function crossNetworkAction(
  input: ActionSpecInput,
  continued: ContinuedAction = {},
): Promise<ActionStatus> {
  const spec = validateSpec(input);
  // Handlers are registered before the first await, so a query or signal in the first task finds them; evidence
  // and updates wait until the networks' finality policies are known.
  // The lean marker is asked first: a run recorded before it replays without it and asks for the four others in order.
  const lean = continued.state?.lean || patched(LEAN_PATCH);
  const exactlyOnce = lean || continued.state?.exactlyOnce || patched(EXACTLY_ONCE_PATCH);
  const state: ActionState = continued.state ?? newState(spec, exactlyOnce);
  state.retrying ??= {};
  if (exactlyOnce) state.exactlyOnce = true;
  if (exactlyOnce && (lean || continued.state?.cancelsPending || patched(CANCEL_PENDING_PATCH)))
    state.cancelsPending = true;
  if (exactlyOnce && (lean || continued.state?.seenEvidence || patched(EVIDENCE_ONCE_PATCH))) state.seenEvidence ??= [];
  if (exactlyOnce && (lean || continued.state?.quietWaits || patched(QUIET_WAITS_PATCH))) state.quietWaits = true;
  if (lean) state.lean = true;
  const run = newRun(state);
  if (lean) run.published = publishedAtStart(state);
  installHandlers(run);
  if (!continued.state) {
    const deployment = await describeDeployment({
      networks: [...new Set(spec.steps.map((s) => s.network))],
      webhook: spec.webhook !== undefined,
    });
    state.networks = deployment.networks;
    if (exactlyOnce && deployment.routing) state.routing = deployment.routing;
    if (exactlyOnce && deployment.trust) state.trust = deployment.trust;
    if (deployment.notifications) enableNotifications(state);
    else if (spec.webhook)
      log.warn('the action names a webhook, but this worker has no SETTLE_WEBHOOK_SECRET or SETTLE_WEBHOOK_ENDPOINTS');
  }
  run.ready = true;
  return runAction(run, input, continued);
}

/**
 * A new action's state. With the exactly-once rules the deadline counts from the workflow's start (not its first
 * task), and nonce records are keyed by the first run, so a later run reusing the actionId never adopts them.
 */
function newState(spec: ActionSpec, exactlyOnce: boolean): ActionState {
  if (!exactlyOnce) return initialState(spec, {}, now());
  const info = workflowInfo();
  return {
    ...initialState(spec, {}, info.startTime.toISOString()),
    nonceKeyPrefix: `${spec.actionId}/${info.firstExecutionRunId}`,
  };
}

function validateSpec(input: unknown): ActionSpec {
  const parsed = ActionSpecSchema.safeParse(input);
  if (!parsed.success) {
    throw nonRetryable(ErrorType.InvalidActionSpec, `invalid ActionSpec:\n${formatIssues(parsed.error)}`, {
      issues: ValidationError.fromZod('ActionSpec', parsed.error).issues,
    });
  }
  if (parsed.data.actionId !== workflowInfo().workflowId) {
    throw nonRetryable(
      ErrorType.InvalidActionSpec,
      `invalid ActionSpec:\nactionId: must equal the workflow ID (${workflowInfo().workflowId}), got "${parsed.data.actionId}"`,
    );
  }
  return parsed.data;
}

/** The main loop: decide and publish after every change, until the phase is terminal or the history is long. */
async function runAction(run: ActionRun, input: ActionSpecInput, continued: ContinuedAction): Promise<ActionStatus> {
  const { state } = run;
  publish(run);
  if (state.notifications) void deliverNotifications(state, state.notifications);
  const deadline = deadlineTimeLeft(state, Date.now());
  if (deadline !== undefined) void deadlineTimer(run, deadline);
  for (;;) {
    advance(run);
    publish(run);
    if (isTerminalPhase(state.phase)) break;
    const version = state.version;
    const limit = continued.historyEventLimit;
    const tooLong = () =>
      workflowInfo().continueAsNewSuggested || (limit !== undefined && workflowInfo().historyLength > limit);
    await condition(() => state.version !== version || tooLong());
    if (tooLong() && state.version === version) {
      await condition(allHandlersFinished);
      await continueAsNew<typeof crossNetworkAction>(input, { ...continued, state });
    }
  }
  await condition(allHandlersFinished);
  // The last transitions (the terminal phase among them) are delivered before the run closes; the phase is final.
  const outbox = state.notifications?.outbox;
  if (outbox && !(await condition(() => outbox.length === 0, NOTIFICATION_DRAIN_LIMIT))) {
    log.warn('closing with undelivered notifications', { undelivered: outbox.length });
  }
  return toActionStatus(state);
}

async function deadlineTimer(run: ActionRun, remainingMs: number): Promise<void> {
  await sleep(remainingMs, { summary: `deadline of ${run.state.spec.actionId}` });
  execute(run, expireDeadline(run.state, run.followers, now()));
}
