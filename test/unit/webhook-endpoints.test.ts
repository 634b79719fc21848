import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { ConfigError } from '../../networks/config';
import { loadWebhookEndpoints, WebhookConfigSchema, webhookDeps } from '../../networks/webhook/config';
import { createWebhookActivities } from '../../networks/webhook/sender';
import { verifyNotification } from '../../networks/webhook/signature';
import { redactUrl, resolveTarget, urlCredentials } from '../../networks/webhook/target';
import type { PostRequest, Transport } from '../../networks/webhook/transport';
import type { TransitionEvent } from '../../client';

const DEPLOYMENT_SECRET = 'deployment-secret-0123';
const PARTNER_SECRET = 'partner-a-secret-01234';
const endpoints = new Map([
  ['partner-a', { url: 'https://partner.example/in/k3y-in-path?token=t0k', secret: PARTNER_SECRET }],
]);

const event: TransitionEvent = {
  actionId: 'a-1',
  sequence: 1,
  kind: 'phase',
  from: 'running',
  to: 'completed',
  at: '2026-11-26T10:00:00.000Z',
  source: 'test',
};

function failureOf(run: () => unknown): ApplicationFailure {
  try {
    run();
  } catch (error) {
    return error as ApplicationFailure;
  }
  throw new Error('did not throw');
}

describe('which receiver a notification goes to', () => {
  const sources = { secret: DEPLOYMENT_SECRET, defaultUrl: 'https://hooks.example/default/s3cret', endpoints };

  it('names a configured endpoint: its URL and its own secret, labelled without path or query', () => {
    const target = resolveTarget('partner-a', sources)!;
    expect(target.url.href).toBe('https://partner.example/in/k3y-in-path?token=t0k');
    expect(target.secret).toBe(PARTNER_SECRET);
    expect(target.label).toBe('endpoint "partner-a" (https://partner.example)');
  });

  it('falls back to the deployment URL with the deployment secret, and to nothing without one', () => {
    expect(resolveTarget(undefined, sources)).toMatchObject({
      secret: DEPLOYMENT_SECRET,
      label: 'SETTLE_WEBHOOK_URL (https://hooks.example)',
    });
    expect(resolveTarget(undefined, { secret: DEPLOYMENT_SECRET })).toBeUndefined();
  });

  it('accepts a raw URL for compatibility, labelled scheme://host/path', () => {
    const target = resolveTarget('https://hooks.example/settle?tenant=7', sources)!;
    expect(target).toMatchObject({
      secret: DEPLOYMENT_SECRET,
      label: 'https://hooks.example/settle',
      fromAction: true,
    });
  });

  it('refuses an unknown endpoint, a non-http URL, and a raw URL without a deployment secret to sign it', () => {
    expect(failureOf(() => resolveTarget('partner-b', sources))).toMatchObject({
      type: 'InvalidWebhook',
      nonRetryable: true,
      message: 'webhook endpoint "partner-b" is not configured on this worker',
    });
    expect(failureOf(() => resolveTarget('ftp://files.example/x', sources)).message).toBe(
      'the webhook is not an http(s) URL',
    );
    expect(failureOf(() => resolveTarget('https://hooks.example/x', { endpoints })).message).toMatch(
      /^this worker has no SETTLE_WEBHOOK_SECRET/,
    );
  });

  it.each([
    ['https://user:hunter2@hooks.example/settle', 'credentials (user info before "@")'],
    ['https://hooks.example/settle?token=hunter2', 'a query parameter "token"'],
    ['https://hooks.example/settle?access_token=hunter2', 'a query parameter "access_token"'],
    ['https://hooks.example/settle?X-Api-Key=hunter2', 'a query parameter "X-Api-Key"'],
    ['https://hooks.example/settle?sig=hunter2', 'a query parameter "sig"'],
  ])('refuses the raw URL %s, which carries %s, and never repeats the credential', (url, what) => {
    const failure = failureOf(() => resolveTarget(url, sources));
    expect(failure).toMatchObject({ type: 'InvalidWebhook', nonRetryable: true });
    expect(failure.message).toBe(
      `the webhook https://hooks.example/settle carries ${what}, which would be kept in workflow history: ` +
        'name an endpoint of SETTLE_WEBHOOK_ENDPOINTS instead',
    );
    expect(failure.message).not.toContain('hunter2');
  });

  it('redacts URLs to scheme://host/path, and finds no credential in a plain query', () => {
    expect(redactUrl('https://u:p@hooks.example:8443/a/b?token=x#frag')).toBe('https://hooks.example:8443/a/b');
    expect(redactUrl('not a url')).toBe('(not a URL)');
    expect(urlCredentials(new URL('https://hooks.example/a?page=2&tenant=7'))).toBeUndefined();
  });
});

describe('a delivery to a named endpoint', () => {
  it('is signed with the endpoint secret (the deployment secret does not verify it)', async () => {
    const requests: PostRequest[] = [];
    const transport: Transport = async (request) => {
      requests.push(request);
      return { status: 200, bodyBytes: 0, truncated: false, socketBytes: 0 };
    };
    const { deliverNotification } = createWebhookActivities({
      secret: DEPLOYMENT_SECRET,
      endpoints,
      resolve: async () => [{ address: '93.184.216.34', family: 4 }],
      transport,
    });
    const result = await new MockActivityEnvironment().run(deliverNotification, {
      url: 'partner-a',
      actionId: 'a-1',
      sequence: 1,
      event,
    });
    expect(result).toEqual({ delivered: true, status: 200 });
    const [request] = requests;
    expect(request.url.href).toBe('https://partner.example/in/k3y-in-path?token=t0k');
    const received = { secret: PARTNER_SECRET, headers: request.headers, body: request.body };
    expect(verifyNotification(received).idempotencyKey).toBe('a-1:1');
    expect(() => verifyNotification({ ...received, secret: DEPLOYMENT_SECRET })).toThrow('invalid signature: mismatch');
  });
});

describe('webhook configuration', () => {
  const inline = JSON.stringify({ 'partner-a': { url: 'https://partner.example/in', secret: PARTNER_SECRET } });

  it('reads endpoints inline, and builds the deps with the allowed hosts', () => {
    const config = WebhookConfigSchema.parse({
      SETTLE_WEBHOOK_ENDPOINTS: inline,
      SETTLE_WEBHOOK_ALLOW_HOSTS: 'localhost, 127.0.0.1,10.20.0.0/16',
    });
    expect(webhookDeps(config)).toEqual({
      endpoints: new Map([['partner-a', { url: 'https://partner.example/in', secret: PARTNER_SECRET }]]),
      allowHosts: ['localhost', '127.0.0.1', '10.20.0.0/16'],
    });
    expect(webhookDeps(WebhookConfigSchema.parse({}))).toBeUndefined();
  });

  it('refuses a bad allow-list entry, a default URL without a secret, and endpoints that break the rules', () => {
    expect(WebhookConfigSchema.safeParse({ SETTLE_WEBHOOK_ALLOW_HOSTS: '10.0.0.0/40' }).success).toBe(false);
    expect(() => webhookDeps(WebhookConfigSchema.parse({ SETTLE_WEBHOOK_URL: 'https://h.example/' }))).toThrow(
      'SETTLE_WEBHOOK_SECRET: required with SETTLE_WEBHOOK_URL',
    );
    const bad = JSON.stringify({ 'has space': { url: 'ftp://x', secret: 'short-hunter2' } });
    const error = (() => {
      try {
        loadWebhookEndpoints(bad);
      } catch (e) {
        return e as Error;
      }
    })();
    expect(error).toBeInstanceOf(ConfigError);
    expect(error?.message).not.toContain('hunter2');
    expect(() => loadWebhookEndpoints('{"partner-a": {"url": "https://x", "secret": "hunter2')).toThrow(
      'SETTLE_WEBHOOK_ENDPOINTS: invalid webhook endpoints:\n(root): must be a JSON object of names to { url, secret }',
    );
  });

  it('reads endpoints from a file only its owner may use, and refuses one others may read', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'settle-endpoints-'));
    const file = path.join(dir, 'endpoints.json');
    writeFileSync(file, inline);
    chmodSync(file, 0o600);
    expect([...loadWebhookEndpoints(file).keys()]).toEqual(['partner-a']);
    chmodSync(file, 0o644);
    expect(() => loadWebhookEndpoints(file)).toThrow(/mode 644\): chmod 600 it$/);
    expect(() => loadWebhookEndpoints(path.join(dir, 'missing.json'))).toThrow('(ENOENT)');
  });
});
