/**
 * How the action workflow calls its activities: timeouts and retry policies, one profile per kind of call. The
 * activities themselves are the `SettleActivities` interface of the contract; the worker provides them.
 */
import { type ActivityOptions, proxyActivities, proxyLocalActivities } from '@temporalio/workflow';
import type { SettleActivities } from '../../contract/activity-io';
import { NON_RETRYABLE_SUBMIT_ERRORS } from '../../contract/errors';

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
/** How long a closing action waits for its last notifications to be delivered. */
export const NOTIFICATION_DRAIN_LIMIT = '24h';

export const { submitStep, checkStep } = proxyActivities<SettleActivities>(SUBMIT_OPTIONS);
export const { deliverNotification } = proxyActivities<SettleActivities>(NOTIFY_OPTIONS);
export const { describeDeployment } = proxyLocalActivities<SettleActivities>({ startToCloseTimeout: '10s' });
