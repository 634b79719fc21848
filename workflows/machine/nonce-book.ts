/**
 * The nonce book of one (network, signer): which nonce is next, and every signed transaction, keyed by step attempt.
 * Pure: the `signerNonces` entity workflow only wires it to updates and queries and continues as new.
 *
 * Nonces are assigned compare-and-record: the submit activity signs with the `next` nonce it read, and the record is
 * accepted only if that nonce is still `next`. No nonce is ever allocated without a signed transaction behind it, so a
 * crash cannot leave a hole in the sequence; a hole on chain (a dropped transaction) is repaired by rebroadcasting
 * the recorded transactions below the one being sent.
 */

export interface SignedTx {
  hash: string;
  /** The signed raw transaction (public once broadcast; never a key). */
  raw: string;
  signedAt: string;
}

export interface NonceRecord {
  /** `${actionId}/${stepId}/${attempt}/${operation|compensation}`: one record per step attempt. */
  key: string;
  nonce: number;
  /** Every version signed for this attempt: the original, then fee bumps (same nonce) or a re-sign (new nonce). */
  txs: SignedTx[];
}

export interface LookupInput {
  key: string;
  /** The chain's pending nonce for the signer: the book never hands out a nonce below it. */
  chainNonce: number;
  /**
   * The action gave this attempt up (compensation was decided while it was being submitted): when the key has no
   * record, it is closed for good, so a submission still racing (a worker past its timeout) can never record one.
   */
  abandonIfAbsent?: boolean;
}
export interface LookupResult {
  record?: NonceRecord;
  next: number;
  /** The key has no record and never will (closed by `abandonIfAbsent`). */
  abandoned?: boolean;
}

export interface RecordInput {
  key: string;
  nonce: number;
  hash: string;
  raw: string;
  /**
   * `new`: the first transaction of this key, with nonce = next. `replace`: a fee bump, same nonce, of the latest
   * version `replaces`. `supersede`: the latest version `replaces` is dead (its nonce was used by another transaction);
   * re-signed with nonce = next.
   */
  mode: 'new' | 'replace' | 'supersede';
  replaces?: string;
}
export type RecordResult =
  | { accepted: true; record: NonceRecord }
  | { accepted: false; next: number; record?: NonceRecord; reason: string; abandoned?: boolean };

export interface NonceBookState {
  next: number;
  records: Record<string, NonceRecord>;
  /** Keys closed without a record (see {@link LookupInput.abandonIfAbsent}), with when. */
  abandoned?: Record<string, string>;
}

/** Records are kept this long: a retry of a step attempt arrives within minutes, not weeks. */
const RETENTION_MS = 7 * 24 * 3600_000;

/** The nonce book of one signer: the rules, with no Temporal, so they are tested on its own. */
export class NonceBook {
  constructor(readonly state: NonceBookState = { next: 0, records: {} }) {}

  lookup(input: LookupInput, at = ''): LookupResult {
    this.state.next = Math.max(this.state.next, input.chainNonce);
    const record = this.state.records[input.key];
    if (!record && input.abandonIfAbsent) (this.state.abandoned ??= {})[input.key] ??= at;
    const abandoned = !record && this.state.abandoned?.[input.key] !== undefined;
    return { ...(record ? { record } : {}), next: this.state.next, ...(abandoned ? { abandoned } : {}) };
  }

  record(input: RecordInput, at: string): RecordResult {
    if (this.state.abandoned?.[input.key] !== undefined) {
      return { accepted: false, next: this.state.next, reason: 'this step attempt was abandoned', abandoned: true };
    }
    const existing = this.state.records[input.key];
    const tx: SignedTx = { hash: input.hash, raw: input.raw, signedAt: at };
    const refuse = (reason: string): RecordResult => ({
      accepted: false,
      next: this.state.next,
      ...(existing ? { record: existing } : {}),
      reason,
    });
    const latest = existing?.txs[existing.txs.length - 1];
    if (input.mode === 'new') {
      if (existing) return refuse('this step attempt already has a signed transaction');
      if (input.nonce !== this.state.next) return refuse(`nonce ${input.nonce} is not next (${this.state.next})`);
      const record: NonceRecord = { key: input.key, nonce: input.nonce, txs: [tx] };
      this.state.records[input.key] = record;
      this.state.next++;
      return { accepted: true, record };
    }
    if (!existing || !latest) return refuse('no transaction to replace for this step attempt');
    if (latest.hash === input.hash) return { accepted: true, record: existing };
    if (latest.hash !== input.replaces) return refuse(`the latest version is ${latest.hash}, not ${input.replaces}`);
    if (input.mode === 'replace') {
      if (input.nonce !== existing.nonce) return refuse(`a replacement must reuse nonce ${existing.nonce}`);
    } else {
      if (input.nonce !== this.state.next) return refuse(`nonce ${input.nonce} is not next (${this.state.next})`);
      existing.nonce = input.nonce;
      this.state.next++;
    }
    existing.txs.push(tx);
    return { accepted: true, record: existing };
  }

  between(from: number, to: number): NonceRecord[] {
    return Object.values(this.state.records)
      .filter((r) => r.nonce >= from && r.nonce < to)
      .sort((a, b) => a.nonce - b.nonce);
  }

  prune(nowMs: number): void {
    for (const [key, record] of Object.entries(this.state.records)) {
      const last = record.txs[record.txs.length - 1];
      if (last && nowMs - Date.parse(last.signedAt) > RETENTION_MS) delete this.state.records[key];
    }
    for (const [key, at] of Object.entries(this.state.abandoned ?? {})) {
      if (nowMs - Date.parse(at) > RETENTION_MS) delete this.state.abandoned![key];
    }
  }
}

/** Rejects a malformed `recordSignedTx` before it is accepted (a rejected update leaves no trace in history). */
export function validateRecord(input: RecordInput): void {
  if (!input || typeof input.key !== 'string' || !input.key) throw new Error('recordSignedTx: key is required');
  if (!Number.isSafeInteger(input.nonce) || input.nonce < 0) throw new Error('recordSignedTx: nonce must be >= 0');
  if (!/^0x[0-9a-fA-F]{64}$/.test(input.hash)) throw new Error('recordSignedTx: hash must be a 32-byte hex hash');
  if (!/^0x[0-9a-fA-F]+$/.test(input.raw)) throw new Error('recordSignedTx: raw must be a hex signed transaction');
  if (!['new', 'replace', 'supersede'].includes(input.mode)) throw new Error('recordSignedTx: unknown mode');
}

/** Rejects a `lookupNonce` without a key or with a negative chain nonce. */
export function validateLookup(input: LookupInput): void {
  if (!input?.key || !Number.isSafeInteger(input.chainNonce) || input.chainNonce < 0)
    throw new Error('lookupNonce: needs a key and a chainNonce >= 0');
}
