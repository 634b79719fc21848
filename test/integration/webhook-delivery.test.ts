import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { MockActivityEnvironment, type TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { createWebhookActivities, WebhookDeliveryError, type Notification } from '../../activities/webhook';
import { newTransitions, SettleClient, START_CURSOR, verifyNotification, type TransitionEvent } from '../../client';
import { createTestWorker, startTestServer, uniqueId } from '../support/temporal';
import { closeSignal, transitionSignal } from './webhook-outbox-workflow';

const SECRET = 'webhook-secret-0123456789';

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
  const { deliverNotification } = createWebhookActivities({ secret: SECRET, timeoutMs: 2_000 });
  const activity = new MockActivityEnvironment();
  beforeAll(async () => {
    url = `http://127.0.0.1:${await receiver.listen()}/hooks/settle?token=abc`;
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

  it('throws on a non-2xx answer so that Temporal retries, without the URL (it may hold a token)', async () => {
    receiver.failNext = 1;
    const error = await activity
      .run(deliverNotification, { url, actionId: 'a-1', sequence: 2, event: event(2, 'final') })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WebhookDeliveryError);
    expect((error as Error).message).toMatch(/^webhook 127\.0\.0\.1:\d+ answered 503 for a-1:2$/);
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
    const forged = createWebhookActivities({ secret: 'someone-else-entirely' });
    await expect(
      activity.run(forged.deliverNotification, { url, actionId: 'a-1', sequence: 9, event: event(9, 'x') }),
    ).rejects.toThrow('answered 401');
  });
});

describe('delivery through Temporal: an outbox, one at a time, retried with backoff', () => {
  let env: TestWorkflowEnvironment;
  beforeAll(async () => {
    env = await startTestServer();
  });
  afterAll(async () => {
    await env?.teardown();
  });

  it('delivers every transition of an action in order, including after the receiver was down for a while', async () => {
    // The transitions of a real action, run to completion on the real workflow.
    const actionWorker = await createTestWorker(env, { networks: {}, adapters: {} });
    const settle = new SettleClient(env.client, actionWorker.options.taskQueue);
    const actionId = uniqueId('notified');
    const final = await actionWorker.runUntil(async () => {
      await settle.start({
        actionId,
        steps: [
          { id: 'attest', network: 'attester', operation: { kind: 'await' } },
          { id: 'pay', network: 'bank', operation: { kind: 'await' }, after: [{ step: 'attest' }] },
        ],
      });
      await settle.evidence(actionId, {
        step: 'attest',
        kind: 'included',
        ref: '0x0a',
        block: { number: '1', hash: '0x01' },
        source: 'w',
      });
      await settle.evidence(actionId, {
        step: 'attest',
        kind: 'finalized',
        ref: '0x0a',
        block: { number: '1', hash: '0x01' },
        source: 'w',
      });
      await settle.evidence(actionId, { step: 'pay', kind: 'finalized', source: 'w' });
      return settle.waitFor(actionId, { phase: 'completed' }, { pollIntervalMs: 100 });
    });
    const transitions = newTransitions(final, START_CURSOR, 0).events;
    expect(transitions.length).toBe(4);

    // The receiver is down when the transitions are queued.
    const receiver = new Receiver();
    const port = await receiver.listen();
    await receiver.close();

    const taskQueue = uniqueId('outbox');
    const worker = await Worker.create({
      connection: env.nativeConnection,
      taskQueue,
      workflowsPath: path.resolve(__dirname, 'webhook-outbox-workflow.ts'),
      activities: createWebhookActivities({
        secret: SECRET,
        defaultUrl: `http://127.0.0.1:${port}/settle`,
        timeoutMs: 1_000,
      }),
    });
    const delivered = await worker.runUntil(async () => {
      const handle = await env.client.workflow.start('notificationOutbox', {
        taskQueue,
        workflowId: uniqueId('outbox'),
        args: [{ actionId }],
      });
      for (const { sequence: _sequence, ...transition } of transitions)
        await handle.signal(transitionSignal, transition);
      await new Promise((r) => setTimeout(r, 2_500));
      expect(receiver.processed).toEqual([]);
      // Back up, and still flaky for a moment.
      receiver.failNext = 2;
      await receiver.listen(port);
      await handle.signal(closeSignal);
      return handle.result();
    });
    await receiver.close();

    expect(delivered).toEqual([1, 2, 3, 4]);
    expect(receiver.processed.map((n) => n.id)).toEqual([1, 2, 3, 4].map((s) => `${actionId}:${s}`));
    expect(receiver.processed.map((n) => n.event)).toEqual(transitions);
    expect(receiver.attempts.slice(0, 2)).toEqual([
      { key: `${actionId}:1`, status: 503 },
      { key: `${actionId}:1`, status: 503 },
    ]);
    // One at a time: no attempt for a later transition before the earlier one was accepted.
    const attempted = receiver.attempts.map((a) => Number(a.key.split(':').at(-1)));
    expect(attempted).toEqual([...attempted].sort((x, y) => x - y));
    expect(receiver.attempts.filter((a) => a.status === 200).map((a) => a.key)).toEqual(
      [1, 2, 3, 4].map((s) => `${actionId}:${s}`),
    );
  });
});
