import {
  ActionClosedError,
  ActionNotFoundError,
  ConnectionError,
  UpdateRejectedError,
  ValidationError,
} from '../../client/errors';

/** An answer other than 2xx, with its JSON body. */
export class HttpError extends Error {
  override name = 'HttpError';
  constructor(
    readonly statusCode: number,
    readonly body: Record<string, unknown>,
  ) {
    super(String(body.error));
  }
}

export function unauthorized(reason: string): HttpError {
  return new HttpError(401, { error: 'unauthorized', reason });
}

/** Maps the client's typed errors (and Fastify's own) to status codes and bodies. */
export function toHttp(error: unknown): { statusCode: number; body: Record<string, unknown> } {
  if (error instanceof HttpError) return { statusCode: error.statusCode, body: error.body };
  if (error instanceof ValidationError) {
    return { statusCode: 400, body: { error: `invalid ${error.subject}`, issues: error.issues } };
  }
  if (error instanceof ActionNotFoundError) return { statusCode: 404, body: { error: error.message } };
  if (error instanceof UpdateRejectedError) {
    return { statusCode: 409, body: { error: error.message, update: error.update, reason: error.reason } };
  }
  if (error instanceof ActionClosedError) return { statusCode: 409, body: { error: error.message } };
  if (error instanceof ConnectionError) return { statusCode: 503, body: { error: 'Temporal is unavailable' } };
  const statusCode = (error as { statusCode?: number }).statusCode;
  if (typeof statusCode === 'number' && statusCode >= 400 && statusCode < 500) {
    return { statusCode, body: { error: (error as Error).message } };
  }
  return { statusCode: 500, body: { error: 'internal error' } };
}
