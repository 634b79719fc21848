import { recordHistory } from '../support/histories';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { createWebhookActivities, type Notification, type WebhookDeps } from '../../networks/webhook/sender';
import { verifyNotification } from '../../networks/webhook/signature';
import { signal, startAction, waitForRetry, waitForStatus } from '../support/actions';
import { networkInfo, StubAdapter } from '../support/stub-adapter';
import { createTestWorker, startTestServer, uniqueId } from '../support/temporal';

const SECRET = 'notify-secret-0123456789';

/** The receivers listen on loopback, which a deployment must allow by name. */
const WEBHOOK: WebhookDeps = { secret: SECRET, timeoutMs: 2_000, allowHosts: ['127.0.0.1'] };

let env: TestWorkflowEnvironment;
let worker: Worker;
let notifier: Worker;
let running: Promise<unknown>;

beforeAll(async () => {
  env = await startTestServer();
  worker = await createTestWorker(env, {
    networks: { chainA: networkInfo('chainA') },
    adapters: { chainA: new StubAdapter('chainA') },
    webhook: WEBHOOK,
  });
  // Runs with the exactly-once rules deliver on `<task queue>-notify` once the workflow routes them there; until then
  // deliveries stay on the action's queue, which serves them too.
  notifier = await Worker.create({
    connection: env.nativeConnection,
    namespace: env.namespace ?? 'default',
    taskQueue: `${worker.options.taskQueue}-notify`,
    activities: createWebhookActivities(WEBHOOK),
  });
  running = Promise.all([worker.run(), notifier.run()]);
});
afterAll(async () => {
  worker?.shutdown();
  notifier?.shutdown();
  await running;
  await env?.teardown();
});

/** Listens on a port chosen up front, so it can be "down" first and come up later on the same URL. */
async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

function receiver(port: number, received: Notification[]): Promise<Server> {
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (c: Buffer) => chunks.push(c));
    request.on('end', () => {
      try {
        const { idempotencyKey, notification } = verifyNotification<Notification>({
          secret: SECRET,
          headers: request.headers,
          body: Buffer.concat(chunks),
        });
        if (!received.some((n) => n.id === idempotencyKey)) received.push(notification);
        response.writeHead(204).end();
      } catch {
        response.writeHead(401).end();
      }
    });
  });
  return new Promise((resolve) => server.listen(port, '127.0.0.1', () => resolve(server)));
}

it('pushes every transition in order, signed, including those made while the receiver was down', async () => {
  const port = await freePort();
  const actionId = uniqueId('notify');
  const handle = await startAction(env, worker, {
    actionId,
    webhook: `http://127.0.0.1:${port}/hooks/settle`,
    steps: [
      { id: 'attest', network: 'attester', operation: { kind: 'await' } },
      {
        id: 'release',
        network: 'attester',
        operation: { kind: 'await' },
        after: [{ step: 'attest', stage: 'included' }],
      },
    ],
  });
  // The receiver is down while the action moves on: the action does not wait for it.
  await signal(handle, { step: 'attest', kind: 'included', source: 'attester' });
  await signal(handle, { step: 'attest', kind: 'finalized', source: 'attester' });
  await signal(handle, { step: 'release', kind: 'finalized', source: 'attester' });
  await waitForStatus(handle, (s) => s.phase === 'completed');
  // The first delivery failed while the receiver was down, and waits to be tried again.
  await waitForRetry(handle, 'deliverNotification');

  const received: Notification[] = [];
  const server = await receiver(port, received);
  try {
    const result = await handle.result();
    await recordHistory('notifications-delivered.exactly-once', handle);
    expect(result.phase).toBe('completed');
    const expected = [
      ['attest', 'waiting', 'included'],
      ['attest', 'included', 'final'],
      ['release', 'waiting', 'final'],
      ['phase', 'running', 'completed'],
    ];
    expect(received.map((n) => [n.event.step ?? 'phase', n.event.from, n.event.to])).toEqual(expected);
    expect(received.map((n) => n.sequence)).toEqual([1, 2, 3, 4]);
    expect(received.every((n) => n.actionId === actionId && n.id === `${actionId}:${n.sequence}`)).toBe(true);
    // Deliveries were retried while the receiver was down: the first notification needed more than one attempt.
    const history = await handle.fetchHistory();
    const attempts = history.events
      ?.filter((e) => e.activityTaskStartedEventAttributes)
      .map((e) => e.activityTaskStartedEventAttributes!.attempt ?? 1);
    expect(Math.max(...(attempts ?? [1]))).toBeGreaterThan(1);
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
});

it('sends nothing for an action without a webhook', async () => {
  const actionId = uniqueId('quiet');
  const handle = await startAction(env, worker, {
    actionId,
    steps: [{ id: 'attest', network: 'attester', operation: { kind: 'await' } }],
  });
  await signal(handle, { step: 'attest', kind: 'finalized', source: 'attester' });
  await handle.result();
  const history = await handle.fetchHistory();
  expect(history.events?.filter((e) => e.activityTaskScheduledEventAttributes)).toHaveLength(0);
});
