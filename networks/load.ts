import { Client, Connection } from '@temporalio/client';
import type { ActivityDeps, NetworkAdapter, NetworkInfo } from '../activities';
import { EvmAdapter } from './evm/adapter';
import { temporalNonceOwners, type NonceOwnerFactory } from './evm/nonce-owner';
import type { WorkerConfig } from '../workers/worker/config';
import { readNetworksFile, readSignerKey, type EvmNetworkConfig, type NetworksFile } from './config';

export interface LoadNetworksOptions {
  /** Where signer keys named by `keyEnv` are read from (default: process.env). */
  env?: Record<string, string | undefined>;
  /** The Temporal Client that reaches the nonce owners; by default a lazy connection from the worker config. */
  client?: Client;
  /** Nonce owners other than the `signerNonces` workflows (tests). */
  nonceOwners?: NonceOwnerFactory;
}

/**
 * Builds the network adapters from SETTLE_CONFIG. Without a config file the worker knows no networks: `await`
 * steps still run, and their networks require `finalized` evidence. Nothing here touches a chain: the worker starts
 * even when no RPC is reachable. A signer without its key, or one that may send without a signing policy, is a
 * start-up error.
 *
 * @example const { networks, adapters } = await loadNetworks(parseWorkerConfig(process.env));
 */
export async function loadNetworks(config: WorkerConfig, options: LoadNetworksOptions = {}): Promise<ActivityDeps> {
  if (!config.SETTLE_CONFIG) return { networks: {}, adapters: {} };
  const file = readNetworksFile(config.SETTLE_CONFIG);
  return buildNetworks(file, config, options);
}

export function buildNetworks(
  file: NetworksFile & { baseDir?: string },
  config: Pick<WorkerConfig, 'TEMPORAL_ADDRESS' | 'TEMPORAL_NAMESPACE' | 'SETTLE_TASK_QUEUE'> &
    Partial<Pick<WorkerConfig, 'temporalConnection' | 'SETTLE_NONCE_TASK_QUEUE' | 'dataConverter'>>,
  options: LoadNetworksOptions = {},
): ActivityDeps {
  const env = options.env ?? process.env;
  const keys = new Map<string, `0x${string}`>();
  for (const network of Object.values(file.networks)) {
    for (const signer of network.signers) {
      if (!keys.has(signer)) keys.set(signer, readSignerKey(signer, file.signers[signer], env, file.baseDir ?? '.'));
    }
  }
  let nonceOwners = options.nonceOwners;
  const owners: NonceOwnerFactory = (scope, address, ownerOptions) => {
    nonceOwners ??= temporalNonceOwners(
      options.client ??
        new Client({
          connection: Connection.lazy(config.temporalConnection ?? { address: config.TEMPORAL_ADDRESS }),
          namespace: config.TEMPORAL_NAMESPACE,
          ...(config.dataConverter ? { dataConverter: config.dataConverter } : {}),
        }),
      // A caller that names one task queue (tests, tools) gets its owners started there; the worker names its own.
      config.SETTLE_NONCE_TASK_QUEUE ?? config.SETTLE_TASK_QUEUE,
    );
    return nonceOwners(scope, address, ownerOptions);
  };

  const networks: Record<string, NetworkInfo> = {};
  const adapters: Record<string, NetworkAdapter> = {};
  for (const [name, network] of Object.entries(file.networks)) {
    networks[name] = networkInfo(name, network);
    adapters[name] = new EvmAdapter({
      network: name,
      chainId: network.chainId,
      rpcUrls: network.rpcUrls,
      send: network.send,
      signers: Object.fromEntries(network.signers.map((signer) => [signer, keys.get(signer)!])),
      // Compiled (and a missing one refused) when the adapter is built: a start-up error, never a signature.
      policies: network.policies ?? {},
      nonceOwners: owners,
      ...(network.feeBumpAfter !== undefined ? { feeBumpAfterMs: network.feeBumpAfter } : {}),
      ...(file.faults?.killAfterBroadcastMarker
        ? { killAfterBroadcastMarker: file.faults.killAfterBroadcastMarker }
        : {}),
    });
  }
  return { networks, adapters, ...(file.trust ? { trust: file.trust } : {}) };
}

/** The record the workflow reads (once per run): polling follows the block time unless configured. */
export function networkInfo(name: string, network: EvmNetworkConfig): NetworkInfo {
  const pollIntervalMs = network.pollInterval ?? network.blockTime;
  return {
    network: name,
    finality: network.finality,
    pollIntervalMs,
    maxPollIntervalMs: Math.max(network.maxPollInterval ?? 10 * pollIntervalMs, pollIntervalMs),
    pollable: true,
    canSubmit: network.send,
    blockTimeMs: network.blockTime,
    ...(network.feeBumpAfter !== undefined ? { resubmitAfterMs: network.feeBumpAfter } : {}),
  };
}
