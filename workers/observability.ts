/**
 * What every Settle process shares for metrics: the env keys of its endpoint (zod), and one `GET /metrics` HTTP
 * endpoint that serves a prom-client registry, followed by any other Prometheus text the process holds (the worker's
 * Temporal runtime metrics).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { z } from 'zod';

/** A TCP port for a metrics endpoint; `0` picks a free one (the process prints which). */
export const MetricsPortSchema = z
  .string()
  .regex(/^\d+$/, 'must be a TCP port number (0 picks a free one)')
  .transform(Number)
  .pipe(z.number().int().max(65_535, 'must be a TCP port from 0 to 65535'));

/** The interface a metrics endpoint binds: loopback unless deliberately exposed. */
export const MetricsHostSchema = z.string().min(1).default('127.0.0.1');

export interface MetricsServer {
  port: number;
  /** `http://host:port/metrics` */
  url: string;
  close(): Promise<void>;
}

/** A source of Prometheus text besides the registry; a failing source is left out of that scrape, not fatal. */
export type MetricsText = () => Promise<string>;

/**
 * Serves `GET /metrics` on host:port: the registry, then `extra` sources in order.
 *
 * @example const server = await serveMetrics(registry, '127.0.0.1', 0); console.log(server.url);
 */
export async function serveMetrics(
  registry: Registry,
  host: string,
  port: number,
  extra: MetricsText[] = [],
): Promise<MetricsServer> {
  const server = http.createServer((request, response) => {
    if (request.method !== 'GET' || (request.url !== '/metrics' && request.url !== '/')) {
      response.writeHead(404).end();
      return;
    }
    void render(registry, extra).then(
      (text) => {
        response.writeHead(200, { 'content-type': registry.contentType });
        response.end(text);
      },
      (error: Error) => {
        response.writeHead(500, { 'content-type': 'text/plain' });
        response.end(`metrics: ${error.message}\n`);
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const bound = (server.address() as AddressInfo).port;
  return {
    port: bound,
    url: `http://${host.includes(':') ? `[${host}]` : host}:${bound}/metrics`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

async function render(registry: Registry, extra: MetricsText[]): Promise<string> {
  const parts = [await registry.metrics()];
  for (const source of extra) {
    const text = await source().catch(() => '');
    if (text) parts.push(text.endsWith('\n') ? text : `${text}\n`);
  }
  return parts.map((part) => (part.endsWith('\n') ? part : `${part}\n`)).join('');
}

/**
 * Prometheus text scraped from another endpoint of this process (Temporal Core's exporter on a private loopback port),
 * so that the process still has one endpoint.
 */
export function scrapeText(url: string, timeoutMs = 2_000): MetricsText {
  return async () => {
    const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
    return response.text();
  };
}

/**
 * A label value bounded in length and in how many distinct values one label may take (a misbehaving sender must not
 * grow the registry without bound): past `max`, new values read `other`.
 */
export class BoundedLabel {
  private readonly seen = new Set<string>();
  constructor(private readonly max = 100) {}

  of(value: unknown): string {
    const text = typeof value === 'string' && value ? value.slice(0, 80) : 'unknown';
    if (this.seen.has(text)) return text;
    if (this.seen.size >= this.max) return 'other';
    this.seen.add(text);
    return text;
  }
}
