/**
 * The nonce owner of one (network, signer): an entity workflow that hands out nonces and keeps every signed
 * transaction, keyed by step attempt. It is the single writer of the signer's nonce sequence, so nonces are never
 * handed out twice, and a step attempt's transaction is recorded here *before* it is broadcast: a crashed or retried
 * submission finds it and rebroadcasts the same bytes instead of signing a second transaction.
 *
 * Nonces are assigned compare-and-record: the submit activity signs with the `next` nonce it read, and the record is
 * accepted only if that nonce is still `next`. No nonce is ever allocated without a signed transaction behind it, so a
 * crash cannot leave a hole in the sequence; a hole on chain (a dropped transaction) is repaired by rebroadcasting
 * the recorded transactions below the one being sent.
 */
import {
  allHandlersFinished,
  condition,
  continueAsNew,
  defineQuery,
  defineUpdate,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';

export const SIGNER_NONCES_WORKFLOW = 'signerNonces';

/** Workflow id of the nonce owner of a signer on a chain (`scope`: the network name and its genesis hash). */
export function signerNoncesWorkflowId(scope: string, address: string): string {
  return `settle-signer-nonces:${scope}:${address.toLowerCase()}`;
}

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
}
export interface LookupResult {
  record?: NonceRecord;
  next: number;
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
  { accepted: true; record: NonceRecord } | { accepted: false; next: number; record?: NonceRecord; reason: string };

export interface NonceBookState {
  next: number;
  records: Record<string, NonceRecord>;
}

export const lookupNonceUpdate = defineUpdate<LookupResult, [LookupInput]>('lookupNonce');
export const recordSignedTxUpdate = defineUpdate<RecordResult, [RecordInput]>('recordSignedTx');
/** Records whose nonce is in [from, to): what the chain needs before `to` can be mined. */
export const recordsBetweenQuery = defineQuery<NonceRecord[], [{ from: number; to: number }]>('recordsBetween');
export const nonceBookQuery = defineQuery<{ next: number; records: number }>('nonceBook');

/** Records are kept this long: a retry of a step attempt arrives within minutes, not weeks. */
const RETENTION_MS = 7 * 24 * 3600_000;

/** The pure part: a nonce book. No Temporal, so it is tested on its own. */
export class NonceBook {
  constructor(readonly state: NonceBookState = { next: 0, records: {} }) {}

  lookup(input: LookupInput): LookupResult {
    this.state.next = Math.max(this.state.next, input.chainNonce);
    const record = this.state.records[input.key];
    return { ...(record ? { record } : {}), next: this.state.next };
  }

  record(input: RecordInput, at: string): RecordResult {
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
  }
}

function validateRecord(input: RecordInput): void {
  if (!input || typeof input.key !== 'string' || !input.key) throw new Error('recordSignedTx: key is required');
  if (!Number.isSafeInteger(input.nonce) || input.nonce < 0) throw new Error('recordSignedTx: nonce must be >= 0');
  if (!/^0x[0-9a-fA-F]{64}$/.test(input.hash)) throw new Error('recordSignedTx: hash must be a 32-byte hex hash');
  if (!/^0x[0-9a-fA-F]+$/.test(input.raw)) throw new Error('recordSignedTx: raw must be a hex signed transaction');
  if (!['new', 'replace', 'supersede'].includes(input.mode)) throw new Error('recordSignedTx: unknown mode');
}

/**
 * The entity workflow; started on first use (update-with-start) with id `signerNoncesWorkflowId(network, address)`.
 * Runs forever, continuing as new when its history grows.
 */
export async function signerNonces(state?: NonceBookState): Promise<void> {
  const book = new NonceBook(state);
  setHandler(lookupNonceUpdate, (input) => book.lookup(input), {
    validator: (input) => {
      if (!input?.key || !Number.isSafeInteger(input.chainNonce) || input.chainNonce < 0)
        throw new Error('lookupNonce: needs a key and a chainNonce >= 0');
    },
  });
  setHandler(recordSignedTxUpdate, (input) => book.record(input, new Date().toISOString()), {
    validator: validateRecord,
  });
  setHandler(recordsBetweenQuery, ({ from, to }) => book.between(from, to));
  setHandler(nonceBookQuery, () => ({ next: book.state.next, records: Object.keys(book.state.records).length }));
  await condition(() => workflowInfo().continueAsNewSuggested);
  await condition(allHandlersFinished);
  book.prune(Date.now());
  await continueAsNew<typeof signerNonces>(book.state);
}
