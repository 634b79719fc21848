/**
 * The watcher's metrics: head lag per network, signals sent by kind, reorgs seen, and the process's own (CPU, memory,
 * event loop lag). A prom-client registry served as Prometheus text on 127.0.0.1 (when a port is configured), and a
 * periodic `metrics` log line.
 */
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import { serveMetrics as serveRegistry, type MetricsServer } from '../observability';

export type { MetricsServer } from '../observability';

type Labels = Record<string, string>;

const SERIES = {
  settle_watcher_signals_total: ['counter', 'Evidence signals sent, by network and kind.', ['network', 'kind']],
  settle_watcher_signal_failures_total: ['counter', 'Evidence signals that could not be delivered.', ['network']],
  settle_watcher_reorgs_total: ['counter', 'Reorgs seen (one per new canonical branch).', ['network']],
  settle_watcher_orphaned_blocks_total: ['counter', 'Blocks seen orphaned by reorgs.', ['network']],
  settle_watcher_rpc_errors_total: ['counter', 'Failed reads from a network RPC.', ['network']],
  settle_watcher_head_block: ['gauge', 'Number of the newest block processed.', ['network']],
  settle_watcher_head_lag_seconds: ['gauge', 'Now minus the timestamp of the newest block processed.', ['network']],
  settle_watcher_watched_transactions: ['gauge', 'Transactions of running actions being followed.', ['network']],
  settle_watcher_watched_actions: ['gauge', 'Running actions with steps on the watched networks.', []],
} as const;

export type WatcherMetricName = keyof typeof SERIES;

const labelKey = (labels: Labels) => JSON.stringify(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : 1)));

/**
 * Counters and gauges, by name and labels. Reads (`get`, `snapshot`) come from a copy of the values kept here, so the
 * periodic log line needs no await.
 *
 * @example metrics.count('settle_watcher_signals_total', { network: 'chainA', kind: 'included' })
 */
export class WatcherMetrics {
  readonly registry = new Registry();
  private readonly metrics = new Map<string, Counter | Gauge>();
  private readonly values = new Map<string, Map<string, { labels: Labels; value: number }>>();

  constructor(options: { processMetrics?: boolean } = {}) {
    for (const [name, [type, help, labelNames]] of Object.entries(SERIES)) {
      const spec = { name, help, labelNames: [...labelNames], registers: [this.registry] };
      this.metrics.set(name, type === 'counter' ? new Counter(spec) : new Gauge(spec));
      this.values.set(name, new Map());
    }
    if (options.processMetrics ?? true) collectDefaultMetrics({ register: this.registry });
  }

  count(name: WatcherMetricName, labels: Labels = {}, by = 1): void {
    (this.metric(name) as Counter).inc(labels, by);
    this.entry(name, labels).value += by;
  }

  set(name: WatcherMetricName, labels: Labels, value: number): void {
    const finite = Number.isFinite(value) ? value : 0;
    (this.metric(name) as Gauge).set(labels, finite);
    this.entry(name, labels).value = finite;
  }

  get(name: WatcherMetricName, labels: Labels = {}): number {
    return this.values.get(name)?.get(labelKey(labels))?.value ?? 0;
  }

  /** Prometheus text exposition format (version 0.0.4). */
  render(): Promise<string> {
    return this.registry.metrics();
  }

  /** A flat summary for the periodic log line: `{ "settle_watcher_signals_total{kind=included,network=chainA}": 3 }`. */
  snapshot(): Record<string, number> {
    const flat: Record<string, number> = {};
    for (const [name, series] of this.values) {
      for (const { labels, value } of series.values()) {
        const text = Object.entries(labels)
          .sort(([a], [b]) => (a < b ? -1 : 1))
          .map(([k, v]) => `${k}=${v}`)
          .join(',');
        flat[text ? `${name}{${text}}` : name] = Math.round(value * 1000) / 1000;
      }
    }
    return flat;
  }

  private metric(name: string): Counter | Gauge {
    const metric = this.metrics.get(name);
    if (!metric) throw new Error(`unknown metric ${name}`);
    return metric;
  }

  private entry(name: string, labels: Labels) {
    const series = this.values.get(name)!;
    const key = labelKey(labels);
    let entry = series.get(key);
    if (!entry) series.set(key, (entry = { labels, value: 0 }));
    return entry;
  }
}

/** Serves `GET /metrics` on host:port (127.0.0.1 unless configured otherwise). */
export function serveMetrics(metrics: WatcherMetrics, host: string, port: number): Promise<MetricsServer> {
  return serveRegistry(metrics.registry, host, port);
}
