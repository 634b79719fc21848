/**
 * The nonce owner of one (network, signer): an entity workflow that hands out nonces and keeps every signed
 * transaction, keyed by step attempt. It is the single writer of the signer's nonce sequence, so nonces are never
 * handed out twice, and a step attempt's transaction is recorded here *before* it is broadcast: a crashed or retried
 * submission finds it and rebroadcasts the same bytes instead of signing a second transaction.
 *
 * The rules (compare-and-record nonces, replacements, retention) are the pure `NonceBook` in `machine/nonce-book.ts`.
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
  validateLookup,
  validateRecord,
  type LookupInput,
  type LookupResult,
  type NonceBookState,
  type NonceRecord,
  type RecordInput,
  type RecordResult,
} from './machine/nonce-book';

// Kept here so code that talks to the nonce owner (networks/evm) imports one module.
export {
  NonceBook,
  type LookupInput,
  type LookupResult,
  type NonceBookState,
  type NonceRecord,
  type RecordInput,
  type RecordResult,
  type SignedTx,
} from './machine/nonce-book';

export const SIGNER_NONCES_WORKFLOW = 'signerNonces';

/** Workflow id of the nonce owner of a signer on a chain (`scope`: the network name and its genesis hash). */
export function signerNoncesWorkflowId(scope: string, address: string): string {
  return `settle-signer-nonces:${scope}:${address.toLowerCase()}`;
}

export const lookupNonceUpdate = defineUpdate<LookupResult, [LookupInput]>('lookupNonce');
export const recordSignedTxUpdate = defineUpdate<RecordResult, [RecordInput]>('recordSignedTx');
/** Records whose nonce is in [from, to): what the chain needs before `to` can be mined. */
export const recordsBetweenQuery = defineQuery<NonceRecord[], [{ from: number; to: number }]>('recordsBetween');
export const nonceBookQuery = defineQuery<{ next: number; records: number }>('nonceBook');

/**
 * The entity workflow; started on first use (update-with-start) with id `signerNoncesWorkflowId(network, address)`.
 * Runs forever, continuing as new when its history grows.
 */
export async function signerNonces(state?: NonceBookState): Promise<void> {
  const book = new NonceBook(state);
  setHandler(lookupNonceUpdate, (input) => book.lookup(input, new Date().toISOString()), {
    validator: validateLookup,
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
