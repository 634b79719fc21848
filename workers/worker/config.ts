import type { DataConverter } from '@temporalio/common';
import { z } from 'zod';
import { resolveTemporalConnection, type TemporalConnectionOptions } from '../../client/config';
import { parseOrThrow } from '../../contract/validation';
import { ConfigError } from '../../networks/config';
import { WebhookConfigSchema } from '../../networks/webhook/config';
import { MetricsHostSchema, MetricsPortSchema } from '../observability';

export { ConfigError } from '../../networks/config';

/**
 * The worker's configuration, parsed once at process start from an env object (not read globally) and passed down.
 * The Temporal connection comes from Temporal's standard variables, as for the client (see {@link temporalSettings}).
 * `.env.example` documents every key.
 */
export const WorkerConfigSchema = z.object({
  SETTLE_TASK_QUEUE: z.string().min(1).default('settle'),
  /**
   * Where the nonce owners (`signerNonces`) run, default `<SETTLE_TASK_QUEUE>-nonces`: a backlog of action tasks must
   * not delay the updates every submission makes. The worker polls it with a second Worker on the same connection.
   */
  SETTLE_NONCE_TASK_QUEUE: z.string().min(1).optional(),
  /**
   * Route each network's submissions and checks to its own task queue (`<SETTLE_TASK_QUEUE>/<network>`), which this
   * worker polls for the networks it holds and may send on: `true` (default) or `false` (every activity on
   * SETTLE_TASK_QUEUE, as before). Read by each new action once.
   */
  SETTLE_ROUTE_BY_NETWORK: z.enum(['true', 'false'], { error: 'must be true or false' }).default('true'),
  /** Path to the networks file (JSON): networks, finality defaults, signers. Without it, only `await` steps run. */
  SETTLE_CONFIG: z.string().min(1).optional(),
  /**
   * The action Worker's sticky cache, in workflows (`maxCachedWorkflows`): what bounds the worker's memory, since a
   * pending action costs memory only while cached; an evicted one is replayed from its history when it next has work.
   * Default: the SDK's, sized by the heap. `0` caches none.
   */
  SETTLE_WORKER_MAX_CACHED_WORKFLOWS: z
    .string()
    .regex(/^\d+$/, 'must be a whole number of workflows (0 caches none)')
    .transform(Number)
    .optional(),
  SETTLE_LOG_LEVEL: z.enum(['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR']).default('INFO'),
  /**
   * Prometheus endpoint (`GET /metrics`): Settle's worker metrics and Temporal's runtime metrics on one port; off unless
   * set; 0 picks a free port (printed at start).
   */
  SETTLE_WORKER_METRICS_PORT: MetricsPortSchema.optional(),
  SETTLE_WORKER_METRICS_HOST: MetricsHostSchema,
  /**
   * Push notifications: SETTLE_WEBHOOK_SECRET, SETTLE_WEBHOOK_URL, SETTLE_WEBHOOK_ENDPOINTS, SETTLE_WEBHOOK_ALLOW_HOSTS
   * (`networks/webhook/config.ts`). Without a secret or an endpoint no notification is sent.
   */
  ...WebhookConfigSchema.shape,
});

/**
 * A comma-separated env value (`a, b,c`) as its trimmed, non-empty items, checked by `items`.
 *
 * @example commaSeparated(z.array(NetworkNameSchema).min(1)).parse('chainA, chainB') // ['chainA', 'chainB']
 */
export function commaSeparated<T extends z.ZodType<unknown, string[]>>(items: T) {
  return z
    .string()
    .transform((text) =>
      text
        .split(',')
        .map((item) => item.trim())
        .filter(Boolean),
    )
    .pipe(items);
}

/** A process's Temporal connection, resolved as the client resolves it. */
export interface TemporalSettings {
  /** `TEMPORAL_ADDRESS`, else the profile's address, else `127.0.0.1:7233`. */
  TEMPORAL_ADDRESS: string;
  /** `TEMPORAL_NAMESPACE`, else the profile's namespace, else `default`. */
  TEMPORAL_NAMESPACE: string;
  /** What `NativeConnection.connect` and `Connection.lazy` take: TLS/mTLS, API key, gRPC metadata. Never logged. */
  temporalConnection: TemporalConnectionOptions;
  /** The payload codec (SETTLE_CODEC_KEYS): every payload encrypted before it reaches Temporal. Absent: plain. */
  dataConverter?: DataConverter;
}

export type WorkerConfig = z.output<typeof WorkerConfigSchema> & { SETTLE_NONCE_TASK_QUEUE: string } & TemporalSettings;

/**
 * The Temporal connection from an env object, through `@temporalio/envconfig` like the client: `TEMPORAL_ADDRESS`,
 * `TEMPORAL_NAMESPACE`, `TEMPORAL_API_KEY`, `TEMPORAL_TLS*`, `TEMPORAL_GRPC_META_*`, `TEMPORAL_PROFILE`,
 * `TEMPORAL_CONFIG_FILE`.
 */
export function temporalSettings(env: Record<string, string | undefined>): TemporalSettings {
  const { address, namespace, connection, dataConverter } = resolveTemporalConnection(env, ConfigError);
  return {
    TEMPORAL_ADDRESS: address,
    TEMPORAL_NAMESPACE: namespace,
    temporalConnection: connection,
    ...(dataConverter ? { dataConverter } : {}),
  };
}

/** @example const config = parseWorkerConfig(process.env); */
export function parseWorkerConfig(env: Record<string, string | undefined>): WorkerConfig {
  const parsed = parseOrThrow(WorkerConfigSchema, env, 'configuration', { error: ConfigError });
  return {
    ...parsed,
    SETTLE_NONCE_TASK_QUEUE: parsed.SETTLE_NONCE_TASK_QUEUE ?? `${parsed.SETTLE_TASK_QUEUE}-nonces`,
    ...temporalSettings(env),
  };
}
