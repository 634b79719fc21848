import type { Hex, PublicClient } from 'viem';
import type { FinalityPolicy } from '../../contract/action-spec';
import type {
  CheckStepInput,
  NetworkAdapter,
  Observation,
  SubmitStepInput,
  SubmitStepResult,
} from '../../contract/activity-io';
import { ChainReader, isTxHash } from './chain-reader';
import { evmClient } from './client';
import { redactingErrors } from './errors';
import { EvmSender, type EvmSenderOptions } from './sender';

/** The longest a submission looks for its transaction in a block: less than a quarter of its heartbeat timeout. */
export const MAX_OBSERVE_MS = 5_000;

export interface EvmAdapterOptions extends EvmSenderOptions {
  rpcUrls: string[];
  rpcTimeoutMs?: number;
}

/**
 * The EVM network adapter (viem): submits through the nonce-owned {@link EvmSender} and checks through the
 * {@link ChainReader} the watcher uses too. Its failures name no RPC URL.
 *
 * @example
 * const adapter = new EvmAdapter({ network: 'chainA', chainId: 31337, rpcUrls: ['http://127.0.0.1:8545'],
 *   send: true, signers: { bridge: key }, nonceOwners: temporalNonceOwners(client, 'settle-nonces') });
 */
export class EvmAdapter implements NetworkAdapter {
  readonly client: PublicClient;
  readonly reader: ChainReader;
  private readonly sender: EvmSender;

  constructor(private readonly options: EvmAdapterOptions) {
    this.client = evmClient({
      network: options.network,
      chainId: options.chainId,
      rpcUrls: options.rpcUrls,
      retry: 'caller',
      ...(options.rpcTimeoutMs !== undefined ? { timeoutMs: options.rpcTimeoutMs } : {}),
    });
    this.reader = new ChainReader(this.client);
    this.sender = new EvmSender(options, this.client, this.reader);
  }

  /** Signer name → address (for logs and tools; never the key). */
  signerAddress(name: string): Hex | undefined {
    return this.sender.signerAddress(name);
  }

  async submit(input: SubmitStepInput): Promise<SubmitStepResult> {
    return redactingErrors(async () => {
      const result = await this.sender.submit(input);
      const observations = input.observe ? await this.observe(input, result, input.observe) : [];
      return observations.length > 0 ? { ...result, observations } : result;
    }, this.options);
  }

  /**
   * What the chain shows of a transaction just sent, looked for until it is in a block or `forMs` (at most
   * {@link MAX_OBSERVE_MS}) has passed: a submission ends before it would heartbeat. A no-op that cancels the call
   * is no effect of the step: not observed. An RPC error ends the look early, with nothing seen.
   */
  private async observe(
    input: SubmitStepInput,
    result: SubmitStepResult,
    { finality, forMs }: NonNullable<SubmitStepInput['observe']>,
  ): Promise<Observation[]> {
    if (result.output?.cancels !== undefined || !isTxHash(result.ref)) return [];
    const until = Date.now() + Math.min(forMs, MAX_OBSERVE_MS);
    const every = Math.max(Math.min(forMs / 6, 1_000), 25);
    const { actionId, stepId, network, attempt } = input;
    const check: CheckStepInput = { actionId, stepId, network, for: input.for, attempt, refs: [result.ref], finality };
    for (;;) {
      const seen = await this.checkNow(check).catch(() => []);
      if (seen.some((o) => o.kind !== 'dropped' && o.kind !== 'reorged')) return seen;
      if (Date.now() + every > until) return [];
      await new Promise((resolve) => setTimeout(resolve, every));
    }
  }

  async check(input: CheckStepInput): Promise<Observation[]> {
    return redactingErrors(() => this.checkNow(input), this.options);
  }

  /**
   * What the chain says now about a step's transactions: included/confirmed in which block, finalized under a tag
   * policy, reorged when the block the workflow knows is no longer canonical, dropped when no version of the
   * transaction is mined or pending, failed with the decoded reason when it reverted.
   */
  private async checkNow(input: CheckStepInput): Promise<Observation[]> {
    const refs = input.refs.filter(isTxHash);
    if (refs.length === 0) return [];
    const source = `evm:${this.options.network}`;
    const observedAt = new Date().toISOString();
    const observations: Observation[] = [];
    if (input.knownBlock) {
      const canonical = await this.reader.blockAt(BigInt(input.knownBlock.number));
      if (canonical?.hash !== input.knownBlock.hash) {
        observations.push({ kind: 'reorged', block: input.knownBlock, source, observedAt });
      }
    }
    const receipt = await this.reader.newestReceipt(refs);
    if (!receipt) {
      const known = await Promise.all(refs.map((ref) => this.reader.knows(ref)));
      if (!known.some(Boolean)) {
        observations.push({ kind: 'dropped', ref: refs[refs.length - 1], source, observedAt });
      }
      return observations;
    }
    const ref = receipt.transactionHash;
    const { block, reverted, reason, output } = await this.reader.inclusionOf(receipt);
    if (reverted) {
      observations.push({ kind: 'failed', ref, block, reason: reason!, source, observedAt });
      return observations;
    }
    const head = await this.reader.head();
    const confirmations = Math.max(1, Number(head - receipt.blockNumber + 1n));
    observations.push({
      kind: 'confirmed',
      ref,
      block,
      confirmations,
      ...(output ? { output } : {}),
      source,
      observedAt,
    });
    if (await this.tagCovers(input.finality, receipt.blockNumber)) {
      observations.push({ kind: 'finalized', ref, block, source, observedAt });
    }
    return observations;
  }

  /** Whether the policy's tag has reached the block; a node that cannot answer for the tag has not. */
  private async tagCovers(policy: FinalityPolicy, blockNumber: bigint): Promise<boolean> {
    if (!('tag' in policy)) return false;
    const tagged = await this.reader.tagged(policy.tag).catch(() => undefined);
    return tagged !== undefined && tagged >= blockNumber;
  }
}
