import type { ConnectionOptions } from '@temporalio/client';
import { loadClientConnectConfig } from '@temporalio/envconfig';
import { z } from 'zod';
import { formatIssues } from '../contract/validation';

/**
 * What a Settle client needs from its environment. Temporal's standard variables (and its config file, profile
 * `TEMPORAL_PROFILE`) are read through `@temporalio/envconfig`: `TEMPORAL_ADDRESS`, `TEMPORAL_NAMESPACE`,
 * `TEMPORAL_API_KEY`, `TEMPORAL_TLS`, `TEMPORAL_TLS_CLIENT_CERT_PATH`, `TEMPORAL_TLS_CLIENT_KEY_PATH`,
 * `TEMPORAL_TLS_SERVER_CA_CERT_PATH`, `TEMPORAL_TLS_SERVER_NAME`, `TEMPORAL_GRPC_META_*`, …
 */
export const ClientEnvSchema = z.object({
  SETTLE_TASK_QUEUE: z.string().min(1, 'must name a task queue').default('settle'),
  /** How long connecting may take before the client gives up. */
  SETTLE_CONNECT_TIMEOUT_MS: z
    .string()
    .regex(/^\d+$/, 'must be a number of milliseconds')
    .transform(Number)
    .default(5_000),
});

export const DEFAULT_ADDRESS = '127.0.0.1:7233';
export const DEFAULT_NAMESPACE = 'default';

/** The resolved connection: address, namespace, TLS/mTLS and API key (secrets stay in `connection`, never printed). */
export interface ClientConnectionConfig {
  address: string;
  namespace: string;
  taskQueue: string;
  connectTimeoutMs: number;
  connection: ConnectionOptions;
}

export class ClientConfigError extends Error {
  override name = 'ClientConfigError';
}

/**
 * Resolves the connection from an env object (not `process.env` unless passed), the way every Temporal tool does.
 *
 * @example
 * const config = resolveClientConfig(process.env);
 * // { address: '127.0.0.1:7233', namespace: 'default', taskQueue: 'settle', … }
 */
export function resolveClientConfig(env: Record<string, string | undefined>): ClientConnectionConfig {
  const parsed = ClientEnvSchema.safeParse(env);
  if (!parsed.success) throw new ClientConfigError(`invalid configuration:\n${formatIssues(parsed.error)}`);
  const defined = Object.fromEntries(
    Object.entries(env).filter((entry): entry is [string, string] => entry[1] !== undefined),
  );
  let profile;
  try {
    profile = loadClientConnectConfig({ overrideEnvVars: defined });
  } catch (error) {
    throw new ClientConfigError(`invalid Temporal client configuration: ${(error as Error).message}`);
  }
  const { address, ...rest } = profile.connectionOptions;
  const connection = Object.fromEntries(Object.entries(rest).filter(([, value]) => value !== undefined));
  return {
    address: address || DEFAULT_ADDRESS,
    namespace: profile.namespace || DEFAULT_NAMESPACE,
    taskQueue: parsed.data.SETTLE_TASK_QUEUE,
    connectTimeoutMs: parsed.data.SETTLE_CONNECT_TIMEOUT_MS,
    connection: { ...(connection as ConnectionOptions), address: address || DEFAULT_ADDRESS },
  };
}
