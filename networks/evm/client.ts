/**
 * The one way Settle builds a viem client for an EVM network: a chain named after the network, the RPC URLs tried in
 * order (WebSocket for `ws(s)://`, HTTP otherwise), and never an answer from a cache. Callers differ only in who
 * retries a failed request.
 */
import { createPublicClient, defineChain, fallback, http, webSocket, type PublicClient, type Transport } from 'viem';

/** Who retries a failed request. */
export type RetryPolicy =
  /** Nobody here: an activity's retry policy retries (with back-off), so one attempt is one request per URL. */
  | 'caller'
  /** The transport: one quick retry per URL, then viem's retries over the list (the watcher reads every head). */
  | 'transport';

export interface EvmClientOptions {
  /** The network's name in the networks file (the chain's name for viem). */
  network: string;
  chainId: number;
  /** Tried in order: the first that answers is used. */
  rpcUrls: string[];
  retry: RetryPolicy;
  timeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 10_000;

/**
 * A public client for one network.
 *
 * @example const client = evmClient({ network: 'chainA', chainId: 31337, rpcUrls: ['http://127.0.0.1:8545'], retry: 'caller' });
 */
export function evmClient(options: EvmClientOptions): PublicClient {
  const chain = defineChain({
    id: options.chainId,
    name: options.network,
    nativeCurrency: { name: 'Ether', symbol: 'ETH', decimals: 18 },
    rpcUrls: { default: { http: options.rpcUrls } },
  });
  const transports = options.rpcUrls.map((url) => transportFor(url, options));
  return createPublicClient({
    chain,
    // Never answer from a cache: a stale head would under-count confirmations and hide reorgs.
    cacheTime: 0,
    transport: fallback(transports, options.retry === 'caller' ? { retryCount: 0 } : {}),
  });
}

function transportFor(url: string, options: EvmClientOptions): Transport {
  const timeout = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const retryCount = options.retry === 'caller' ? 0 : 1;
  if (/^wss?:/.test(url)) return webSocket(url, { timeout, retryCount });
  return http(url, { timeout, retryCount, ...(options.retry === 'caller' ? {} : { retryDelay: 100 }) });
}
