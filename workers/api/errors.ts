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

/** No credential, or one that does not verify. */
export function unauthorized(reason: string): HttpError {
  return new HttpError(401, { error: 'unauthorized', reason });
}

/** A valid credential without the scope the route needs. */
export function forbidden(reason: string): HttpError {
  return new HttpError(403, { error: 'forbidden', reason });
}

/** At most this many issues in an answer: a huge invalid body must not make a huger answer. */
export const MAX_ISSUES = 20;
/** At most this many characters of any text in an error body (paths and messages echo the request). */
export const MAX_TEXT = 300;

/** Maps the client's typed errors (and Fastify's own) to status codes and bounded bodies. */
export function toHttp(error: unknown): { statusCode: number; body: Record<string, unknown> } {
  const { statusCode, body } = classify(error);
  return { statusCode, body: bounded(body) };
}

function classify(error: unknown): { statusCode: number; body: Record<string, unknown> } {
  if (error instanceof HttpError) return { statusCode: error.statusCode, body: error.body };
  if (error instanceof ValidationError) {
    const omitted = error.issues.length - MAX_ISSUES;
    return {
      statusCode: 400,
      body: {
        error: `invalid ${error.subject}`,
        issues: error.issues.slice(0, MAX_ISSUES),
        ...(omitted > 0 ? { omittedIssues: omitted } : {}),
      },
    };
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

/** The body with every text cut to {@link MAX_TEXT} characters and every list to {@link MAX_ISSUES} items. */
export function bounded<T>(value: T): T {
  if (typeof value === 'string') {
    return (value.length > MAX_TEXT ? `${value.slice(0, MAX_TEXT)}… (${value.length} characters)` : value) as T;
  }
  if (Array.isArray(value)) return value.slice(0, MAX_ISSUES).map(bounded) as T;
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, bounded(item)])) as T;
  }
  return value;
}
