import { resolveClientConfig, ClientConfigError } from '../../client/config';
import { buildApi, type ApiBackend } from '../../workers/api/app';
import { parseApiConfig, ApiConfigError } from '../../workers/api/config';
import { signBody } from '../../networks/webhook/signature';

const failing = new Proxy({} as ApiBackend, {
  get: (_target, name) => async () => {
    throw new Error(`secret internals of ${String(name)}`);
  },
});

function api(env: Record<string, string> = {}, settle: ApiBackend = failing) {
  return buildApi({ settle, config: parseApiConfig({ SETTLE_API_LOG_LEVEL: 'silent', ...env }) });
}

describe('HTTP API edges', () => {
  it('answers 415 for a body that is not JSON, and 413 past the body limit', async () => {
    const app = api({ SETTLE_API_BODY_LIMIT: '64' });
    const text = await app.inject({
      method: 'POST',
      url: '/v1/actions',
      headers: { 'content-type': 'text/plain' },
      payload: 'hi',
    });
    expect(text.statusCode).toBe(415);
    const big = await app.inject({ method: 'POST', url: '/v1/actions', payload: { actionId: 'x'.repeat(100) } });
    expect(big.statusCode).toBe(413);
    await app.close();
  });

  it('keeps operator endpoints and evidence shut when no token or secret is configured', async () => {
    const app = api();
    const retry = await app.inject({
      method: 'POST',
      url: '/v1/actions/x/retry',
      headers: { authorization: 'Bearer anything-at-all-long' },
      payload: { step: 'a', reason: 'b' },
    });
    expect(retry.json()).toEqual({
      error: 'unauthorized',
      reason: 'operator endpoints are disabled: SETTLE_API_TOKEN is not set',
    });
    const body = JSON.stringify({ step: 'a', kind: 'finalized', source: 's' });
    const evidence = await app.inject({
      method: 'POST',
      url: '/v1/actions/x/evidence',
      headers: { 'content-type': 'application/json', 'settle-signature': signBody('whatever-secret-value', body) },
      payload: body,
    });
    expect(evidence.statusCode).toBe(401);
    await app.close();
  });

  it('hides internal errors behind a 500, and answers unknown routes with JSON 404', async () => {
    const app = api();
    const broken = await app.inject({ method: 'GET', url: '/v1/actions/x' });
    expect(broken.statusCode).toBe(500);
    expect(broken.json()).toEqual({ error: 'internal error' });
    const unknown = await app.inject({ method: 'DELETE', url: '/v1/actions/x' });
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json()).toEqual({ error: 'no route DELETE /v1/actions/x' });
    await app.close();
  });
});

describe('configuration', () => {
  it('parses the API keys with defaults: loopback, port 8080, 5 minute signature window', () => {
    expect(parseApiConfig({})).toMatchObject({
      SETTLE_API_HOST: '127.0.0.1',
      SETTLE_API_PORT: 8080,
      SETTLE_SIGNATURE_TOLERANCE: 300_000,
      SETTLE_SSE_POLL_INTERVAL: 500,
    });
    expect(() => parseApiConfig({ SETTLE_API_TOKEN: 'short', SETTLE_API_PORT: 'http' })).toThrow(ApiConfigError);
    expect(() => parseApiConfig({ SETTLE_API_TOKEN: 'short' })).toThrow(
      'SETTLE_API_TOKEN: must be at least 16 characters',
    );
  });

  it("resolves Temporal's standard connection variables, with Settle's defaults", () => {
    const home = { HOME: '/nonexistent', TEMPORAL_CONFIG_FILE: '/nonexistent/temporal.toml' };
    expect(resolveClientConfig(home)).toEqual({
      address: '127.0.0.1:7233',
      namespace: 'default',
      taskQueue: 'settle',
      connectTimeoutMs: 5_000,
      connection: { address: '127.0.0.1:7233' },
    });
    const cloud = resolveClientConfig({
      ...home,
      TEMPORAL_ADDRESS: 'ns.acct.tmprl.cloud:7233',
      TEMPORAL_NAMESPACE: 'ns.acct',
      TEMPORAL_API_KEY: 'key',
      SETTLE_TASK_QUEUE: 'settle-prod',
    });
    expect(cloud).toMatchObject({
      address: 'ns.acct.tmprl.cloud:7233',
      namespace: 'ns.acct',
      taskQueue: 'settle-prod',
    });
    expect(cloud.connection).toEqual({ address: 'ns.acct.tmprl.cloud:7233', apiKey: 'key', tls: true });
    expect(() => resolveClientConfig({ ...home, SETTLE_CONNECT_TIMEOUT_MS: 'soon' })).toThrow(ClientConfigError);
  });
});

describe('events stream', () => {
  it('stops reading the status once the client goes away', async () => {
    let reads = 0;
    const running = {
      actionId: 'a-1',
      type: 'demo',
      phase: 'running',
      progress: { total: 1, locallyConfirmed: 0, final: 0 },
      steps: [],
      alarms: [],
      phaseTransitions: [],
      startedAt: '2026-01-01T00:00:00Z',
      updatedAt: '2026-01-01T00:00:00Z',
    };
    const settle = { status: async () => (reads++, running) } as unknown as ApiBackend;
    const app = api({ SETTLE_SSE_POLL_INTERVAL: '20ms' }, settle);
    const address = await app.listen({ host: '127.0.0.1', port: 0 });
    try {
      const controller = new AbortController();
      const response = await fetch(`${address}/v1/actions/a-1/events`, { signal: controller.signal });
      const reader = response.body!.getReader();
      await reader.read();
      await new Promise((r) => setTimeout(r, 200));
      expect(reads).toBeGreaterThan(3);
      controller.abort();
      await new Promise((r) => setTimeout(r, 100));
      const afterLeaving = reads;
      await new Promise((r) => setTimeout(r, 200));
      expect(reads).toBe(afterLeaving);
    } finally {
      await app.close();
    }
  });
});
