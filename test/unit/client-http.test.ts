import { resolveClientConfig, ClientConfigError } from '../../client/config';
import { buildApi, type ApiBackend } from '../../workers/api/app';
import { parseApiConfig, ApiConfigError } from '../../workers/api/config';
import { signBody } from '../../networks/webhook/signature';

const TOKEN = 'unit-token-0123456789';
const auth = { authorization: `Bearer ${TOKEN}` };

const failing = new Proxy({} as ApiBackend, {
  get: (_target, name) => async () => {
    throw new Error(`secret internals of ${String(name)}`);
  },
});

function api(env: Record<string, string> = {}, settle: ApiBackend = failing) {
  return buildApi({
    settle,
    config: parseApiConfig({ SETTLE_API_LOG_LEVEL: 'silent', SETTLE_API_TOKEN: TOKEN, ...env }),
  });
}

describe('HTTP API edges', () => {
  it('answers 415 for a body that is not JSON, and 413 past the body limit', async () => {
    const app = api({ SETTLE_API_BODY_LIMIT: '64' });
    const text = await app.inject({
      method: 'POST',
      url: '/v1/actions',
      headers: { 'content-type': 'text/plain', ...auth },
      payload: 'hi',
    });
    expect(text.statusCode).toBe(415);
    const big = await app.inject({
      method: 'POST',
      url: '/v1/actions',
      headers: auth,
      payload: { actionId: 'x'.repeat(100) },
    });
    expect(big.statusCode).toBe(413);
    await app.close();
  });

  it('refuses to start without credentials, and names the keys that would give some', () => {
    expect(() => parseApiConfig({})).toThrow(ApiConfigError);
    expect(() => parseApiConfig({})).toThrow(
      '(root): no credentials: set SETTLE_API_TOKENS (or SETTLE_API_TOKEN) and/or SETTLE_EVIDENCE_KEYS (or SETTLE_EVIDENCE_SECRET)',
    );
  });

  it('keeps SETTLE_API_TOKEN as the credential "default" with every scope; refuses the older, unbound signature form', async () => {
    const app = api({ SETTLE_EVIDENCE_SECRET: 'the-default-evidence-secret' });
    const wrong = await app.inject({
      method: 'POST',
      url: '/v1/actions/x/retry',
      headers: { authorization: 'Bearer anything-at-all-long' },
      payload: { step: 'a', reason: 'b' },
    });
    expect(wrong.json()).toEqual({ error: 'unauthorized', reason: 'wrong bearer token' });
    // The backend here fails every call: a 500 means the request got past the front door.
    for (const [method, url] of [
      ['GET', '/v1/actions/x'],
      ['POST', '/v1/actions'],
      ['POST', '/v1/actions/x/retry'],
      ['POST', '/v1/actions/x/evidence'],
    ] as const) {
      const response = await app.inject({ method, url, headers: auth, payload: { step: 'a', reason: 'b' } });
      expect([url, response.statusCode]).toEqual([url, 500]);
    }
    // The older signature form (no key id, not bound to an action) does not open the evidence route.
    const body = JSON.stringify({ step: 'a', kind: 'finalized', source: 's' });
    const evidence = await app.inject({
      method: 'POST',
      url: '/v1/actions/x/evidence',
      headers: {
        'content-type': 'application/json',
        'settle-signature': signBody('the-default-evidence-secret', body),
      },
      payload: body,
    });
    expect(evidence.statusCode).toBe(401);
    expect(evidence.json().reason).toMatch(/^signature malformed: sign evidence as t=<unix>,kid=<key id>,v1=/);
    await app.close();
  });

  it('hides internal errors behind a 500, and answers unknown routes with JSON 404', async () => {
    const app = api();
    const broken = await app.inject({ method: 'GET', url: '/v1/actions/x', headers: auth });
    expect(broken.statusCode).toBe(500);
    expect(broken.json()).toEqual({ error: 'internal error' });
    const unknown = await app.inject({ method: 'DELETE', url: '/v1/actions/x', headers: auth });
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json()).toEqual({ error: 'no route DELETE /v1/actions/x' });
    await app.close();
  });
});

describe('configuration', () => {
  it('parses the API keys with defaults: loopback, port 8080, 5 minute signature window', () => {
    expect(parseApiConfig({ SETTLE_API_TOKEN: TOKEN })).toMatchObject({
      SETTLE_API_HOST: '127.0.0.1',
      SETTLE_API_PORT: 8080,
      SETTLE_SIGNATURE_TOLERANCE: 300_000,
      SETTLE_SSE_POLL_INTERVAL: 500,
      SETTLE_API_REQUEST_TIMEOUT: 30_000,
      SETTLE_API_MAX_STREAMS: 8,
      SETTLE_API_RATE_LIMIT: 600,
      SETTLE_API_RATE_WINDOW: 60_000,
      allowedHosts: new Set(['127.0.0.1', 'localhost', '::1']),
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
      const response = await fetch(`${address}/v1/actions/a-1/events`, { signal: controller.signal, headers: auth });
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
