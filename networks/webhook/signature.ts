/**
 * HMAC-SHA256 request signatures, shared by Settle's two signed channels: evidence POSTed to the HTTP API by
 * external watchers, and notifications Settle POSTs to webhooks. The header reads `t=<unix seconds>,v1=<hex>`, the
 * MAC covers `<t>.<raw body>`, and a receiver accepts it only within a replay window, once. Evidence signatures add a
 * key id and bind the action (`<t>.<actionId>.<body>`); notification signatures add `v2=`, binding the idempotency key
 * (`<t>.<idempotency key>.<body>`).
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
  /** `<actionId>:<sequence>`: deduplicate on it, deliveries are at least once. Covered by the signature. */
  idempotencyKey: string;
  notification: T;
}

/**
 * Signs a notification for the `settle-signature` header: `t=<unix seconds>,v1=<hex>,v2=<hex>`. `v2` is the
 * HMAC-SHA256 of `<t>.<idempotency key>.<raw body>`, so a receiver that deduplicates on the `idempotency-key` header
 * knows Settle sent that key; `v1` (of `<t>.<raw body>`) stays for receivers on an older `verifyNotification`, and is
 * bound to the key through the body's `id`. The text is unambiguous: a key holds no "{", and a body is a JSON object.
 *
 * @example
 * const header = signNotification(secret, 'xfer-7f3a:3', body); // 't=1800000000,v1=…,v2=…'
 */
export function signNotification(
  secret: string,
  idempotencyKey: string,
  body: string | Buffer,
  timestamp = Math.floor(Date.now() / 1000),
): string {
  return `${signBody(secret, body, timestamp)},v2=${notificationMac(secret, timestamp, idempotencyKey, body)}`;
}

function notificationMac(secret: string, timestamp: number, idempotencyKey: string, body: string | Buffer): string {
  return createHmac('sha256', secret).update(`${timestamp}.${idempotencyKey}.`).update(body).digest('hex');
}

/**
 * Receiver side of Settle's webhooks: verifies the signature, with the idempotency key, and parses the body. Throws a
 * {@link SignatureError} on a bad signature or a key that is not the one signed. A `v2` signature is checked when
 * present (a header from an older Settle has only `v1`: then the body's `id` must equal the key). Deliveries are at
 * least once and in order per action: skip an idempotency key you have already processed.
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
  /** Rejects a signature seen before within the window (a retried delivery is signed afresh: it passes). */
  replayGuard?: ReplayGuard;
}): VerifiedNotification<T> {
  const header = first(options.headers[SIGNATURE_HEADER]);
  const key = first(options.headers[IDEMPOTENCY_KEY_HEADER]);
  if (!header || key === undefined) throw new SignatureError('missing');
  const v2 = /(?:^|,)\s*v2=([^,]*)/.exec(header)?.[1].trim();
  if (v2 === undefined) {
    // An older sender: v1 covers the body, and the body's id is the key.
    const check = verifySignature({ ...options, header });
    if (!check.ok) throw new SignatureError(check.reason);
    const notification = JSON.parse(options.body.toString()) as T;
    if ((notification as { id?: unknown } | null)?.id !== key) throw new SignatureError('mismatch');
    return { idempotencyKey: key, notification };
  }
  const check = verifyKeyed(header, v2, key, options);
  if (!check.ok) throw new SignatureError(check.reason);
  return { idempotencyKey: key, notification: JSON.parse(options.body.toString()) as T };
}

function verifyKeyed(
  header: string,
  v2: string,
  key: string,
  options: {
    secret: string | string[];
    body: string | Buffer;
    toleranceSeconds?: number;
    now?: number;
    replayGuard?: ReplayGuard;
  },
): SignatureCheck {
  const t = /(?:^|,)\s*t=([^,]*)/.exec(header)?.[1].trim();
  if (!t || !/^\d{1,12}$/.test(t) || !/^[0-9a-f]{64}$/.test(v2)) return { ok: false, reason: 'malformed' };
  const timestamp = Number(t);
  const now = options.now ?? Math.floor(Date.now() / 1000);
  const tolerance = options.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS;
  if (Math.abs(now - timestamp) > tolerance) return { ok: false, reason: 'stale' };
  const given = Buffer.from(v2, 'hex');
  const secrets = Array.isArray(options.secret) ? options.secret : [options.secret];
  const matches = secrets.some((secret) =>
    timingSafeEqual(Buffer.from(notificationMac(secret, timestamp, key, options.body), 'hex'), given),
  );
  if (!matches) return { ok: false, reason: 'mismatch' };
  if (options.replayGuard && !options.replayGuard.claim(v2, timestamp + tolerance, now)) {
    return { ok: false, reason: 'replayed' };
  }
  return { ok: true, timestamp, signature: v2 };
}

function first(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** A notification whose signature does not verify (`reason`: missing, malformed, stale, mismatch or replayed). */
export class SignatureError extends SettleError {
  override name = 'SignatureError';
  constructor(readonly reason: Exclude<SignatureCheck, { ok: true }>['reason']) {
    super(`invalid signature: ${reason}`);
  }
}

/**
 * A key id names who signs: each evidence source (a watcher, an attester, a provider) has its own key, and the HTTP API
 * records the key id as the evidence's source. No ":" (the API writes `<key id>:<detail>`), "," or "=" (header syntax).
 */
export const KEY_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export interface SignEvidenceOptions {
  /** Which key signs (`kid=`): the receiver looks its secret up by this id. */
  keyId: string;
  secret: string;
  /** The action the evidence is for: covered by the MAC, so the body is refused for any other action. */
  actionId: string;
  /** The raw body exactly as it will be sent. */
  body: string | Buffer;
  /** Seconds since the epoch; default now. */
  timestamp?: number;
}

/**
 * Signs evidence for one action with a named key, for `POST /v1/actions/:id/evidence`. The header reads
 * `t=<unix seconds>,kid=<key id>,v1=<hex>`; the MAC (HMAC-SHA256) covers `<t>.<actionId>.<raw body>`. The text is
 * unambiguous: an action id holds no whitespace and no "{", and an evidence body is a JSON object.
 *
 * @example
 * const body = JSON.stringify({ step: 'attest', kind: 'finalized' });
 * const signature = signEvidence({ keyId: 'attester', secret, actionId: 'xfer-7f3a', body });
 * await fetch(`${api}/v1/actions/xfer-7f3a/evidence`, { method: 'POST', body, headers: { 'content-type': 'application/json', 'settle-signature': signature } });
 */
export function signEvidence(options: SignEvidenceOptions): string {
  if (!KEY_ID_PATTERN.test(options.keyId)) throw new Error(`invalid key id "${options.keyId.slice(0, 80)}"`);
  const timestamp = options.timestamp ?? Math.floor(Date.now() / 1000);
  return `t=${timestamp},kid=${options.keyId},v1=${evidenceMac(options.secret, timestamp, options.actionId, options.body)}`;
}

function evidenceMac(secret: string, timestamp: number, actionId: string, body: string | Buffer): string {
  return createHmac('sha256', secret).update(`${timestamp}.${actionId}.`).update(body).digest('hex');
}

/** The fields of an evidence signature header, before any check of the MAC. */
export interface EvidenceSignatureFields {
  timestamp: number;
  keyId: string;
  signature: string;
}

/**
 * Reads an evidence signature header without checking it: enough to refuse a request that names no key, or an unknown
 * one, before reading its body. `undefined` when the header is malformed or names no key id.
 */
export function parseEvidenceSignature(header: string | string[] | undefined): EvidenceSignatureFields | undefined {
  const text = Array.isArray(header) ? header[0] : header;
  if (!text || text.length > 512) return undefined;
  const fields = new Map<string, string>();
  for (const part of text.split(',')) {
    const at = part.indexOf('=');
    if (at <= 0) return undefined;
    const name = part.slice(0, at).trim();
    if (fields.has(name)) return undefined;
    fields.set(name, part.slice(at + 1).trim());
  }
  const t = fields.get('t');
  const keyId = fields.get('kid');
  const v1 = fields.get('v1');
  if (!t || !/^\d{1,12}$/.test(t) || !v1 || !/^[0-9a-f]{64}$/.test(v1)) return undefined;
  if (!keyId || !KEY_ID_PATTERN.test(keyId)) return undefined;
  return { timestamp: Number(t), keyId, signature: v1 };
}

export type EvidenceSignatureCheck =
  | { ok: true; keyId: string; timestamp: number; signature: string }
  | { ok: false; reason: 'missing' | 'malformed' | 'unknown key' | 'stale' | 'mismatch' | 'replayed'; keyId?: string };

export interface VerifyEvidenceOptions {
  /** The secrets of a key id (several while rotating), or undefined for an unknown key. */
  secretsOf: (keyId: string) => readonly string[] | undefined;
  /** The `settle-signature` header as received. */
  header: string | string[] | undefined;
  /** The action the request addresses (from its URL): a signature made for another action does not match. */
  actionId: string;
  /** The raw body exactly as received. */
  body: string | Buffer;
  toleranceSeconds?: number;
  /** Seconds since the epoch; for tests. */
  now?: number;
  /** Rejects a signature seen before within the window. */
  replayGuard?: ReplayGuard;
}

/**
 * Checks an evidence signature: present, well-formed with a key id, a known key, within the window, matching this
 * action and body, and (with a guard) not seen before. A header in the older form (`t=…,v1=…`, no key id, not bound
 * to an action) is `malformed` here.
 *
 * @example
 * const check = verifyEvidenceSignature({ secretsOf: (kid) => keys.get(kid), header, actionId, body: rawBody, replayGuard });
 * if (check.ok) record(evidence, { source: check.keyId });
 */
export function verifyEvidenceSignature(options: VerifyEvidenceOptions): EvidenceSignatureCheck {
  const header = Array.isArray(options.header) ? options.header[0] : options.header;
  if (!header) return { ok: false, reason: 'missing' };
  const parsed = parseEvidenceSignature(header);
  if (!parsed) return { ok: false, reason: 'malformed' };
  const { keyId } = parsed;
  const secrets = options.secretsOf(keyId);
  if (!secrets || secrets.length === 0) return { ok: false, reason: 'unknown key', keyId };
  const now = options.now ?? Math.floor(Date.now() / 1000);
  const tolerance = options.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS;
  if (Math.abs(now - parsed.timestamp) > tolerance) return { ok: false, reason: 'stale', keyId };
  const given = Buffer.from(parsed.signature, 'hex');
  let matches = false;
  for (const secret of secrets) {
    const expected = Buffer.from(evidenceMac(secret, parsed.timestamp, options.actionId, options.body), 'hex');
    if (timingSafeEqual(expected, given)) matches = true;
  }
  if (!matches) return { ok: false, reason: 'mismatch', keyId };
  if (options.replayGuard && !options.replayGuard.claim(parsed.signature, parsed.timestamp + tolerance, now)) {
    return { ok: false, reason: 'replayed', keyId };
  }
  return { ok: true, ...parsed };
}
