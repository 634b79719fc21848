import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { Runtime, DefaultLogger, Worker, type WorkerOptions } from '@temporalio/worker';
import { createActivities, type ActivityDeps } from '../../activities';
import { SETTLE_SEARCH_ATTRIBUTES } from '../../contract/search-attributes';

let runtimeInstalled = false;

/** A real Temporal dev server from the resolved CLI, on a free 127.0.0.1 port, with Settle's search attributes. */
export async function startTestServer(): Promise<TestWorkflowEnvironment> {
  if (!runtimeInstalled) {
    Runtime.install({ logger: new DefaultLogger('WARN') });
    runtimeInstalled = true;
  }
  const executable = process.env.SETTLE_TEST_TEMPORAL_CLI;
  if (!executable) throw new Error('SETTLE_TEST_TEMPORAL_CLI is not set: run the tests through jest (globalSetup)');
  return TestWorkflowEnvironment.createLocal({
    server: {
      executable: { type: 'existing-path', path: executable },
      ip: '127.0.0.1',
      searchAttributes: SETTLE_SEARCH_ATTRIBUTES,
      extraArgs: ['--log-level', 'error'],
    },
  });
}

/**
 * Temporal's time-skipping test server (Java; `devnet/time-skipping-server.ts`), on a free 127.0.0.1 port, with
 * Settle's search attributes: timers of days fire in seconds. No visibility list API, no updates to speak of: tests on
 * it drive actions by signals and queries.
 */
export async function startTimeSkippingServer(): Promise<TestWorkflowEnvironment> {
  if (!runtimeInstalled) {
    Runtime.install({ logger: new DefaultLogger('WARN') });
    runtimeInstalled = true;
  }
  const executable = process.env.SETTLE_TEST_TIME_SKIPPING_SERVER;
  if (!executable)
    throw new Error('SETTLE_TEST_TIME_SKIPPING_SERVER is not set: run the tests through jest (globalSetup)');
  const env = await TestWorkflowEnvironment.createTimeSkipping({
    server: { executable: { type: 'existing-path', path: executable } },
  });
  const { temporal } = await import('@temporalio/proto');
  const kind = temporal.api.enums.v1.IndexedValueType;
  await env.connection.operatorService.addSearchAttributes({
    namespace: env.namespace ?? 'default',
    searchAttributes: Object.fromEntries(
      SETTLE_SEARCH_ATTRIBUTES.map((key) => [
        key.name,
        key.type === 'KEYWORD_LIST' ? kind.INDEXED_VALUE_TYPE_KEYWORD_LIST : kind.INDEXED_VALUE_TYPE_KEYWORD,
      ]),
    ),
  });
  return env;
}

export const workflowsPath = path.resolve(__dirname, '../../workflows');

let bundle: Promise<{ code: string }> | undefined;
/** The workflow bundle, built once per test file, from the worker's options (shared modules included). */
export function workflowBundle(): Promise<{ code: string }> {
  const { bundleWorkflowCode } = require('@temporalio/worker') as typeof import('@temporalio/worker');
  const { workflowBundleOptions } =
    require('../../workers/worker/bundle') as typeof import('../../workers/worker/bundle');
  bundle ??= bundleWorkflowCode({ ...workflowBundleOptions, logger: new DefaultLogger('WARN') });
  return bundle;
}

export function uniqueId(prefix: string): string {
  return `${prefix}-${randomUUID().slice(0, 8)}`;
}

export async function createTestWorker(
  env: TestWorkflowEnvironment,
  deps: ActivityDeps,
  options: Partial<WorkerOptions> = {},
): Promise<Worker> {
  return Worker.create({
    connection: env.nativeConnection,
    namespace: env.namespace ?? 'default',
    taskQueue: options.taskQueue ?? uniqueId('tq'),
    workflowBundle: await workflowBundle(),
    activities: createActivities(deps),
    ...options,
  });
}
