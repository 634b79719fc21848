/**
 * Which receiver a notification goes to, and with which secret. An action's `webhook` names a deployment endpoint
 * (`"partner-a"`, from `SETTLE_WEBHOOK_ENDPOINTS`: URL and secret stay in the worker) or, for compatibility, is a raw
 * http(s) URL signed with the deployment's secret; an action that names none goes to `SETTLE_WEBHOOK_URL`. A raw URL
 * is part of the action's spec, so it is in workflow history: one that carries credentials is refused, and errors and
 * logs name receivers without them.
 */
import { ErrorType, nonRetryable } from '../../contract/errors';

/** A named receiver from the deployment's configuration. Its URL may hold credentials: it never enters history. */
export interface WebhookEndpoint {
  url: string;
  /** Signs its notifications (HMAC-SHA256): each receiver holds only its own. */
  secret: string;
}

/** An endpoint name: what an action's `webhook` says instead of a URL (no ":", so never mistaken for one). */
export const ENDPOINT_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export interface WebhookTarget {
  url: URL;
  secret: string;
  /** How errors and logs name the receiver: never a credential, a query or (for configured URLs) a path. */
  label: string;
  /** The URL came from the action (raw): the address rules apply the same, but nothing in it is secret. */
  fromAction: boolean;
}

export interface TargetSources {
  /** Signs raw URLs and the default URL. */
  secret?: string;
  defaultUrl?: string;
  endpoints?: ReadonlyMap<string, WebhookEndpoint>;
}

/**
 * The receiver of a notification: a named endpoint, the action's raw URL, or the deployment's default; undefined
 * when there is none. Throws a non-retryable `InvalidWebhook` for an unknown endpoint, a URL that is not http(s), or
 * a raw URL with credentials in it.
 *
 * @example resolveTarget('partner-a', { endpoints }) // { url: URL('https://…'), secret: '…', label: 'endpoint "partner-a" (https://partner.example)' }
 */
export function resolveTarget(webhook: string | undefined, sources: TargetSources): WebhookTarget | undefined {
  if (webhook === undefined) {
    if (!sources.defaultUrl) return undefined;
    const url = httpUrl(sources.defaultUrl, 'SETTLE_WEBHOOK_URL');
    return { url, secret: needSecret(sources), label: `SETTLE_WEBHOOK_URL (${url.origin})`, fromAction: false };
  }
  if (ENDPOINT_NAME_PATTERN.test(webhook)) {
    const endpoint = sources.endpoints?.get(webhook);
    if (!endpoint) {
      throw nonRetryable(ErrorType.InvalidWebhook, `webhook endpoint "${webhook}" is not configured on this worker`);
    }
    const url = httpUrl(endpoint.url, `endpoint "${webhook}"`);
    return { url, secret: endpoint.secret, label: `endpoint "${webhook}" (${url.origin})`, fromAction: false };
  }
  const url = httpUrl(webhook, 'the webhook');
  const credentials = urlCredentials(url);
  if (credentials) {
    throw nonRetryable(
      ErrorType.InvalidWebhook,
      `the webhook ${redactUrl(url)} carries ${credentials}, which would be kept in workflow history: ` +
        'name an endpoint of SETTLE_WEBHOOK_ENDPOINTS instead',
    );
  }
  return { url, secret: needSecret(sources), label: redactUrl(url), fromAction: true };
}

function needSecret(sources: TargetSources): string {
  if (sources.secret) return sources.secret;
  throw nonRetryable(
    ErrorType.InvalidWebhook,
    'this worker has no SETTLE_WEBHOOK_SECRET to sign a webhook URL: name an endpoint of SETTLE_WEBHOOK_ENDPOINTS',
  );
}

function httpUrl(text: string, what: string): URL {
  if (URL.canParse(text)) {
    const url = new URL(text);
    if (url.protocol === 'http:' || url.protocol === 'https:') return url;
  }
  throw nonRetryable(ErrorType.InvalidWebhook, `${what} is not an http(s) URL`);
}

/** Query parameters named like credentials (`token`, `access_token`, `api_key`, `sig`, `password`, …). */
const CREDENTIAL_PARAMETER = /(token|secret|passw(or)?d|pwd|key|sig|signature|auth|authorization|credentials?)$/;

/**
 * What in a URL looks like a credential: user info (`user:pass@`) or a query parameter named like one. Undefined when
 * nothing does.
 *
 * @example urlCredentials(new URL('https://h/p?token=abc')) // 'a query parameter "token"'
 */
export function urlCredentials(url: URL): string | undefined {
  if (url.username || url.password) return 'credentials (user info before "@")';
  for (const name of url.searchParams.keys()) {
    if (CREDENTIAL_PARAMETER.test(name.toLowerCase().replace(/[^a-z0-9]/g, ''))) {
      return `a query parameter "${name.slice(0, 40)}"`;
    }
  }
  return undefined;
}

/**
 * A URL as errors and logs may show it: `scheme://host/path`, without user info, query or fragment.
 *
 * @example redactUrl('https://u:p@hooks.example.com/settle?token=abc') // 'https://hooks.example.com/settle'
 */
export function redactUrl(url: URL | string): string {
  const parsed = typeof url === 'string' ? (URL.canParse(url) ? new URL(url) : undefined) : url;
  if (!parsed) return '(not a URL)';
  return `${parsed.protocol}//${parsed.host}${parsed.pathname}`;
}
