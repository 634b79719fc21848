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

/** A recorded transaction to (re)send: `tx` is one version of `record` (the mined one, once any version is). */
type Signed = { record: NonceRecord; tx: Hex; mined?: boolean };

const GAS_MARGIN_PERCENT = 125n;
const FEE_BUMP_PERCENT = 125n;
const MAX_NONCE_RACES = 8;
/**
 * How deep the block must be in which a recorded transaction's nonce is seen used by something that is none of its
 * versions, before the call is signed again with a new nonce: a lagging RPC backend (or a receipt read before the
 * nonce) must never make Settle re-sign a call whose original is mined.
 */
const SUPERSEDE_DEPTH = 12n;

function nothingSubmitted(key: string) {
  return nonRetryable(ErrorType.NothingSubmitted, `no transaction was signed for ${key}, and none will be`);
}

/** A nonce used by something we cannot see yet: retried later (retryable), never re-signed in doubt. */
export class NonceInDoubtError extends Error {
  override name = 'NonceInDoubt';
}

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
    const key = input.nonceKey ?? `${input.actionId}/${input.stepId}/${input.attempt}/${input.for}`;
    const owner = this.options.nonceOwners(await this.nonceScope(), account.address);
    const chainNonce = await this.client.getTransactionCount({ address: account.address, blockTag: 'pending' });
    const { record, next, abandoned } = await owner.lookup({
      key,
      chainNonce,
      ...(input.existingOnly ? { abandonIfAbsent: true } : {}),
    });
    if (!record && (abandoned || input.existingOnly)) throw nothingSubmitted(key);

    const sent = record
      ? await this.resend(account, owner, record)
      : await this.signAndRecord(account, owner, key, await this.prepare(input, account), next);
    if (!sent.mined) await this.broadcast(account, owner, sent.record, sent.tx);
    const hash = keccak256(sent.tx);
    const index = sent.record.txs.findIndex((t) => t.hash === hash);
    return {
      ref: hash,
      output: {
        txHash: hash,
        nonce: sent.record.nonce,
        from: account.address,
        ...(index > 0 ? { replaces: sent.record.txs[index - 1].hash } : {}),
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
      if (result.abandoned) throw nothingSubmitted(key);
      nonce = result.next;
    }
    throw new Error(`could not record a nonce for ${key} after ${MAX_NONCE_RACES} races`);
  }

  /**
   * A retry of an attempt that already has a signed transaction. Whichever version of it is mined is the result. Else
   * the same bytes again, unless they have been pending longer than the fee-bump delay (replace: same nonce, higher
   * fees), or their nonce was used by another transaction deep enough that no version can ever be mined (sign again
   * with a new nonce). The nonce is read before the receipts, so a version mined in between is seen, never re-signed.
   */
  private async resend(account: PrivateKeyAccount, owner: NonceOwner, record: NonceRecord): Promise<Signed> {
    const latest = record.txs[record.txs.length - 1];
    const head = await this.client.getBlockNumber();
    const chainNonce = await this.client.getTransactionCount({ address: account.address, blockNumber: head });
    const mined = await this.minedVersion(record);
    if (mined) return mined;
    const pending = await this.reader.transaction(latest.hash as Hex);
    if (!pending && chainNonce > record.nonce) {
      await this.assertSuperseded(account, record, head);
      return this.supersede(account, owner, record);
    }
    const age = Date.now() - Date.parse(latest.signedAt);
    if (pending && this.options.feeBumpAfterMs !== undefined && age >= this.options.feeBumpAfterMs) {
      return this.bumpFee(account, owner, record);
    }
    return { record, tx: latest.raw as Hex };
  }

  /** The version of a record that is mined, if any: every version's receipt is read, the newest first. */
  private async minedVersion(record: NonceRecord): Promise<Signed | undefined> {
    const receipt = await this.reader.newestReceipt(record.txs.map((t) => t.hash as Hex));
    const version = receipt && record.txs.find((t) => t.hash.toLowerCase() === receipt.transactionHash.toLowerCase());
    return version ? { record, tx: version.raw as Hex, mined: true } : undefined;
  }

  /**
   * The record's nonce is used and none of its versions is visible: only once that nonce was already used
   * `SUPERSEDE_DEPTH` blocks ago, and still no version has a receipt, is the call signed again. In doubt, retry later.
   */
  private async assertSuperseded(account: PrivateKeyAccount, record: NonceRecord, head: bigint): Promise<void> {
    const deep = head > SUPERSEDE_DEPTH ? head - SUPERSEDE_DEPTH : 0n;
    const nonceThen = await this.client.getTransactionCount({ address: account.address, blockNumber: deep });
    if (nonceThen <= record.nonce || (await this.minedVersion(record))) {
      throw new NonceInDoubtError(
        `nonce ${record.nonce} of ${account.address} is used by a transaction that is none of ${record.key}'s ` +
          `versions, less than ${SUPERSEDE_DEPTH} blocks deep: waiting before signing it again`,
      );
    }
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
