/**
 * `npm start`: the embedded default stack in one command: a Temporal dev server with the Web UI (state in
 * .settle/), and a worker. Ctrl-C stops every process it started.
 */
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { startTemporalServer, TemporalServerConfigSchema } from '../devnet/temporal-server';
import { parseWorkerConfig } from './config';
import { startWorker } from './worker';

async function main(): Promise<void> {
  const serverConfig = TemporalServerConfigSchema.parse(process.env);
  const address = `${serverConfig.SETTLE_TEMPORAL_IP}:${serverConfig.SETTLE_TEMPORAL_PORT}`;
  const config = parseWorkerConfig({ ...process.env, TEMPORAL_ADDRESS: address });
  Runtime.install({ logger: new DefaultLogger('WARN') });

  process.stdout.write('settle: starting the Temporal dev server…\n');
  const server = await startTemporalServer(serverConfig, { stdio: 'ignore' });
  const stops: (() => Promise<void>)[] = [() => server.stop()];
  let stopping = false;
  const stopAll = async (code: number) => {
    if (stopping) return;
    stopping = true;
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
    process.exit(code);
  };
  process.once('SIGINT', () => void stopAll(0));
  process.once('SIGTERM', () => void stopAll(0));
  server.process.once('exit', () => void stopAll(stopping ? 0 : 1));

  try {
    const worker = await startWorker(config);
    stops.push(() => worker.shutdown());
    process.stdout.write(
      [
        `settle: Temporal server on ${server.address} (state in ${serverConfig.SETTLE_STATE_DIR}/)`,
        `settle: Web UI: ${server.uiUrl}/namespaces/${config.TEMPORAL_NAMESPACE}/workflows`,
        `settle: worker on task queue "${config.SETTLE_TASK_QUEUE}"; Ctrl-C stops everything`,
        '',
      ].join('\n'),
    );
    await worker.done;
  } catch (error) {
    process.stderr.write(`settle: ${(error as Error).message}\n`);
    await stopAll(1);
  }
}

void main();
