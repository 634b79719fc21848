/**
 * The nonce book of one (chain, signer): which nonce is next, every signed transaction still unresolved, keyed by step
 * attempt, and a small tombstone of each settled one. Pure: the `signerNonces` entity workflow only wires it to
 * updates and queries and continues as new.
 *
 * Nonces are assigned compare-and-record: the submit activity signs with the `next` nonce it read, and the record is
 * accepted only if that nonce is still `next`. No nonce is ever allocated without a signed transaction behind it, so a
 * crash cannot leave a hole in the sequence; a hole on chain (a dropped transaction) is repaired by rebroadcasting
 * the recorded transactions below the one being sent.
 *
 * The book stays small: a record keeps its signed bytes until the sender reports one of its versions mined deep in the
 * chain (`settle`); it then shrinks to a tombstone (key, nonce, hash) that answers a late retry of its attempt for a
 * week, and is forgotten. A record nobody settles is never forgotten.
 */

export interface SignedTx {
  hash: string;
  /** The signed raw transaction (public once broadcast; never a key). */
  raw: string;
  signedAt: string;
}

export interface NonceRecord {
  /** `<actionId>/<firstRunId>/<step>/<attempt>/<for>` (legacy `<actionId>/<step>/<attempt>/<for>`): one per attempt. */
  key: string;
  nonce: number;
  /** Every version signed for this attempt: the original, then fee bumps (same nonce) or a re-sign (new nonce). */
  txs: SignedTx[];
  /** Set to `nonce` when that nonce was found used deep in the chain by none of the versions: not offered to settle. */
  foreignAt?: number;
}

/** A settled record: the version that was mined, without its bytes. */
export interface SettledRecord {
  key: string;
  nonce: number;
  hash: string;
  /** The block it was mined in (decimal). */
  block: string;
  /** The version it replaced, when the mined one is a fee bump or a re-sign. */
  replaces?: string;
}
type Tombstone = Omit<SettledRecord, 'key'> & { at: string };

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
  /** The attempt's transaction is mined: the answer, without signing or sending anything. */
  settled?: SettledRecord;
  next: number;
  /** The key has no record and never will (closed by `abandonIfAbsent`). */
  abandoned?: boolean;
  /** This book was handed over to the owner with this workflow id: it records nothing more. */
  movedTo?: string;
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
  | {
      accepted: false;
      next: number;
      record?: NonceRecord;
      settled?: SettledRecord;
      reason: string;
      abandoned?: boolean;
    };

/** What the sender learnt from the chain about records whose nonce is used deep down (see {@link NonceBook.unsettled}). */
export interface SettleInput {
  /** A version of a record is mined at least the settling depth deep. `key` absent: the record is found by hash. */
  mined: { key?: string; hash: string; blockNumber: string }[];
  /** The record's nonce was used, deep down, by a transaction that is none of its versions. */
  foreign?: { key: string; nonce: number }[];
}
/** A record whose nonce the chain used deep down: whether one of its versions did is for the sender to read. */
export interface UnsettledRecord {
  key: string;
  nonce: number;
  hashes: string[];
}

export interface NonceBookState {
  next: number;
  /** Unresolved records, with their signed bytes. */
  records: Record<string, NonceRecord>;
  /** Keys closed without a record (see {@link LookupInput.abandonIfAbsent}), with when. */
  abandoned?: Record<string, string>;
  /** Settled records by key, with when they were settled (or last asked for). */
  settled?: Record<string, Tombstone>;
  /** Handed over to the owner with this workflow id (a book kept under an older scope). */
  movedTo?: string;
  /** Workflow ids of the owners whose books were merged into this one. */
  adopted?: string[];
}

/** A settled attempt is retried within minutes (hours if workers are down), not weeks: its tombstone is kept a week. */
const RETENTION_MS = 7 * 24 * 3600_000;

/** The nonce book of one signer: the rules, with no Temporal, so they are tested on its own. */
export class NonceBook {
  constructor(readonly state: NonceBookState = { next: 0, records: {} }) {}

  lookup(input: LookupInput, at = ''): LookupResult {
    const { state } = this;
    state.next = Math.max(state.next, input.chainNonce);
    const record = state.records[input.key];
    const settled = this.settledRecord(input.key, at);
    if (!record && !settled && input.abandonIfAbsent && !state.movedTo) (state.abandoned ??= {})[input.key] ??= at;
    const abandoned = !record && !settled && state.abandoned?.[input.key] !== undefined;
    return {
      ...(record ? { record } : {}),
      ...(settled ? { settled } : {}),
      next: state.next,
      ...(abandoned ? { abandoned } : {}),
      ...(state.movedTo ? { movedTo: state.movedTo } : {}),
    };
  }

  record(input: RecordInput, at: string): RecordResult {
    const { state } = this;
    const existing = state.records[input.key];
    const settled = this.settledRecord(input.key, at);
    const refuse = (reason: string, extra: { abandoned?: true } = {}): RecordResult => ({
      accepted: false,
      next: state.next,
      ...(existing ? { record: existing } : {}),
      ...(settled ? { settled } : {}),
      reason,
      ...extra,
    });
    if (state.movedTo) return refuse(`this nonce book moved to ${state.movedTo}`);
    if (settled) return refuse('this step attempt is settled: its transaction is mined');
    if (state.abandoned?.[input.key] !== undefined) {
      return refuse('this step attempt was abandoned', { abandoned: true });
    }
    const tx: SignedTx = { hash: input.hash, raw: input.raw, signedAt: at };
    const latest = existing?.txs[existing.txs.length - 1];
    if (input.mode === 'new') {
      if (existing) return refuse('this step attempt already has a signed transaction');
      if (input.nonce !== state.next) return refuse(`nonce ${input.nonce} is not next (${state.next})`);
      const record: NonceRecord = { key: input.key, nonce: input.nonce, txs: [tx] };
      state.records[input.key] = record;
      state.next++;
      return { accepted: true, record };
    }
    if (!existing || !latest) return refuse('no transaction to replace for this step attempt');
    if (latest.hash === input.hash) return { accepted: true, record: existing };
    if (latest.hash !== input.replaces) return refuse(`the latest version is ${latest.hash}, not ${input.replaces}`);
    if (input.mode === 'replace') {
      if (input.nonce !== existing.nonce) return refuse(`a replacement must reuse nonce ${existing.nonce}`);
    } else {
      if (input.nonce !== state.next) return refuse(`nonce ${input.nonce} is not next (${state.next})`);
      existing.nonce = input.nonce;
      delete existing.foreignAt;
      state.next++;
    }
    existing.txs.push(tx);
    return { accepted: true, record: existing };
  }

  /** Settled records shrink to tombstones; records whose nonce went to someone else are marked, and kept. */
  settle(input: SettleInput, at: string): { settled: string[] } {
    const { records } = this.state;
    const settled: string[] = [];
    for (const { key, hash, blockNumber } of input.mined) {
      const record = key ? records[key] : Object.values(records).find((r) => r.txs.some((tx) => tx.hash === hash));
      const index = record ? record.txs.findIndex((tx) => tx.hash === hash) : -1;
      if (!record || index < 0) continue;
      const replaces = index > 0 ? { replaces: record.txs[index - 1].hash } : {};
      (this.state.settled ??= {})[record.key] = { nonce: record.nonce, hash, block: blockNumber, ...replaces, at };
      delete records[record.key];
      settled.push(record.key);
    }
    for (const { key, nonce } of input.foreign ?? []) {
      if (records[key]?.nonce === nonce) records[key].foreignAt = nonce;
    }
    return { settled };
  }

  /** Unresolved records whose nonce is below `below` (the signer's nonce deep in the chain), lowest first. */
  unsettled(below: number, limit: number): UnsettledRecord[] {
    return Object.values(this.state.records)
      .filter((r) => r.nonce < below && r.foreignAt !== r.nonce)
      .sort((a, b) => a.nonce - b.nonce)
      .slice(0, limit)
      .map((r) => ({ key: r.key, nonce: r.nonce, hashes: r.txs.map((tx) => tx.hash) }));
  }

  between(from: number, to: number): NonceRecord[] {
    return Object.values(this.state.records)
      .filter((r) => r.nonce >= from && r.nonce < to)
      .sort((a, b) => a.nonce - b.nonce);
  }

  /** Hands the book over to another owner: from now on it records nothing. Returns what the other owner adopts. */
  retire(movedTo: string): NonceBookState {
    this.state.movedTo ??= movedTo;
    return this.state;
  }

  /**
   * Merges the book of an owner kept under an older scope, once per owner. Its records are kept as they are, even one
   * whose nonce this book also gave out (two scopes for one chain did that): the sender finds such a nonce used by
   * another transaction and signs the loser again with a new nonce.
   */
  adopt(from: string, book: NonceBookState): { adopted: boolean } {
    const { state } = this;
    if (state.adopted?.includes(from)) return { adopted: false };
    state.next = Math.max(state.next, book.next);
    for (const [key, record] of Object.entries(book.records)) {
      if (!state.records[key] && !state.settled?.[key]) state.records[key] = record;
    }
    for (const [key, tombstone] of Object.entries(book.settled ?? {})) {
      if (!state.records[key]) (state.settled ??= {})[key] ??= tombstone;
    }
    for (const [key, when] of Object.entries(book.abandoned ?? {})) {
      if (!state.records[key]) (state.abandoned ??= {})[key] ??= when;
    }
    (state.adopted ??= []).push(from);
    return { adopted: true };
  }

  /** Forgets tombstones and closed keys a week old. Unresolved records are kept, bytes and all. */
  prune(nowMs: number): void {
    for (const map of [this.state.settled, this.state.abandoned]) {
      for (const [key, value] of Object.entries(map ?? {})) {
        const at = typeof value === 'string' ? value : value.at;
        if (nowMs - Date.parse(at) > RETENTION_MS) delete map![key];
      }
    }
  }

  /** A key's tombstone as a settled record; asking for it keeps it another week. */
  private settledRecord(key: string, at: string): SettledRecord | undefined {
    const tombstone = this.state.settled?.[key];
    if (!tombstone) return undefined;
    if (at) tombstone.at = at;
    const { at: _at, ...rest } = tombstone;
    return { key, ...rest };
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

/** Rejects a `settleRecords` whose hashes, block numbers or keys are malformed, naming the entry. */
export function validateSettle(input: SettleInput): void {
  if (!Array.isArray(input?.mined)) throw new Error('settleRecords: mined must be a list');
  input.mined.forEach((mined, i) => {
    if (!/^0x[0-9a-fA-F]{64}$/.test(mined?.hash)) throw new Error(`settleRecords: mined[${i}].hash must be a tx hash`);
    if (!/^\d+$/.test(mined.blockNumber)) throw new Error(`settleRecords: mined[${i}].blockNumber must be decimal`);
  });
  (input.foreign ?? []).forEach((foreign, i) => {
    if (!foreign?.key || !Number.isSafeInteger(foreign.nonce) || foreign.nonce < 0)
      throw new Error(`settleRecords: foreign[${i}] needs a key and a nonce >= 0`);
  });
}

/** Rejects an `adoptNonceBook` without the old owner's id or a book. */
export function validateAdopt(input: { from: string; book: NonceBookState }): void {
  if (!input?.from || !Number.isSafeInteger(input.book?.next) || typeof input.book.records !== 'object')
    throw new Error('adoptNonceBook: needs the old owner (from) and its book (next, records)');
}
