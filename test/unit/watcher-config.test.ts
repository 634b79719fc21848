import { parseNetworksFile } from '../../networks/config';
import { parseWatcherConfig, watchedNetworks } from '../../workers/watcher/config';
import { jsonLogger } from '../../workers/watcher/log';
import { serveMetrics, WatcherMetrics } from '../../workers/watcher/metrics';

const FILE = parseNetworksFile(
  JSON.stringify({
    networks: {
      chainA: {
        kind: 'evm',
        chainId: 31337,
        rpcUrls: ['http://127.0.0.1:8545'],
        finality: { confirmations: 3 },
        blockTime: '500ms',
      },
      chainB: {
        kind: 'evm',
        chainId: 31338,
        rpcUrls: ['http://127.0.0.1:8546'],
        finality: { tag: 'finalized' },
        blockTime: '12s',
      },
    },
  }),
);

describe('watcher configuration', () => {
  it('follows every network of the file by default, with head polls from the block time', () => {
    const config = parseWatcherConfig({ SETTLE_CONFIG: 'settle.config.json' });

    expect(watchedNetworks(FILE, config).map((n) => [n.name, n.headPollMs])).toEqual([
      ['chainA', 50],
      ['chainB', 1_000],
    ]);
    expect(config).toMatchObject({
      TEMPORAL_ADDRESS: '127.0.0.1:7233',
      TEMPORAL_NAMESPACE: 'default',
      SETTLE_WATCH_REFRESH: 2_000,
      SETTLE_WATCH_REORG_DEPTH: 64,
      SETTLE_WATCH_DROP_AFTER: 30_000,
      SETTLE_WATCH_METRICS_HOST: '127.0.0.1',
      SETTLE_WATCH_METRICS_LOG_EVERY: 60_000,
    });
    expect(config.SETTLE_WATCH_METRICS_PORT).toBeUndefined();
  });

  it('follows only the shard named by SETTLE_WATCH_NETWORKS', () => {
    const config = parseWatcherConfig({ SETTLE_CONFIG: 'x.json', SETTLE_WATCH_NETWORKS: ' chainB ,' });

    expect(watchedNetworks(FILE, config).map((n) => n.name)).toEqual(['chainB']);
  });

  it('rejects a shard naming a network the file does not have, naming it', () => {
    const config = parseWatcherConfig({ SETTLE_CONFIG: 'x.json', SETTLE_WATCH_NETWORKS: 'chainA,chainC' });

    expect(() => watchedNetworks(FILE, config)).toThrow(/SETTLE_WATCH_NETWORKS: "chainC" not in the networks file/);
  });

  it('names the field and the rule of a bad value', () => {
    expect(() => parseWatcherConfig({})).toThrow(/SETTLE_CONFIG: is required/);
    expect(() => parseWatcherConfig({ SETTLE_CONFIG: 'x', SETTLE_WATCH_METRICS_PORT: '99999' })).toThrow(
      /SETTLE_WATCH_METRICS_PORT: must be a TCP port/,
    );
    expect(() => parseWatcherConfig({ SETTLE_CONFIG: 'x', SETTLE_WATCH_REFRESH: 'soon' })).toThrow(
      /SETTLE_WATCH_REFRESH: must be a positive duration/,
    );
  });

  it('turns the periodic metrics line off with "off"', () => {
    expect(
      parseWatcherConfig({ SETTLE_CONFIG: 'x', SETTLE_WATCH_METRICS_LOG_EVERY: 'off' }).SETTLE_WATCH_METRICS_LOG_EVERY,
    ).toBe('off');
  });
});

describe('watcher metrics and logs', () => {
  it('serves counters and gauges as Prometheus text on 127.0.0.1', async () => {
    const metrics = new WatcherMetrics();
    metrics.count('settle_watcher_signals_total', { network: 'chainA', kind: 'included' });
    metrics.count('settle_watcher_signals_total', { network: 'chainA', kind: 'included' });
    metrics.set('settle_watcher_head_lag_seconds', { network: 'chainA' }, 0.25);
    const server = await serveMetrics(metrics, '127.0.0.1', 0);
    try {
      const text = await (await fetch(`http://127.0.0.1:${server.port}/metrics`)).text();

      expect(text).toContain('# TYPE settle_watcher_signals_total counter');
      expect(text).toContain('settle_watcher_signals_total{network="chainA",kind="included"} 2');
      expect(text).toContain('settle_watcher_head_lag_seconds{network="chainA"} 0.25');
      expect((await fetch(`http://127.0.0.1:${server.port}/other`)).status).toBe(404);
    } finally {
      await server.close();
    }
  });

  it('flattens the metrics for the periodic log line', () => {
    const metrics = new WatcherMetrics();
    metrics.count('settle_watcher_reorgs_total', { network: 'chainB' });
    metrics.set('settle_watcher_watched_actions', {}, 3);

    expect(metrics.snapshot()).toEqual({
      'settle_watcher_reorgs_total{network=chainB}': 1,
      settle_watcher_watched_actions: 3,
    });
  });

  it('writes one JSON object per line, at or above its level', () => {
    const lines: string[] = [];
    const logger = jsonLogger('info', (line) => lines.push(line));

    logger.debug('noise');
    logger.info('signal', { action: 'xfer-1', step: 'lock', kind: 'included', block: { number: '7', hash: '0xab' } });

    expect(lines).toHaveLength(1);
    expect(lines[0].endsWith('\n')).toBe(true);
    expect(JSON.parse(lines[0])).toMatchObject({ level: 'info', msg: 'signal', action: 'xfer-1', kind: 'included' });
  });
});
