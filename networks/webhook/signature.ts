/**
 * HMAC-SHA256 request signatures, shared by Settle's two signed channels: evidence POSTed to the HTTP API by
 * external watchers, and notifications Settle POSTs to webhooks. The header reads `t=<unix seconds>,v1=<hex>`, the
 * MAC covers `<t>.<raw body>`, and a receiver accepts it only within a replay window, once.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { SettleError } from '../../contract/errors';

/** The signature header (HTTP headers are case-insensitive; Node lower-cases them). */
export const SIGNATURE_HEADER = 'settle-signature';
/** The idempotency key header on notifications: `<actionId>:<sequence>`. */
export const IDEMPOTENCY_KEY_HEADER = 'idempotency-key';
/** Five minutes either way, as most webhook senders use. */
export const DEFAULT_TOLERANCE_SECONDS = 300;

/**
 * Signs a raw body for the `settle-signature` header.
 *
 * @example
 * const body = JSON.stringify(evidence);
 * await fetch(url, { method: 'POST', body, headers: { 'content-type': 'application/json', 'settle-signature': signBody(secret, body) } });
 */
export function signBody(secret: string, body: string | Buffer, timestamp = Math.floor(Date.now() / 1000)): string {
  return `t=${timestamp},v1=${mac(secret, timestamp, body)}`;
}

function mac(secret: string, timestamp: number, body: string | Buffer): string {
  return createHmac('sha256', secret).update(`${timestamp}.`).update(body).digest('hex');
}

export type SignatureCheck =
  | { ok: true; timestamp: number; signature: string }
  | { ok: false; reason: 'missing' | 'malformed' | 'stale' | 'mismatch' | 'replayed' };

export interface VerifyOptions {
  /** One secret, or several while rotating (any of them verifies). */
  secret: string | string[];
  /** The `settle-signature` header as received. */
  header: string | string[] | undefined;
  /** The raw body exactly as received (before JSON parsing). */
  body: string | Buffer;
  toleranceSeconds?: number;
  /** Seconds since the epoch; for tests. */
  now?: number;
  /** Rejects a signature seen before within the window. */
  replayGuard?: ReplayGuard;
}

/**
 * Checks a signature: present, well-formed, within the window, matching, and (with a guard) not seen before.
 *
 * @example
 * const check = verifySignature({ secret, header: req.headers['settle-signature'], body: rawBody, replayGuard });
 * if (!check.ok) return res.status(401).send(check.reason);
 */
export function verifySignature(options: VerifyOptions): SignatureCheck {
  const header = Array.isArray(options.header) ? options.header[0] : options.header;
  if (!header) return { ok: false, reason: 'missing' };
  const parsed = parseHeader(header);
  if (!parsed) return { ok: false, reason: 'malformed' };
  const now = options.now ?? Math.floor(Date.now() / 1000);
  const tolerance = options.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS;
  if (Math.abs(now - parsed.timestamp) > tolerance) return { ok: false, reason: 'stale' };
  const secrets = Array.isArray(options.secret) ? options.secret : [options.secret];
  const given = Buffer.from(parsed.signature, 'hex');
  const matches = secrets.some((secret) => {
    const expected = Buffer.from(mac(secret, parsed.timestamp, options.body), 'hex');
    return expected.length === given.length && timingSafeEqual(expected, given);
  });
  if (!matches) return { ok: false, reason: 'mismatch' };
  if (options.replayGuard && !options.replayGuard.claim(parsed.signature, parsed.timestamp + tolerance, now)) {
    return { ok: false, reason: 'replayed' };
  }
  return { ok: true, ...parsed };
}

function parseHeader(header: string): { timestamp: number; signature: string } | undefined {
  const fields = new Map(
    header.split(',').map((part) => {
      const at = part.indexOf('=');
      return [part.slice(0, at).trim(), part.slice(at + 1).trim()] as const;
    }),
  );
  const t = fields.get('t');
  const v1 = fields.get('v1');
  if (!t || !/^\d{1,12}$/.test(t) || !v1 || !/^[0-9a-f]{64}$/.test(v1)) return undefined;
  return { timestamp: Number(t), signature: v1 };
}

/**
 * Remembers signatures until their window closes, so the same signed request is accepted once. In memory: one
 * process; behind several API replicas, route a watcher to one replica or share a store.
 */
export class ReplayGuard {
  private readonly seen = new Map<string, number>();

  /** True the first time a signature is claimed (until `expiresAt`, in epoch seconds); false on a replay. */
  claim(signature: string, expiresAt: number, now = Math.floor(Date.now() / 1000)): boolean {
    for (const [key, expiry] of this.seen) if (expiry < now) this.seen.delete(key);
    if (this.seen.has(signature)) return false;
    this.seen.set(signature, expiresAt);
    return true;
  }
}

export interface VerifiedNotification<T = unknown> {
  /** `<actionId>:<sequence>`: deduplicate on it, deliveries are at least once. */
  idempotencyKey: string;
  notification: T;
}

/**
 * Receiver side of Settle's webhooks: verifies the signature and parses the body. Throws on a bad signature.
 * Deliveries are at least once and in order per action: skip an idempotency key you have already processed.
 *
 * @example
 * const { idempotencyKey, notification } = verifyNotification({ secret, headers: req.headers, body: rawBody });
 * if (!(await alreadyProcessed(idempotencyKey))) await handle(notification.event);
 */
export function verifyNotification<T = unknown>(options: {
  secret: string | string[];
  headers: Record<string, string | string[] | undefined>;
  body: string | Buffer;
  toleranceSeconds?: number;
  now?: number;
}): VerifiedNotification<T> {
  const check = verifySignature({ ...options, header: options.headers[SIGNATURE_HEADER] });
  if (!check.ok) throw new SignatureError(check.reason);
  const key = options.headers[IDEMPOTENCY_KEY_HEADER];
  return {
    idempotencyKey: (Array.isArray(key) ? key[0] : key) ?? '',
    notification: JSON.parse(options.body.toString()) as T,
  };
}

/** A notification whose signature does not verify (`reason`: missing, malformed, stale, mismatch or replayed). */
export class SignatureError extends SettleError {
  override name = 'SignatureError';
  constructor(readonly reason: Exclude<SignatureCheck, { ok: true }>['reason']) {
    super(`invalid signature: ${reason}`);
  }
}
