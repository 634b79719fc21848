import { z } from 'zod';
import { loadCodecKeys, type CodecKeys } from '../../client/codec';
import { SettleError } from '../../contract/errors';
import { parseOrThrow } from '../../contract/validation';
import { commaSeparated } from '../worker/config';

export class CodecServerConfigError extends SettleError {
  override name = 'CodecServerConfigError';
}

const Port = z
  .string()
  .regex(/^\d+$/, 'must be a port number')
  .transform(Number)
  .refine((port) => port <= 65_535, 'must be at most 65535');

/** A browser origin, exactly as a browser sends it in `Origin`: scheme, host and port; no path, no wildcard. */
const OriginSchema = z.string().refine((text) => {
  try {
    const url = new URL(text);
    return (url.protocol === 'https:' || url.protocol === 'http:') && url.origin === text;
  } catch {
    return false;
  }
}, 'each must be an origin such as https://temporal.example.com (scheme, host, port; no path, no *)');

const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);

/** Where the identity provider publishes its signing keys: https, or http on this machine only. */
const JwksUrlSchema = z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }).refine((text) => {
  const url = new URL(text);
  return url.protocol === 'https:' || LOOPBACK_HOSTS.has(url.hostname);
}, 'must be https (http only on 127.0.0.1 or localhost)');

/**
 * The codec server's configuration, parsed once at start from an env object; the keys are the payload codec's own
 * (SETTLE_CODEC_KEYS, SETTLE_CODEC_KEY_ID). A codec server hands out plaintext: it never runs open. It needs at least
 * one way to authenticate a caller, and it answers browsers only from the listed origins.
 */
export const CodecServerConfigSchema = z
  .object({
    /** Interface to bind; loopback unless deliberately exposed (then behind TLS). */
    SETTLE_CODEC_SERVER_HOST: z.string().min(1).default('127.0.0.1'),
    /** Port to listen on; 0 picks a free one (printed at start). */
    SETTLE_CODEC_SERVER_PORT: Port.default(8888),
    /** The Web UI's origins (comma-separated): the only pages a browser may call the codec server from. */
    SETTLE_CODEC_SERVER_ORIGINS: commaSeparated(z.array(OriginSchema).min(1, 'must name the Web UI origin')).default([
      'http://127.0.0.1:8233',
      'http://localhost:8233',
    ]),
    /**
     * Bearer token(s) a caller must send (`Authorization: Bearer …`): the CLI's `--codec-auth`, a proxy in front of
     * the server. Comma-separated while rotating.
     */
    SETTLE_CODEC_SERVER_TOKEN: commaSeparated(
      z.array(z.string().min(32, 'each token must be at least 32 characters')).min(1, 'must hold a token'),
    ).optional(),
    /**
     * Accept the Web UI users' own access tokens (the UI's "Pass the user access token"): JWTs signed by a key of
     * this JWKS, from SETTLE_CODEC_SERVER_JWT_ISSUER, for SETTLE_CODEC_SERVER_JWT_AUDIENCE.
     */
    SETTLE_CODEC_SERVER_JWKS_URL: JwksUrlSchema.optional(),
    SETTLE_CODEC_SERVER_JWT_ISSUER: z.string().min(1).optional(),
    SETTLE_CODEC_SERVER_JWT_AUDIENCE: z.string().min(1).optional(),
    /** Largest request body accepted, in bytes. */
    SETTLE_CODEC_SERVER_BODY_LIMIT: z
      .string()
      .regex(/^\d+$/, 'must be a number of bytes')
      .transform(Number)
      .default(4 * 1_048_576),
    SETTLE_CODEC_SERVER_LOG_LEVEL: z
      .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
      .default('info'),
  })
  .superRefine((config, context) => {
    if (!config.SETTLE_CODEC_SERVER_TOKEN && !config.SETTLE_CODEC_SERVER_JWKS_URL) {
      context.addIssue({
        code: 'custom',
        path: ['SETTLE_CODEC_SERVER_TOKEN'],
        message: 'a codec server must never be open: set SETTLE_CODEC_SERVER_TOKEN or SETTLE_CODEC_SERVER_JWKS_URL',
      });
    }
    if (config.SETTLE_CODEC_SERVER_JWKS_URL) {
      for (const key of ['SETTLE_CODEC_SERVER_JWT_ISSUER', 'SETTLE_CODEC_SERVER_JWT_AUDIENCE'] as const) {
        if (!config[key]) {
          context.addIssue({ code: 'custom', path: [key], message: 'is required with SETTLE_CODEC_SERVER_JWKS_URL' });
        }
      }
    }
  });

export type CodecServerConfig = z.output<typeof CodecServerConfigSchema> & {
  /** The payload codec's keys: what the server decrypts with. Never printed. */
  codecKeys: CodecKeys;
};

/** @example const config = parseCodecServerConfig(process.env); */
export function parseCodecServerConfig(env: Record<string, string | undefined>): CodecServerConfig {
  const config = parseOrThrow(CodecServerConfigSchema, env, 'configuration', { error: CodecServerConfigError });
  const codecKeys = loadCodecKeys(env, CodecServerConfigError);
  if (!codecKeys) {
    throw new CodecServerConfigError(
      'invalid configuration:\nSETTLE_CODEC_KEYS: the codec server needs the codec keys',
    );
  }
  return { ...config, codecKeys };
}

/** True when the server is bound to this machine only. */
export function isLoopback(host: string): boolean {
  return LOOPBACK_HOSTS.has(host) || host === '::1' || host.startsWith('127.');
}
