/**
 * Push notifications: POSTs one transition of an action to its webhook, signed, with an idempotency key.
 *
 * What the workflow must do (and crossNetworkAction does) to deliver every transition at least once, in order, per
 * action, without ever blocking or failing the action:
 * 1. Keep an outbox in the action's state: each step transition and each phase transition, when it is recorded, is
 *    appended as a `TransitionEvent` (client/events.ts) with `sequence` = previous + 1 (starting at 1). The outbox and
 *    the last sequence are carried across continue-as-new, so sequences never restart.
 * 2. Run one delivery loop per action (started once, like the deadline timer, never awaited by the main loop): while
 *    the outbox is not empty, `await deliverNotification({ url: spec.webhook, actionId, sequence, event })` for its
 *    head, and remove the head only once that call returned. One delivery at a time is what keeps the order.
 * 3. Proxy the activity with its own options: `startToCloseTimeout` above the HTTP timeout (e.g. '30s'), retry with
 *    backoff `{ initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '5m' }` and no attempt limit (or a
 *    long `scheduleToCloseTimeout`, after which the loop logs, drops that event and goes on). `nonRetryableErrorTypes`
 *    needs nothing: a bad URL already fails as `InvalidWebhook`, which the loop treats as dropped.
 * 4. Catch every failure inside the loop (log it): a notification never changes the action's phase or steps.
 * 5. Before returning from a terminal phase, wait for the outbox to drain (`condition(() => outbox empty)` with a
 *    bound, e.g. 24h), so the final `completed`/`compensated`/`failed`/`cancelled` transition is delivered too;
 *    the action's phase is already terminal meanwhile, so nothing is blocked.
 * 6. Pass `url: spec.webhook` (possibly undefined): the worker's deployment-wide URL (`SETTLE_WEBHOOK_URL`) applies
 *    when the spec names none, and stays out of history (it may carry a token). With neither, the activity returns
 *    `{ delivered: false }` at once; skip enqueuing entirely when a local activity says no webhook is configured, if
 *    the extra activity per transition matters.
 *
 * Receivers verify with `verifyNotification` (client/signature.ts) and deduplicate on the `idempotency-key` header.
 */
import { ApplicationFailure } from '@temporalio/common';
import type { TransitionEvent } from '../workflows/transition-events';
import { IDEMPOTENCY_KEY_HEADER, SIGNATURE_HEADER, signBody } from '../client/signature';

export interface WebhookDeps {
  /** Signs every notification (HMAC-SHA256); the receiver holds the same secret. Never in workflow history. */
  secret: string;
  /** The deployment's webhook, for actions whose spec names none. */
  defaultUrl?: string;
  /** For tests; defaults to the global fetch. */
  fetch?: typeof fetch;
  /** One HTTP attempt's time limit (default 10 s); Temporal retries after it. */
  timeoutMs?: number;
}

export interface NotificationInput {
  /** The action's `webhook`; the deployment's default when absent. */
  url?: string;
  actionId: string;
  /** 1, 2, 3… per action, in the order the transitions happened. */
  sequence: number;
  event: TransitionEvent;
}

/** What the receiver gets as the JSON body. */
export interface Notification {
  /** Equals the idempotency key: `<actionId>:<sequence>`. */
  id: string;
  actionId: string;
  sequence: number;
  event: TransitionEvent;
}

export interface DeliveryResult {
  delivered: boolean;
  /** The receiver's HTTP status when delivered. */
  status?: number;
}

/** A delivery that did not get a 2xx: thrown so that Temporal retries it with backoff. */
export class WebhookDeliveryError extends Error {
  override name = 'WebhookDeliveryError';
}

/**
 * Creates the notification activity with its secret: secrets stay in the worker.
 *
 * @example
 * const worker = await Worker.create({
 *   activities: { ...createActivities(deps), ...createWebhookActivities({ secret: config.SETTLE_WEBHOOK_SECRET }) }, …
 * });
 */
export function createWebhookActivities(deps: WebhookDeps) {
  const send = deps.fetch ?? fetch;
  const timeoutMs = deps.timeoutMs ?? 10_000;

  return {
    /**
     * POSTs one transition, signed (`settle-signature: t=<unix seconds>,v1=<HMAC-SHA256 of "<t>.<body>">`, signed
     * afresh on each attempt), with `idempotency-key: <actionId>:<sequence>`. Throws on anything but a 2xx, so that
     * Temporal retries with backoff; delivery is at least once.
     */
    async deliverNotification(input: NotificationInput): Promise<DeliveryResult> {
      const url = input.url ?? deps.defaultUrl;
      if (!url) return { delivered: false };
      const target = parseUrl(url);
      const key = `${input.actionId}:${input.sequence}`;
      const notification: Notification = {
        id: key,
        actionId: input.actionId,
        sequence: input.sequence,
        event: input.event,
      };
      const body = JSON.stringify(notification);
      let response: Response;
      try {
        response = await send(target, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            'user-agent': 'settle-webhook/1',
            [SIGNATURE_HEADER]: signBody(deps.secret, body),
            [IDEMPOTENCY_KEY_HEADER]: key,
          },
          body,
          redirect: 'manual',
          signal: AbortSignal.timeout(timeoutMs),
        });
      } catch (error) {
        const cause = (error as { cause?: { code?: string } }).cause?.code ?? (error as Error).message;
        // The host only: a webhook URL may carry a token, and this message goes into workflow history.
        throw new WebhookDeliveryError(`webhook ${target.host} unreachable (${cause}) for ${key}`);
      }
      await response.arrayBuffer().catch(() => undefined);
      if (response.status < 200 || response.status >= 300) {
        throw new WebhookDeliveryError(`webhook ${target.host} answered ${response.status} for ${key}`);
      }
      return { delivered: true, status: response.status };
    },
  };
}

export type WebhookActivities = ReturnType<typeof createWebhookActivities>;

function parseUrl(url: string): URL {
  try {
    const parsed = new URL(url);
    if (parsed.protocol === 'http:' || parsed.protocol === 'https:') return parsed;
  } catch {
    // reported below
  }
  throw ApplicationFailure.nonRetryable('the webhook is not an http(s) URL', 'InvalidWebhook');
}
