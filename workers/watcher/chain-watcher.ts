/**
 * The chain watcher assembled: one follower per watched network, the directory of running actions (listed from
 * Temporal on an interval and on events), the evidence sender, and the metrics (endpoint and periodic log line).
 */
import type { Client } from '@temporalio/client';
import { ChainReader } from '../../networks/evm/chain-reader';
import { evmClient } from '../../networks/evm/client';
import type { WatchedNetwork, WatcherConfig } from './config';
import { ActionDirectory } from './directory';
import { errorText, type Logger } from './log';
import { serveMetrics, WatcherMetrics, type MetricsServer } from './metrics';
import { NetworkFollower } from './network-follower';
import { temporalSender, type EvidenceSender } from './sender';
import type { ClaimSigner } from './claim-signer';

export interface ChainWatcherDeps {
  client: Client;
  networks: WatchedNetwork[];
  logger: Logger;
  /** Another delivery than Temporal signals (tests). */
  sender?: EvidenceSender;
  /** Signs each claim (SETTLE_WATCH_SIGNING_KEY_FILE), so a deployment that verifies claims trusts it at once. */
  sign?: ClaimSigner;
}

export interface RunningChainWatcher {
  metrics: WatcherMetrics;
  directory: ActionDirectory;
  followers: NetworkFollower[];
  metricsServer?: MetricsServer;
  stop(): Promise<void>;
}

/**
 * Starts following every watched network and the running actions on them. Nothing here needs a chain or Temporal to
 * be reachable at start: reads are retried.
 *
 * @example
 * const watcher = await startChainWatcher(config, { client, networks: loadWatchedNetworks(config), logger });
 * process.once('SIGTERM', () => void watcher.stop());
 */
export async function startChainWatcher(config: WatcherConfig, deps: ChainWatcherDeps): Promise<RunningChainWatcher> {
  const { client, networks, logger } = deps;
  const metrics = new WatcherMetrics();
  const directory = new ActionDirectory({
    client,
    networks: networks.map((n) => n.name),
    logger,
    metrics,
    queryTimeoutMs: config.SETTLE_WATCH_QUERY_TIMEOUT,
  });
  const sender = deps.sender ?? temporalSender(client, logger, metrics, deps.sign);
  const followers = networks.map(
    (network) =>
      new NetworkFollower({
        network,
        chain: new ChainReader(
          evmClient({ network: network.name, chainId: network.chainId, rpcUrls: network.rpcUrls, retry: 'transport' }),
        ),
        directory,
        sender,
        logger,
        metrics,
        reorgDepth: config.SETTLE_WATCH_REORG_DEPTH,
        dropAfterMs: config.SETTLE_WATCH_DROP_AFTER,
      }),
  );
  const metricsServer =
    config.SETTLE_WATCH_METRICS_PORT !== undefined
      ? await serveMetrics(metrics, config.SETTLE_WATCH_METRICS_HOST, config.SETTLE_WATCH_METRICS_PORT)
      : undefined;

  let stopped = false;
  let lastListError = '';
  const listing = (async () => {
    while (!stopped) {
      try {
        await directory.refresh();
        lastListError = '';
      } catch (error) {
        const text = errorText(error);
        if (text !== lastListError) logger.warn('listing running actions failed; retrying', { error: text });
        lastListError = text;
      }
      await sleepUnless(() => stopped, config.SETTLE_WATCH_REFRESH);
    }
  })();
  // The first listing before the first heads: a restarted watcher knows what it follows before it reads blocks.
  await Promise.race([directory.refresh().catch(() => undefined), sleep(config.SETTLE_WATCH_QUERY_TIMEOUT)]);
  for (const follower of followers) follower.start();

  const every = config.SETTLE_WATCH_METRICS_LOG_EVERY;
  const metricsLog = every === 'off' ? undefined : setInterval(() => logger.info('metrics', metrics.snapshot()), every);
  metricsLog?.unref();

  return {
    metrics,
    directory,
    followers,
    ...(metricsServer ? { metricsServer } : {}),
    async stop() {
      if (stopped) return;
      stopped = true;
      if (metricsLog) clearInterval(metricsLog);
      await Promise.all(followers.map((f) => f.stop()));
      await listing;
      await metricsServer?.close();
    },
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Sleeps in short slices so that a stop is not held up by a long refresh interval. */
async function sleepUnless(stopped: () => boolean, ms: number): Promise<void> {
  const until = Date.now() + ms;
  while (!stopped() && Date.now() < until) await sleep(Math.min(200, until - Date.now()));
}
