/**
 * The webhook sender against real receivers on loopback: where it refuses to go, what it refuses to follow or read,
 * and what the receiver can check. Nothing leaves 127.0.0.1.
 */
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import type { TransitionEvent } from '../../client';
import { createWebhookActivities, WebhookDeliveryError } from '../../networks/webhook/sender';
import { SignatureError, verifyNotification } from '../../networks/webhook/signature';
import { postToWebhook } from '../../networks/webhook/transport';

const SECRET = 'webhook-guards-secret-0123';
const MiB = 1024 * 1024;

interface Received {
  headers: IncomingHttpHeaders;
  body: string;
}

/** A receiver on 127.0.0.1 that records every request and answers with `answer`. */
async function receiver(answer: (response: ServerResponse) => void = (r) => r.writeHead(204).end()) {
  const received: Received[] = [];
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      received.push({ headers: request.headers, body: Buffer.concat(chunks).toString() });
      answer(response);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, received, port: (server.address() as AddressInfo).port };
}

function close(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

const event: TransitionEvent = {
  actionId: 'a-1',
  sequence: 1,
  kind: 'phase',
  from: 'running',
  to: 'completed',
  at: '2026-11-26T10:00:00.000Z',
  source: 'test',
};
const activity = new MockActivityEnvironment();
const deliver = (deps: { allowHosts?: string[]; timeoutMs?: number }, url: string) =>
  activity.run(createWebhookActivities({ secret: SECRET, timeoutMs: 5_000, ...deps }).deliverNotification, {
    url,
    actionId: 'a-1',
    sequence: 1,
    event,
  });

describe('where the sender goes', () => {
  it('refuses 127.0.0.1 and localhost unless the deployment allows them by name; nothing reaches the receiver', async () => {
    const { server, received, port } = await receiver();
    try {
      for (const host of ['127.0.0.1', 'localhost']) {
        const error = await deliver({}, `http://${host}:${port}/hooks`).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(ApplicationFailure);
        expect(error).toMatchObject({ type: 'InvalidWebhook', nonRetryable: true });
        expect((error as Error).message).toContain(`webhook host ${host} resolves to 127.0.0.1 (loopback)`);
      }
      // Allowing one name allows that name only.
      await expect(deliver({ allowHosts: ['localhost'] }, `http://127.0.0.1:${port}/hooks`)).rejects.toThrow(
        '(loopback)',
      );
      expect(received).toHaveLength(0);

      await expect(deliver({ allowHosts: ['127.0.0.1'] }, `http://127.0.0.1:${port}/hooks`)).resolves.toEqual({
        delivered: true,
        status: 204,
      });
      await expect(deliver({ allowHosts: ['localhost'] }, `http://localhost:${port}/hooks`)).resolves.toEqual({
        delivered: true,
        status: 204,
      });
      // Connected to the checked address, still with the URL's own Host header.
      expect(received.map((r) => r.headers.host)).toEqual([`127.0.0.1:${port}`, `localhost:${port}`]);
    } finally {
      await close(server);
    }
  });

  it('refuses a URL with credentials before connecting, and never repeats them', async () => {
    const { server, received, port } = await receiver();
    try {
      for (const url of [
        `http://settle:hunter2@127.0.0.1:${port}/hooks`,
        `http://127.0.0.1:${port}/hooks?token=hunter2`,
      ]) {
        const error = await deliver({ allowHosts: ['127.0.0.1'] }, url).catch((e: unknown) => e);
        expect(error).toMatchObject({ type: 'InvalidWebhook', nonRetryable: true });
        expect((error as Error).message).toContain(`the webhook http://127.0.0.1:${port}/hooks carries`);
        expect((error as Error).message).not.toContain('hunter2');
      }
      expect(received).toHaveLength(0);
    } finally {
      await close(server);
    }
  });

  it('does not follow a redirect: the delivery fails at once, and the redirect target is never contacted', async () => {
    const target = await receiver();
    const redirecting = await receiver((r) =>
      r.writeHead(307, { location: `http://127.0.0.1:${target.port}/elsewhere` }).end(),
    );
    try {
      const error = await deliver(
        { allowHosts: ['127.0.0.1'] },
        `http://127.0.0.1:${redirecting.port}/hooks?tenant=7`,
      ).catch((e: unknown) => e);
      expect(error).toMatchObject({ type: 'InvalidWebhook', nonRetryable: true });
      expect((error as Error).message).toBe(
        `webhook http://127.0.0.1:${redirecting.port}/hooks answered 307 for a-1:1: redirects are not followed, ` +
          'configure the URL it redirects to',
      );
      expect(redirecting.received).toHaveLength(1);
      expect(target.received).toHaveLength(0);
    } finally {
      await close(redirecting.server);
      await close(target.server);
    }
  });

  it('gives up on a receiver that does not answer in time, as a retryable failure without the URL', async () => {
    const silent = await receiver(() => undefined);
    try {
      const error = await deliver(
        { allowHosts: ['127.0.0.1'], timeoutMs: 300 },
        `http://127.0.0.1:${silent.port}/hooks?tenant=7`,
      ).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(WebhookDeliveryError);
      expect((error as Error).message).toBe(
        `webhook http://127.0.0.1:${silent.port}/hooks unreachable (timed out) for a-1:1`,
      );
    } finally {
      await close(silent.server);
    }
  });
});

describe('what the sender reads', () => {
  it('stops reading a 400 MiB answer at the limit and drops the connection', async () => {
    const total = 400 * MiB;
    const served = { written: 0, closedAt: -1 };
    let closed!: () => void;
    const socketClosed = new Promise<void>((resolve) => (closed = resolve));
    const { server, port } = await receiver((response) => {
      response.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(total) });
      response.socket!.on('close', () => {
        served.closedAt = served.written;
        closed();
      });
      const chunk = Buffer.alloc(64 * 1024, 0x61);
      const pump = () => {
        while (served.written < total && !response.destroyed) {
          served.written += chunk.length;
          if (!response.write(chunk)) return void response.once('drain', pump);
        }
      };
      pump();
    });
    try {
      const started = Date.now();
      const result = await postToWebhook({
        url: new URL(`http://127.0.0.1:${port}/hooks`),
        addresses: [{ address: '127.0.0.1', family: 4 }],
        headers: { 'content-type': 'application/json' },
        body: '{}',
        signal: AbortSignal.timeout(10_000),
      });
      await socketClosed;
      expect(result.status).toBe(200);
      expect(result.truncated).toBe(true);
      // The sender's side: at most the 64 KiB limit plus the chunk that crossed it, headers included.
      expect(result.bodyBytes).toBeGreaterThan(64 * 1024);
      expect(result.bodyBytes).toBeLessThanOrEqual(128 * 1024);
      expect(result.socketBytes).toBeLessThan(256 * 1024);
      // The receiver's side: what it had written (mostly into socket buffers) when the sender hung up.
      expect(served.closedAt).toBeLessThan(32 * MiB);
      expect(Date.now() - started).toBeLessThan(5_000);
      console.log(
        `400 MiB answer: the sender read ${result.bodyBytes} body bytes (${result.socketBytes} on the socket); ` +
          `the receiver had written ${(served.closedAt / MiB).toFixed(1)} MiB when the connection closed`,
      );
    } finally {
      await close(server);
    }
  });

  it('counts a 2xx with a huge body as delivered', async () => {
    const { server, port } = await receiver((response) => {
      response.writeHead(200);
      const chunk = Buffer.alloc(MiB);
      const pump = () => {
        while (!response.destroyed) if (!response.write(chunk)) return void response.once('drain', pump);
      };
      pump();
    });
    try {
      await expect(deliver({ allowHosts: ['127.0.0.1'] }, `http://127.0.0.1:${port}/hooks`)).resolves.toEqual({
        delivered: true,
        status: 200,
      });
    } finally {
      await close(server);
    }
  });
});

describe('what the receiver checks', () => {
  it('verifies the v2 signature over the idempotency key, and refuses the same request with the key changed', async () => {
    const { server, received, port } = await receiver();
    try {
      await deliver({ allowHosts: ['127.0.0.1'] }, `http://127.0.0.1:${port}/hooks`);
      const [{ headers, body }] = received;
      expect(headers['settle-signature']).toMatch(/^t=\d+,v1=[0-9a-f]{64},v2=[0-9a-f]{64}$/);
      expect(verifyNotification({ secret: SECRET, headers, body })).toMatchObject({ idempotencyKey: 'a-1:1' });
      const tampered = { ...headers, 'idempotency-key': 'a-1:2' };
      expect(() => verifyNotification({ secret: SECRET, headers: tampered, body })).toThrow(SignatureError);
    } finally {
      await close(server);
    }
  });
});
