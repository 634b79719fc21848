/**
 * Settle's HTTP API (Fastify): start, read, find and follow actions; signed evidence from external watchers;
 * operator updates behind a bearer token. Every body is validated with the contract's zod schemas (400 with the
 * issues); an unknown action is 404; `/openapi.json` describes every route.
 */
import { timingSafeEqual } from 'node:crypto';
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import type { SettleClient } from '../../client/settle-client';
import { ReplayGuard, SIGNATURE_HEADER, verifySignature } from '../../networks/webhook/signature';
import type { ApiConfig } from './config';
import { HttpError, toHttp, unauthorized } from './errors';
import { openApiDocument } from './openapi';
import { streamTransitions } from './sse';

declare module 'fastify' {
  interface FastifyRequest {
    /** The body exactly as received: signatures cover these bytes, not a re-serialisation. */
    rawBody?: string;
    /** Why the body could not be read (not JSON, wrong media type); reported after authentication. */
    bodyProblem?: HttpError;
  }
}

/** What the API needs of a client: the SettleClient surface it uses. */
export type ApiBackend = Pick<
  SettleClient,
  'start' | 'status' | 'list' | 'find' | 'evidence' | 'retryStep' | 'compensate' | 'cancel' | 'resolveStep'
>;

export interface ApiOptions {
  settle: ApiBackend;
  config: ApiConfig;
  /** Seconds since the epoch, for signature windows; for tests. */
  now?: () => number;
}

/**
 * Builds the API without listening: `app.listen()` to serve, `app.inject()` to test.
 *
 * @example
 * const app = buildApi({ settle: await SettleClient.connect(), config: parseApiConfig(process.env) });
 * await app.listen({ host: config.SETTLE_API_HOST, port: config.SETTLE_API_PORT });
 */
export function buildApi({ settle, config, now }: ApiOptions): FastifyInstance {
  const app = Fastify({
    logger: config.SETTLE_API_LOG_LEVEL === 'silent' ? false : { level: config.SETTLE_API_LOG_LEVEL },
    bodyLimit: config.SETTLE_API_BODY_LIMIT,
    forceCloseConnections: true,
  });
  const routes: Route[] = [];
  app.addHook('onRoute', (route) => {
    for (const method of [route.method].flat()) if (method !== 'HEAD') routes.push({ method, url: route.url });
  });
  routeTables.set(app, routes);
  const replayGuard = new ReplayGuard();
  const closing = new AbortController();
  app.addHook('preClose', async () => closing.abort());

  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    request.rawBody = body as string;
    if ((body as string).trim() === '') return done(null, undefined);
    try {
      done(null, JSON.parse(body as string));
    } catch (error) {
      request.bodyProblem = new HttpError(400, {
        error: 'invalid body',
        issues: [{ path: '(root)', message: `must be JSON: ${(error as Error).message}` }],
      });
      done(null, undefined);
    }
  });
  app.addContentTypeParser('*', { parseAs: 'string' }, (request, body, done) => {
    request.rawBody = body as string;
    request.bodyProblem = new HttpError(415, { error: 'the body must be application/json' });
    done(null, undefined);
  });

  app.setErrorHandler((error, request, reply) => {
    const { statusCode, body } = toHttp(error);
    if (statusCode >= 500) request.log.error({ err: error }, 'request failed');
    return reply.status(statusCode).send(body);
  });
  app.setNotFoundHandler((request, reply) =>
    reply.status(404).send({ error: `no route ${request.method} ${request.url.split('?')[0]}` }),
  );

  const requireOperator = async (request: FastifyRequest) => {
    if (!config.SETTLE_API_TOKEN) {
      throw unauthorized('operator endpoints are disabled: SETTLE_API_TOKEN is not set');
    }
    const match = /^Bearer (.+)$/.exec(request.headers.authorization ?? '');
    if (!match) throw unauthorized('missing bearer token');
    if (!sameText(match[1], config.SETTLE_API_TOKEN)) throw unauthorized('wrong bearer token');
  };

  app.get('/openapi.json', async () => openApiDocument());
  app.get('/healthz', async () => ({ ok: true }));

  app.post('/v1/actions', async (request, reply) => {
    const started = await settle.start(bodyOf(request) as never);
    return reply
      .status(started.created ? 201 : 200)
      .header('location', `/v1/actions/${encodeURIComponent(started.actionId)}`)
      .send(started);
  });

  app.get('/v1/actions', async (request) => {
    const query = { ...(request.query as Record<string, unknown>) };
    if (typeof query.limit === 'string' && /^\d+$/.test(query.limit)) query.limit = Number(query.limit);
    return { actions: await settle.list(query) };
  });

  app.get('/v1/actions/:id', async (request) => settle.status(actionIdOf(request)));

  app.get('/v1/refs/:ref', async (request) => {
    const { ref } = request.params as { ref: string };
    const actions = await settle.find({ ref });
    if (actions.length === 0) throw new HttpError(404, { error: `no action has ref "${ref}"` });
    return { ref, actions };
  });

  app.get('/v1/actions/:id/events', async (request, reply) => {
    const actionId = actionIdOf(request);
    const first = await settle.status(actionId);
    reply.hijack();
    // The response's 'close' fires when the client goes away (the request's fires once its body is read).
    const gone = new AbortController();
    reply.raw.once('close', () => gone.abort());
    await streamTransitions(reply.raw, {
      first,
      read: () => settle.status(actionId),
      pollIntervalMs: config.SETTLE_SSE_POLL_INTERVAL,
      signal: AbortSignal.any([gone.signal, closing.signal]),
    });
  });

  app.post('/v1/actions/:id/evidence', async (request, reply) => {
    // Authenticate before reading anything: an unsigned, wrongly signed or replayed request applies nothing.
    const secrets = config.SETTLE_EVIDENCE_SECRET;
    if (!secrets) throw unauthorized('evidence is disabled: SETTLE_EVIDENCE_SECRET is not set');
    const check = verifySignature({
      secret: secrets,
      header: request.headers[SIGNATURE_HEADER],
      body: request.rawBody ?? '',
      toleranceSeconds: Math.floor(config.SETTLE_SIGNATURE_TOLERANCE / 1000),
      replayGuard,
      ...(now ? { now: now() } : {}),
    });
    if (!check.ok) throw unauthorized(`signature ${check.reason}`);
    const actionId = actionIdOf(request);
    await settle.evidence(actionId, bodyOf(request) as never);
    return reply.status(202).send({ accepted: true, actionId });
  });

  const operator = { preHandler: requireOperator };
  app.post('/v1/actions/:id/retry', operator, async (request) =>
    settle.retryStep(actionIdOf(request), bodyOf(request) as never),
  );
  app.post('/v1/actions/:id/compensate', operator, async (request) =>
    settle.compensate(actionIdOf(request), bodyOf(request) as never),
  );
  app.post('/v1/actions/:id/cancel', operator, async (request) =>
    settle.cancel(actionIdOf(request), bodyOf(request) as never),
  );
  app.post('/v1/actions/:id/resolve', operator, async (request) =>
    settle.resolveStep(actionIdOf(request), bodyOf(request) as never),
  );

  return app;
}

export interface Route {
  method: string;
  url: string;
}
const routeTables = new WeakMap<FastifyInstance, Route[]>();

/** The routes an API instance serves (HEAD aside), e.g. to check them against the OpenAPI document. */
export function routesOf(app: FastifyInstance): Route[] {
  return routeTables.get(app) ?? [];
}

/**
 * The JSON body, or the reason it could not be read. Validation against the schema happens once, in the client (and
 * again in the workflow, a boundary of its own).
 */
function bodyOf(request: FastifyRequest): unknown {
  if (request.bodyProblem) throw request.bodyProblem;
  return request.body;
}

/** The `:id` of the route, as given: the client checks it (once) before anything reaches Temporal. */
function actionIdOf(request: FastifyRequest): string {
  return (request.params as { id: string }).id;
}

function sameText(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}
