import type { ActivityDeps } from '../activities';
import type { WorkerConfig } from './config';

/**
 * Builds the network adapters from SETTLE_CONFIG. Without a config file the worker knows no networks: `await`
 * steps still run, and their networks require `finalized` evidence.
 */
export async function loadNetworks(config: WorkerConfig): Promise<ActivityDeps> {
  if (!config.SETTLE_CONFIG) return { networks: {}, adapters: {} };
  throw new Error('SETTLE_CONFIG: EVM networks are not supported yet');
}
