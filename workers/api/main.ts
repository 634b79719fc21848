/**
 * `npm run api`: the HTTP API as a process. Configuration from the environment, parsed once (workers/api/config.ts
 * and the standard Temporal variables); refuses to start without credentials; prints the address it listens on and
 * the credentials' names (never their secrets).
 */
import { SettleClient } from '../../client/settle-client';
import { buildApi } from './app';
import { parseApiConfig, type ApiConfig } from './config';
import { serveMetrics, type MetricsServer } from '../observability';
import { ApiMetrics } from './metrics';

async function main(): Promise<void> {
  const config = parseApiConfig(process.env);
  if (config.access.anonymous) {
    process.stderr.write(
      [
        '',
        '  !!! settle api: SETTLE_API_INSECURE_NO_AUTH=1: NO AUTHENTICATION. Anyone who can reach this port can start',
        '  !!! actions (the signers act on them), operate them and post evidence. Every request acts as',
        `  !!! "${config.access.anonymous.name}". For a local demo only; set SETTLE_API_TOKENS for anything else.`,
        '',
        '',
      ].join('\n'),
    );
  }
  const settle = await SettleClient.connect({ env: process.env });
  const app = buildApi({ settle, config });
  const metrics = config.SETTLE_API_METRICS_PORT === undefined ? undefined : new ApiMetrics();
  metrics?.instrument(app);
  const address = await app.listen({ host: config.SETTLE_API_HOST, port: config.SETTLE_API_PORT });
  process.stdout.write(`settle api: listening on ${address}\n`);
  let metricsServer: MetricsServer | undefined;
  const sampler = metrics?.startSampler(settle.temporal, {
    everyMs: config.SETTLE_API_METRICS_REFRESH,
    stuckAfterMs: config.SETTLE_API_METRICS_STUCK_AFTER,
    stuckScanLimit: config.SETTLE_API_METRICS_STUCK_SCAN,
  });
  if (metrics) {
    metricsServer = await serveMetrics(
      metrics.registry,
      config.SETTLE_API_METRICS_HOST,
      config.SETTLE_API_METRICS_PORT!,
    );
    process.stdout.write(`settle api: metrics on ${metricsServer.url}\n`);
  }
  process.stdout.write(`settle api: ${describeAccess(config)}; hosts ${[...config.allowedHosts].join(', ')}\n`);
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    void Promise.all([app.close(), metricsServer?.close(), sampler?.stop()])
      .then(() => settle.close())
      .then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

function describeAccess(config: ApiConfig): string {
  if (config.access.anonymous) return 'credentials: none (insecure)';
  const tokens = config.access.tokens.names().map(({ name, scopes }) => `${name} (${scopes.join(', ')})`);
  const keys = [...config.access.evidenceKeys.keys()];
  return `tokens: ${tokens.join('; ') || 'none'}; evidence keys: ${keys.join(', ') || 'none'}`;
}

main().catch((error: Error) => {
  process.stderr.write(`settle api: ${error.message}\n`);
  process.exit(1);
});
