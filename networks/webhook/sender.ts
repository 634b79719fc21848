/**
 * Push notifications: POSTs one transition of an action to its webhook, signed (`settle-signature`), with an
 * idempotency key (`<actionId>:<sequence>`). The workflow delivers its outbox one item at a time, so receivers see each
 * action's transitions in order, at least once; they verify with `verifyNotification` and deduplicate on the key.
 */
import { ErrorType, nonRetryable } from '../../contract/errors';
export type { DeliveryResult, Notification, NotificationInput } from '../../contract/activity-io';
import type { DeliveryResult, Notification, NotificationInput } from '../../contract/activity-io';
import { IDEMPOTENCY_KEY_HEADER, SIGNATURE_HEADER, signBody } from './signature';

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
  throw nonRetryable(ErrorType.InvalidWebhook, 'the webhook is not an http(s) URL');
}
