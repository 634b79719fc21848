/**
 * RPC errors go into activity failures, which are workflow history: they are reduced to viem's short message and
 * details, with the configured RPC URLs (which may carry API keys) replaced by their position.
 */
import { ApplicationFailure } from '@temporalio/common';
import { BaseError } from 'viem';

/** A network or node error: retried by the activity's retry policy. Its message names no RPC URL. */
export class RpcError extends Error {
  override name = 'RpcError';
  constructor(
    message: string,
    readonly network: string,
  ) {
    super(`${network}: ${message}`);
  }
}

/**
 * Runs a read or a submission; a failure that is not already an `ApplicationFailure` becomes a redacted {@link RpcError}.
 *
 * @example await redactingErrors(() => reader.head(), { network: 'chainA', rpcUrls })
 */
export async function redactingErrors<T>(
  run: () => Promise<T>,
  where: { network: string; rpcUrls: string[] },
): Promise<T> {
  try {
    return await run();
  } catch (error) {
    if (error instanceof ApplicationFailure) throw error;
    throw new RpcError(redact(describeError(error), where.rpcUrls), where.network);
  }
}

function describeError(error: unknown): string {
  if (error instanceof BaseError)
    return error.details ? `${error.shortMessage} (${error.details})` : error.shortMessage;
  return error instanceof Error ? error.message : String(error);
}

/** The message with every RPC URL (and its origin and host) replaced by `<rpc #n>`. */
export function redact(message: string, rpcUrls: string[]): string {
  let text = message;
  rpcUrls.forEach((url, i) => {
    const name = `<rpc #${i + 1}>`;
    text = text.split(url).join(name).split(url.replace(/\/$/, '')).join(name);
    try {
      const { origin, host } = new URL(url);
      text = text.split(origin).join(name).split(host).join(name);
    } catch {
      // not a URL: nothing more to hide
    }
  });
  return text;
}
