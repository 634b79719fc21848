/**
 * How the action workflow calls its activities: timeouts and retry policies, one profile per kind of call. The
 * activities themselves are the `SettleActivities` interface of the contract; the worker provides them.
 */
import { type ActivityOptions, proxyActivities, proxyLocalActivities, workflowInfo } from '@temporalio/workflow';
import { notificationTaskQueue, type SettleActivities } from '../../contract/activity-io';
import { NON_RETRYABLE_SUBMIT_ERRORS } from '../../contract/errors';
import type { ActionState } from '../machine/action';

export const SUBMIT_OPTIONS: ActivityOptions = {
  // A submission is a few RPC calls; a worker that died mid-submit is noticed after this, and the retry rebroadcasts.
  startToCloseTimeout: '20s',
  // RPC and network errors are retried without end (backing off); a revert is final and becomes `failed` evidence.
  retry: {
    initialInterval: '1s',
    backoffCoefficient: 2,
    maximumInterval: '30s',
    nonRetryableErrorTypes: [...NON_RETRYABLE_SUBMIT_ERRORS],
  },
};
/**
 * With the exactly-once rules: a submission is about ten RPC round trips and a few nonce-owner updates, and it
 * heartbeats between them; a worker that dies mid-submit is noticed by the heartbeat, not by a short overall limit.
 */
export const HEARTBEATING_SUBMIT: ActivityOptions = { startToCloseTimeout: '2m', heartbeatTimeout: '30s' };
/** Activity attempts per burst, then a pause (doubling up to the cap) shown in the status as `retrying`. */
export const SUBMIT_BURST = 3;
export const SUBMIT_PAUSE_MS = 5_000;
export const SUBMIT_PAUSE_MAX_MS = 60_000;

// The workflow's own poll loop backs off between polls; a failed poll is just a poll without news.
export const CHECK_OPTIONS: ActivityOptions = {
  startToCloseTimeout: '30s',
  retry: { initialInterval: '1s', maximumAttempts: 3 },
};

// A receiver that is down is retried with backoff for a day; after that the event is dropped (and logged).
export const NOTIFY_OPTIONS: ActivityOptions = {
  startToCloseTimeout: '30s',
  scheduleToCloseTimeout: '24h',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '5m' },
};
/**
 * Deliveries of runs with the exactly-once rules go to their own task queue (`<task queue>-notify`), so a slow receiver
 * never delays a submission; runs recorded before them deliver on the action's queue, as their histories say.
 */
export function notifyOptions(state: ActionState): ActivityOptions {
  if (!state.exactlyOnce) return NOTIFY_OPTIONS;
  return { ...NOTIFY_OPTIONS, taskQueue: notificationTaskQueue(workflowInfo().taskQueue) };
}
/** How long a closing action waits for its last notifications to be delivered. */
export const NOTIFICATION_DRAIN_LIMIT = '24h';

/**
 * With routing by network, how long a submission or a check waits for a worker that serves its network before the
 * step shows it as `retrying` (a deployment condition: no such worker is up).
 */
export const ROUTED_SCHEDULE_TO_START = '1m';
/** Asking a worker that serves a network what it knows: short, since nobody may serve it (an external system). */
export const DESCRIBE_NETWORK_OPTIONS: ActivityOptions = {
  scheduleToStartTimeout: '30s',
  startToCloseTimeout: '10s',
  retry: { maximumAttempts: 1 },
};

export const { submitStep, checkStep, describeNetwork } = proxyActivities<SettleActivities>(SUBMIT_OPTIONS);
export const { deliverNotification } = proxyActivities<SettleActivities>(NOTIFY_OPTIONS);
export const { describeDeployment } = proxyLocalActivities<SettleActivities>({ startToCloseTimeout: '10s' });
