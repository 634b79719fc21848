/**
 * `npm run worker`: runs crossNetworkAction workflows and their activities on SETTLE_TASK_QUEUE, and the nonce owners
 * (`signerNonces`) on SETTLE_NONCE_TASK_QUEUE with a second Worker on the same connection, so that a backlog of action
 * tasks does not hold up the updates every submission makes. With webhooks configured, another Worker delivers push
 * notifications on `<SETTLE_TASK_QUEUE>-notify`, so that a slow receiver never delays a submission. Starts even when no
 * chain is reachable: plans made only of `await` steps need none.
 */
import { bundleWorkflowCode, DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { createActivities, servedTaskQueues, type ActivityDeps } from '../../activities';
import { notificationTaskQueue } from '../../contract/activity-io';
import { workflowBundleOptions } from './bundle';
import { parseWorkerConfig, type WorkerConfig } from './config';
import { loadNetworks } from '../../networks/load';
import { webhookDeps } from '../../networks/webhook/config';
import { createWebhookActivities } from '../../networks/webhook/sender';
import { scrapeText, serveMetrics, type MetricsServer } from '../observability';
import { coreMetricsOptions, WORKFLOW_METRICS_MODULE, WorkerMetrics } from './metrics';
import { freeLoopbackPort } from './free-port';

export interface RunningWorker {
  worker: Worker;
  /** The nonce owners' Worker (absent when they share SETTLE_TASK_QUEUE). */
  nonceWorker?: Worker;
  /** Push notification deliveries, on `<SETTLE_TASK_QUEUE>-notify` (absent without webhooks). */
  notifyWorker?: Worker;
  /** With routing by network: one activity Worker per network this worker holds and may send on. */
  networkWorkers: Worker[];
  /** The metrics endpoint (SETTLE_WORKER_METRICS_PORT), when configured. */
  metricsServer?: MetricsServer;
  done: Promise<void>;
  shutdown(): Promise<void>;
}

export interface StartWorkerOptions {
  /** Temporal Core's Prometheus exporter (see `coreMetricsOptions`), served on the worker's metrics endpoint. */
  coreMetricsUrl?: string;
}

export async function startWorker(
  config: WorkerConfig,
  deps?: ActivityDeps,
  options: StartWorkerOptions = {},
): Promise<RunningWorker> {
  // The networks file (and every signer's key) is checked before anything connects: a config error comes first.
  const networks = deps ?? (await loadNetworks(config));
  const webhook = webhookDeps(config);
  const metrics = config.SETTLE_WORKER_METRICS_PORT === undefined ? undefined : new WorkerMetrics();
  const connection = await NativeConnection.connect(config.temporalConnection);
  const base = {
    connection,
    namespace: config.TEMPORAL_NAMESPACE,
    ...(config.dataConverter ? { dataConverter: config.dataConverter } : {}),
    ...(metrics ? { interceptors: { activity: [metrics.activityInterceptor] }, sinks: metrics.sinks } : {}),
  };
  let metricsServer: MetricsServer | undefined;
  try {
    const workflowBundle = await bundleWorkflowCode({
      ...workflowBundleOptions,
      // Sink calls only: the interceptor adds no command, so histories replay with or without it.
      ...(metrics ? { workflowInterceptorModules: [WORKFLOW_METRICS_MODULE] } : {}),
      ...(config.dataConverter?.failureConverterPath
        ? { failureConverterPath: config.dataConverter.failureConverterPath }
        : {}),
    });
    const routeByNetwork = (config.SETTLE_ROUTE_BY_NETWORK ?? 'true') === 'true';
    const activityDeps: ActivityDeps = {
      ...networks,
      routeByNetwork,
      // deliverNotification stays on the action's queue too: runs from before the notification queue deliver there.
      ...(webhook ? { webhook } : {}),
    };
    const activities = createActivities(activityDeps);
    const worker = await Worker.create({
      ...base,
      taskQueue: config.SETTLE_TASK_QUEUE,
      workflowBundle,
      activities,
      ...(config.SETTLE_WORKER_MAX_CACHED_WORKFLOWS === undefined
        ? {}
        : { maxCachedWorkflows: config.SETTLE_WORKER_MAX_CACHED_WORKFLOWS }),
    });
    // Activities only: a network's submissions and checks reach a worker that holds it.
    const networkWorkers = routeByNetwork
      ? await Promise.all(
          servedTaskQueues(activityDeps, config.SETTLE_TASK_QUEUE).map((taskQueue) =>
            Worker.create({ ...base, taskQueue, activities }),
          ),
        )
      : [];
    // The owners are workflows only: no activities on their queue.
    const nonceWorker =
      config.SETTLE_NONCE_TASK_QUEUE !== config.SETTLE_TASK_QUEUE
        ? await Worker.create({ ...base, taskQueue: config.SETTLE_NONCE_TASK_QUEUE, workflowBundle })
        : undefined;
    // Deliveries only, polled only by workers that can sign them: a slow receiver holds none of the action's slots.
    const notifyWorker = webhook
      ? await Worker.create({
          ...base,
          taskQueue: notificationTaskQueue(config.SETTLE_TASK_QUEUE),
          activities: createWebhookActivities(webhook),
        })
      : undefined;
    const workers = [
      worker,
      ...(nonceWorker ? [nonceWorker] : []),
      ...(notifyWorker ? [notifyWorker] : []),
      ...networkWorkers,
    ];
    if (metrics) {
      metricsServer = await serveMetrics(
        metrics.registry,
        config.SETTLE_WORKER_METRICS_HOST,
        config.SETTLE_WORKER_METRICS_PORT!,
        options.coreMetricsUrl ? [scrapeText(options.coreMetricsUrl)] : [],
      );
    }
    const server = metricsServer;
    const done = Promise.all(
      // One stopping (a fatal error, or the SDK's own SIGINT/SIGTERM handling) stops the other.
      workers.map((w) => w.run().finally(() => workers.forEach(stop))),
    )
      .then(() => undefined)
      .finally(() => Promise.all([connection.close(), server?.close()]));
    return {
      worker,
      ...(nonceWorker ? { nonceWorker } : {}),
      ...(notifyWorker ? { notifyWorker } : {}),
      networkWorkers,
      ...(server ? { metricsServer: server } : {}),
      done,
      async shutdown() {
        workers.forEach(stop);
        await done;
      },
    };
  } catch (error) {
    await Promise.all([connection.close(), metricsServer?.close()]);
    throw error;
  }
}

function stop(worker: Worker): void {
  if (worker.getState() === 'RUNNING') worker.shutdown();
}

if (require.main === module) {
  const config = parseWorkerConfig(process.env);
  // With metrics on, Core exports Temporal's runtime metrics on a private loopback port the worker's endpoint serves.
  (config.SETTLE_WORKER_METRICS_PORT === undefined ? Promise.resolve(undefined) : freeLoopbackPort())
    .then((corePort) => {
      const core = corePort === undefined ? undefined : `127.0.0.1:${corePort}`;
      Runtime.install({
        logger: new DefaultLogger(config.SETTLE_LOG_LEVEL),
        ...(core ? { telemetryOptions: coreMetricsOptions(core) } : {}),
      });
      return startWorker(config, undefined, core ? { coreMetricsUrl: `http://${core}/metrics` } : {});
    })
    .then((running) => {
      process.stdout.write(
        `settle worker: task queue "${config.SETTLE_TASK_QUEUE}", nonce owners on "${config.SETTLE_NONCE_TASK_QUEUE}", ` +
          `on ${config.TEMPORAL_ADDRESS} (${config.TEMPORAL_NAMESPACE})` +
          `${running.metricsServer ? `; metrics on ${running.metricsServer.url}` : ''}\n`,
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
