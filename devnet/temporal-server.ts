/**
 * The embedded default Temporal server: `temporal server start-dev` on 127.0.0.1 with SQLite state that survives
 * restarts, the Web UI, and Settle's search attributes registered.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { z } from 'zod';
import { SEARCH_ATTRIBUTE_FLAGS } from '../contract/search-attributes';
import { ensureTemporalCli } from './temporal-cli';

export const TemporalServerConfigSchema = z.object({
  SETTLE_TEMPORAL_IP: z.string().default('127.0.0.1'),
  SETTLE_TEMPORAL_PORT: z.string().regex(/^\d+$/, 'must be a port number').default('7233').transform(Number),
  SETTLE_TEMPORAL_UI_PORT: z.string().regex(/^\d+$/, 'must be a port number').default('8233').transform(Number),
  SETTLE_STATE_DIR: z.string().default('.settle'),
  TEMPORAL_NAMESPACE: z.string().default('default'),
});
export type TemporalServerConfig = z.infer<typeof TemporalServerConfigSchema>;

export interface TemporalServer {
  address: string;
  uiUrl: string;
  process: ChildProcess;
  stop(): Promise<void>;
}

export async function startTemporalServer(
  config: TemporalServerConfig,
  options: { stdio?: 'inherit' | 'ignore' } = {},
): Promise<TemporalServer> {
  const bin = await ensureTemporalCli();
  mkdirSync(config.SETTLE_STATE_DIR, { recursive: true });
  const dbFilename = path.resolve(config.SETTLE_STATE_DIR, 'temporal.db');
  const args = [
    'server',
    'start-dev',
    '--ip',
    config.SETTLE_TEMPORAL_IP,
    '--port',
    String(config.SETTLE_TEMPORAL_PORT),
    '--ui-port',
    String(config.SETTLE_TEMPORAL_UI_PORT),
    '--db-filename',
    dbFilename,
    '--namespace',
    config.TEMPORAL_NAMESPACE,
    '--log-level',
    'warn',
    ...SEARCH_ATTRIBUTE_FLAGS.flatMap((flag) => ['--search-attribute', flag]),
  ];
  const child = spawn(bin, args, { stdio: ['ignore', options.stdio ?? 'inherit', options.stdio ?? 'inherit'] });
  const address = `${config.SETTLE_TEMPORAL_IP}:${config.SETTLE_TEMPORAL_PORT}`;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await Promise.race([
    waitForPort(config.SETTLE_TEMPORAL_IP, config.SETTLE_TEMPORAL_PORT, 60_000),
    exited.then(() => {
      throw new Error(`temporal server exited with code ${child.exitCode} before listening on ${address}`);
    }),
  ]);
  return {
    address,
    uiUrl: `http://${config.SETTLE_TEMPORAL_IP}:${config.SETTLE_TEMPORAL_UI_PORT}`,
    process: child,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

export async function waitForPort(host: string, port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = net.connect({ host, port }, () => {
        socket.destroy();
        resolve(true);
      });
      socket.on('error', () => resolve(false));
    });
    if (open) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on ${host}:${port} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

if (require.main === module) {
  const config = TemporalServerConfigSchema.parse(process.env);
  startTemporalServer(config)
    .then((server) => {
      process.stdout.write(
        `Temporal server on ${server.address}; Web UI: ${server.uiUrl} (state in ${config.SETTLE_STATE_DIR})\n`,
      );
      const stop = () => void server.stop().then(() => process.exit(0));
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      server.process.once('exit', (code) => process.exit(code ?? 0));
    })
    .catch((error: Error) => {
      process.stderr.write(`${error.message}\n`);
      process.exit(1);
    });
}
