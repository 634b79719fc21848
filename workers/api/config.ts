import { z } from 'zod';
import { DurationSchema } from '../../contract/duration';
import { SettleError } from '../../contract/errors';
import { parseOrThrow } from '../../contract/validation';
import { commaSeparated } from '../worker/config';

const Port = z
  .string()
  .regex(/^\d+$/, 'must be a port number')
  .transform(Number)
  .refine((port) => port <= 65_535, 'must be at most 65535');

/**
 * The HTTP API's configuration, parsed once at start from an env object. The Temporal connection comes from the
 * standard variables, resolved as for the client, the worker and the watcher (client/config.ts); these are the API's
 * own.
 */
export const ApiConfigSchema = z.object({
  /** Interface to bind; loopback unless deliberately exposed. */
  SETTLE_API_HOST: z.string().min(1).default('127.0.0.1'),
  /** Port to listen on; 0 picks a free one (printed at start). */
  SETTLE_API_PORT: Port.default(8080),
  /** Bearer token for the operator endpoints (retry, compensate, cancel, resolve). Unset: they answer 401. */
  SETTLE_API_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
  /** HMAC-SHA256 secret(s) external watchers sign evidence with; comma-separated while rotating. Unset: evidence answers 401. */
  SETTLE_EVIDENCE_SECRET: commaSeparated(
    z.array(z.string().min(16, 'each secret must be at least 16 characters')).min(1, 'must hold a secret'),
  ).optional(),
  /** How far a signature's timestamp may be from now; a signature is accepted once within it. */
  SETTLE_SIGNATURE_TOLERANCE: DurationSchema.default(300_000),
  /** How often the events stream (SSE) reads an action's status. */
  SETTLE_SSE_POLL_INTERVAL: DurationSchema.default(500),
  /** Largest request body accepted, in bytes. */
  SETTLE_API_BODY_LIMIT: z.string().regex(/^\d+$/, 'must be a number of bytes').transform(Number).default(1_048_576),
  SETTLE_API_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});
export type ApiConfig = z.output<typeof ApiConfigSchema>;

export class ApiConfigError extends SettleError {
  override name = 'ApiConfigError';
}

/** @example const config = parseApiConfig(process.env); */
export function parseApiConfig(env: Record<string, string | undefined>): ApiConfig {
  return parseOrThrow(ApiConfigSchema, env, 'configuration', { error: ApiConfigError });
}
