/**
 * The worker's webhook settings: the keys of its env schema and the deps they make. Endpoints come inline or from a
 * file only its owner may read: each holds a receiver's URL (which may carry a token) and its own secret, none of which
 * ever enters workflow history.
 */
import { readFileSync, statSync } from 'node:fs';
import { z } from 'zod';
import { parseOrThrow } from '../../contract/validation';
import { ConfigError } from '../config';
import { AllowedHosts } from './address-policy';
import type { WebhookDeps } from './sender';
import { ENDPOINT_NAME_PATTERN, type WebhookEndpoint } from './target';

const HttpUrlSchema = z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' });
const SecretSchema = z.string().min(16, 'must be at least 16 characters');

/** `SETTLE_WEBHOOK_ENDPOINTS`: endpoint name → `{ "url", "secret" }`. */
export const WebhookEndpointsSchema = z.record(
  z.string().regex(ENDPOINT_NAME_PATTERN, 'an endpoint name is letters, digits, ".", "_" or "-" (at most 64)'),
  z.strictObject({ url: HttpUrlSchema, secret: SecretSchema }),
);

/** The webhook keys of the worker's env schema (spread into it: `...WebhookConfigSchema.shape`). */
export const WebhookConfigSchema = z.object({
  /** Signs notifications to URLs (the actions' raw URLs and SETTLE_WEBHOOK_URL). */
  SETTLE_WEBHOOK_SECRET: SecretSchema.optional(),
  /** The deployment's webhook, for actions that name none (may carry a token: it never enters workflow history). */
  SETTLE_WEBHOOK_URL: HttpUrlSchema.optional(),
  /** Named endpoints: inline JSON (starts with "{") or the path of a JSON file only its owner may read. */
  SETTLE_WEBHOOK_ENDPOINTS: z.string().min(1).optional(),
  /** Hosts reached although their addresses are not public: names, `*.suffix`, IP literals, CIDR ranges. */
  SETTLE_WEBHOOK_ALLOW_HOSTS: z
    .string()
    .transform((text) =>
      text
        .split(',')
        .map((entry) => entry.trim())
        .filter(Boolean),
    )
    .superRefine((entries, ctx) => {
      try {
        new AllowedHosts(entries);
      } catch (error) {
        ctx.addIssue({ code: 'custom', message: (error as Error).message });
      }
    })
    .optional(),
});
export type WebhookConfig = z.output<typeof WebhookConfigSchema>;

/**
 * The notification activity's deps from the parsed config, reading the endpoints file; undefined when nothing is
 * configured to receive notifications (no secret and no endpoint). Throws a ConfigError naming the key.
 *
 * @example const webhook = webhookDeps(config); // then createActivities({ ...networks, webhook })
 */
export function webhookDeps(config: WebhookConfig): WebhookDeps | undefined {
  const endpoints = loadWebhookEndpoints(config.SETTLE_WEBHOOK_ENDPOINTS);
  if (config.SETTLE_WEBHOOK_URL && !config.SETTLE_WEBHOOK_SECRET) {
    throw new ConfigError('invalid configuration:\nSETTLE_WEBHOOK_SECRET: required with SETTLE_WEBHOOK_URL (it signs)');
  }
  if (!config.SETTLE_WEBHOOK_SECRET && endpoints.size === 0) return undefined;
  return {
    ...(config.SETTLE_WEBHOOK_SECRET ? { secret: config.SETTLE_WEBHOOK_SECRET } : {}),
    ...(config.SETTLE_WEBHOOK_URL ? { defaultUrl: config.SETTLE_WEBHOOK_URL } : {}),
    ...(endpoints.size > 0 ? { endpoints } : {}),
    ...(config.SETTLE_WEBHOOK_ALLOW_HOSTS ? { allowHosts: config.SETTLE_WEBHOOK_ALLOW_HOSTS } : {}),
  };
}

/**
 * Reads `SETTLE_WEBHOOK_ENDPOINTS`: inline JSON, or a file that its group and others may neither read nor write.
 * Messages name the key or the file and the field, never a URL or a secret.
 */
export function loadWebhookEndpoints(source: string | undefined): Map<string, WebhookEndpoint> {
  if (!source) return new Map();
  const inline = source.trimStart().startsWith('{');
  const where = inline ? 'SETTLE_WEBHOOK_ENDPOINTS' : source;
  const text = inline ? source : readEndpointsFile(source);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    // JSON.parse's message quotes the text around the fault: it could be a secret.
    throw new ConfigError(
      `${where}: invalid webhook endpoints:\n(root): must be a JSON object of names to { url, secret }`,
    );
  }
  const document = parseOrThrow(WebhookEndpointsSchema, json, 'webhook endpoints', {
    error: ConfigError,
    source: where,
  });
  return new Map(Object.entries(document));
}

function readEndpointsFile(path: string): string {
  let mode: number;
  try {
    const stats = statSync(path);
    if (!stats.isFile()) throw new ConfigError(`${path}: the webhook endpoints file is not a regular file`);
    mode = stats.mode;
  } catch (cause) {
    if (cause instanceof ConfigError) throw cause;
    const code = (cause as NodeJS.ErrnoException).code ?? 'error';
    throw new ConfigError(`${path}: cannot read the webhook endpoints file (${code})`);
  }
  if (process.platform !== 'win32' && (mode & 0o077) !== 0) {
    const octal = (mode & 0o777).toString(8).padStart(3, '0');
    throw new ConfigError(
      `${path}: the webhook endpoints file holds secrets but its group or others may use it (mode ${octal}): chmod 600 it`,
    );
  }
  return readFileSync(path, 'utf8');
}
