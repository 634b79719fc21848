import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { MockActivityEnvironment, type TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import {
  createWebhookActivities,
  WebhookDeliveryError,
  type Notification,
  type WebhookDeps,
} from '../../networks/webhook/sender';
import { newTransitions, SettleClient, START_CURSOR, verifyNotification, type TransitionEvent } from '../../client';
import { waitForRetry } from '../support/actions';
import { createTestWorker, startTestServer, uniqueId } from '../support/temporal';

const SECRET = 'webhook-secret-0123456789';
/** The receivers listen on loopback, which a deployment must allow by name. */
const ALLOW_LOOPBACK = ['127.0.0.1'];

/** A webhook receiver as a user would write one: verifies, deduplicates on the idempotency key, records in order. */
class Receiver {
  readonly processed: Notification[] = [];
  readonly attempts: { key: string; status: number }[] = [];
  /** Answer this many requests with 503 before accepting. */
  failNext = 0;
  private server?: Server;
  private readonly seen = new Set<string>();

  async listen(port = 0): Promise<number> {
    this.server = createServer((request, response) => {
      void readBody(request).then((body) => {
        let status = 200;
        try {
          const { idempotencyKey, notification } = verifyNotification<Notification>({
            secret: SECRET,
            headers: request.headers,
            body,
          });
          if (this.failNext > 0) {
            this.failNext--;
            status = 503;
          } else if (!this.seen.has(idempotencyKey)) {
            this.seen.add(idempotencyKey);
            this.processed.push(notification);
          }
          this.attempts.push({ key: idempotencyKey, status });
        } catch {
          status = 401;
        }
        response.writeHead(status).end();
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(port, '127.0.0.1', resolve));
    return (this.server.address() as AddressInfo).port;
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

function readBody(request: IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    let body = '';
    request.on('data', (chunk: Buffer) => (body += chunk.toString()));
    request.on('end', () => resolve(body));
  });
}

function event(sequence: number, to: string): TransitionEvent {
  return {
    actionId: 'a-1',
    sequence,
    kind: 'step',
    step: 'attest',
    network: 'attester',
    from: 'waiting',
    to,
    at: '2026-11-26T10:00:00.000Z',
    source: 'test',
  };
}

describe('deliverNotification against a real HTTP receiver', () => {
  const receiver = new Receiver();
  let url: string;
  const { deliverNotification } = createWebhookActivities({
    secret: SECRET,
    timeoutMs: 2_000,
    allowHosts: ALLOW_LOOPBACK,
  });
  const activity = new MockActivityEnvironment();
  beforeAll(async () => {
    url = `http://127.0.0.1:${await receiver.listen()}/hooks/settle?tenant=7`;
  });
  afterAll(() => receiver.close());

  it('POSTs the transition signed, with the idempotency key, and reports the delivery', async () => {
    const result = await activity.run(deliverNotification, {
      url,
      actionId: 'a-1',
      sequence: 1,
      event: event(1, 'included'),
    });
    expect(result).toEqual({ delivered: true, status: 200 });
    expect(receiver.attempts).toEqual([{ key: 'a-1:1', status: 200 }]);
    expect(receiver.processed).toEqual([{ id: 'a-1:1', actionId: 'a-1', sequence: 1, event: event(1, 'included') }]);
  });

  it('throws on a non-2xx answer so that Temporal retries, naming the URL without its query', async () => {
    receiver.failNext = 1;
    const error = await activity
      .run(deliverNotification, { url, actionId: 'a-1', sequence: 2, event: event(2, 'final') })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WebhookDeliveryError);
    expect((error as Error).message).toMatch(
      /^webhook http:\/\/127\.0\.0\.1:\d+\/hooks\/settle answered 503 for a-1:2$/,
    );
    expect(receiver.processed.map((n) => n.sequence)).toEqual([1]);
  });

  it('throws when the receiver is down, and does nothing without a webhook', async () => {
    const down = new Receiver();
    const port = await down.listen();
    await down.close();
    const error = await activity
      .run(deliverNotification, {
        url: `http://127.0.0.1:${port}/`,
        actionId: 'a-1',
        sequence: 3,
        event: event(3, 'final'),
      })
      .catch((e: unknown) => e);
    expect((error as Error).message).toMatch(/unreachable \(ECONNREFUSED\) for a-1:3$/);
    expect(await activity.run(deliverNotification, { actionId: 'a-1', sequence: 3, event: event(3, 'final') })).toEqual(
      {
        delivered: false,
      },
    );
  });

  it('rejects a signature made with another secret on the receiving side', async () => {
    const forged = createWebhookActivities({ secret: 'someone-else-entirely', allowHosts: ALLOW_LOOPBACK });
    await expect(
      activity.run(forged.deliverNotification, { url, actionId: 'a-1', sequence: 9, event: event(9, 'x') }),
    ).rejects.toThrow('answered 401');
  });

  it('delivers to a named endpoint with its own secret, on a worker that has no deployment secret', async () => {
    const { deliverNotification: toEndpoint } = createWebhookActivities({
      endpoints: new Map([['local-receiver', { url, secret: SECRET }]]),
      allowHosts: ALLOW_LOOPBACK,
    });
    const delivered = await activity.run(toEndpoint, {
      url: 'local-receiver',
      actionId: 'a-1',
      sequence: 10,
      event: event(10, 'final'),
    });
    expect(delivered).toEqual({ delivered: true, status: 200 });
    expect(receiver.processed.map((n) => n.id)).toContain('a-1:10');
  });
});

describe('delivery from a real action: an outbox, one at a time, retried with backoff', () => {
  let env: TestWorkflowEnvironment;
  beforeAll(async () => {
    env = await startTestServer();
  });
  afterAll(async () => {
    await env?.teardown();
  });

  it('pushes every transition of a real action to its webhook, in order, after the receiver was down for a while', async () => {
    const receiver = new Receiver();
    const port = await receiver.listen();
    await receiver.close(); // down while the action runs
    const webhook: WebhookDeps = { secret: SECRET, timeoutMs: 1_000, allowHosts: ALLOW_LOOPBACK };
    const worker = await createTestWorker(env, { networks: {}, adapters: {}, webhook });
    const notifier = await notificationWorker(env, worker.options.taskQueue, webhook);
    const settle = new SettleClient(env.client, worker.options.taskQueue);
    const actionId = uniqueId('pushed');
    const block = { number: '1', hash: '0x01' };
    const final = await runBoth(notifier, worker, async () => {
      await settle.start({
        actionId,
        webhook: `http://127.0.0.1:${port}/settle`,
        steps: [
          { id: 'attest', network: 'attester', operation: { kind: 'await' } },
          { id: 'pay', network: 'bank', operation: { kind: 'await' }, after: [{ step: 'attest' }] },
        ],
      });
      await settle.evidence(actionId, { step: 'attest', kind: 'included', ref: '0x0b', block, source: 'w' });
      await settle.evidence(actionId, { step: 'attest', kind: 'finalized', ref: '0x0b', block, source: 'w' });
      await settle.evidence(actionId, { step: 'pay', kind: 'finalized', source: 'w' });
      // The action completes while its receiver is down: notifications never hold it back.
      const completed = await settle.waitFor(actionId, { phase: 'completed' }, { pollIntervalMs: 100 });
      expect(receiver.processed).toEqual([]);
      const handle = settle.temporal.workflow.getHandle(actionId);
      await waitForRetry(handle, 'deliverNotification');
      await receiver.listen(port);
      // The run closes once its outbox has drained.
      await handle.result();
      // The first notification took several attempts: the receiver really was down.
      const events = (await handle.fetchHistory()).events ?? [];
      const firstDelivery = events.find(
        (e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'deliverNotification',
      );
      const started = events.find(
        (e) =>
          e.activityTaskStartedEventAttributes?.scheduledEventId?.toString() === firstDelivery?.eventId?.toString(),
      );
      expect(started?.activityTaskStartedEventAttributes?.attempt).toBeGreaterThan(1);
      return completed;
    });
    await receiver.close();

    const transitions = newTransitions(final, START_CURSOR, 0).events;
    expect(transitions.map((t) => `${t.step ?? 'phase'}:${t.to}`)).toEqual([
      'attest:included',
      'attest:final',
      'pay:final',
      'phase:completed',
    ]);
    expect(receiver.processed.map((n) => n.id)).toEqual(transitions.map((t) => `${actionId}:${t.sequence}`));
    expect(receiver.processed.map((n) => n.event)).toEqual(transitions);
    // One at a time: no attempt for a later transition before the earlier one was accepted.
    const attempted = receiver.attempts.map((a) => Number(a.key.split(':').at(-1)));
    expect(attempted).toEqual([...attempted].sort((x, y) => x - y));
  });
});

/**
 * A worker for the notification task queue (`<task queue>-notify`), where runs with the exactly-once rules deliver
 * once the workflow routes deliveries there; until then they stay on the action's queue, which serves them too.
 */
async function notificationWorker(
  env: TestWorkflowEnvironment,
  taskQueue: string,
  webhook: WebhookDeps,
): Promise<Worker> {
  return Worker.create({
    connection: env.nativeConnection,
    namespace: env.namespace ?? 'default',
    taskQueue: `${taskQueue}-notify`,
    activities: createWebhookActivities(webhook),
  });
}

function runBoth<T>(notifier: Worker, worker: Worker, body: () => Promise<T>): Promise<T> {
  return notifier.runUntil(() => worker.runUntil(body));
}
