/**
 * The watcher's metrics: head lag per network, signals sent by kind, reorgs seen. Rendered as Prometheus text on
 * 127.0.0.1 (when a port is configured) and as a periodic `metrics` log line.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

type Labels = Record<string, string>;

interface Series {
  help: string;
  type: 'counter' | 'gauge';
  values: Map<string, { labels: Labels; value: number }>;
}

const labelKey = (labels: Labels) => JSON.stringify(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : 1)));

/**
 * Counters and gauges, by name and labels.
 *
 * @example metrics.count('settle_watcher_signals_total', { network: 'chainA', kind: 'included' })
 */
export class WatcherMetrics {
  private readonly series = new Map<string, Series>();

  constructor() {
    this.define('settle_watcher_signals_total', 'counter', 'Evidence signals sent, by network and kind.');
    this.define('settle_watcher_signal_failures_total', 'counter', 'Evidence signals that could not be delivered.');
    this.define('settle_watcher_reorgs_total', 'counter', 'Reorgs seen (one per new canonical branch).');
    this.define('settle_watcher_orphaned_blocks_total', 'counter', 'Blocks seen orphaned by reorgs.');
    this.define('settle_watcher_rpc_errors_total', 'counter', 'Failed reads from a network RPC.');
    this.define('settle_watcher_head_block', 'gauge', 'Number of the newest block processed.');
    this.define('settle_watcher_head_lag_seconds', 'gauge', 'Now minus the timestamp of the newest block processed.');
    this.define('settle_watcher_watched_transactions', 'gauge', 'Transactions of running actions being followed.');
    this.define('settle_watcher_watched_actions', 'gauge', 'Running actions with steps on the watched networks.');
  }

  private define(name: string, type: Series['type'], help: string): void {
    this.series.set(name, { help, type, values: new Map() });
  }

  count(name: string, labels: Labels = {}, by = 1): void {
    const entry = this.entry(name, labels);
    entry.value += by;
  }

  set(name: string, labels: Labels, value: number): void {
    this.entry(name, labels).value = value;
  }

  get(name: string, labels: Labels = {}): number {
    return this.series.get(name)?.values.get(labelKey(labels))?.value ?? 0;
  }

  private entry(name: string, labels: Labels) {
    const series = this.series.get(name);
    if (!series) throw new Error(`unknown metric ${name}`);
    const key = labelKey(labels);
    let entry = series.values.get(key);
    if (!entry) series.values.set(key, (entry = { labels, value: 0 }));
    return entry;
  }

  /** Prometheus text exposition format (version 0.0.4). */
  render(): string {
    const lines: string[] = [];
    for (const [name, series] of this.series) {
      lines.push(`# HELP ${name} ${series.help}`, `# TYPE ${name} ${series.type}`);
      for (const { labels, value } of series.values.values()) {
        const text = Object.entries(labels)
          .map(([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`)
          .join(',');
        lines.push(`${name}${text ? `{${text}}` : ''} ${Number.isFinite(value) ? value : 0}`);
      }
    }
    return `${lines.join('\n')}\n`;
  }

  /** A flat summary for the periodic log line: `{ "settle_watcher_signals_total{kind=included,network=chainA}": 3 }`. */
  snapshot(): Record<string, number> {
    const flat: Record<string, number> = {};
    for (const [name, series] of this.series) {
      for (const { labels, value } of series.values.values()) {
        const text = Object.entries(labels)
          .sort(([a], [b]) => (a < b ? -1 : 1))
          .map(([k, v]) => `${k}=${v}`)
          .join(',');
        flat[text ? `${name}{${text}}` : name] = Math.round(value * 1000) / 1000;
      }
    }
    return flat;
  }
}

export interface MetricsServer {
  port: number;
  close(): Promise<void>;
}

/** Serves `GET /metrics` on host:port (127.0.0.1 unless configured otherwise). */
export async function serveMetrics(metrics: WatcherMetrics, host: string, port: number): Promise<MetricsServer> {
  const server = http.createServer((request, response) => {
    if (request.method === 'GET' && (request.url === '/metrics' || request.url === '/')) {
      response.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' });
      response.end(metrics.render());
    } else {
      response.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
