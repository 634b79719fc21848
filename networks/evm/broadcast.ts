/**
 * Broadcasting what the nonce owner recorded: the sender's last step, after signing and recording. Kept apart from the
 * sender so each stays small.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { keccak256, type Hex, type PrivateKeyAccount, type PublicClient } from 'viem';
import type { NonceRecord } from '../../workflows/machine/nonce-book';
import type { ChainReader } from './chain-reader';
import type { NonceOwner } from './nonce-owner';

export interface Broadcasting {
  client: PublicClient;
  reader: ChainReader;
  account: PrivateKeyAccount;
  owner: NonceOwner;
  heartbeat: () => void;
}

/**
 * Broadcasts a recorded transaction. Holes below its nonce (dropped transactions of the same signer, from the node's
 * pending nonce up) are filled first by rebroadcasting what the owner recorded for them. "Already known" or "nonce too
 * low" for our own transaction means it is there: success. Returns whether this call is the one that got it to the
 * node.
 *
 * @example await broadcast({ client, reader, account, owner, heartbeat }, record, raw);
 */
export async function broadcast(
  { client, reader, account, owner, heartbeat }: Broadcasting,
  record: NonceRecord,
  raw: Hex,
): Promise<boolean> {
  const sendRaw = (tx: Hex) => client.request({ method: 'eth_sendRawTransaction', params: [tx] });
  // The node's pending nonce is the first nonce it holds no transaction for (mined or in its pool): only below it is
  // nothing missing, so only when it is below ours is the owner asked (a billable query) for what fills the holes.
  const pendingNonce = await client.getTransactionCount({ address: account.address, blockTag: 'pending' });
  if (pendingNonce < record.nonce) {
    for (const hole of await owner.between(pendingNonce, record.nonce)) {
      heartbeat();
      await sendRaw(hole.txs[hole.txs.length - 1].raw as Hex).catch(() => undefined);
    }
  }
  heartbeat();
  const hash = keccak256(raw);
  try {
    await sendRaw(raw);
  } catch (error) {
    if ((await reader.transaction(hash)) || (await reader.newestReceipt([hash]))) return false;
    throw error;
  }
  return true;
}

/** Crash tests only: SIGKILL this process right after its first broadcast (once per marker file). */
export function faultAfterBroadcast(marker: string | undefined): void {
  if (!marker || existsSync(marker)) return;
  writeFileSync(marker, `${process.pid}\n`);
  process.kill(process.pid, 'SIGKILL');
}
