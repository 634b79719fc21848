import type { WorkflowHandle } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Worker } from '@temporalio/worker';
import type { ContinuedAction, crossNetworkAction } from '../../workflows/cross-network-action/workflow';
import { evidenceSignal, statusQuery } from '../../contract/messages';
import type { ActionSpecInput } from '../../contract/action-spec';
import type { EvidenceInput } from '../../contract/evidence';
import type { ActionStatus } from '../../contract/status';

export const ADDRESS_A = '0x00000000000000000000000000000000000000a1';
export const ADDRESS_B = '0x00000000000000000000000000000000000000b2';

export function evmCall(fn: string, args: string[] = [], to = ADDRESS_A) {
  return { kind: 'evm.call' as const, signer: 'bridge', to, function: `function ${fn}`, args };
}

export async function startAction(
  env: TestWorkflowEnvironment,
  worker: Worker,
  spec: ActionSpecInput,
  continued?: ContinuedAction,
): Promise<WorkflowHandle<typeof crossNetworkAction>> {
  return env.client.workflow.start<typeof crossNetworkAction>('crossNetworkAction', {
    taskQueue: worker.options.taskQueue,
    workflowId: spec.actionId,
    args: continued ? [spec, continued] : [spec],
  });
}

export async function signal(handle: WorkflowHandle, evidence: EvidenceInput): Promise<void> {
  await handle.signal(evidenceSignal, evidence);
}

/** Polls the status query until the predicate holds (the workflow reacts asynchronously). */
export async function waitForStatus(
  handle: WorkflowHandle,
  predicate: (status: ActionStatus) => boolean,
  timeoutMs = 30_000,
): Promise<ActionStatus> {
  const deadline = Date.now() + timeoutMs;
  let last: ActionStatus | undefined;
  while (Date.now() < deadline) {
    last = await handle.query(statusQuery);
    if (predicate(last)) return last;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`status never matched; last: ${JSON.stringify(last, null, 2)}`);
}

export function stepOf(status: ActionStatus, id: string) {
  const step = status.steps.find((s) => s.id === id);
  if (!step) throw new Error(`no step ${id}`);
  return step;
}

/** The activity types scheduled in a run's history, in order. */
export async function scheduledActivities(handle: WorkflowHandle): Promise<string[]> {
  const history = await handle.fetchHistory();
  return (history.events ?? [])
    .filter((e) => e.activityTaskScheduledEventAttributes)
    .map((e) => e.activityTaskScheduledEventAttributes!.activityType!.name!);
}

/** The events after the run's last signal (all of them if it has none): what the run did with what it was sent. */
export async function eventsSinceLastSignal(handle: WorkflowHandle) {
  const events = (await handle.fetchHistory()).events ?? [];
  let last = -1;
  events.forEach((e, i) => {
    if (e.workflowExecutionSignaledEventAttributes) last = i;
  });
  return events.slice(last + 1);
}

/** Waits until an activity of the type is pending at its `attempt`th try or later: the tries before it failed. */
export async function waitForRetry(
  handle: WorkflowHandle,
  activityType: string,
  attempt = 2,
  timeoutMs = 60_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { raw } = await handle.describe();
    const pending = raw.pendingActivities ?? [];
    if (pending.some((a) => a.activityType?.name === activityType && (a.attempt ?? 1) >= attempt)) return;
    if (Date.now() > deadline) throw new Error(`no ${activityType} reached attempt ${attempt} in ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export function block(n: number, fork = 'a') {
  return { number: String(n), hash: `0x${fork.repeat(2)}${n.toString(16).padStart(62, '0')}` };
}
