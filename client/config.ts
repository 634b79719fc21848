import type { ConnectionOptions } from '@temporalio/client';
import type { DataConverter } from '@temporalio/common';
import { loadClientConnectConfig } from '@temporalio/envconfig';
import { z } from 'zod';
import { SettleError } from '../contract/errors';
import { parseOrThrow } from '../contract/validation';
import { resolveDataConverter } from './codec';

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

/**
 * How to reach Temporal, as envconfig resolves it: what a client's `Connection` and a worker's `NativeConnection`
 * both take. Holds the API key and TLS material: never printed.
 */
export type TemporalConnectionOptions = Pick<ConnectionOptions, 'address' | 'tls' | 'metadata'> & { apiKey?: string };

/** Where Temporal is (address, namespace) and how to reach it (TLS/mTLS, API key, gRPC metadata). */
export interface TemporalConnectionConfig {
  address: string;
  namespace: string;
  connection: TemporalConnectionOptions;
  /**
   * The payload codec (SETTLE_CODEC_KEYS, SETTLE_CODEC_KEY_ID): every client and worker of a deployment passes it to
   * Temporal (`new Client({ dataConverter })`, `Worker.create({ dataConverter })`). Absent: payloads in plain text.
   * Holds the keys: never printed.
   */
  dataConverter?: DataConverter;
}

/** The resolved connection: address, namespace, TLS/mTLS and API key (secrets stay in `connection`, never printed). */
export interface ClientConnectionConfig extends Omit<TemporalConnectionConfig, 'connection'> {
  taskQueue: string;
  connectTimeoutMs: number;
  connection: ConnectionOptions;
}

export class ClientConfigError extends SettleError {
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
  const parsed = parseOrThrow(ClientEnvSchema, env, 'configuration', { error: ClientConfigError });
  return {
    ...resolveTemporalConnection(env),
    taskQueue: parsed.SETTLE_TASK_QUEUE,
    connectTimeoutMs: parsed.SETTLE_CONNECT_TIMEOUT_MS,
  };
}

/**
 * Temporal's connection from an env object, through `@temporalio/envconfig` (the environment, then the profile
 * `TEMPORAL_PROFILE` of `TEMPORAL_CONFIG_FILE`), with Settle's defaults: `127.0.0.1:7233`, namespace `default`, and
 * the payload codec when SETTLE_CODEC_KEYS is set. The client, the worker, the watcher and the HTTP API all connect
 * with it.
 *
 * @param error the class a bad configuration (a missing certificate file, an unknown profile) is thrown as
 * @example
 * const { address, namespace, connection } = resolveTemporalConnection(process.env);
 * const client = new Client({ connection: Connection.lazy(connection), namespace });
 */
export function resolveTemporalConnection(
  env: Record<string, string | undefined>,
  error: new (message: string) => Error = ClientConfigError,
): TemporalConnectionConfig {
  const defined = Object.fromEntries(
    Object.entries(env).filter((entry): entry is [string, string] => entry[1] !== undefined),
  );
  let profile;
  try {
    profile = loadClientConnectConfig({ overrideEnvVars: defined });
  } catch (cause) {
    throw new error(`invalid Temporal client configuration: ${(cause as Error).message}`);
  }
  const { address, ...rest } = profile.connectionOptions;
  const connection = Object.fromEntries(Object.entries(rest).filter(([, value]) => value !== undefined));
  const dataConverter = resolveDataConverter(env, error);
  return {
    address: address || DEFAULT_ADDRESS,
    namespace: profile.namespace || DEFAULT_NAMESPACE,
    connection: { ...(connection as TemporalConnectionOptions), address: address || DEFAULT_ADDRESS },
    ...(dataConverter ? { dataConverter } : {}),
  };
}
