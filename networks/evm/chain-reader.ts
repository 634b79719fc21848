/**
 * Reads one EVM network (viem), for the adapter's `check` and for the chain watcher alike: heads and blocks, the block
 * a finality tag points at, receipts and what they are as evidence (the block, the decoded events, or the revert
 * reason), whether a transaction still exists, and the bridge events that carry an action id. A read that finds
 * nothing answers `undefined`; any other failure is thrown to the caller, who retries.
 */
import { BaseError, toEventSelector, type Block, type Hex, type PublicClient, type TransactionReceipt } from 'viem';
import type { BlockRef, StepOutput } from '../../contract/primitives';
import { decodeReceiptLogs, KNOWN_EVENTS, replayRevertReason } from './known-abi';

/** Settle's contract events whose first indexed field is the action id (`keccak256(actionId)`). */
const ACTION_EVENT_SELECTORS = KNOWN_EVENTS.filter(
  (event) => event.inputs[0]?.name === 'actionId' && event.inputs[0].type === 'bytes32' && event.inputs[0].indexed,
).map((event) => toEventSelector(event));

const TX_HASH = /^0x[0-9a-fA-F]{64}$/;

/** Whether a ref is an EVM transaction hash (other refs name nothing on a chain). */
export function isTxHash(ref: string): ref is Hex {
  return TX_HASH.test(ref);
}

export interface BlockHeader {
  number: bigint;
  hash: string;
  parentHash: string;
  /** Seconds since the epoch, as the chain reports it. */
  timestamp: bigint;
  /** Hashes of the block's transactions. */
  transactions: string[];
}

export interface ActionEvent {
  /** keccak256 of the action id, as the contracts key it. */
  actionIdHash: string;
  txHash: string;
}

/** A mined transaction as evidence: its block, and its decoded events (the step's output) or its revert reason. */
export interface Inclusion {
  block: BlockRef;
  reverted: boolean;
  /** `execution reverted: <reason>`, when it reverted. */
  reason?: string;
  output?: StepOutput;
}

/** What the watcher's follower reads from a network (a fake in unit tests). */
export interface ChainSource {
  latest(): Promise<BlockHeader>;
  blockAt(number: bigint): Promise<BlockHeader | undefined>;
  tagged(tag: 'finalized' | 'safe'): Promise<bigint | undefined>;
  inclusion(hash: string): Promise<Inclusion | undefined>;
  knows(hash: string): Promise<boolean>;
  actionEvents(blockHash: string): Promise<ActionEvent[]>;
}

/**
 * @example
 * const reader = new ChainReader(evmClient({ network: 'chainA', chainId: 31337, rpcUrls, retry: 'transport' }));
 * const inclusion = await reader.inclusion(txHash); // { block: { number: '42', hash: '0x…' }, reverted: false, output }
 */
export class ChainReader implements ChainSource {
  constructor(readonly client: PublicClient) {}

  async latest(): Promise<BlockHeader> {
    return toHeader(await this.client.getBlock({ blockTag: 'latest' }));
  }

  /** The number of the newest block. */
  head(): Promise<bigint> {
    return this.client.getBlockNumber({ cacheTime: 0 });
  }

  /** The canonical block at a height; undefined above the head. */
  async blockAt(number: bigint): Promise<BlockHeader | undefined> {
    return orUndefined(async () => toHeader(await this.client.getBlock({ blockNumber: number })));
  }

  /** The number of the block a tag (finalized, safe) points at. */
  async tagged(tag: 'finalized' | 'safe'): Promise<bigint | undefined> {
    return orUndefined(async () => (await this.client.getBlock({ blockTag: tag })).number ?? undefined);
  }

  /** A transaction, pending or mined; undefined when the node does not know it. */
  transaction(hash: Hex) {
    return orUndefined(() => this.client.getTransaction({ hash }));
  }

  /** Whether the node knows the transaction at all (pending or mined). */
  async knows(hash: string): Promise<boolean> {
    return !!(await this.transaction(hash as Hex));
  }

  /** The receipt of the newest of these transactions that is mined (versions of one transaction, oldest first). */
  async newestReceipt(hashes: Hex[]): Promise<TransactionReceipt | undefined> {
    for (const hash of [...hashes].reverse()) {
      const receipt = await orUndefined(() => this.client.getTransactionReceipt({ hash }));
      if (receipt) return receipt;
    }
    return undefined;
  }

  /** Where a transaction is mined, with its decoded events or its revert reason; undefined while it is not. */
  async inclusion(hash: string): Promise<Inclusion | undefined> {
    const receipt = await this.newestReceipt([hash as Hex]);
    return receipt && this.inclusionOf(receipt);
  }

  /** A receipt as evidence: the block, and the decoded events (the step's output) or the reason it reverted. */
  async inclusionOf(receipt: TransactionReceipt): Promise<Inclusion> {
    const block = { number: receipt.blockNumber.toString(), hash: receipt.blockHash };
    if (receipt.status === 'reverted') {
      return { block, reverted: true, reason: `execution reverted: ${await replayRevertReason(this.client, receipt)}` };
    }
    const output = {
      txHash: receipt.transactionHash,
      blockNumber: block.number,
      ...decodeReceiptLogs(receipt.logs),
    };
    return { block, reverted: false, output };
  }

  /** Events of Settle's contracts in one block that name an action. */
  async actionEvents(blockHash: string): Promise<ActionEvent[]> {
    if (ACTION_EVENT_SELECTORS.length === 0) return [];
    const logs = await this.client.request({
      method: 'eth_getLogs',
      params: [{ blockHash: blockHash as Hex, topics: [ACTION_EVENT_SELECTORS] }],
    });
    return logs.flatMap((log) =>
      log.topics[1] && log.transactionHash ? [{ actionIdHash: log.topics[1], txHash: log.transactionHash }] : [],
    );
  }
}

function toHeader(block: Block): BlockHeader {
  if (block.number === null || block.hash === null) throw new Error('the node returned a pending block');
  return {
    number: block.number,
    hash: block.hash,
    parentHash: block.parentHash,
    timestamp: block.timestamp,
    transactions: (block.transactions as (Hex | { hash: Hex })[]).map((tx) => (typeof tx === 'string' ? tx : tx.hash)),
  };
}

/** The read's answer, or undefined when the node says the block or transaction does not exist. */
async function orUndefined<T>(read: () => Promise<T>): Promise<T | undefined> {
  try {
    return await read();
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
}

function isNotFound(error: unknown): boolean {
  return (
    error instanceof BaseError &&
    ['BlockNotFoundError', 'TransactionNotFoundError', 'TransactionReceiptNotFoundError'].includes(error.name)
  );
}
