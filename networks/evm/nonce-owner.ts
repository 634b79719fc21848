import { WithStartWorkflowOperation, type Client } from '@temporalio/client';
import {
  lookupNonceUpdate,
  NonceBook,
  recordsBetweenQuery,
  recordSignedTxUpdate,
  SIGNER_NONCES_WORKFLOW,
  signerNoncesWorkflowId,
  type LookupInput,
  type LookupResult,
  type NonceRecord,
  type RecordInput,
  type RecordResult,
} from '../../workflows/signer-nonces';

/** The single owner of one (network, signer)'s nonces and signed transactions. */
export interface NonceOwner {
  lookup(input: LookupInput): Promise<LookupResult>;
  record(input: RecordInput): Promise<RecordResult>;
  between(from: number, to: number): Promise<NonceRecord[]>;
}

/** `scope` names the chain (network and genesis hash); one owner per (scope, signer address). */
export type NonceOwnerFactory = (scope: string, address: string) => NonceOwner;

/**
 * Nonce owners as `signerNonces` entity workflows, reached through a Temporal Client: durable across worker crashes
 * and shared by every worker on the task queue.
 */
export function temporalNonceOwners(client: Client, taskQueue: string): NonceOwnerFactory {
  return (scope, address) => {
    const workflowId = signerNoncesWorkflowId(scope, address);
    const handle = () => client.workflow.getHandle(workflowId);
    return {
      lookup: (input) =>
        client.workflow.executeUpdateWithStart(lookupNonceUpdate, {
          args: [input],
          startWorkflowOperation: new WithStartWorkflowOperation(SIGNER_NONCES_WORKFLOW, {
            workflowId,
            taskQueue,
            workflowIdConflictPolicy: 'USE_EXISTING',
            args: [],
          }),
        }),
      record: (input) => handle().executeUpdate(recordSignedTxUpdate, { args: [input] }),
      between: (from, to) => handle().query(recordsBetweenQuery, { from, to }),
    };
  };
}

/** In-process nonce owners (unit tests, tools): not durable, one process only. */
export function memoryNonceOwners(): NonceOwnerFactory {
  const books = new Map<string, NonceBook>();
  return (scope, address) => {
    const id = signerNoncesWorkflowId(scope, address);
    const book = books.get(id) ?? new NonceBook();
    books.set(id, book);
    return {
      lookup: async (input) => structuredClone(book.lookup(input, new Date().toISOString())),
      record: async (input) => structuredClone(book.record(input, new Date().toISOString())),
      between: async (from, to) => structuredClone(book.between(from, to)),
    };
  };
}
