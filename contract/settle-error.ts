/**
 * Base class of Settle's own errors (validation, configuration, usage, the client's): a short message, and the facts a
 * caller can match on as fields. `err instanceof SettleError` tells Settle's errors from anything else. In a module of
 * its own, with no imports, so the pure machines can use validation without loading Temporal.
 */
export class SettleError extends Error {
  override name = 'SettleError';
}
