/**
 * The nonce-owned sender: signs a step attempt's transaction with a nonce from the signer's nonce owner, records the
 * signed bytes there before broadcasting them, and on any retry sends the recorded bytes again — or replaces them
 * (same nonce, higher fees) when they have been pending too long, or signs them again with a new nonce when theirs
 * was used by another transaction. It tells the owner which records are settled (mined deep), so the owner forgets
 * their bytes. Inside an activity it heartbeats between its round trips. Nothing is signed that the signer's policy
 * does not allow (see `SigningGuard`): checked on the decoded transaction right before it is signed, with its budgets
 * reserved by the nonce owner in the update that records it.
 */
import { keccak256, parseTransaction, type Hex, type PrivateKeyAccount, type PublicClient } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import type { SubmitStepInput, SubmitStepResult } from '../../contract/activity-io';
import { ErrorType, nonRetryable } from '../../contract/errors';
import { legacyNonceScope, nonceScope } from '../../workflows/signer-nonces';
import type { NonceRecord, SettledRecord } from '../../workflows/machine/nonce-book';
import { heartbeat, isFirstAttempt } from './activity-context';
import { broadcast, faultAfterBroadcast } from './broadcast';
import type { ChainReader } from './chain-reader';
import { isNoOp, recordNoOp, submitResult } from './cancel';
import { type PreparedCall } from './encode';
import { prepareCall } from './prepare';
import { OwnerTurns, settleDeepRecords, SETTLED_DEPTH, type NonceOwner, type NonceOwnerFactory } from './nonce-owner';
import { SigningGuard } from './signing-guard';
import type { SignerPolicyInput } from './signing-policy';

export interface EvmSenderOptions {
  network: string;
  chainId: number;
  /** Whether this worker may send on this network at all. */
  send: boolean;
  /** Signer name → private key. Lives only in the worker process. */
  signers: Record<string, Hex>;
  /** Signer name → its signing policy on this network (required for every signer, when sending is on). */
  policies: Record<string, SignerPolicyInput>;
  nonceOwners: NonceOwnerFactory;
  /** Replace a still-pending transaction with higher fees when a retry finds it this old. */
  feeBumpAfterMs?: number;
  /** Crash tests only: SIGKILL this process right after the first broadcast (once per marker file). */
  killAfterBroadcastMarker?: string;
}

/** The signer of a submission: its key, its name (for its policy) and its nonce owner. */
interface Signer {
  account: PrivateKeyAccount;
  name: string;
  owner: NonceOwner;
  ownerId: string;
  /** The operation's function signature: only names a refused selector in a policy violation. */
  hint?: string;
}

/**
 * A recorded transaction to (re)send: `tx` is one version of `record` (the mined one, once any version is, with its
 * block); or the attempt's settled record, mined deep, of which nothing is sent.
 */
export type Signed = { record: NonceRecord; tx: Hex; mined?: bigint } | { settled: SettledRecord };

const FEE_BUMP_PERCENT = 125n;
const MAX_NONCE_RACES = 16;
/** Settling is housekeeping: at most once this often per owner. */
const SWEEP_EVERY_MS = 30_000;
const HEARTBEAT_WHILE_WAITING_MS = 2_000;

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
  private scope?: Promise<{ scope: string; legacyScopes: string[] }>;
  private readonly sweptAt = new Map<string, number>();
  private readonly turns = new OwnerTurns();
  private readonly guard: SigningGuard;

  constructor(
    private readonly options: EvmSenderOptions,
    private readonly client: PublicClient,
    private readonly reader: ChainReader,
  ) {
    this.guard = new SigningGuard(options);
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
    const { scope, legacyScopes } = await this.nonceScope();
    const owner = this.options.nonceOwners(scope, account.address, { legacyScopes });
    const ownerId = `${scope}:${account.address}`;
    const chainNonce = await this.client.getTransactionCount({ address: account.address, blockTag: 'pending' });
    const { operation } = input;
    const hint = operation.kind === 'evm.call' ? operation.function : undefined;
    const signer = { account, name: operation.signer, owner, ownerId, ...(hint ? { hint } : {}) };
    // A first submission (see `SubmitStepInput.fresh`) on an owner this process has recorded with: no record can exist
    // for its key, so it is recorded at once at the nonce expected next, with no lookup first (one update, not two).
    // Any refusal but the budget's falls back to the lookup below; the bytes signed for it are sent nowhere.
    const fresh = input.fresh && isFirstAttempt() && !input.existingOnly && this.turns.nextNonce.has(ownerId);
    // Prepared (checked, simulated, gas estimated) once: the fallback signs the same call. A call that fails its checks
    // goes to the lookup all the same: its key may have a transaction already (an activity or a workflow reset runs a
    // first attempt again), which is the answer; with none, the checks run again there and their error is the answer.
    const prepared = fresh
      ? await prepareCall(this.client, this.guard, input, signer).catch(() => undefined)
      : undefined;
    const fast = prepared ? await this.signAndRecord(signer, key, prepared, chainNonce, true) : undefined;
    if (fast) return this.send(signer, fast);
    const { record, settled, next, abandoned } = await owner.lookup({
      key,
      chainNonce,
      ...(input.existingOnly ? { abandonIfAbsent: true } : {}),
    });
    heartbeat();
    if (settled) return submitResult(account.address, { settled });
    if (!record && (abandoned || input.existingOnly)) throw nothingSubmitted(key);

    const sent = record
      ? await ((input.cancelIfPending && (await this.cancel(signer, record))) || this.resend(signer, record))
      : await this.signAndRecord(
          signer,
          key,
          prepared ?? (await prepareCall(this.client, this.guard, input, signer)),
          next,
        );
    if (!sent) throw nothingSubmitted(key); // (only a single try returns nothing)
    return this.send(signer, sent);
  }

  /** Broadcasts what was recorded (unless a version of it is mined), settles what the chain settled, and answers. */
  private async send(signer: Signer, sent: Signed): Promise<SubmitStepResult> {
    const { account, owner } = signer;
    if ('record' in sent && sent.mined === undefined) {
      const { client, reader } = this;
      const sentNow = await broadcast({ client, reader, account, owner, heartbeat }, sent.record, sent.tx);
      if (sentNow) faultAfterBroadcast(this.options.killAfterBroadcastMarker);
    }
    await this.sweep(signer);
    return submitResult(account.address, sent);
  }

  /**
   * Compensation no longer wants a call that is still pending at an open nonce: cancel it with a same-nonce no-op.
   * A version already mined, or a nonce already used, is left to `resend`.
   */
  private async cancel(signer: Signer, record: NonceRecord): Promise<Signed | undefined> {
    const { account, owner } = signer;
    const latest = record.txs[record.txs.length - 1];
    if (isNoOp(latest.raw as Hex, account.address)) return undefined;
    const chainNonce = await this.client.getTransactionCount({ address: account.address, blockTag: 'latest' });
    if (chainNonce > record.nonce || (await this.minedVersion(record))) return undefined;
    heartbeat();
    return recordNoOp(this.client, this.options.chainId, account, owner, record);
  }

  /**
   * Nonces belong to a chain, not to a name: the scope is the chain id and the genesis hash (see `nonceScope`), so two
   * network entries for one chain share one owner, and a reset local chain gets a fresh one. The scope owners were
   * kept under before (network name and genesis hash) is handed over on first use.
   */
  private nonceScope(): Promise<{ scope: string; legacyScopes: string[] }> {
    this.scope ??= this.client.getBlock({ blockNumber: 0n }).then(
      (genesis) => ({
        scope: nonceScope(this.options.chainId, genesis.hash),
        legacyScopes: [legacyNonceScope(this.options.network, genesis.hash)],
      }),
      (error: unknown) => {
        this.scope = undefined;
        throw error;
      },
    );
    return this.scope;
  }

  /**
   * Signs with the owner's next nonce and records it; on a nonce race, signs again with the new next. Within this
   * process, one submission per owner at a time signs and records (the others queue, and start from the nonce after
   * the last one recorded): twenty concurrent submissions cost twenty records, not two hundred refusals. Other
   * processes still race, through compare-and-record.
   *
   * No budget query before signing (a billable round trip per submission): the record reserves the room or refuses,
   * and a refused record is sent nowhere; refused once, the chain's settled records are settled and it is tried again.
   */
  private async signAndRecord(
    signer: Signer,
    key: string,
    call: PreparedCall & { gas: bigint },
    next: number,
    once = false,
  ): Promise<Signed | undefined> {
    const { account, owner, ownerId } = signer;
    // The last moment: the very call signed below, decoded and checked against the policy; recorded only with room.
    const spend = this.guard.check(signer.name, call);
    const fees = await this.client.estimateFeesPerGas();
    // Waiting for the turn is waiting on the others' progress: it heartbeats too.
    const waiting = setInterval(heartbeat, HEARTBEAT_WHILE_WAITING_MS);
    const result = await this.turns
      .take(ownerId, async () => {
        let nonce = Math.max(next, this.turns.nextNonce.get(ownerId) ?? 0);
        for (let race = 0; race < MAX_NONCE_RACES; race++) {
          heartbeat();
          const raw = await account.signTransaction({
            type: 'eip1559',
            chainId: this.options.chainId,
            nonce,
            ...call,
            maxFeePerGas: fees.maxFeePerGas,
            maxPriorityFeePerGas: fees.maxPriorityFeePerGas,
          });
          const recorded = await owner.record({ key, nonce, hash: keccak256(raw), raw, mode: 'new', spend });
          // Settled transactions give their room back: settle them, then record (at the same nonce) once more.
          if (!recorded.accepted && recorded.budget && race === 0 && spend.length > 0) {
            await this.sweep(signer, true);
            continue;
          }
          if (recorded.accepted) this.turns.nextNonce.set(ownerId, nonce + 1);
          if (recorded.accepted || recorded.settled || recorded.record || recorded.abandoned || recorded.budget) {
            return { recorded, raw };
          }
          if (once) return undefined;
          nonce = recorded.next;
          // Another process won this nonce: let the herd spread out before the next try.
          await new Promise((resolve) => setTimeout(resolve, Math.random() * 20 * Math.min(race + 1, 10)));
        }
        throw new Error(`could not record a nonce for ${key} after ${MAX_NONCE_RACES} races`);
      })
      .finally(() => clearInterval(waiting));
    if (!result) return undefined;
    const { recorded, raw } = result;
    if (recorded.accepted) return { record: recorded.record, tx: raw };
    if (recorded.settled) return { settled: recorded.settled };
    if (recorded.record) return this.resend(signer, recorded.record);
    if (recorded.budget) {
      // No room, even after settling: the bytes signed here are dropped, never recorded nor sent.
      throw this.guard.waiting(signer.name, recorded.budget);
    }
    throw nothingSubmitted(key);
  }

  /**
   * A retry of an attempt that already has a signed transaction. Whichever version of it is mined is the result. Else
   * the same bytes again, unless they have been pending longer than the fee-bump delay (replace: same nonce, higher
   * fees), or their nonce was used by another transaction deep enough that no version can ever be mined (sign again
   * with a new nonce). The nonce is read before the receipts, so a version mined in between is seen, never re-signed.
   */
  private async resend(signer: Signer, record: NonceRecord): Promise<Signed> {
    const { account, owner } = signer;
    const latest = record.txs[record.txs.length - 1];
    const head = await this.client.getBlockNumber();
    const chainNonce = await this.client.getTransactionCount({ address: account.address, blockNumber: head });
    const mined = await this.minedVersion(record);
    if (mined) {
      if (head - mined.mined >= SETTLED_DEPTH) await this.settleQuietly(owner, record, mined.tx, mined.mined);
      return mined;
    }
    heartbeat();
    const pending = await this.reader.transaction(latest.hash as Hex);
    if (!pending && chainNonce > record.nonce) {
      await this.assertSuperseded(account, record, head);
      return this.supersede(signer, record);
    }
    const age = Date.now() - Date.parse(latest.signedAt);
    if (pending && this.options.feeBumpAfterMs !== undefined && age >= this.options.feeBumpAfterMs) {
      return this.bumpFee(account, owner, record);
    }
    return { record, tx: latest.raw as Hex };
  }

  /** The version of a record that is mined, if any, and its block: every version's receipt, the newest first. */
  private async minedVersion(
    record: NonceRecord,
  ): Promise<{ record: NonceRecord; tx: Hex; mined: bigint } | undefined> {
    const receipt = await this.reader.newestReceipt(record.txs.map((t) => t.hash as Hex));
    const version = receipt && record.txs.find((t) => t.hash.toLowerCase() === receipt.transactionHash.toLowerCase());
    return version ? { record, tx: version.raw as Hex, mined: receipt.blockNumber } : undefined;
  }

  /**
   * Settles what the chain settled, at most every {@link SWEEP_EVERY_MS} per owner (or now, when a budget waits for
   * room that settled transactions give back); never fails the submission.
   */
  private async sweep({ account, owner, ownerId }: Signer, force = false): Promise<void> {
    const now = Date.now();
    if (!force && now - (this.sweptAt.get(ownerId) ?? 0) < SWEEP_EVERY_MS) return;
    this.sweptAt.set(ownerId, now);
    heartbeat();
    await settleDeepRecords(owner, this.reader, account.address).catch(() => this.sweptAt.delete(ownerId));
  }

  /** Tells the owner a version is mined deep; a failure only postpones it to the next sweep. */
  private async settleQuietly(owner: NonceOwner, record: NonceRecord, tx: Hex, block: bigint): Promise<void> {
    const mined = [{ key: record.key, hash: keccak256(tx), blockNumber: block.toString() }];
    await owner.settle({ mined }).catch(() => undefined);
  }

  /**
   * The record's nonce is used and none of its versions is visible: only once that nonce was already used
   * `SETTLED_DEPTH` blocks ago, and still no version has a receipt, is the call signed again. In doubt, retry later.
   */
  private async assertSuperseded(account: PrivateKeyAccount, record: NonceRecord, head: bigint): Promise<void> {
    const deep = head > SETTLED_DEPTH ? head - SETTLED_DEPTH : 0n;
    const nonceThen = await this.client.getTransactionCount({ address: account.address, blockNumber: deep });
    if (nonceThen <= record.nonce || (await this.minedVersion(record))) {
      throw new NonceInDoubtError(
        `nonce ${record.nonce} of ${account.address} is used by a transaction that is none of ${record.key}'s ` +
          `versions, less than ${SETTLED_DEPTH} blocks deep: waiting before signing it again`,
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
    const raw = await this.signAgain(account, latest.raw as Hex, record.nonce, {
      maxFeePerGas: bump(previous.maxFeePerGas, fees.maxFeePerGas),
      maxPriorityFeePerGas: bump(previous.maxPriorityFeePerGas, fees.maxPriorityFeePerGas),
    });
    const replace = { key: record.key, nonce: record.nonce, hash: keccak256(raw), raw, replaces: latest.hash };
    const result = await owner.record({ ...replace, mode: 'replace' });
    if (!result.accepted && result.settled) return { settled: result.settled };
    const now = result.record ?? record;
    return { record: now, tx: now.txs[now.txs.length - 1].raw as Hex };
  }

  /** Signs the record's call again with a new nonce: a new effect, so checked against the policy and budgets again. */
  private async supersede(signer: Signer, record: NonceRecord): Promise<Signed> {
    const { account, owner } = signer;
    const latest = record.txs[record.txs.length - 1];
    const previous = parseTransaction(latest.raw as Hex);
    const call = { to: previous.to!, ...(previous.data ? { data: previous.data } : {}), value: previous.value ?? 0n };
    const spend = this.guard.check(signer.name, call, signer.hint);
    await this.guard.assertRoom(owner, { key: record.key, signer: signer.name, spend }, () => this.sweep(signer, true));
    const chainNonce = await this.client.getTransactionCount({ address: account.address, blockTag: 'pending' });
    let { next } = await owner.lookup({ key: record.key, chainNonce });
    const fees = await this.client.estimateFeesPerGas();
    for (let race = 0; race < MAX_NONCE_RACES; race++) {
      heartbeat();
      const raw = await this.signAgain(account, latest.raw as Hex, next, fees);
      const resign = { key: record.key, nonce: next, hash: keccak256(raw), raw, replaces: latest.hash };
      const result = await owner.record({ ...resign, mode: 'supersede', spend });
      if (result.accepted) return { record: result.record, tx: raw };
      if (result.budget) throw this.guard.waiting(signer.name, result.budget);
      if (result.settled) return { settled: result.settled };
      if (result.record && result.record.txs[result.record.txs.length - 1].hash !== latest.hash) {
        return { record: result.record, tx: result.record.txs[result.record.txs.length - 1].raw as Hex };
      }
      next = result.next;
    }
    throw new Error(`could not re-sign ${record.key} after ${MAX_NONCE_RACES} nonce races`);
  }

  /** The same call as a signed version, with another nonce or other fees. */
  private signAgain(
    account: PrivateKeyAccount,
    version: Hex,
    nonce: number,
    fees: { maxFeePerGas: bigint; maxPriorityFeePerGas: bigint },
  ): Promise<Hex> {
    const previous = parseTransaction(version);
    return account.signTransaction({
      type: 'eip1559',
      chainId: this.options.chainId,
      nonce,
      to: previous.to!,
      ...(previous.data ? { data: previous.data } : {}),
      value: previous.value ?? 0n,
      gas: previous.gas!,
      maxFeePerGas: fees.maxFeePerGas,
      maxPriorityFeePerGas: fees.maxPriorityFeePerGas,
    });
  }
}
