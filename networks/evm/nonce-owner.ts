import { WithStartWorkflowOperation, WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { Workflow } from '@temporalio/common';
import type { Hex } from 'viem';
import {
  adoptNonceBookUpdate,
  budgetCheckQuery,
  lookupNonceUpdate,
  nonceBookQuery,
  recordsBetweenQuery,
  recordSignedTxUpdate,
  retireNonceBookUpdate,
  settleRecordsUpdate,
  SIGNER_NONCES_WORKFLOW,
  signerNoncesWorkflowId,
  unsettledRecordsQuery,
} from '../../workflows/signer-nonces';
import { NonceBook } from '../../workflows/machine/nonce-book';
import type * as book from '../../workflows/machine/nonce-book';
import { cancellationSignal } from './activity-context';
import type { ChainReader } from './chain-reader';

/** The single owner of one (chain, signer)'s nonces and signed transactions. */
export interface NonceOwner {
  lookup(input: book.LookupInput): Promise<book.LookupResult>;
  record(input: book.RecordInput): Promise<book.RecordResult>;
  between(from: number, to: number): Promise<book.NonceRecord[]>;
  /** Tells the owner which records are settled (mined deep) or lost their nonce to another transaction. */
  settle(input: book.SettleInput): Promise<{ settled: string[] }>;
  /** Unresolved records below a nonce the chain used deep down, lowest first (at most `limit`). */
  unsettled(below: number, limit: number): Promise<book.UnsettledRecord[]>;
  /** Whether `spend` fits its routes' budgets at `at` (advisory: `record` reserves, or refuses, for good). */
  budget(input: { key: string; spend: book.Spend[]; at: string }): Promise<book.BudgetRefusal | undefined>;
}

export interface NonceOwnerOptions {
  /**
   * Scopes the signer's owner was kept under before (the network name and genesis hash): on first use, each one's book
   * is handed over (the old owner retires, records nothing more) and merged into this owner's, unresolved records and
   * all, before anything is looked up.
   */
  legacyScopes?: string[];
}

/** `scope` names the chain (chain id and genesis hash); one owner per (scope, signer address). */
export type NonceOwnerFactory = (scope: string, address: string, options?: NonceOwnerOptions) => NonceOwner;

/**
 * An update the server did not apply, and that is safe to send again (every owner update is idempotent): the limit on
 * updates in flight per workflow (10 by default: `RESOURCE_EXHAUSTED`, once the client's own retries are spent), or an
 * update aborted before it was accepted (`UNAVAILABLE`: the owner's worker restarted, its workflow task failed).
 */
function isUnapplied(error: unknown): boolean {
  const text = `${(error as Error)?.message ?? ''} ${String((error as { cause?: unknown })?.cause ?? '')}`;
  return /RESOURCE_EXHAUSTED|in-flight updates|UNAVAILABLE|update was aborted/i.test(text);
}

const RETRY_MS = 100;
const RETRY_MAX_MS = 2_000;
const TRIES = 40;

/**
 * A call to an owner, tied to the cancellation of the activity it is made in: an update waits for the owner's worker,
 * and a worker that drains on shutdown (its owners' worker stopping with it) would otherwise wait on it for ever. A
 * cancelled call fails with the activity's own `CancelledFailure`; the update may or may not have been applied, which
 * the next attempt's lookup or record finds out (every owner update is idempotent).
 */
async function tied<T>(client: Client, call: () => Promise<T>): Promise<T> {
  const signal = cancellationSignal();
  if (!signal) return call();
  try {
    return await client.withAbortSignal(signal, call);
  } catch (error) {
    throw signal.aborted ? signal.reason : error;
  }
}

/** Sends an update again, with jittered back-off, while the server did not apply it (see {@link isUnapplied}). */
async function untilApplied<T>(client: Client, update: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await tied(client, update);
    } catch (error) {
      if (!isUnapplied(error) || attempt >= TRIES) throw error;
      const delay = Math.min(RETRY_MAX_MS, RETRY_MS * 2 ** Math.min(attempt, 10));
      await new Promise((resolve) => setTimeout(resolve, delay / 2 + Math.random() * (delay / 2)));
    }
  }
}

const notFound = (error: unknown) => error instanceof WorkflowNotFoundError;

/**
 * Nonce owners as `signerNonces` entity workflows, reached through a Temporal Client: durable across worker crashes
 * and shared by every worker. `taskQueue` is where a new owner is started (the worker's nonce queue, see
 * `SETTLE_NONCE_TASK_QUEUE`); an existing owner keeps the queue it was started on.
 */
export function temporalNonceOwners(client: Client, taskQueue: string): NonceOwnerFactory {
  const migrations = new Map<string, Promise<void>>();
  return (scope, address, options = {}) => {
    const workflowId = signerNoncesWorkflowId(scope, address);
    const handle = () => client.workflow.getHandle(workflowId);
    const start = () =>
      new WithStartWorkflowOperation<Workflow>(SIGNER_NONCES_WORKFLOW, {
        workflowId,
        taskQueue,
        workflowIdConflictPolicy: 'USE_EXISTING',
        // An owner that was closed (terminated by hand) is never started again with an empty book: that would hand
        // out nonces its records hold. The submission fails, visibly, until an operator restarts it with its book.
        workflowIdReusePolicy: 'REJECT_DUPLICATE',
        args: [],
      });
    const legacy = (options.legacyScopes ?? []).map((old) => signerNoncesWorkflowId(old, address));
    // Once per (owner, old owner) in this process: two network entries for one chain each bring their own old owner.
    const migrated = () =>
      Promise.all(
        legacy.map((old) => {
          const id = `${workflowId}<-${old}`;
          let migration = migrations.get(id);
          if (!migration) {
            migration = adoptLegacyBook(client, workflowId, old, start).catch((error: unknown) => {
              migrations.delete(id);
              throw error;
            });
            migrations.set(id, migration);
          }
          return migration;
        }),
      );
    return {
      lookup: async (input) => {
        await migrated();
        return untilApplied(client, () =>
          client.workflow.executeUpdateWithStart(lookupNonceUpdate, { args: [input], startWorkflowOperation: start() }),
        );
      },
      record: (input) => untilApplied(client, () => handle().executeUpdate(recordSignedTxUpdate, { args: [input] })),
      settle: (input) => untilApplied(client, () => handle().executeUpdate(settleRecordsUpdate, { args: [input] })),
      between: (from, to) => tied(client, () => handle().query(recordsBetweenQuery, { from, to })),
      unsettled: (below, limit) => tied(client, () => handle().query(unsettledRecordsQuery, { below, limit })),
      budget: (input) => tied(client, () => handle().query(budgetCheckQuery, input)).then((answer) => answer.refusal),
    };
  };
}

/**
 * Moves the book of an owner kept under an older scope into the owner `workflowId`: the old owner retires first (so
 * it records nothing after its book is read), then its book is adopted (idempotent: an owner remembers whom it
 * adopted). An old owner that never existed is skipped; any other failure fails the lookup, which is retried.
 */
async function adoptLegacyBook(
  client: Client,
  workflowId: string,
  old: string,
  start: () => WithStartWorkflowOperation<Workflow>,
): Promise<void> {
  const adopted: string[] = await tied(client, () => client.workflow.getHandle(workflowId).query(nonceBookQuery))
    .then((summary) => summary.adopted ?? [])
    .catch((error: unknown) => {
      if (notFound(error)) return [];
      throw error;
    });
  if (adopted.includes(old)) return;
  let book: book.NonceBookState;
  try {
    book = await untilApplied(client, () =>
      client.workflow.getHandle(old).executeUpdate(retireNonceBookUpdate, { args: [{ movedTo: workflowId }] }),
    );
  } catch (error) {
    if (notFound(error)) return;
    throw error;
  }
  await untilApplied(client, () =>
    client.workflow.executeUpdateWithStart(adoptNonceBookUpdate, {
      args: [{ from: old, book }],
      startWorkflowOperation: start(),
    }),
  );
}

/**
 * How deep a nonce's use must be before it is taken as settled: a version of the record mined that deep settles it
 * (the owner drops its bytes), and a nonce used that deep by something that is none of its versions lets the call be
 * signed again with a new nonce. A lagging RPC backend (or a receipt read before the nonce) must never make Settle
 * re-sign a call whose original is mined.
 */
export const SETTLED_DEPTH = 12n;
const SETTLE_LIMIT = 32;

/** What settling reads from the chain (the sender's {@link ChainReader}). */
type SettlingReader = Pick<ChainReader, 'head' | 'newestReceipt' | 'client'>;

/**
 * Settles the owner's unresolved records whose nonce the chain used {@link SETTLED_DEPTH} blocks ago: by the receipt of
 * one of their versions (the owner keeps a tombstone, not the bytes), or, with no version mined, marks them as having
 * lost their nonce to another transaction (kept, bytes and all: their attempt may be signed again).
 */
export async function settleDeepRecords(owner: NonceOwner, reader: SettlingReader, address: Hex): Promise<void> {
  const deep = (await reader.head()) - SETTLED_DEPTH;
  if (deep < 0n) return;
  const below = await reader.client.getTransactionCount({ address, blockNumber: deep });
  const candidates = await owner.unsettled(below, SETTLE_LIMIT);
  if (candidates.length === 0) return;
  const receipts = await Promise.all(candidates.map((c) => reader.newestReceipt(c.hashes as Hex[])));
  const input: Required<book.SettleInput> = { mined: [], foreign: [] };
  candidates.forEach(({ key, nonce }, i) => {
    const receipt = receipts[i];
    if (!receipt) input.foreign.push({ key, nonce });
    else if (receipt.blockNumber <= deep) {
      input.mined.push({ key, hash: receipt.transactionHash, blockNumber: receipt.blockNumber.toString() });
    }
  });
  await owner.settle(input);
}

/**
 * Turns per owner within one process: one submission at a time signs and records, the others queue and start from
 * the nonce after the last one recorded here, instead of all signing the same `next` and racing for it.
 */
export class OwnerTurns {
  private readonly tails = new Map<string, Promise<void>>();
  /** Per owner: the nonce after the last record accepted in this process. */
  readonly nextNonce = new Map<string, number>();

  /** Runs `turn` once every earlier turn for the same owner has ended (whether it succeeded or not). */
  async take<T>(ownerId: string, turn: () => Promise<T>): Promise<T> {
    const mine = (this.tails.get(ownerId) ?? Promise.resolve()).then(turn);
    const tail = mine.then(
      () => undefined,
      () => undefined,
    );
    this.tails.set(ownerId, tail);
    try {
      return await mine;
    } finally {
      if (this.tails.get(ownerId) === tail) this.tails.delete(ownerId);
    }
  }
}

/** In-process nonce owners (unit tests, tools): not durable, one process only. Legacy books move as with Temporal. */
export function memoryNonceOwners(): NonceOwnerFactory {
  const books = new Map<string, NonceBook>();
  const bookOf = (id: string) => books.get(id) ?? books.set(id, new NonceBook()).get(id)!;
  const at = () => new Date().toISOString();
  return (scope, address, options = {}) => {
    const id = signerNoncesWorkflowId(scope, address);
    for (const old of options.legacyScopes ?? []) {
      const oldId = signerNoncesWorkflowId(old, address);
      const oldBook = books.get(oldId);
      if (oldBook) bookOf(id).adopt(oldId, structuredClone(oldBook.retire(id)));
    }
    const book = bookOf(id);
    return {
      lookup: async (input) => structuredClone(book.lookup(input, at())),
      record: async (input) => structuredClone(book.record(input, at())),
      between: async (from, to) => structuredClone(book.between(from, to)),
      settle: async (input) => book.settle(input, at()),
      unsettled: async (below, limit) => book.unsettled(below, limit),
      budget: async ({ key, spend, at }) => structuredClone(book.overBudget(spend, key, at)),
    };
  };
}
