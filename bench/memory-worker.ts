/**
 * The worker process of `bench:memory`: `settle` runs the production workflows (`workflows/`, the bundle
 * `workers/worker/main.ts` builds, from workers/worker/bundle.ts) with the activities of a worker that has no networks
 * file; BENCH_MEMORY_SHARED=false builds it without its shared modules, as before they existed. `bare` runs
 * bench/workflows. Both with the sticky cache `maxCachedWorkflows` = BENCH_MEMORY_CACHE, or the SDK's default when it is
 * empty (what `npm run worker` runs without SETTLE_WORKER_MAX_CACHED_WORKFLOWS): a worker's memory is its cache, not its
 * pending workflows. Prints `memory worker running (maxCachedWorkflows N)` once polling.
 */
import { bundleWorkflowCode, DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { createActivities } from '../activities';
import { workflowBundleOptions } from '../workers/worker/bundle';
import { BASELINE_TASK_QUEUE } from './support';

async function main(): Promise<void> {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const kind = process.argv[2];
  if (kind !== 'settle' && kind !== 'bare') throw new Error(`usage: memory-worker.ts settle|bare (got ${kind})`);
  const cache = process.env.BENCH_MEMORY_CACHE ? Number(process.env.BENCH_MEMORY_CACHE) : undefined;
  if (cache !== undefined && !(Number.isInteger(cache) && cache >= 0)) {
    throw new Error('BENCH_MEMORY_CACHE must be a whole number (empty: the SDK default)');
  }
  const cacheOption = cache === undefined ? {} : { maxCachedWorkflows: cache };
  const shared = (process.env.BENCH_MEMORY_SHARED ?? 'true') !== 'false';
  const connection = await NativeConnection.connect({ address: process.env.TEMPORAL_ADDRESS });
  const worker = await Worker.create(
    kind === 'settle'
      ? {
          connection,
          taskQueue: process.env.SETTLE_TASK_QUEUE!,
          workflowBundle: await bundleWorkflowCode({
            ...workflowBundleOptions,
            ...(shared ? {} : { preloadModules: [] }),
            logger: new DefaultLogger('WARN'),
          }),
          activities: createActivities({ networks: {}, adapters: {}, routeByNetwork: false }),
          ...cacheOption,
        }
      : {
          connection,
          taskQueue: BASELINE_TASK_QUEUE,
          workflowsPath: require.resolve('./workflows'),
          ...cacheOption,
        },
  );
  const running = worker.run();
  process.stdout.write(`memory worker running (maxCachedWorkflows ${worker.options.maxCachedWorkflows})\n`);
  process.once('SIGTERM', () => worker.shutdown());
  await running;
  await connection.close();
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
