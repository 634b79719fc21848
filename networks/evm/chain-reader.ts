/**
 * Reads one EVM network for the watcher (viem): heads and blocks, receipts, whether a transaction still exists, the
 * bridge events that carry an action id, and the block a finality tag points at. Never from a cache: a stale head
 * would hide a reorg.
 */
import {
  BaseError,
  createPublicClient,
  fallback,
  http,
  toEventSelector,
  webSocket,
  type Block,
  type Hex,
  type PublicClient,
  type TransactionReceipt,
} from 'viem';
import { decodeReceiptLogs, KNOWN_EVENTS, replayRevertReason } from './known-abi';
import type { BlockRef, StepOutput } from '../../contract/primitives';
import type { BlockHeader } from '../../workers/watcher/block-window';
import type { WatchedNetwork } from '../../workers/watcher/config';

/** Settle's contract events whose first indexed field is the action id (`keccak256(actionId)`). */
const ACTION_EVENT_SELECTORS = KNOWN_EVENTS.filter(
  (event) => event.inputs[0]?.name === 'actionId' && event.inputs[0].type === 'bytes32' && event.inputs[0].indexed,
).map((event) => toEventSelector(event));

export interface ActionEvent {
  /** keccak256 of the action id, as the contracts key it. */
  actionIdHash: string;
  txHash: string;
}

export interface Inclusion {
  block: BlockRef;
  reverted: boolean;
  reason?: string;
  output?: StepOutput;
}

/** What a follower reads from a network (a fake in unit tests). */
export interface ChainSource {
  latest(): Promise<BlockHeader>;
  blockAt(number: bigint): Promise<BlockHeader | undefined>;
  tagged(tag: 'finalized' | 'safe'): Promise<bigint | undefined>;
  inclusion(hash: string): Promise<Inclusion | undefined>;
  knows(hash: string): Promise<boolean>;
  actionEvents(blockHash: string): Promise<ActionEvent[]>;
}

export class ChainReader implements ChainSource {
  readonly client: PublicClient;

  constructor(network: Pick<WatchedNetwork, 'name' | 'rpcUrls'>, timeoutMs = 10_000) {
    const transports = network.rpcUrls.map((url) =>
      /^wss?:/.test(url)
        ? webSocket(url, { timeout: timeoutMs, retryCount: 1 })
        : http(url, { timeout: timeoutMs, retryCount: 1, retryDelay: 100 }),
    );
    this.client = createPublicClient({ cacheTime: 0, transport: fallback(transports) });
  }

  async latest(): Promise<BlockHeader> {
    return toHeader(await this.client.getBlock({ blockTag: 'latest' }));
  }

  async blockAt(number: bigint): Promise<BlockHeader | undefined> {
    try {
      return toHeader(await this.client.getBlock({ blockNumber: number }));
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  /** The number of the block a tag (finalized, safe) points at. */
  async tagged(tag: 'finalized' | 'safe'): Promise<bigint | undefined> {
    try {
      return (await this.client.getBlock({ blockTag: tag })).number ?? undefined;
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  /** Where a transaction is mined, with its decoded events or its revert reason; undefined while it is not. */
  async inclusion(hash: string): Promise<Inclusion | undefined> {
    let receipt: TransactionReceipt;
    try {
      receipt = await this.client.getTransactionReceipt({ hash: hash as Hex });
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
    return this.inclusionOf(receipt);
  }

  /** Whether the node knows the transaction at all (pending or mined). */
  async knows(hash: string): Promise<boolean> {
    try {
      return !!(await this.client.getTransaction({ hash: hash as Hex }));
    } catch (error) {
      if (isNotFound(error)) return false;
      throw error;
    }
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

  /** A receipt as evidence: the block, and the decoded events (what `checkStep` reports as the step's output). */
  private async inclusionOf(receipt: TransactionReceipt): Promise<Inclusion> {
    const block = { number: receipt.blockNumber.toString(), hash: receipt.blockHash };
    if (receipt.status === 'reverted') {
      return { block, reverted: true, reason: `execution reverted: ${await this.revertReasonOf(receipt)}` };
    }
    const output = {
      txHash: receipt.transactionHash,
      blockNumber: block.number,
      ...decodeReceiptLogs(receipt.logs),
    };
    return { block, reverted: false, output };
  }

  private revertReasonOf(receipt: TransactionReceipt): Promise<string> {
    return replayRevertReason(this.client, receipt);
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

function isNotFound(error: unknown): boolean {
  return (
    error instanceof BaseError &&
    ['BlockNotFoundError', 'TransactionNotFoundError', 'TransactionReceiptNotFoundError'].includes(error.name)
  );
}
