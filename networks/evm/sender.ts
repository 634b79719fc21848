/**
 * The nonce-owned sender: signs a step attempt's transaction with a nonce from the signer's nonce owner, records the
 * signed bytes there before broadcasting them, and on any retry sends the recorded bytes again — or replaces them
 * (same nonce, higher fees) when they have been pending too long, or signs them again with a new nonce when theirs
 * was used by another transaction.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { keccak256, parseTransaction, type Hex, type PrivateKeyAccount, type PublicClient } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import type { SubmitStepInput, SubmitStepResult } from '../../contract/activity-io';
import { ErrorType, nonRetryable } from '../../contract/errors';
import type { NonceRecord } from '../../workflows/signer-nonces';
import type { ChainReader } from './chain-reader';
import { encodeOperation, type PreparedCall } from './encode';
import { isRevert, revertReason } from './known-abi';
import type { NonceOwner, NonceOwnerFactory } from './nonce-owner';

export interface EvmSenderOptions {
  network: string;
  chainId: number;
  /** Whether this worker may send on this network at all. */
  send: boolean;
  /** Signer name → private key. Lives only in the worker process. */
  signers: Record<string, Hex>;
  nonceOwners: NonceOwnerFactory;
  /** Replace a still-pending transaction with higher fees when a retry finds it this old. */
  feeBumpAfterMs?: number;
  /** Crash tests only: SIGKILL this process right after the first broadcast (once per marker file). */
  killAfterBroadcastMarker?: string;
}

type Signed = { record: NonceRecord; tx: Hex };

const GAS_MARGIN_PERCENT = 125n;
const FEE_BUMP_PERCENT = 125n;
const MAX_NONCE_RACES = 8;

/**
 * Submission is idempotent per step attempt: a retry, on this worker or another, finds the attempt's record with the
 * nonce owner and never signs a second effective transaction.
 *
 * @example const { ref } = await new EvmSender(options, client, new ChainReader(client)).submit(input);
 */
export class EvmSender {
  private readonly accounts: Record<string, PrivateKeyAccount>;
  private scope?: Promise<string>;

  constructor(
    private readonly options: EvmSenderOptions,
    private readonly client: PublicClient,
    private readonly reader: ChainReader,
  ) {
    this.accounts = Object.fromEntries(
      Object.entries(options.signers).map(([name, key]) => [name, privateKeyToAccount(key)]),
    );
  }

  /** Signer name → address (for logs and tools; never the key). */
  signerAddress(name: string): Hex | undefined {
    return this.accounts[name]?.address;
  }

  async submit(input: SubmitStepInput): Promise<SubmitStepResult> {
    const { network } = this.options;
    if (!this.options.send) {
      throw nonRetryable(ErrorType.SendingDisabled, `sending is not enabled on ${network} in this worker`);
    }
    const account = this.accounts[input.operation.signer];
    if (!account) {
      throw nonRetryable(ErrorType.UnknownSigner, `signer "${input.operation.signer}" is not configured on ${network}`);
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

  /** Resolves templates, encodes the call and simulates it: a revert here is final evidence, not a retry. */
  private async prepare(input: SubmitStepInput, account: PrivateKeyAccount): Promise<PreparedCall & { gas: bigint }> {
    const call = encodeOperation(input.operation, input.context);
    try {
      await this.client.call({ account: account.address, ...call, blockTag: 'pending' });
    } catch (error) {
      if (isRevert(error)) {
        throw nonRetryable(ErrorType.ExecutionReverted, `execution reverted: ${revertReason(error)}`);
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
  ): Promise<Signed> {
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
  private async resend(account: PrivateKeyAccount, owner: NonceOwner, record: NonceRecord): Promise<Signed> {
    const latest = record.txs[record.txs.length - 1];
    const mined = await this.reader.newestReceipt(record.txs.map((t) => t.hash as Hex));
    if (mined) return { record, tx: latest.raw as Hex };
    const pending = await this.reader.transaction(latest.hash as Hex);
    const chainNonce = await this.client.getTransactionCount({ address: account.address, blockTag: 'latest' });
    if (!pending && chainNonce > record.nonce) return this.supersede(account, owner, record);
    const age = Date.now() - Date.parse(latest.signedAt);
    if (pending && this.options.feeBumpAfterMs !== undefined && age >= this.options.feeBumpAfterMs) {
      return this.bumpFee(account, owner, record);
    }
    return { record, tx: latest.raw as Hex };
  }

  private async bumpFee(account: PrivateKeyAccount, owner: NonceOwner, record: NonceRecord): Promise<Signed> {
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

  private async supersede(account: PrivateKeyAccount, owner: NonceOwner, record: NonceRecord): Promise<Signed> {
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
    return !!(await this.reader.transaction(hash)) || !!(await this.reader.newestReceipt([hash]));
  }

  private faultAfterBroadcast(): void {
    const marker = this.options.killAfterBroadcastMarker;
    if (!marker || existsSync(marker)) return;
    writeFileSync(marker, `${process.pid}\n`);
    process.kill(process.pid, 'SIGKILL');
  }
}
