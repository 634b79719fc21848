import { z } from 'zod';
import { formatIssues } from '../../contract/validation';

/**
 * The worker's configuration, parsed once at process start from an env object (not read globally) and passed down.
 * `.env.example` documents every key.
 */
export const WorkerConfigSchema = z.object({
  TEMPORAL_ADDRESS: z.string().min(1).default('127.0.0.1:7233'),
  TEMPORAL_NAMESPACE: z.string().min(1).default('default'),
  SETTLE_TASK_QUEUE: z.string().min(1).default('settle'),
  /** Path to the networks file (JSON): networks, finality defaults, signers. Without it, only `await` steps run. */
  SETTLE_CONFIG: z.string().min(1).optional(),
  SETTLE_LOG_LEVEL: z.enum(['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR']).default('INFO'),
  /** Signs push notifications (HMAC-SHA256); without it no notification is sent. */
  SETTLE_WEBHOOK_SECRET: z.string().min(16, 'must be at least 16 characters').optional(),
  /** The deployment's webhook, for actions that name none (may carry a token: it never enters workflow history). */
  SETTLE_WEBHOOK_URL: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }).optional(),
});
export type WorkerConfig = z.infer<typeof WorkerConfigSchema>;

export class ConfigError extends Error {
  override name = 'ConfigError';
}

export function parseWorkerConfig(env: Record<string, string | undefined>): WorkerConfig {
  const parsed = WorkerConfigSchema.safeParse(env);
  if (!parsed.success) throw new ConfigError(`invalid configuration:\n${formatIssues(parsed.error)}`);
  return parsed.data;
}
