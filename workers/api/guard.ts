/**
 * The API's front door, in the order a request meets it: the `Host` header (no DNS rebinding), then a credential and
 * the scope the route needs, all before the body is read; then, for evidence, the signature over the body. Rate
 * limits, event-stream caps and deadlines count per credential.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import {
  parseEvidenceSignature,
  SIGNATURE_HEADER,
  verifyEvidenceSignature,
  type ReplayGuard,
} from '../../networks/webhook/signature';
import { hostName, type ApiConfig } from './config';
import { credentialKey, evidenceKeyCredential, type Credential, type Scope } from './credentials';
import { forbidden, HttpError, unauthorized } from './errors';

declare module 'fastify' {
  interface FastifyRequest {
    /** Who is calling, once authenticated. */
    credential?: Credential;
    /** A signed evidence request's delivery id, from its MAC: the workflow applies it once, whichever API took it. */
    deliveryId?: string;
  }
  interface FastifyContextConfig {
    /** What the route needs: a scope, or `public` (the liveness probe). Unknown routes need any credential. */
    scope?: Scope | 'public';
  }
}

/** `onRequest`: refuses a foreign `Host`, then authenticates a bearer token (or notes an evidence signature's key). */
export function frontDoor(config: ApiConfig) {
  return async (request: FastifyRequest, reply: FastifyReply) => {
    const host = request.headers.host;
    if (!host || !config.allowedHosts.has(hostName(host))) {
      throw new HttpError(421, {
        error: 'unknown host',
        reason: `this API answers only for ${[...config.allowedHosts].join(', ')} (SETTLE_API_HOSTS), not ${host === undefined ? 'a request without a Host header' : JSON.stringify(host)}`,
      });
    }
    if (config.access.anonymous) reply.header('x-settle-warning', 'insecure: no authentication (local demo only)');
    const scope = request.routeOptions.config.scope;
    if (scope === 'public') return;
    if (config.access.anonymous) return admit(request, reply, config.access.anonymous);
    if (scope === 'evidence' && request.headers[SIGNATURE_HEADER] !== undefined) {
      // The MAC covers the body: it is checked once the body is read (preValidation), but a header that cannot
      // verify is refused now, before anything is read.
      const fields = parseEvidenceSignature(request.headers[SIGNATURE_HEADER]);
      if (!fields) {
        throw unauthorized(
          'signature malformed: sign evidence as t=<unix>,kid=<key id>,v1=<HMAC-SHA256 of "<t>.<actionId>.<body>">',
        );
      }
      if (!config.access.evidenceKeys.has(fields.keyId)) throw unauthorized(`signature unknown key "${fields.keyId}"`);
      return;
    }
    const match = /^Bearer ([\x21-\x7e]+)$/.exec(request.headers.authorization ?? '');
    if (!match) {
      throw unauthorized(
        scope === 'evidence'
          ? 'no credential: sign the evidence (settle-signature) or send a bearer token with the evidence scope'
          : 'missing bearer token',
      );
    }
    const credential = config.access.tokens.match(match[1]);
    if (!credential) throw unauthorized('wrong bearer token');
    if (scope && !credential.scopes.has(scope)) {
      throw forbidden(`the credential "${credential.name}" lacks the "${scope}" scope`);
    }
    admit(request, reply, credential);
  };
}

/**
 * `preValidation` of the evidence route: a signed request is admitted once its MAC matches this action and body. The
 * replay guard here is this process's, within the signature's window; the MAC also becomes the evidence's delivery
 * id, which the workflow remembers, so a replay through another API process (or after a restart) is ignored there.
 */
export function evidenceSignature(config: ApiConfig, replayGuard: ReplayGuard, now?: () => number) {
  return async (request: FastifyRequest, reply: FastifyReply) => {
    if (request.credential) return;
    const check = verifyEvidenceSignature({
      secretsOf: (keyId) => config.access.evidenceKeys.get(keyId),
      header: request.headers[SIGNATURE_HEADER],
      actionId: (request.params as { id: string }).id,
      body: request.rawBody ?? '',
      toleranceSeconds: Math.floor(config.SETTLE_SIGNATURE_TOLERANCE / 1000),
      replayGuard,
      ...(now ? { now: now() } : {}),
    });
    if (!check.ok) {
      const key = check.keyId ? ` (key "${check.keyId}")` : '';
      throw unauthorized(
        check.reason === 'mismatch'
          ? `signature mismatch${key}: it must cover "<t>.<actionId>.<body>" for this action and body`
          : `signature ${check.reason}${key}`,
      );
    }
    request.deliveryId = `mac:${check.signature.slice(0, 32)}`;
    admit(request, reply, evidenceKeyCredential(check.keyId));
  };
}

/** Marks the request as the credential's; its log lines from here on (and the completed-request line) name it. */
function admit(request: FastifyRequest, reply: FastifyReply, credential: Credential) {
  request.credential = credential;
  request.log = request.log.child({ credential: credential.name });
  reply.log = request.log;
}

/** The credential of an admitted request (routes run only after the front door has set it). */
export function credentialOf(request: FastifyRequest): Credential {
  if (!request.credential) throw unauthorized('no credential');
  return request.credential;
}

/** Open event streams per credential, capped. */
export class StreamCounter {
  private readonly open = new Map<string, number>();

  constructor(private readonly max: number) {}

  /** Takes a slot for the credential, or refuses with 429; the returned function gives it back (once). */
  take(credential: Credential): () => void {
    const key = credentialKey(credential);
    const count = this.open.get(key) ?? 0;
    if (count >= this.max) {
      throw new HttpError(429, {
        error: 'too many event streams',
        reason: `the credential "${credential.name}" already holds ${count} open event streams (at most ${this.max}, SETTLE_API_MAX_STREAMS); close one first`,
      });
    }
    this.open.set(key, count + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.open.get(key) ?? 1) - 1;
      if (left > 0) this.open.set(key, left);
      else this.open.delete(key);
    };
  }
}

/**
 * The answer, or a 504 once the deadline passes. What was asked of Temporal may still happen after it: the body says
 * to read the action's status rather than assume either way.
 */
export async function within<T>(ms: number, answer: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new HttpError(504, {
            error: 'timed out',
            reason: `no answer within ${ms} ms (SETTLE_API_REQUEST_TIMEOUT); the request may still take effect: read the action's status`,
          }),
        ),
      ms,
    );
  });
  try {
    return await Promise.race([answer, late]);
  } finally {
    clearTimeout(timer);
  }
}
