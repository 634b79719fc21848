/**
 * Deliveries on their own task queue (`<task queue>-notify`): a receiver that takes its time holds no activity slot
 * that a submission needs.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { notificationTaskQueue } from '../../contract/activity-io';
import { createWebhookActivities, type WebhookDeps } from '../../networks/webhook/sender';
import { evmCall, signal, startAction, stepOf, waitForStatus } from '../support/actions';
import { networkInfo, StubAdapter } from '../support/stub-adapter';
import { createTestWorker, startTestServer, uniqueId } from '../support/temporal';

let env: TestWorkflowEnvironment;
beforeAll(async () => {
  env = await startTestServer();
});
afterAll(async () => {
  await env?.teardown();
});

it('submits a step at once while another action waits on a slow receiver', async () => {
  // A receiver that never answers: each delivery waits out its 20 s limit.
  let requests = 0;
  const server: Server = createServer((request) => {
    requests++;
    request.resume();
    request.on('end', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const webhook: WebhookDeps = { secret: 's'.repeat(20), timeoutMs: 20_000, allowHosts: ['127.0.0.1'] };
  const chainA = new StubAdapter('chainA');
  // One activity slot on the action's queue: a delivery there would hold it for 20 s.
  const worker = await createTestWorker(
    env,
    { networks: { chainA: networkInfo('chainA') }, adapters: { chainA }, webhook },
    { maxConcurrentActivityTaskExecutions: 1 },
  );
  const notifier = await Worker.create({
    connection: env.nativeConnection,
    namespace: env.namespace ?? 'default',
    taskQueue: notificationTaskQueue(worker.options.taskQueue),
    activities: createWebhookActivities(webhook),
    // A delivery still waiting on the receiver at the end is cancelled (it ends its request), not waited for.
    shutdownGraceTime: '500ms',
  });
  try {
    await notifier.runUntil(() =>
      worker.runUntil(async () => {
        const slow = await startAction(env, worker, {
          actionId: uniqueId('slow-receiver'),
          webhook: `http://127.0.0.1:${port}/hooks`,
          steps: [{ id: 'attest', network: 'attester', operation: { kind: 'await' } }],
        });
        await signal(slow, { step: 'attest', kind: 'included', source: 'attester' });
        while (requests === 0) await new Promise((r) => setTimeout(r, 50));

        const started = Date.now();
        const fast = await startAction(env, worker, {
          actionId: uniqueId('submits'),
          steps: [{ id: 'lock', network: 'chainA', operation: evmCall('lock()') }],
        });
        await waitForStatus(
          fast,
          (s) => stepOf(s, 'lock').state !== 'waiting' && stepOf(s, 'lock').state !== 'submitting',
        );
        const elapsed = Date.now() - started;
        console.log(`submitted after ${elapsed} ms`);
        expect(chainA.submissions).toHaveLength(1);
        expect(elapsed).toBeLessThan(5_000);
        const scheduled = (await slow.fetchHistory()).events
          ?.map((e) => e.activityTaskScheduledEventAttributes)
          .filter((a) => a?.activityType?.name === 'deliverNotification')
          .map((a) => a!.taskQueue!.name);
        expect(scheduled).toEqual([notificationTaskQueue(worker.options.taskQueue)]);
        await slow.terminate('test over');
        await fast.terminate('test over');
      }),
    );
  } finally {
    server.closeAllConnections();
    server.close();
  }
});
