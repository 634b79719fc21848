/**
 * The watcher's configuration: the Temporal connection (resolved as the worker's and the client's) and the networks
 * file it shares with the worker, and its own `SETTLE_WATCH_*` keys. Parsed once at process start from an env object
 * (not read globally) and passed down.
 */
import { z } from 'zod';
import { DurationSchema } from '../../contract/duration';
import { parseOrThrow } from '../../contract/validation';
import type { FinalityPolicy } from '../../contract/action-spec';
import { NetworkNameSchema } from '../../contract/primitives';
import {
  commaSeparated,
  ConfigError,
  temporalSettings,
  WorkerConfigSchema,
  type TemporalSettings,
} from '../worker/config';
import { readNetworksFile, type NetworksFile } from '../../networks/config';
import { MetricsHostSchema, MetricsPortSchema } from '../observability';

const NetworkListSchema = commaSeparated(
  z.array(NetworkNameSchema).min(1, 'must name at least one network (comma-separated)'),
);

export const WatcherConfigSchema = WorkerConfigSchema.pick({ SETTLE_LOG_LEVEL: true }).extend({
  /** The networks file the worker reads: the watcher follows its EVM networks. */
  SETTLE_CONFIG: z.string({ error: 'is required: the watcher follows the networks of this file' }).min(1),
  /** Shard: only these networks (comma-separated). Default: every EVM network in the file. */
  SETTLE_WATCH_NETWORKS: NetworkListSchema.optional(),
  /** How often each network's head is read. Default: a tenth of its block time, from 50 ms to 1 s. */
  SETTLE_WATCH_HEAD_POLL: DurationSchema.optional(),
  /** How often Temporal visibility is listed for running actions (new actions, new refs). */
  SETTLE_WATCH_REFRESH: DurationSchema.default(2_000),
  /** Block hashes kept per network, at least; more when a finality policy in use needs more. */
  SETTLE_WATCH_REORG_DEPTH: z
    .string()
    .regex(/^\d+$/, 'must be a whole number of blocks')
    .transform(Number)
    .pipe(z.number().int().min(2, 'must be at least 2 blocks').max(100_000))
    .default(64),
  /** A submitted transaction neither pending nor mined for this long (checked at least twice) is reported dropped. */
  SETTLE_WATCH_DROP_AFTER: DurationSchema.default(30_000),
  /** How long one status query may take before the action is tried again later. */
  SETTLE_WATCH_QUERY_TIMEOUT: DurationSchema.default(5_000),
  /** Prometheus text endpoint (`/metrics`); off unless a port is set; 0 picks a free port (logged at start). */
  SETTLE_WATCH_METRICS_PORT: MetricsPortSchema.optional(),
  SETTLE_WATCH_METRICS_HOST: MetricsHostSchema,
  /**
   * A file with the watcher's Ed25519 private key (hex, mode 600): its claims are signed, so a deployment that verifies
   * claims (`trust` in the networks file, with this key's public half) applies them without reading the chain first.
   */
  SETTLE_WATCH_SIGNING_KEY_FILE: z.string().min(1).optional(),
  /** A `metrics` log line this often, or `off`. */
  SETTLE_WATCH_METRICS_LOG_EVERY: z.union([z.literal('off'), DurationSchema]).default(60_000),
});
export type WatcherConfig = z.output<typeof WatcherConfigSchema> & TemporalSettings;

/** What the watcher needs to know about one network it follows. */
export interface WatchedNetwork {
  name: string;
  chainId: number;
  rpcUrls: string[];
  blockTimeMs: number;
  /** The network's default finality policy (steps may name their own). */
  finality: FinalityPolicy;
  headPollMs: number;
}

export function parseWatcherConfig(env: Record<string, string | undefined>): WatcherConfig {
  const config = parseOrThrow(WatcherConfigSchema, env, 'watcher configuration', { error: ConfigError });
  return { ...config, ...temporalSettings(env) };
}

/**
 * The networks this watcher follows: the EVM networks of the file, or the shard named by SETTLE_WATCH_NETWORKS (a
 * name the file does not know is a start-up error).
 *
 * @example watchedNetworks(readNetworksFile(config.SETTLE_CONFIG), config) // [{ name: 'chainA', … }]
 */
export function watchedNetworks(file: NetworksFile, config: WatcherConfig): WatchedNetwork[] {
  const names = config.SETTLE_WATCH_NETWORKS ?? Object.keys(file.networks);
  const unknown = names.filter((name) => !file.networks[name]);
  if (unknown.length > 0) {
    throw new ConfigError(
      `SETTLE_WATCH_NETWORKS: ${unknown.map((n) => `"${n}"`).join(', ')} not in the networks file ` +
        `(it has ${Object.keys(file.networks).join(', ') || 'none'})`,
    );
  }
  return [...new Set(names)].map((name) => {
    const network = file.networks[name];
    return {
      name,
      chainId: network.chainId,
      rpcUrls: network.rpcUrls,
      blockTimeMs: network.blockTime,
      finality: network.finality,
      headPollMs: config.SETTLE_WATCH_HEAD_POLL ?? Math.min(Math.max(Math.round(network.blockTime / 10), 50), 1_000),
    };
  });
}

/** Reads SETTLE_CONFIG once and selects the shard. */
export function loadWatchedNetworks(config: WatcherConfig): WatchedNetwork[] {
  return watchedNetworks(readNetworksFile(config.SETTLE_CONFIG), config);
}
