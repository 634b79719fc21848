import { z } from 'zod';
import { DurationSchema } from '../../contract/duration';
import { SettleError } from '../../contract/errors';
import { parseOrThrow } from '../../contract/validation';
import { MetricsHostSchema, MetricsPortSchema } from '../observability';
import { commaSeparated } from '../worker/config';
import {
  DEFAULT_CREDENTIAL,
  EvidenceKeysSchema,
  insecureCredential,
  jsonOrFile,
  TokensSchema,
  TokenTable,
  type Access,
} from './credentials';

const Port = z
  .string()
  .regex(/^\d+$/, 'must be a port number')
  .transform(Number)
  .refine((port) => port <= 65_535, 'must be at most 65535');

const Count = z.string().regex(/^\d+$/, 'must be a whole number').transform(Number);
const Flag = z.enum(['0', '1', 'true', 'false', '']).transform((value) => value === '1' || value === 'true');

const LOOPBACK_HOSTS = ['localhost', '127.0.0.1', '::1'];
const WILDCARD_HOSTS = ['0.0.0.0', '::', ''];

/**
 * The HTTP API's configuration, parsed once at start from an env object. The Temporal connection comes from the
 * standard variables, resolved as for the client, the worker and the watcher (client/config.ts); these are the API's
 * own.
 */
const ApiEnvSchema = z.object({
  /** Interface to bind; loopback unless deliberately exposed. */
  SETTLE_API_HOST: z.string().min(1).default('127.0.0.1'),
  /** Port to listen on; 0 picks a free one (printed at start). */
  SETTLE_API_PORT: Port.default(8080),
  /** Named bearer tokens with scopes: a JSON object, or the path of a JSON file. */
  SETTLE_API_TOKENS: jsonOrFile(TokensSchema).optional(),
  /** One token with every scope, the credential named "default" (the single-token form). */
  SETTLE_API_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
  /** Evidence keys, key id → secret(s): a JSON object, or the path of a JSON file. */
  SETTLE_EVIDENCE_KEYS: jsonOrFile(EvidenceKeysSchema).optional(),
  /** HMAC-SHA256 secret(s) of the evidence key "default"; comma-separated while rotating. */
  SETTLE_EVIDENCE_SECRET: commaSeparated(
    z.array(z.string().min(16, 'each secret must be at least 16 characters')).min(1, 'must hold a secret'),
  ).optional(),
  /** Local demos only: no credential at all, every request acts as "insecure-no-auth". Loopback binds only. */
  SETTLE_API_INSECURE_NO_AUTH: Flag.default(false),
  /** Host names the `Host` header may carry (any port); default: the bind address and the loopback names. */
  SETTLE_API_HOSTS: commaSeparated(z.array(z.string().min(1)).min(1, 'must name a host')).optional(),
  /** How long a request may take to arrive, and to be answered (event streams aside): 408 or 504 past it. */
  SETTLE_API_REQUEST_TIMEOUT: DurationSchema.default(30_000),
  /** Event streams (SSE) one credential may hold open at once. */
  SETTLE_API_MAX_STREAMS: Count.refine((n) => n >= 1, 'must be at least 1').default(8),
  /** Requests per window and credential (a token may set its own `rateLimit`); 429 past it. */
  SETTLE_API_RATE_LIMIT: Count.refine((n) => n >= 1, 'must be at least 1').default(600),
  SETTLE_API_RATE_WINDOW: DurationSchema.default(60_000),
  /** How far a signature's timestamp may be from now; a signature is accepted once within it. */
  SETTLE_SIGNATURE_TOLERANCE: DurationSchema.default(300_000),
  /** How often the events stream (SSE) reads an action's status. */
  SETTLE_SSE_POLL_INTERVAL: DurationSchema.default(500),
  /** Largest request body accepted, in bytes. */
  SETTLE_API_BODY_LIMIT: z.string().regex(/^\d+$/, 'must be a number of bytes').transform(Number).default(1_048_576),
  SETTLE_API_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /**
   * Prometheus endpoint (`GET /metrics`, on its own port, without credentials: bind it where only Prometheus reaches):
   * requests, and the visibility gauges (actions by phase, stuck actions, nonce owner backlog). Off unless set; 0 picks
   * a free port (printed at start).
   */
  SETTLE_API_METRICS_PORT: MetricsPortSchema.optional(),
  SETTLE_API_METRICS_HOST: MetricsHostSchema,
  /** How often the visibility gauges are read. */
  SETTLE_API_METRICS_REFRESH: DurationSchema.default(15_000),
  /** A running action with no transition for longer than this counts as stuck. */
  SETTLE_API_METRICS_STUCK_AFTER: DurationSchema.default(600_000),
  /** At most this many candidates (running longer than the threshold) get their status read per refresh. */
  SETTLE_API_METRICS_STUCK_SCAN: Count.refine((n) => n >= 1, 'must be at least 1').default(200),
});

export const ApiConfigSchema = ApiEnvSchema.transform((env, ctx) => {
  const access = accessOf(env, ctx);
  const allowedHosts = new Set((env.SETTLE_API_HOSTS ?? defaultHosts(env.SETTLE_API_HOST)).map(hostName));
  return { ...env, access, allowedHosts: allowedHosts as ReadonlySet<string> };
});
export type ApiConfig = z.output<typeof ApiConfigSchema>;

/** Merges the credential keys; fails closed: no credential, and no explicit insecure mode, is a configuration error. */
function accessOf(env: z.output<typeof ApiEnvSchema>, ctx: z.RefinementCtx): Access {
  const tokens = { ...env.SETTLE_API_TOKENS };
  if (env.SETTLE_API_TOKEN !== undefined) {
    if (tokens[DEFAULT_CREDENTIAL]) {
      issue(ctx, 'SETTLE_API_TOKEN', `is the token "${DEFAULT_CREDENTIAL}", which SETTLE_API_TOKENS also names`);
    }
    tokens[DEFAULT_CREDENTIAL] = { token: env.SETTLE_API_TOKEN, scopes: ['read', 'start', 'operate', 'evidence'] };
  }
  const keys = new Map(Object.entries(env.SETTLE_EVIDENCE_KEYS ?? {}));
  if (env.SETTLE_EVIDENCE_SECRET !== undefined) {
    if (keys.has(DEFAULT_CREDENTIAL)) {
      issue(ctx, 'SETTLE_EVIDENCE_SECRET', `is the key "${DEFAULT_CREDENTIAL}", which SETTLE_EVIDENCE_KEYS also names`);
    }
    keys.set(DEFAULT_CREDENTIAL, env.SETTLE_EVIDENCE_SECRET);
  }
  const table = new TokenTable(tokens);
  for (const pair of table.duplicates()) issue(ctx, 'SETTLE_API_TOKENS', `${pair} share one token`);
  const configured = table.size + keys.size > 0;
  if (env.SETTLE_API_INSECURE_NO_AUTH) {
    if (configured) issue(ctx, 'SETTLE_API_INSECURE_NO_AUTH', 'cannot be set together with tokens or evidence keys');
    if (!LOOPBACK_HOSTS.includes(env.SETTLE_API_HOST) && !env.SETTLE_API_HOST.startsWith('127.')) {
      issue(
        ctx,
        'SETTLE_API_INSECURE_NO_AUTH',
        `is for local demos: SETTLE_API_HOST must be loopback, not ${env.SETTLE_API_HOST}`,
      );
    }
    return { tokens: table, evidenceKeys: keys, anonymous: insecureCredential };
  }
  if (!configured) {
    issue(
      ctx,
      '(root)',
      'no credentials: set SETTLE_API_TOKENS (or SETTLE_API_TOKEN) and/or SETTLE_EVIDENCE_KEYS (or SETTLE_EVIDENCE_SECRET); ' +
        'the API does not serve without them (SETTLE_API_INSECURE_NO_AUTH=1 opens it, for a local demo only)',
    );
  }
  return { tokens: table, evidenceKeys: keys };
}

function issue(ctx: z.RefinementCtx, key: string, message: string) {
  ctx.addIssue({ code: 'custom', path: key === '(root)' ? [] : [key], message });
}

function defaultHosts(bind: string): string[] {
  return WILDCARD_HOSTS.includes(bind) ? LOOPBACK_HOSTS : [...new Set([bind, ...LOOPBACK_HOSTS])];
}

/**
 * The host name of a `Host` header or a configured name, lower case, without its port or IPv6 brackets.
 *
 * @example hostName('[::1]:8080') // '::1'
 */
export function hostName(host: string): string {
  const text = host.trim().toLowerCase();
  if (text.startsWith('[')) return text.slice(1, text.indexOf(']') > 0 ? text.indexOf(']') : undefined);
  // A bare IPv6 address (configured as such) has several colons; a name or IPv4 address has at most one, the port's.
  if (text.indexOf(':') !== text.lastIndexOf(':')) return text;
  return text.split(':')[0].replace(/\.$/, '');
}

export class ApiConfigError extends SettleError {
  override name = 'ApiConfigError';
}

/** @example const config = parseApiConfig(process.env); */
export function parseApiConfig(env: Record<string, string | undefined>): ApiConfig {
  return parseOrThrow(ApiConfigSchema, env, 'configuration', { error: ApiConfigError });
}
