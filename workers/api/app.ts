/**
 * Settle's HTTP API (Fastify): start, read, find and follow actions; evidence from external watchers; operator
 * updates. Every route but `/healthz` needs a credential with the route's scope (workers/api/guard.ts); every body is
 * validated with the contract's zod schemas (400 with the issues, bounded); an unknown action is 404;
 * `/openapi.json` describes every route.
 */
import rateLimit from '@fastify/rate-limit';
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import type { SettleClient } from '../../client/settle-client';
import { ReplayGuard } from '../../networks/webhook/signature';
import type { ApiConfig } from './config';
import { credentialKey, scopedName } from './credentials';
import { bounded, HttpError, toHttp } from './errors';
import { credentialOf, evidenceSignature, frontDoor, StreamCounter, within } from './guard';
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
    // A request must arrive within the timeout (a slow sender gets 408, checked every second); answers are bounded
    // by `within` below.
    requestTimeout: config.SETTLE_API_REQUEST_TIMEOUT,
    http: {
      requestTimeout: config.SETTLE_API_REQUEST_TIMEOUT,
      headersTimeout: Math.min(config.SETTLE_API_REQUEST_TIMEOUT, 60_000),
      connectionsCheckingInterval: Math.min(config.SETTLE_API_REQUEST_TIMEOUT, 1_000),
    },
  });
  const routes: Route[] = [];
  app.addHook('onRoute', (route) => {
    for (const method of [route.method].flat()) if (method !== 'HEAD') routes.push({ method, url: route.url });
  });
  routeTables.set(app, routes);
  const replayGuard = new ReplayGuard();
  const streams = new StreamCounter(config.SETTLE_API_MAX_STREAMS);
  const closing = new AbortController();
  app.addHook('preClose', async () => closing.abort());
  app.addHook('onRequest', frontDoor(config));

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
    reply.status(404).send(bounded({ error: `no route ${request.method} ${request.url.split('?')[0]}` })),
  );

  app.register(rateLimit, { global: false });
  app.register(async (api) => {
    // Counted per credential, after it is known: refused requests never spend another credential's budget.
    const limited = api.rateLimit({
      hook: 'preHandler',
      keyGenerator: (request) => credentialKey(credentialOf(request)),
      max: (request) => credentialOf(request).rateLimit ?? config.SETTLE_API_RATE_LIMIT,
      timeWindow: config.SETTLE_API_RATE_WINDOW,
      errorResponseBuilder: (request, context) =>
        new HttpError(429, {
          error: 'rate limit exceeded',
          reason: `the credential "${credentialOf(request).name}" may make ${context.max} requests per ${config.SETTLE_API_RATE_WINDOW} ms (SETTLE_API_RATE_LIMIT); retry in ${context.after}`,
        }),
    });
    const needs = (scope: 'read' | 'start' | 'operate' | 'evidence') => ({ config: { scope }, preHandler: limited });
    const answer = <T>(work: Promise<T>) => within(config.SETTLE_API_REQUEST_TIMEOUT, work);

    api.get('/openapi.json', needs('read'), async () => openApiDocument());
    api.get('/healthz', { config: { scope: 'public' } }, async () => ({ ok: true }));

    api.post('/v1/actions', needs('start'), async (request, reply) => {
      const started = await answer(settle.start(bodyOf(request) as never));
      request.log.info({ actionId: started.actionId, created: started.created }, 'action started');
      return reply
        .status(started.created ? 201 : 200)
        .header('location', `/v1/actions/${encodeURIComponent(started.actionId)}`)
        .send(started);
    });

    api.get('/v1/actions', needs('read'), async (request) => {
      const query = { ...(request.query as Record<string, unknown>) };
      if (typeof query.limit === 'string' && /^\d+$/.test(query.limit)) query.limit = Number(query.limit);
      return { actions: await answer(settle.list(query)) };
    });

    api.get('/v1/actions/:id', needs('read'), async (request) => answer(settle.status(actionIdOf(request))));

    api.get('/v1/refs/:ref', needs('read'), async (request) => {
      const { ref } = request.params as { ref: string };
      const actions = await answer(settle.find({ ref }));
      if (actions.length === 0) throw new HttpError(404, { error: `no action has ref "${ref}"` });
      return { ref, actions };
    });

    api.get('/v1/actions/:id/events', needs('read'), async (request, reply) => {
      const actionId = actionIdOf(request);
      const release = streams.take(credentialOf(request));
      try {
        const first = await answer(settle.status(actionId));
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
      } finally {
        release();
      }
    });

    api.post(
      '/v1/actions/:id/evidence',
      { ...needs('evidence'), preValidation: evidenceSignature(config, replayGuard, now) },
      async (request, reply) => {
        const actionId = actionIdOf(request);
        // The source is the credential's (an evidence key id, or a token's name), whatever the body claims; a signed
        // request's delivery id is its MAC's.
        const evidence = scoped(request, 'source', 'required');
        const delivered = request.deliveryId ? withField(evidence, 'id', request.deliveryId) : evidence;
        await answer(settle.evidence(actionId, delivered as never));
        return reply.status(202).send({ accepted: true, actionId });
      },
    );

    // The operator recorded in the audit trail is the credential's name, with the body's operator after it.
    api.post('/v1/actions/:id/retry', needs('operate'), async (request) =>
      answer(settle.retryStep(actionIdOf(request), scoped(request, 'operator', 'optional') as never)),
    );
    api.post('/v1/actions/:id/compensate', needs('operate'), async (request) =>
      answer(settle.compensate(actionIdOf(request), scoped(request, 'operator', 'optional') as never)),
    );
    api.post('/v1/actions/:id/cancel', needs('operate'), async (request) =>
      answer(settle.cancel(actionIdOf(request), scoped(request, 'operator', 'optional') as never)),
    );
    api.post('/v1/actions/:id/resolve', needs('operate'), async (request) =>
      answer(settle.resolveStep(actionIdOf(request), scoped(request, 'operator', 'required') as never)),
    );
  });

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

/**
 * The body with `field` (the evidence's `source`, an update's `operator`) scoped under the request's credential (see
 * `scopedName`): `ops:alice`. An optional field the body leaves out becomes the credential's name. A field the
 * contract requires stays required, and a claim that is not a name (a number, an empty string) stays as it is: the
 * client rejects both with their rule, as it does a body that is not an object.
 */
function scoped(request: FastifyRequest, field: 'source' | 'operator', presence: 'required' | 'optional'): unknown {
  const body = bodyOf(request);
  if (!body || typeof body !== 'object' || Array.isArray(body)) return body;
  const claimed = (body as Record<string, unknown>)[field];
  if (claimed === undefined && presence === 'required') return body;
  if (claimed !== undefined && (typeof claimed !== 'string' || claimed.trim() === '')) return body;
  return withField(body, field, scopedName(credentialOf(request), claimed));
}

/** The body with one field set; anything but an object is left for the client to reject with its rule. */
function withField(body: unknown, field: string, value: string): unknown {
  if (!body || typeof body !== 'object' || Array.isArray(body)) return body;
  return { ...body, [field]: value };
}
