import { writeFileSync, existsSync } from 'node:fs';
import { ApplicationFailure } from '@temporalio/common';
import {
  BaseError,
  createPublicClient,
  defineChain,
  encodeFunctionData,
  fallback,
  http,
  keccak256,
  parseTransaction,
  type Hex,
  type PrivateKeyAccount,
  type PublicClient,
  type TransactionReceipt,
} from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import type { EvmOperation, FinalityPolicy } from '../../contract/action-spec';
import type { NonceRecord } from '../../workflows/signer-nonces';
import type {
  CheckStepInput,
  NetworkAdapter,
  Observation,
  SubmitStepInput,
  SubmitStepResult,
} from '../../contract/activity-io';
import { parseFunction, toAbiArgs } from './abi-args';
import { decodeReceiptLogs, isRevert, KNOWN_ERRORS, replayRevertReason, revertReason } from './known-abi';
import type { NonceOwner, NonceOwnerFactory } from './nonce-owner';
import { resolveTemplates } from './templates';

export interface EvmAdapterOptions {
  network: string;
  chainId: number;
  rpcUrls: string[];
  /** Whether this worker may send on this network at all. */
  send: boolean;
  /** Signer name → private key. Lives only in the worker process. */
  signers: Record<string, Hex>;
  nonceOwners: NonceOwnerFactory;
  /** Replace a still-pending transaction with higher fees when a retry finds it this old. */
  feeBumpAfterMs?: number;
  /** Crash tests only: SIGKILL this process right after the first broadcast (once per marker file). */
  killAfterBroadcastMarker?: string;
  rpcTimeoutMs?: number;
}

interface PreparedCall {
  to: Hex;
  data?: Hex;
  value: bigint;
}

const GAS_MARGIN_PERCENT = 125n;
const FEE_BUMP_PERCENT = 125n;
const MAX_NONCE_RACES = 8;

/**
 * The EVM network adapter (viem). Submission is idempotent per step attempt: the signed transaction is recorded with
 * the signer's nonce owner before it is broadcast, and any retry rebroadcasts the recorded bytes.
 *
 * @example
 * const adapter = new EvmAdapter({ network: 'chainA', chainId: 31337, rpcUrls: ['http://127.0.0.1:8545'],
 *   send: true, signers: { bridge: key }, nonceOwners: temporalNonceOwners(client, 'settle') });
 */
export class EvmAdapter implements NetworkAdapter {
  readonly client: PublicClient;
  private readonly accounts: Record<string, PrivateKeyAccount>;

  constructor(private readonly options: EvmAdapterOptions) {
    const chain = defineChain({
      id: options.chainId,
      name: options.network,
      nativeCurrency: { name: 'Ether', symbol: 'ETH', decimals: 18 },
      rpcUrls: { default: { http: options.rpcUrls } },
    });
    const timeout = options.rpcTimeoutMs ?? 10_000;
    this.client = createPublicClient({
      chain,
      // Never answer from a cache: a stale head would under-count confirmations and hide reorgs.
      cacheTime: 0,
      // Retries belong to the activity's retry policy (with back-off), not to the transport.
      transport: fallback(
        options.rpcUrls.map((url) => http(url, { timeout, retryCount: 0 })),
        { retryCount: 0 },
      ),
    });
    this.accounts = Object.fromEntries(
      Object.entries(options.signers).map(([name, key]) => [name, privateKeyToAccount(key)]),
    );
  }

  private scope?: Promise<string>;

  /**
   * Nonces belong to a chain, not to a name: the scope adds the genesis hash, so a local chain that was reset (same
   * name, same id, nonces from 0 again) gets a fresh nonce owner instead of one that would replay old transactions.
   */
  private nonceScope(): Promise<string> {
    this.scope ??= this.client.getBlock({ blockNumber: 0n }).then(
      (genesis) => `${this.options.network}:${genesis.hash.slice(2, 18)}`,
      (error: unknown) => {
        this.scope = undefined;
        throw error;
      },
    );
    return this.scope;
  }

  /** Signer name → address (for logs and tools; never the key). */
  signerAddress(name: string): Hex | undefined {
    return this.accounts[name]?.address;
  }

  async submit(input: SubmitStepInput): Promise<SubmitStepResult> {
    return this.redactingErrors(() => this.submitOnce(input));
  }

  async check(input: CheckStepInput): Promise<Observation[]> {
    return this.redactingErrors(() => this.checkNow(input));
  }

  /**
   * RPC errors go into activity failures, which are workflow history: they are reduced to viem's short message and
   * details, with the configured RPC URLs (which may carry API keys) replaced by their position.
   */
  private async redactingErrors<T>(run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (error) {
      if (error instanceof ApplicationFailure) throw error;
      throw new RpcError(redact(describeError(error), this.options.rpcUrls), this.options.network);
    }
  }

  private async submitOnce(input: SubmitStepInput): Promise<SubmitStepResult> {
    const { network } = this.options;
    if (!this.options.send) {
      throw ApplicationFailure.nonRetryable(`sending is not enabled on ${network} in this worker`, 'SendingDisabled');
    }
    const account = this.accounts[input.operation.signer];
    if (!account) {
      throw ApplicationFailure.nonRetryable(
        `signer "${input.operation.signer}" is not configured on ${network}`,
        'UnknownSigner',
      );
    }
    const key = `${input.actionId}/${input.stepId}/${input.attempt}/${input.for}`;
    const owner = this.options.nonceOwners(await this.nonceScope(), account.address);
    const chainNonce = await this.client.getTransactionCount({ address: account.address, blockTag: 'pending' });
    const { record, next } = await owner.lookup({ key, chainNonce });

    const sent = record
      ? await this.resend(account, owner, record)
      : await this.signAndRecord(account, owner, key, await this.prepare(input, account), next);
    await this.broadcast(account, owner, sent.record, sent.tx);
    const latest = sent.record.txs[sent.record.txs.length - 1];
    return {
      ref: latest.hash,
      output: {
        txHash: latest.hash,
        nonce: sent.record.nonce,
        from: account.address,
        ...(sent.record.txs.length > 1 ? { replaces: sent.record.txs[sent.record.txs.length - 2].hash } : {}),
      },
    };
  }

  /** Resolves templates, encodes the call and simulates it: a revert here is final evidence, not a retry. */
  private async prepare(input: SubmitStepInput, account: PrivateKeyAccount): Promise<PreparedCall & { gas: bigint }> {
    const operation = input.operation;
    const call = encodeOperation(operation, input.context);
    try {
      await this.client.call({ account: account.address, ...call, blockTag: 'pending' });
    } catch (error) {
      if (isRevert(error)) {
        throw ApplicationFailure.nonRetryable(`execution reverted: ${revertReason(error)}`, 'ExecutionReverted');
      }
      throw error;
    }
    const gas = await this.client.estimateGas({ account: account.address, ...call, blockTag: 'pending' });
    return { ...call, gas: (gas * GAS_MARGIN_PERCENT) / 100n };
  }

  /** Signs with the owner's next nonce and records it; on a nonce race, signs again with the new next. */
  private async signAndRecord(
    account: PrivateKeyAccount,
    owner: NonceOwner,
    key: string,
    call: PreparedCall & { gas: bigint },
    next: number,
  ): Promise<{ record: NonceRecord; tx: Hex }> {
    const fees = await this.client.estimateFeesPerGas();
    let nonce = next;
    for (let race = 0; race < MAX_NONCE_RACES; race++) {
      const raw = await account.signTransaction({
        type: 'eip1559',
        chainId: this.options.chainId,
        nonce,
        ...call,
        maxFeePerGas: fees.maxFeePerGas,
        maxPriorityFeePerGas: fees.maxPriorityFeePerGas,
      });
      const result = await owner.record({ key, nonce, hash: keccak256(raw), raw, mode: 'new' });
      if (result.accepted) return { record: result.record, tx: raw };
      if (result.record) return this.resend(account, owner, result.record);
      nonce = result.next;
    }
    throw new Error(`could not record a nonce for ${key} after ${MAX_NONCE_RACES} races`);
  }

  /**
   * A retry of an attempt that already has a signed transaction: the same bytes again, unless it has been pending
   * longer than the fee-bump delay (replace, same nonce, higher fees) or its nonce was used by another transaction
   * (sign again with a new nonce: the dead one can never be mined).
   */
  private async resend(
    account: PrivateKeyAccount,
    owner: NonceOwner,
    record: NonceRecord,
  ): Promise<{ record: NonceRecord; tx: Hex }> {
    const latest = record.txs[record.txs.length - 1];
    const mined = await this.findAnyReceipt(record.txs.map((t) => t.hash as Hex));
    if (mined) return { record, tx: latest.raw as Hex };
    const pending = await this.findTransaction(latest.hash as Hex);
    const chainNonce = await this.client.getTransactionCount({ address: account.address, blockTag: 'latest' });
    if (!pending && chainNonce > record.nonce) return this.supersede(account, owner, record);
    const age = Date.now() - Date.parse(latest.signedAt);
    if (pending && this.options.feeBumpAfterMs !== undefined && age >= this.options.feeBumpAfterMs) {
      return this.bumpFee(account, owner, record);
    }
    return { record, tx: latest.raw as Hex };
  }

  private async bumpFee(account: PrivateKeyAccount, owner: NonceOwner, record: NonceRecord) {
    const latest = record.txs[record.txs.length - 1];
    const previous = parseTransaction(latest.raw as Hex);
    const fees = await this.client.estimateFeesPerGas();
    const bump = (old: bigint | undefined, now: bigint) => {
      const bumped = ((old ?? 0n) * FEE_BUMP_PERCENT) / 100n + 1n;
      return bumped > now ? bumped : now;
    };
    const raw = await account.signTransaction({
      type: 'eip1559',
      chainId: this.options.chainId,
      nonce: record.nonce,
      to: previous.to!,
      ...(previous.data ? { data: previous.data } : {}),
      value: previous.value ?? 0n,
      gas: previous.gas!,
      maxFeePerGas: bump(previous.maxFeePerGas, fees.maxFeePerGas),
      maxPriorityFeePerGas: bump(previous.maxPriorityFeePerGas, fees.maxPriorityFeePerGas),
    });
    const result = await owner.record({
      key: record.key,
      nonce: record.nonce,
      hash: keccak256(raw),
      raw,
      mode: 'replace',
      replaces: latest.hash,
    });
    const now = result.record ?? record;
    return { record: now, tx: now.txs[now.txs.length - 1].raw as Hex };
  }

  private async supersede(account: PrivateKeyAccount, owner: NonceOwner, record: NonceRecord) {
    const latest = record.txs[record.txs.length - 1];
    const previous = parseTransaction(latest.raw as Hex);
    const chainNonce = await this.client.getTransactionCount({ address: account.address, blockTag: 'pending' });
    let { next } = await owner.lookup({ key: record.key, chainNonce });
    const fees = await this.client.estimateFeesPerGas();
    for (let race = 0; race < MAX_NONCE_RACES; race++) {
      const raw = await account.signTransaction({
        type: 'eip1559',
        chainId: this.options.chainId,
        nonce: next,
        to: previous.to!,
        ...(previous.data ? { data: previous.data } : {}),
        value: previous.value ?? 0n,
        gas: previous.gas!,
        maxFeePerGas: fees.maxFeePerGas,
        maxPriorityFeePerGas: fees.maxPriorityFeePerGas,
      });
      const hash = keccak256(raw);
      const result = await owner.record({
        key: record.key,
        nonce: next,
        hash,
        raw,
        mode: 'supersede',
        replaces: latest.hash,
      });
      if (result.accepted) return { record: result.record, tx: raw };
      if (result.record && result.record.txs[result.record.txs.length - 1].hash !== latest.hash) {
        return { record: result.record, tx: result.record.txs[result.record.txs.length - 1].raw as Hex };
      }
      next = result.next;
    }
    throw new Error(`could not re-sign ${record.key} after ${MAX_NONCE_RACES} nonce races`);
  }

  /**
   * Broadcasts a recorded transaction. Holes below its nonce (dropped transactions of the same signer) are filled
   * first by rebroadcasting what the owner recorded for them. "Already known" or "nonce too low" for our own
   * transaction means it is there: success.
   */
  private async broadcast(account: PrivateKeyAccount, owner: NonceOwner, record: NonceRecord, raw: Hex): Promise<void> {
    const confirmedNonce = await this.client.getTransactionCount({ address: account.address, blockTag: 'latest' });
    if (confirmedNonce < record.nonce) {
      for (const hole of await owner.between(confirmedNonce, record.nonce)) {
        await this.sendRaw(hole.txs[hole.txs.length - 1].raw as Hex).catch(() => undefined);
      }
    }
    const hash = keccak256(raw);
    try {
      await this.sendRaw(raw);
    } catch (error) {
      if (await this.isOurs(hash)) return;
      throw error;
    }
    this.faultAfterBroadcast();
  }

  private async sendRaw(raw: Hex): Promise<void> {
    await this.client.request({ method: 'eth_sendRawTransaction', params: [raw] });
  }

  private async isOurs(hash: Hex): Promise<boolean> {
    return !!(await this.findTransaction(hash)) || !!(await this.findAnyReceipt([hash]));
  }

  private faultAfterBroadcast(): void {
    const marker = this.options.killAfterBroadcastMarker;
    if (!marker || existsSync(marker)) return;
    writeFileSync(marker, `${process.pid}\n`);
    process.kill(process.pid, 'SIGKILL');
  }

  private async findTransaction(hash: Hex) {
    try {
      return await this.client.getTransaction({ hash });
    } catch (error) {
      if (error instanceof BaseError && error.name === 'TransactionNotFoundError') return undefined;
      throw error;
    }
  }

  private async findAnyReceipt(hashes: Hex[]): Promise<TransactionReceipt | undefined> {
    for (const hash of [...hashes].reverse()) {
      try {
        return await this.client.getTransactionReceipt({ hash });
      } catch (error) {
        if (error instanceof BaseError && error.name === 'TransactionReceiptNotFoundError') continue;
        throw error;
      }
    }
    return undefined;
  }

  /**
   * What the chain says now about a step's transactions: included/confirmed in which block, finalized under a tag
   * policy, reorged when the block the workflow knows is no longer canonical, dropped when no version of the
   * transaction is mined or pending, failed with the decoded reason when it reverted.
   */
  private async checkNow(input: CheckStepInput): Promise<Observation[]> {
    const refs = input.refs.filter((ref) => /^0x[0-9a-fA-F]{64}$/.test(ref)) as Hex[];
    if (refs.length === 0) return [];
    const source = `evm:${this.options.network}`;
    const observedAt = new Date().toISOString();
    const observations: Observation[] = [];
    if (input.knownBlock) {
      const canonical = await this.client
        .getBlock({ blockNumber: BigInt(input.knownBlock.number) })
        .catch((error: unknown) => (isBlockNotFound(error) ? undefined : Promise.reject(error)));
      if (canonical?.hash !== input.knownBlock.hash) {
        observations.push({ kind: 'reorged', block: input.knownBlock, source, observedAt });
      }
    }
    const receipt = await this.findAnyReceipt(refs);
    if (!receipt) {
      const pending = await Promise.all(refs.map((ref) => this.findTransaction(ref)));
      if (!pending.some(Boolean)) {
        observations.push({ kind: 'dropped', ref: refs[refs.length - 1], source, observedAt });
      }
      return observations;
    }
    const ref = receipt.transactionHash;
    const block = { number: receipt.blockNumber.toString(), hash: receipt.blockHash };
    if (receipt.status === 'reverted') {
      const reason = await this.revertReasonOf(receipt);
      observations.push({ kind: 'failed', ref, block, reason: `execution reverted: ${reason}`, source, observedAt });
      return observations;
    }
    const head = await this.client.getBlockNumber({ cacheTime: 0 });
    const confirmations = Math.max(1, Number(head - receipt.blockNumber + 1n));
    const output = { txHash: ref, blockNumber: block.number, ...decodeReceiptLogs(receipt.logs) };
    observations.push({ kind: 'confirmed', ref, block, confirmations, output, source, observedAt });
    if (await this.tagCovers(input.finality, receipt.blockNumber)) {
      observations.push({ kind: 'finalized', ref, block, source, observedAt });
    }
    return observations;
  }

  private async tagCovers(policy: FinalityPolicy, blockNumber: bigint): Promise<boolean> {
    if (!('tag' in policy)) return false;
    const tagged = await this.client.getBlock({ blockTag: policy.tag }).catch(() => undefined);
    return !!tagged && tagged.number !== null && tagged.number >= blockNumber;
  }

  private revertReasonOf(receipt: TransactionReceipt): Promise<string> {
    return replayRevertReason(this.client, receipt);
  }
}

/** A network or node error: retried by the activity's retry policy. Its message names no RPC URL. */
export class RpcError extends Error {
  override name = 'RpcError';
  constructor(
    message: string,
    readonly network: string,
  ) {
    super(`${network}: ${message}`);
  }
}

function describeError(error: unknown): string {
  if (error instanceof BaseError)
    return error.details ? `${error.shortMessage} (${error.details})` : error.shortMessage;
  return error instanceof Error ? error.message : String(error);
}

export function redact(message: string, rpcUrls: string[]): string {
  let text = message;
  rpcUrls.forEach((url, i) => {
    const name = `<rpc #${i + 1}>`;
    text = text.split(url).join(name).split(url.replace(/\/$/, '')).join(name);
    try {
      const { origin, host } = new URL(url);
      text = text.split(origin).join(name).split(host).join(name);
    } catch {
      // not a URL: nothing more to hide
    }
  });
  return text;
}

function isBlockNotFound(error: unknown): boolean {
  return error instanceof BaseError && error.name === 'BlockNotFoundError';
}

/** The call an operation makes, with its templates resolved. */
export function encodeOperation(operation: EvmOperation, context: SubmitStepInput['context']): PreparedCall {
  const to = resolveTemplates(operation.to, context);
  if (typeof to !== 'string' || !/^0x[0-9a-fA-F]{40}$/.test(to)) {
    throw ApplicationFailure.nonRetryable(`to: ${JSON.stringify(to)} is not an address`, 'InvalidOperation');
  }
  if (operation.kind === 'evm.transfer') return { to: to as Hex, value: BigInt(operation.value) };
  const fn = parseFunction(operation.function);
  const args = toAbiArgs(
    fn,
    operation.args.map((arg) => resolveTemplates(arg, context)),
  );
  return {
    to: to as Hex,
    data: encodeFunctionData({ abi: [fn, ...KNOWN_ERRORS], functionName: fn.name, args }),
    value: BigInt(operation.value ?? '0'),
  };
}
