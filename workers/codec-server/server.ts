/**
 * The codec server (Fastify): Temporal's codec server protocol for the Web UI and the CLI. `POST /encode` and
 * `POST /decode` (also under a namespace segment, `/{namespace}/decode`, for the CLI's endpoint templates) take and
 * return `{ "payloads": [ { "metadata": { "<key>": "<base64>" }, "data": "<base64>" } ] }`, payloads as proto JSON.
 *
 * It hands out plaintext, so it is never open: every call carries a bearer token (a configured one, or the Web UI
 * user's own access token checked against the identity provider), and a browser may call it only from the Web UI's
 * origins. Bodies and tokens are never logged.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { PayloadCodec } from '@temporalio/common';
import { JSONToPayload, payloadToJSON } from '@temporalio/common/lib/proto-utils';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { z } from 'zod';
import { PayloadDecryptionError } from '../../client/codec';
import { formatIssues } from '../../contract/validation';
import { AccessTokenError, AccessTokenVerifier, type FetchJwks } from './access-token';
import type { CodecServerConfig } from './config';

const Base64Schema = z.string().regex(/^[A-Za-z0-9+/_-]*={0,2}$/, 'must be base64');

/** A request body: proto JSON of Temporal's `Payloads`, bytes as base64. */
export const PayloadsBodySchema = z.object({
  payloads: z.array(
    z.object({
      metadata: z.record(z.string(), Base64Schema).nullish(),
      data: Base64Schema.nullish(),
    }),
  ),
});

/**
 * Headers the Web UI and the CLI send: the token (and the UI's ID token beside it), the body's type, the namespace the
 * payloads belong to.
 */
const ALLOWED_HEADERS = 'authorization, authorization-extras, content-type, x-namespace';

export interface CodecServerOptions {
  config: Pick<
    CodecServerConfig,
    | 'SETTLE_CODEC_SERVER_ORIGINS'
    | 'SETTLE_CODEC_SERVER_TOKEN'
    | 'SETTLE_CODEC_SERVER_JWKS_URL'
    | 'SETTLE_CODEC_SERVER_JWT_ISSUER'
    | 'SETTLE_CODEC_SERVER_JWT_AUDIENCE'
    | 'SETTLE_CODEC_SERVER_BODY_LIMIT'
    | 'SETTLE_CODEC_SERVER_LOG_LEVEL'
  >;
  codec: PayloadCodec;
  /** How the identity provider's JWKS is read; for tests. */
  fetchJwks?: FetchJwks;
  /** Milliseconds since the epoch, for token lifetimes; for tests. */
  now?: () => number;
}

class Refusal extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Builds the codec server without listening: `app.listen()` to serve, `app.inject()` to test.
 *
 * @example
 * const config = parseCodecServerConfig(process.env);
 * const app = buildCodecServer({ config, codec: new EncryptionCodec(config.codecKeys) });
 * await app.listen({ host: config.SETTLE_CODEC_SERVER_HOST, port: config.SETTLE_CODEC_SERVER_PORT });
 */
export function buildCodecServer({ config, codec, fetchJwks, now }: CodecServerOptions): FastifyInstance {
  const app = Fastify({
    logger: config.SETTLE_CODEC_SERVER_LOG_LEVEL === 'silent' ? false : { level: config.SETTLE_CODEC_SERVER_LOG_LEVEL },
    bodyLimit: config.SETTLE_CODEC_SERVER_BODY_LIMIT,
    forceCloseConnections: true,
  });
  const origins = new Set(config.SETTLE_CODEC_SERVER_ORIGINS);
  const authenticate = authenticator(config, fetchJwks, now);

  // Before anything is read: a page from another origin gets no CORS grant and no answer; then the token.
  app.addHook('onRequest', async (request, reply) => {
    const origin = request.headers.origin;
    if (origin !== undefined) {
      if (!origins.has(origin)) return refuse(reply, new Refusal(403, 'origin not allowed'));
      reply.header('access-control-allow-origin', origin).header('vary', 'origin');
    }
    if (request.method === 'OPTIONS') {
      return reply
        .status(204)
        .header('access-control-allow-methods', 'POST')
        .header('access-control-allow-headers', ALLOWED_HEADERS)
        .header('access-control-max-age', '600')
        .send();
    }
    if (request.url === '/healthz') return;
    try {
      const who = await authenticate(request.headers.authorization);
      request.log.info({ who, namespace: request.headers['x-namespace'] }, 'codec call');
    } catch (error) {
      if (!(error instanceof Refusal)) request.log.error({ errorName: (error as Error).name }, 'authentication failed');
      const refusal = error instanceof Refusal ? error : new Refusal(401, 'cannot authenticate');
      return refuse(reply.header('www-authenticate', 'Bearer'), refusal);
    }
  });

  app.setErrorHandler((error, request, reply) => {
    if (error instanceof Refusal || error instanceof PayloadDecryptionError) return refuse(reply, error);
    const statusCode = (error as { statusCode?: number }).statusCode ?? 500;
    if (statusCode === 413) return refuse(reply, new Refusal(413, 'body too large'));
    if (statusCode === 415) return refuse(reply, new Refusal(415, 'the body must be application/json'));
    if (statusCode >= 400 && statusCode < 500) return refuse(reply, new Refusal(400, 'the body must be JSON'));
    request.log.error({ errorName: (error as Error).name }, 'codec call failed');
    return refuse(reply, new Refusal(500, 'internal error'));
  });
  app.setNotFoundHandler((request, reply) => refuse(reply, new Refusal(404, `no route ${request.method}`)));

  const handle = (transform: 'encode' | 'decode') => async (request: FastifyRequest, reply: FastifyReply) => {
    const parsed = PayloadsBodySchema.safeParse(request.body);
    if (!parsed.success) throw new Refusal(400, `invalid payloads:\n${formatIssues(parsed.error)}`);
    const payloads = await codec[transform](parsed.data.payloads.map((payload) => JSONToPayload(payload)));
    // Decoded payloads are plaintext: no cache keeps them.
    return reply.header('cache-control', 'no-store').send({ payloads: payloads.map((p) => payloadToJSON(p)) });
  };
  app.get('/healthz', async () => ({ ok: true }));
  for (const transform of ['encode', 'decode'] as const) {
    app.post(`/${transform}`, handle(transform));
    app.post(`/:namespace/${transform}`, handle(transform));
  }
  return app;
}

/** Checks `Authorization: Bearer …`: a configured token, else a Web UI user's access token; names who called. */
function authenticator(
  config: CodecServerOptions['config'],
  fetchJwks?: FetchJwks,
  now?: () => number,
): (authorization: string | undefined) => Promise<string> {
  const tokens = (config.SETTLE_CODEC_SERVER_TOKEN ?? []).map(digest);
  const verifier = config.SETTLE_CODEC_SERVER_JWKS_URL
    ? new AccessTokenVerifier(
        {
          jwksUrl: config.SETTLE_CODEC_SERVER_JWKS_URL,
          issuer: config.SETTLE_CODEC_SERVER_JWT_ISSUER!,
          audience: config.SETTLE_CODEC_SERVER_JWT_AUDIENCE!,
        },
        fetchJwks,
        now,
      )
    : undefined;
  if (tokens.length === 0 && !verifier) throw new Error('a codec server must never be open');
  return async (authorization) => {
    const match = /^Bearer +(\S+)$/i.exec(authorization ?? '');
    if (!match) throw new Refusal(401, 'missing bearer token');
    const given = digest(match[1]);
    // Every configured token is compared, in constant time: the answer's timing says nothing about which came close.
    if (tokens.map((token) => timingSafeEqual(token, given)).includes(true)) return 'token';
    if (!verifier) throw new Refusal(401, 'wrong bearer token');
    try {
      const { subject } = await verifier.verify(match[1]);
      return `user:${subject ?? '(no subject)'}`;
    } catch (error) {
      if (error instanceof AccessTokenError) throw new Refusal(401, `access token refused: ${error.message}`);
      throw error;
    }
  };
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

function refuse(reply: FastifyReply, error: Error): FastifyReply {
  const statusCode = error instanceof Refusal ? error.statusCode : 400;
  return reply.status(statusCode).send({ error: error.message });
}
