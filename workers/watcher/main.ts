/**
 * `npm run watcher`: follows the EVM networks of SETTLE_CONFIG (or the shard SETTLE_WATCH_NETWORKS) and signals
 * `evidence` to the running actions whose transactions it sees included, confirmed to their policy, reorged,
 * dropped or failed. Optional: without it, actions complete through the workflow's polling, only slower.
 */
import { Client, Connection } from '@temporalio/client';
import { loadClaimSigner } from './claim-signer';
import { startChainWatcher, type RunningChainWatcher } from './chain-watcher';
import { loadWatchedNetworks, parseWatcherConfig, type WatcherConfig } from './config';
import { errorText, jsonLogger, logLevelOf, type Logger } from './log';

export { startChainWatcher } from './chain-watcher';
export { parseWatcherConfig } from './config';

/** Connects lazily (the watcher starts while Temporal is still coming up) and starts following. */
export async function runWatcher(config: WatcherConfig, logger: Logger): Promise<RunningChainWatcher> {
  const networks = loadWatchedNetworks(config);
  const connection = Connection.lazy(config.temporalConnection);
  const client = new Client({
    connection,
    namespace: config.TEMPORAL_NAMESPACE,
    ...(config.dataConverter ? { dataConverter: config.dataConverter } : {}),
  });
  const sign = config.SETTLE_WATCH_SIGNING_KEY_FILE ? loadClaimSigner(config.SETTLE_WATCH_SIGNING_KEY_FILE) : undefined;
  const watcher = await startChainWatcher(config, { client, networks, logger, ...(sign ? { sign } : {}) });
  logger.info('watcher started', {
    networks: networks.map((n) => ({ name: n.name, chainId: n.chainId, headPollMs: n.headPollMs })),
    temporal: config.TEMPORAL_ADDRESS,
    namespace: config.TEMPORAL_NAMESPACE,
    ...(watcher.metricsServer
      ? { metrics: `http://${config.SETTLE_WATCH_METRICS_HOST}:${watcher.metricsServer.port}/metrics` }
      : {}),
  });
  return {
    ...watcher,
    async stop() {
      await watcher.stop();
      await connection.close();
    },
  };
}

if (require.main === module) {
  let logger: Logger = jsonLogger('info');
  try {
    const config = parseWatcherConfig(process.env);
    logger = jsonLogger(logLevelOf(config.SETTLE_LOG_LEVEL));
    runWatcher(config, logger)
      .then((watcher) => {
        const stop = (signal: string) => {
          logger.info('watcher stopping', { signal });
          void watcher.stop().then(() => process.exit(0));
        };
        process.once('SIGINT', () => stop('SIGINT'));
        process.once('SIGTERM', () => stop('SIGTERM'));
      })
      .catch((error: unknown) => {
        logger.error('watcher failed to start', { error: errorText(error) });
        process.exit(1);
      });
  } catch (error) {
    // A configuration error names every field and rule: print all of it.
    logger.error('watcher failed to start', { error: error instanceof Error ? error.message : String(error) });
    process.exit(1);
  }
}
