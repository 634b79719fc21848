/**
 * A minimal outbox workflow for the webhook tests, and the reference for wiring notifications into
 * crossNetworkAction: transitions are queued with a sequence, and one loop delivers them one at a time, retrying with
 * backoff, never failing the workflow.
 */
import { condition, defineSignal, log, proxyActivities, setHandler } from '@temporalio/workflow';
import type { WebhookActivities } from '../../activities/webhook';
import type { TransitionEvent } from '../../client/events';

const { deliverNotification } = proxyActivities<WebhookActivities>({
  startToCloseTimeout: '5s',
  // Short intervals for the test; production would use seconds to minutes.
  retry: { initialInterval: '200ms', backoffCoefficient: 2, maximumInterval: '1s' },
});

export const transitionSignal = defineSignal<[Omit<TransitionEvent, 'sequence'>]>('transition');
export const closeSignal = defineSignal('close');

export async function notificationOutbox(input: { actionId: string; url?: string }): Promise<number[]> {
  const outbox: TransitionEvent[] = [];
  let sequence = 0;
  let closed = false;
  setHandler(transitionSignal, (event) => {
    outbox.push({ ...event, sequence: ++sequence });
  });
  setHandler(closeSignal, () => {
    closed = true;
  });
  const delivered: number[] = [];
  for (;;) {
    await condition(() => outbox.length > 0 || closed);
    const next = outbox[0];
    if (!next) return delivered;
    try {
      await deliverNotification({ url: input.url, actionId: input.actionId, sequence: next.sequence, event: next });
      delivered.push(next.sequence);
    } catch (error) {
      log.warn('notification dropped', { sequence: next.sequence, error: String(error) });
    }
    outbox.shift();
  }
}
