/**
 * `npm run worker`: runs crossNetworkAction workflows and their activities on SETTLE_TASK_QUEUE. Starts even when no
 * chain is reachable: plans made only of `await` steps need none.
 */
import path from 'node:path';
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { createActivities, type ActivityDeps } from '../../activities';
import { parseWorkerConfig, type WorkerConfig } from './config';
import { loadNetworks } from '../../networks/load';

export interface RunningWorker {
  worker: Worker;
  done: Promise<void>;
  shutdown(): Promise<void>;
}

export async function startWorker(config: WorkerConfig, deps?: ActivityDeps): Promise<RunningWorker> {
  // The networks file (and every signer's key) is checked before anything connects: a config error comes first.
  const networks = deps ?? (await loadNetworks(config));
  const connection = await NativeConnection.connect(config.temporalConnection);
  const worker = await Worker.create({
    connection,
    namespace: config.TEMPORAL_NAMESPACE,
    taskQueue: config.SETTLE_TASK_QUEUE,
    workflowsPath: path.resolve(__dirname, '../../workflows'),
    activities: createActivities({
      ...networks,
      ...(config.SETTLE_WEBHOOK_SECRET
        ? { webhook: { secret: config.SETTLE_WEBHOOK_SECRET, defaultUrl: config.SETTLE_WEBHOOK_URL } }
        : {}),
    }),
  });
  const done = worker.run().finally(() => connection.close());
  return {
    worker,
    done,
    async shutdown() {
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await done;
    },
  };
}

if (require.main === module) {
  const config = parseWorkerConfig(process.env);
  Runtime.install({ logger: new DefaultLogger(config.SETTLE_LOG_LEVEL) });
  startWorker(config)
    .then((running) => {
      process.stdout.write(
        `settle worker: task queue "${config.SETTLE_TASK_QUEUE}" on ${config.TEMPORAL_ADDRESS} (${config.TEMPORAL_NAMESPACE})\n`,
      );
      // The SDK shuts the worker down on SIGINT/SIGTERM by itself; exit once it has drained.
      return running.done;
    })
    .then(() => process.exit(0))
    .catch((error: Error) => {
      process.stderr.write(`${error.message}\n`);
      process.exit(1);
    });
}
