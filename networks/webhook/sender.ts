/**
 * Push notifications: POSTs one transition of an action to its webhook, signed (`settle-signature`), with an
 * idempotency key (`<actionId>:<sequence>`) that the signature covers. The workflow delivers its outbox one item at a
 * time, so receivers see each action's transitions in order, at least once; they verify with `verifyNotification` and
 * deduplicate on the key. The receiver is a named endpoint or a URL, reached only at addresses the deployment allows
 * (`address-policy.ts`), without following redirects, reading at most a small answer.
 */
import { Context } from '@temporalio/activity';
import { ErrorType, nonRetryable } from '../../contract/errors';
export type { DeliveryResult, Notification, NotificationInput } from '../../contract/activity-io';
import type { DeliveryResult, Notification, NotificationInput } from '../../contract/activity-io';
import { AllowedHosts, checkHost, WebhookAddressRefusedError, type Resolver } from './address-policy';
import { IDEMPOTENCY_KEY_HEADER, SIGNATURE_HEADER, signNotification } from './signature';
import { resolveTarget, type WebhookEndpoint, type WebhookTarget } from './target';
import { postToWebhook, type PostResponse, type Transport } from './transport';

export interface WebhookDeps {
  /**
   * Signs notifications to raw URLs and to `defaultUrl` (HMAC-SHA256); the receiver holds the same secret. Never in
   * workflow history. Named endpoints have their own.
   */
  secret?: string;
  /** The deployment's webhook, for actions whose spec names none. */
  defaultUrl?: string;
  /** Named receivers (`SETTLE_WEBHOOK_ENDPOINTS`): an action's `webhook` may name one instead of giving a URL. */
  endpoints?: ReadonlyMap<string, WebhookEndpoint>;
  /**
   * Hosts that may be reached although they resolve to loopback, private, link-local or other non-public addresses
   * (`SETTLE_WEBHOOK_ALLOW_HOSTS`: `localhost`, `*.internal.example`, `10.20.0.0/16`). Cloud metadata: never.
   */
  allowHosts?: readonly string[];
  /** One HTTP attempt's time limit, from the lookup to the end of the answer (default 10 s); Temporal retries after it. */
  timeoutMs?: number;
  /** Bytes of an answer's body read at most (default 64 KiB). */
  maxResponseBytes?: number;
  /** For tests: resolves host names (default `dns.lookup`, all addresses). */
  resolve?: Resolver;
  /** For tests: sends the request (default {@link postToWebhook}). */
  transport?: Transport;
}

/** A delivery that did not get a 2xx, or could not connect: thrown so that Temporal retries it with backoff. */
export class WebhookDeliveryError extends Error {
  override name = 'WebhookDeliveryError';
}

/**
 * Creates the notification activity with its secrets: secrets stay in the worker.
 *
 * @example
 * const worker = await Worker.create({
 *   activities: createWebhookActivities({ secret: config.SETTLE_WEBHOOK_SECRET, allowHosts: ['localhost'] }), …
 * });
 */
export function createWebhookActivities(deps: WebhookDeps) {
  const allowed = new AllowedHosts(deps.allowHosts);
  const transport = deps.transport ?? postToWebhook;
  const timeoutMs = deps.timeoutMs ?? 10_000;

  return {
    /**
     * POSTs one transition, signed (`settle-signature: t=<unix seconds>,v1=<hex>,v2=<hex>`, v2 covering
     * `<t>.<idempotency key>.<body>`, signed afresh on each attempt), with `idempotency-key: <actionId>:<sequence>`.
     * Throws on anything but a 2xx so that Temporal retries with backoff (delivery is at least once); a refused
     * address, a redirect, a URL with credentials or an unknown endpoint fail at once (`InvalidWebhook`).
     */
    async deliverNotification(input: NotificationInput): Promise<DeliveryResult> {
      const target = resolveTarget(input.url, deps);
      if (!target) return { delivered: false };
      const key = `${input.actionId}:${input.sequence}`;
      const notification: Notification = {
        id: key,
        actionId: input.actionId,
        sequence: input.sequence,
        event: input.event,
      };
      const body = JSON.stringify(notification);
      const response = await post(target, key, body);
      if (response.status >= 300 && response.status < 400) {
        throw nonRetryable(
          ErrorType.InvalidWebhook,
          `webhook ${target.label} answered ${response.status} for ${key}: redirects are not followed, ` +
            'configure the URL it redirects to',
        );
      }
      if (response.status < 200 || response.status >= 300) {
        throw new WebhookDeliveryError(`webhook ${target.label} answered ${response.status} for ${key}`);
      }
      return { delivered: true, status: response.status };
    },
  };

  async function post(target: WebhookTarget, key: string, body: string): Promise<PostResponse> {
    const signal = attemptSignal(timeoutMs);
    try {
      const addresses = await abortable(checkHost(target.url.hostname, { allowed, resolve: deps.resolve }), signal);
      return await transport({
        url: target.url,
        addresses,
        headers: {
          'content-type': 'application/json',
          'user-agent': 'settle-webhook/2',
          [SIGNATURE_HEADER]: signNotification(target.secret, key, body),
          [IDEMPOTENCY_KEY_HEADER]: key,
        },
        body,
        maxResponseBytes: deps.maxResponseBytes,
        signal,
      });
    } catch (error) {
      if (error instanceof WebhookAddressRefusedError) {
        throw nonRetryable(ErrorType.InvalidWebhook, `${error.message} (${target.label}, ${key})`);
      }
      // Named by its label only: the error goes into workflow history, the URL may carry a token.
      throw new WebhookDeliveryError(`webhook ${target.label} unreachable (${causeOf(error, signal)}) for ${key}`);
    }
  }
}

export type WebhookActivities = ReturnType<typeof createWebhookActivities>;

/** Ends an attempt at its time limit, or when the activity is cancelled (the worker shutting down). */
function attemptSignal(timeoutMs: number): AbortSignal {
  const timeout = AbortSignal.timeout(timeoutMs);
  let cancelled: AbortSignal;
  try {
    cancelled = Context.current().cancellationSignal;
  } catch {
    return timeout; // called outside an activity
  }
  return AbortSignal.any([timeout, cancelled]);
}

/** Rejects when the signal ends first (a DNS lookup cannot be cancelled, only no longer waited for). */
function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason as Error);
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/** A short, credential-free cause: an error code (ECONNREFUSED, ENOTFOUND), `timed out` or `cancelled`. */
function causeOf(error: unknown, signal: AbortSignal): string {
  if (signal.aborted) return (signal.reason as Error | undefined)?.name === 'TimeoutError' ? 'timed out' : 'cancelled';
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' && /^[A-Z0-9_]{2,40}$/.test(code) ? code : (error as Error).name || 'error';
}
