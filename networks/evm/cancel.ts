/**
 * Cancelling a transaction that compensation no longer wants: a same-nonce no-op (a zero-value transfer to the signer
 * itself) at competitive fees, recorded with the nonce owner as a replacement of the pending version. Whichever of the
 * two is mined settles the nonce under the owner's control: the original (an effect, to compensate) or the no-op (no
 * effect). Never rebroadcast for anyone else: the owner's record now ends in the no-op.
 */
import { keccak256, parseTransaction, type Hex, type PrivateKeyAccount, type PublicClient } from 'viem';
import type { SubmitStepResult } from '../../contract/activity-io';
import type { NonceRecord } from '../../workflows/machine/nonce-book';
import type { Signed } from './sender';
import type { NonceOwner } from './nonce-owner';

const CANCEL_BUMP_PERCENT = 130n;
const NO_OP_GAS = 21_000n;

/** The no-op a record's nonce is cancelled with, signed and recorded; undefined if the owner refused it. */
export async function recordNoOp(
  client: PublicClient,
  chainId: number,
  account: PrivateKeyAccount,
  owner: NonceOwner,
  record: NonceRecord,
): Promise<{ record: NonceRecord; tx: Hex } | undefined> {
  const latest = record.txs[record.txs.length - 1];
  const previous = parseTransaction(latest.raw as Hex);
  const fees = await client.estimateFeesPerGas();
  // A replacement must pay more than the transaction it replaces (nodes ask for at least +10%).
  const bump = (old: bigint | undefined, now: bigint) => {
    const bumped = ((old ?? 0n) * CANCEL_BUMP_PERCENT) / 100n + 1n;
    return bumped > now ? bumped : now;
  };
  const raw = await account.signTransaction({
    type: 'eip1559',
    chainId,
    nonce: record.nonce,
    to: account.address,
    value: 0n,
    gas: NO_OP_GAS,
    maxFeePerGas: bump(previous.maxFeePerGas, fees.maxFeePerGas),
    maxPriorityFeePerGas: bump(previous.maxPriorityFeePerGas, fees.maxPriorityFeePerGas),
  });
  const result = await owner.record({
    key: record.key,
    nonce: record.nonce,
    hash: keccak256(raw),
    raw,
    replaces: latest.hash,
    mode: 'replace',
  });
  return result.accepted ? { record: result.record, tx: raw } : undefined;
}

/** Whether a signed transaction is a no-op of its signer (what {@link recordNoOp} signs). */
export function isNoOp(raw: Hex, signer: string): boolean {
  const tx = parseTransaction(raw);
  return tx.to?.toLowerCase() === signer.toLowerCase() && (tx.value ?? 0n) === 0n && !tx.data;
}

/** What a submission returns: the version sent (or mined, or settled), and whether it is a no-op cancelling the call. */
export function submitResult(signer: Hex, sent: Signed): SubmitStepResult {
  const { nonce, hash, replaces } =
    'settled' in sent ? sent.settled : { nonce: sent.record.nonce, ...versionOf(sent.record, sent.tx) };
  // A no-op that cancels the record's call says so: its inclusion is no effect of the step.
  const noOp = 'record' in sent && isNoOp(sent.tx, signer);
  const cancels: Record<string, string> = noOp ? { cancels: replaces ?? '' } : {};
  return { ref: hash, output: { txHash: hash, nonce, from: signer, ...(replaces ? { replaces } : {}), ...cancels } };
}

function versionOf(record: NonceRecord, tx: Hex): { hash: string; replaces?: string } {
  const hash = keccak256(tx);
  const index = record.txs.findIndex((t) => t.hash === hash);
  return { hash, ...(index > 0 ? { replaces: record.txs[index - 1].hash } : {}) };
}
