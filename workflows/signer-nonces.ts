/**
 * The nonce owner of one (chain, signer): an entity workflow that hands out nonces and keeps every signed
 * transaction until it is settled, keyed by step attempt. It is the single writer of the signer's nonce sequence, so nonces are never
 * handed out twice, and a step attempt's transaction is recorded here *before* it is broadcast: a crashed or retried
 * submission finds it and rebroadcasts the same bytes instead of signing a second transaction.
 *
 * The rules (compare-and-record nonces, replacements, settling, retention, hand-over, spend budgets) are the pure
 * `NonceBook` in `machine/nonce-book.ts`; the update validators are here, with the updates.
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
import {
  NonceBook,
  type BudgetRefusal,
  type LookupInput,
  type LookupResult,
  type NonceBookState,
  type NonceRecord,
  type RecordInput,
  type RecordResult,
  type SettleInput,
  type Spend,
  type UnsettledRecord,
} from './machine/nonce-book';

export const SIGNER_NONCES_WORKFLOW = 'signerNonces';

/**
 * Nonces belong to a chain, not to a network name: the scope is the chain id and a prefix of the genesis hash, so two
 * network entries for one chain share one owner, and a local chain that was reset (same id, nonces from 0 again) gets
 * a fresh one.
 */
export function nonceScope(chainId: number, genesisHash: string): string {
  return `eip155-${chainId}:${genesisHash.slice(2, 18)}`;
}

/** The scope owners were kept under before: the network name and the genesis hash prefix. */
export function legacyNonceScope(network: string, genesisHash: string): string {
  return `${network}:${genesisHash.slice(2, 18)}`;
}

/** Workflow id of the nonce owner of a signer on a chain (`scope`: see {@link nonceScope}). */
export function signerNoncesWorkflowId(scope: string, address: string): string {
  return `settle-signer-nonces:${scope}:${address.toLowerCase()}`;
}

export const lookupNonceUpdate = defineUpdate<LookupResult, [LookupInput]>('lookupNonce');
export const recordSignedTxUpdate = defineUpdate<RecordResult, [RecordInput]>('recordSignedTx');
/** Records whose version was found mined deep (tombstoned), or whose nonce went to another transaction (marked). */
export const settleRecordsUpdate = defineUpdate<{ settled: string[] }, [SettleInput]>('settleRecords');
/** Hands this book over to the owner `movedTo` (a new scope): it records nothing more; returns the book. */
export const retireNonceBookUpdate = defineUpdate<NonceBookState, [{ movedTo: string }]>('retireNonceBook');
/** Merges a retired owner's book into this one, once per owner. */
export const adoptNonceBookUpdate = defineUpdate<{ adopted: boolean }, [{ from: string; book: NonceBookState }]>(
  'adoptNonceBook',
);
/** Records whose nonce is in [from, to): what the chain needs before `to` can be mined. */
export const recordsBetweenQuery = defineQuery<NonceRecord[], [{ from: number; to: number }]>('recordsBetween');
/** Unresolved records below a nonce the chain used deep down, lowest first: what the sender may settle. */
export const unsettledRecordsQuery = defineQuery<UnsettledRecord[], [{ below: number; limit: number }]>(
  'unsettledRecords',
);
export interface NonceBookSummary {
  next: number;
  records: number;
  settled: number;
  movedTo?: string;
  adopted: string[];
}
export const nonceBookQuery = defineQuery<NonceBookSummary>('nonceBook');
/**
 * Whether a transaction would fit its routes' budgets at `at` (the asker's clock): asked before signing, so a step
 * waiting for budget signs nothing. Advisory: `recordSignedTx` decides, with the owner's clock.
 */
export const budgetCheckQuery = defineQuery<{ refusal?: BudgetRefusal }, [{ key: string; spend: Spend[]; at: string }]>(
  'budgetCheck',
);

/**
 * The entity workflow; started on first use (update-with-start) with id `signerNoncesWorkflowId(scope, address)`.
 * Runs forever, continuing as new when its history grows; what it carries is bounded (see `NonceBook.prune`).
 */
export async function signerNonces(state?: NonceBookState): Promise<void> {
  const book = new NonceBook(state);
  const now = () => new Date().toISOString();
  setHandler(lookupNonceUpdate, (input) => book.lookup(input, now()), { validator: validateLookup });
  setHandler(recordSignedTxUpdate, (input) => book.record(input, now()), { validator: validateRecord });
  setHandler(settleRecordsUpdate, (input) => book.settle(input, now()), { validator: validateSettle });
  setHandler(retireNonceBookUpdate, ({ movedTo }) => book.retire(movedTo), {
    validator: (input) => {
      if (!input?.movedTo) throw new Error('retireNonceBook: movedTo (the new owner) is required');
    },
  });
  setHandler(adoptNonceBookUpdate, ({ from, book: old }) => book.adopt(from, old), { validator: validateAdopt });
  setHandler(recordsBetweenQuery, ({ from, to }) => book.between(from, to));
  setHandler(unsettledRecordsQuery, ({ below, limit }) => book.unsettled(below, limit));
  setHandler(budgetCheckQuery, ({ key, spend, at }) => {
    const refusal = book.overBudget(spend, key, at);
    return refusal ? { refusal } : {};
  });
  setHandler(nonceBookQuery, () => ({
    next: book.state.next,
    records: Object.keys(book.state.records).length,
    settled: Object.keys(book.state.settled ?? {}).length,
    ...(book.state.movedTo ? { movedTo: book.state.movedTo } : {}),
    adopted: book.state.adopted ?? [],
  }));
  await condition(() => workflowInfo().continueAsNewSuggested);
  await condition(allHandlersFinished);
  book.prune(Date.now());
  await continueAsNew<typeof signerNonces>(book.state);
}

/** Rejects a malformed `recordSignedTx` before it is accepted (a rejected update leaves no trace in history). */
export function validateRecord(input: RecordInput): void {
  if (!input || typeof input.key !== 'string' || !input.key) throw new Error('recordSignedTx: key is required');
  if (!Number.isSafeInteger(input.nonce) || input.nonce < 0) throw new Error('recordSignedTx: nonce must be >= 0');
  if (!/^0x[0-9a-fA-F]{64}$/.test(input.hash)) throw new Error('recordSignedTx: hash must be a 32-byte hex hash');
  if (!/^0x[0-9a-fA-F]+$/.test(input.raw)) throw new Error('recordSignedTx: raw must be a hex signed transaction');
  if (!['new', 'replace', 'supersede'].includes(input.mode)) throw new Error('recordSignedTx: unknown mode');
  if (input.spend !== undefined && !Array.isArray(input.spend)) throw new Error('recordSignedTx: spend must be a list');
  (input.spend ?? []).forEach((s, i) => {
    const decimal = (v: unknown) => typeof v === 'string' && /^\d+$/.test(v);
    if (!s?.route || !decimal(s.amount) || !decimal(s.limit) || !Number.isSafeInteger(s.windowMs) || s.windowMs <= 0)
      throw new Error(`recordSignedTx: spend[${i}] needs a route, a decimal amount and limit, and windowMs > 0`);
  });
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
