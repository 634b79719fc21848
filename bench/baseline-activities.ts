/**
 * The naive design's activities: a plain transaction from a hardhat development account of its own (so the nonce
 * owners' book for the `bridge` signer is not disturbed), and a receipt poll every block, heartbeating each block.
 */
import { heartbeat } from '@temporalio/activity';
import { createPublicClient, createWalletClient, http, nonceManager, type Hex } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';

/** Hardhat's development account #2 (a public mnemonic's key): for local chains only. */
const NAIVE_KEY: Hex = '0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a';
const RECIPIENT: Hex = '0x70997970C51812dc3A010C7d01b50e0d17dc79C8';

export interface AwaitFinalInput {
  network: string;
  hash: string;
  confirmations: number;
  blockTimeMs: number;
}

export interface BaselineActivities {
  naiveSubmit(network: string): Promise<string>;
  naiveAwaitFinal(input: AwaitFinalInput): Promise<void>;
}

export function createBaselineActivities(rpcUrls: Record<string, string>): BaselineActivities {
  const account = privateKeyToAccount(NAIVE_KEY, { nonceManager });
  const rpc = (network: string) => {
    const url = rpcUrls[network];
    if (!url) throw new Error(`no RPC URL for ${network}`);
    return http(url);
  };
  return {
    async naiveSubmit(network) {
      const wallet = createWalletClient({ account, transport: rpc(network) });
      return wallet.sendTransaction({ to: RECIPIENT, value: 1n, chain: null });
    },
    async naiveAwaitFinal({ network, hash, confirmations, blockTimeMs }) {
      const client = createPublicClient({ transport: rpc(network) });
      for (;;) {
        heartbeat();
        const receipt = await client.getTransactionReceipt({ hash: hash as Hex }).catch(() => undefined);
        const head = await client.getBlockNumber({ cacheTime: 0 });
        if (receipt && head - receipt.blockNumber + 1n >= BigInt(confirmations)) return;
        await new Promise((r) => setTimeout(r, blockTimeMs));
      }
    },
  };
}
