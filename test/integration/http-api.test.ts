import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Worker } from '@temporalio/worker';
import { SettleClient, signEvidence, type TransitionEvent } from '../../client';
import { buildApi, routesOf } from '../../workers/api/app';
import { parseApiConfig } from '../../workers/api/config';
import { createTestWorker, startTestServer, uniqueId } from '../support/temporal';

const TOKEN = 'operator-token-0123456789';
const SECRET = 'evidence-secret-0123456789';
const ROOT = path.resolve(__dirname, '../..');

let env: TestWorkflowEnvironment;
let worker: Worker;
let running: Promise<void>;
let settle: SettleClient;
let api: ChildProcess;
let base: string;

beforeAll(async () => {
  env = await startTestServer();
  const taskQueue = uniqueId('http');
  worker = await createTestWorker(env, { networks: {}, adapters: {} }, { taskQueue });
  running = worker.run();
  settle = await SettleClient.connect({ env: { TEMPORAL_ADDRESS: env.address, SETTLE_TASK_QUEUE: taskQueue } });
  // The API as it runs in production: its own process, configured through the environment.
  api = spawn(process.execPath, [path.join(ROOT, 'node_modules/tsx/dist/cli.mjs'), 'workers/api/main.ts'], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      TEMPORAL_ADDRESS: env.address,
      SETTLE_TASK_QUEUE: taskQueue,
      SETTLE_API_PORT: '0',
      SETTLE_API_TOKEN: TOKEN,
      SETTLE_EVIDENCE_SECRET: SECRET,
      SETTLE_SSE_POLL_INTERVAL: '100ms',
      SETTLE_API_LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  base = await new Promise<string>((resolve, reject) => {
    let out = '';
    api.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const match = /listening on (http:\/\/\S+)/.exec(out);
      if (match) resolve(match[1]);
    });
    api.once('exit', (code) => reject(new Error(`the API exited with ${code}: ${out}`)));
  });
}, 60_000);

afterAll(async () => {
  if (api && api.exitCode === null) {
    const exited = new Promise((resolve) => api.once('exit', resolve));
    api.kill('SIGTERM');
    await exited;
  }
  await settle?.close();
  worker?.shutdown();
  await running;
  await env?.teardown();
});

function spec(actionId: string, steps = ['attest']) {
  return {
    actionId,
    type: 'http-demo',
    steps: steps.map((id, i) => ({
      id,
      network: i === 0 ? 'attester' : 'bank',
      operation: { kind: 'await' },
      after: i === 0 ? [] : [{ step: steps[i - 1] }],
    })),
  };
}

/** A request with the token "default" (SETTLE_API_TOKEN, every scope), unless `authorization` says otherwise ('' for none). */
async function call(method: string, url: string, body?: unknown, headers: Record<string, string> = {}) {
  const sent: Record<string, string> = { ...operator, ...headers };
  if (!sent.authorization) delete sent.authorization;
  const response = await fetch(`${base}${url}`, {
    method,
    headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...sent },
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined, headers: response.headers };
}

const operator = { authorization: `Bearer ${TOKEN}` };
const unauthenticated = { authorization: '' };

/** Evidence signed with SETTLE_EVIDENCE_SECRET, the key "default", for one action; sent without a bearer token. */
function signed(actionId: string, evidence: unknown, secret = SECRET, timestamp?: number) {
  const body = JSON.stringify(evidence);
  const signature = signEvidence({ keyId: 'default', secret, actionId, body, timestamp });
  return { body, headers: { 'settle-signature': signature, ...unauthenticated } };
}

async function postEvidence(actionId: string, evidence: unknown) {
  const { body, headers } = signed(actionId, evidence);
  return call('POST', `/v1/actions/${actionId}/evidence`, body, headers);
}

async function startReady(actionId: string, steps?: string[]) {
  expect((await call('POST', '/v1/actions', spec(actionId, steps))).status).toBe(201);
  for (let i = 0; i < 100; i++) {
    if ((await call('GET', `/v1/actions/${actionId}`)).status === 200) return;
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function eventually<T>(read: () => Promise<T>, ok: (value: T) => boolean): Promise<T> {
  for (let i = 0; ; i++) {
    const value = await read();
    if (ok(value) || i > 100) return value;
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Reads a Server-Sent Events stream until `end`. */
async function readEvents(
  url: string,
  onOpen: () => Promise<void>,
): Promise<{ event: string; id?: string; data: unknown }[]> {
  const response = await fetch(`${base}${url}`, { headers: { accept: 'text/event-stream', ...operator } });
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toContain('text/event-stream');
  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  const events: { event: string; id?: string; data: unknown }[] = [];
  let buffer = '';
  const driving = onOpen();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let end: number;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const fields = Object.fromEntries(
        block
          .split('\n')
          .filter((line) => line && !line.startsWith(':'))
          .map((line) => [line.slice(0, line.indexOf(':')), line.slice(line.indexOf(':') + 1).trim()]),
      );
      if (fields.data !== undefined)
        events.push({ event: fields.event ?? 'message', id: fields.id, data: JSON.parse(fields.data) });
    }
  }
  await driving;
  return events;
}

it('serves an OpenAPI document that matches the routes', async () => {
  const { status, body } = await call('GET', '/openapi.json');
  expect(status).toBe(200);
  expect(body.openapi).toBe('3.1.0');
  const documented = Object.entries(body.paths as Record<string, Record<string, unknown>>)
    .flatMap(([url, methods]) =>
      Object.keys(methods).map((m) => `${m.toUpperCase()} ${url.replace(/\{(\w+)\}/g, ':$1')}`),
    )
    .sort();
  const app = buildApi({ settle, config: parseApiConfig({ SETTLE_API_LOG_LEVEL: 'silent', SETTLE_API_TOKEN: TOKEN }) });
  await app.ready();
  const served = routesOf(app)
    .map((r) => `${r.method} ${r.url}`)
    .sort();
  await app.close();
  expect(documented).toEqual(served);
  expect(body.components.schemas.ActionSpec.required).toEqual(['actionId', 'steps']);
  expect((await call('GET', '/healthz', undefined, unauthenticated)).body).toEqual({ ok: true });
  expect((await call('GET', '/openapi.json', undefined, unauthenticated)).status).toBe(401);
});

describe('starting and reading actions', () => {
  it('starts idempotently through HTTP and through the client: the same run, never a second', async () => {
    const actionId = uniqueId('http-idem');
    const first = await call('POST', '/v1/actions', spec(actionId));
    expect(first.status).toBe(201);
    expect(first.headers.get('location')).toBe(`/v1/actions/${actionId}`);
    expect(first.body).toEqual({ actionId, runId: expect.any(String), created: true });
    const again = await call('POST', '/v1/actions', spec(actionId));
    expect(again).toMatchObject({ status: 200, body: { actionId, runId: first.body.runId, created: false } });
    expect(await settle.start(spec(actionId) as never)).toEqual({ actionId, runId: first.body.runId, created: false });

    const viaClient = uniqueId('client-idem');
    const started = await settle.start(spec(viaClient) as never);
    expect((await call('POST', '/v1/actions', spec(viaClient))).body).toEqual({ ...started, created: false });
  });

  it('answers 400 with the zod issues for a bad spec, and starts nothing', async () => {
    const actionId = uniqueId('http-bad');
    const bad = {
      ...spec(actionId),
      onDeadline: 'panic',
      steps: [{ id: '1st', network: 'x', operation: { kind: 'await' } }],
    };
    const response = await call('POST', '/v1/actions', bad);
    expect(response.status).toBe(400);
    expect(response.body).toEqual({
      error: 'invalid ActionSpec',
      issues: [
        { path: 'onDeadline', message: 'Invalid option: expected one of "compensate"|"hold"' },
        { path: 'steps[0].id', message: 'must start with a letter and contain only letters, digits, "_" or "-"' },
      ],
    });
    expect((await call('GET', `/v1/actions/${actionId}`)).status).toBe(404);
    const notJson = await call('POST', '/v1/actions', '{"actionId": ');
    expect(notJson.status).toBe(400);
    expect(notJson.body.issues[0].message).toMatch(/^must be JSON/);
  });

  it('reads status, lists by filters, finds by ref, and answers 404 for the unknown', async () => {
    const actionId = uniqueId('http-read');
    const ref = `0x${Date.now().toString(16)}ee`;
    await startReady(actionId);
    const status = await call('GET', `/v1/actions/${actionId}`);
    expect(status.body).toMatchObject({
      actionId,
      phase: 'running',
      progress: { total: 1, locallyConfirmed: 0, final: 0 },
    });
    expect((await call('GET', '/v1/actions/no-such-action')).status).toBe(404);
    expect((await call('GET', '/v1/actions/bad%20id')).status).toBe(400);

    expect(
      (
        await postEvidence(actionId, {
          step: 'attest',
          kind: 'included',
          ref,
          block: { number: '3', hash: '0x03' },
          source: 'w',
        })
      ).status,
    ).toBe(202);
    const found = await eventually(
      () => call('GET', `/v1/refs/${ref}`),
      (r) => r.status === 200,
    );
    expect(found.body).toEqual({ ref, actions: [expect.objectContaining({ actionId, refs: [ref] })] });
    expect((await call('GET', '/v1/refs/0xunknown')).status).toBe(404);

    const listed = await eventually(
      () => call('GET', `/v1/actions?type=http-demo&phase=running&network=attester`),
      (r) => r.body.actions.some((a: { actionId: string }) => a.actionId === actionId),
    );
    expect(listed.body.actions).toContainEqual(expect.objectContaining({ actionId, phase: 'running' }));
    expect((await call('GET', '/v1/actions?type=http-demo&network=bank')).body.actions).toEqual([]);
    const badFilter = await call('GET', '/v1/actions?phase=stuck&colour=red');
    expect(badFilter.status).toBe(400);
    expect(badFilter.body.issues.map((i: { path: string }) => i.path).sort()).toEqual(['(root)', 'phase']);
  });
});

describe('events', () => {
  it('streams every transition in order as Server-Sent Events, then ends', async () => {
    const actionId = uniqueId('http-sse');
    await startReady(actionId, ['attest', 'pay']);
    const pause = () => new Promise((r) => setTimeout(r, 300));
    const events = await readEvents(`/v1/actions/${actionId}/events`, async () => {
      await pause();
      const block = { number: '10', hash: '0x0a' };
      await postEvidence(actionId, { step: 'attest', kind: 'included', ref: '0xa1', block, source: 'w:1' });
      await pause();
      await postEvidence(actionId, { step: 'attest', kind: 'finalized', ref: '0xa1', block, source: 'w:2' });
      await pause();
      await postEvidence(actionId, { step: 'pay', kind: 'finalized', source: 'w:3' });
    });
    const transitions = events.filter((e) => e.event === 'transition').map((e) => e.data as TransitionEvent);
    expect(
      transitions.map((t) => `${t.kind === 'step' ? t.step : 'phase'}: ${t.from} → ${t.to} (${t.source})`),
    ).toEqual([
      // The key id comes first: the body's source only adds a detail after it.
      'attest: waiting → included (default:w:1)',
      'attest: included → final (default:w:2)',
      'pay: waiting → final (default:w:3)',
      'phase: running → completed (settle)',
    ]);
    expect(transitions.map((t) => t.sequence)).toEqual([1, 2, 3, 4]);
    expect(events.filter((e) => e.event === 'transition').map((e) => e.id)).toEqual(['1', '2', '3', '4']);
    expect(events.at(-1)).toEqual({
      event: 'end',
      data: { actionId, phase: 'completed', progress: { total: 2, locallyConfirmed: 2, final: 2 } },
      id: undefined,
    });
    // A late subscriber gets the same history, in the same order, and the end.
    const replay = await readEvents(`/v1/actions/${actionId}/events`, async () => undefined);
    expect(replay.map((e) => e.data)).toEqual(events.map((e) => e.data));
    expect((await call('GET', '/v1/actions/nobody-here/events')).status).toBe(404);
    // Once ended, the action takes no more evidence or updates.
    const late = await postEvidence(actionId, { step: 'pay', kind: 'finalized', source: 'w:late' });
    expect(late).toMatchObject({
      status: 409,
      body: { error: `action "${actionId}" is closed: evidence is not possible any more` },
    });
    expect((await call('POST', `/v1/actions/${actionId}/cancel`, { reason: 'late' }, operator)).status).toBe(409);
  });
});

describe('signed evidence', () => {
  it('accepts a valid signature once; missing, wrong, stale and replayed signatures get 401 and apply nothing', async () => {
    const actionId = uniqueId('http-hmac');
    await startReady(actionId);
    const evidence = {
      step: 'attest',
      kind: 'included',
      ref: '0xb1',
      block: { number: '5', hash: '0x05' },
      source: 'w',
    };
    const url = `/v1/actions/${actionId}/evidence`;

    const missing = await call('POST', url, evidence, unauthenticated);
    expect(missing).toMatchObject({
      status: 401,
      body: { error: 'unauthorized', reason: expect.stringMatching(/^no credential/) },
    });
    const wrong = signed(actionId, evidence, 'not-the-secret-at-all');
    expect((await call('POST', url, wrong.body, wrong.headers)).body.reason).toMatch(
      /^signature mismatch \(key "default"\)/,
    );
    const tampered = signed(actionId, evidence);
    expect((await call('POST', url, tampered.body.replace('0xb1', '0xb2'), tampered.headers)).status).toBe(401);
    const stale = signed(actionId, evidence, SECRET, Math.floor(Date.now() / 1000) - 3600);
    expect((await call('POST', url, stale.body, stale.headers)).body.reason).toBe('signature stale (key "default")');
    const garbled = await call('POST', url, JSON.stringify(evidence), {
      'settle-signature': 'v1=abc',
      ...unauthenticated,
    });
    expect(garbled.body.reason).toMatch(/^signature malformed/);
    const unsignedJunk = await call('POST', url, 'not json', unauthenticated);
    expect(unsignedJunk.status).toBe(401);
    expect((await call('GET', `/v1/actions/${actionId}`)).body.steps[0].transitions).toEqual([]);

    const good = signed(actionId, evidence);
    expect(await call('POST', url, good.body, good.headers)).toMatchObject({
      status: 202,
      body: { accepted: true, actionId },
    });
    const replayed = await call('POST', url, good.body, good.headers);
    expect(replayed).toMatchObject({ status: 401, body: { reason: 'signature replayed (key "default")' } });

    const invalid = signed(actionId, { step: 'attest', kind: 'confirmed', source: 'w' });
    const rejected = await call('POST', url, invalid.body, invalid.headers);
    expect(rejected).toMatchObject({
      status: 400,
      body: {
        error: 'invalid evidence',
        issues: [{ path: 'confirmations', message: '"confirmed" evidence needs confirmations' }],
      },
    });
    // A distinct body: the same body signed in the same second is the same signature, and a replay.
    const unknown = signed('no-such-action', { ...evidence, source: 'w:other' });
    expect((await call('POST', '/v1/actions/no-such-action/evidence', unknown.body, unknown.headers)).status).toBe(404);

    const status = await eventually(
      () => call('GET', `/v1/actions/${actionId}`),
      (r) => r.body.steps[0].state === 'included',
    );
    expect(status.body.steps[0].transitions).toHaveLength(1);
    expect(status.body.steps[0].transitions[0].source).toBe('default:w');
  });
});

describe('operator endpoints', () => {
  it('require a token with the operate scope, surface validator rejections as 409, and apply updates', async () => {
    const actionId = uniqueId('http-ops');
    await startReady(actionId, ['attest', 'pay']);
    const retry = { step: 'attest', reason: 'again' };
    expect((await call('POST', `/v1/actions/${actionId}/retry`, retry, unauthenticated)).status).toBe(401);
    expect((await call('POST', `/v1/actions/${actionId}/retry`, retry, { authorization: 'Bearer nope' })).body).toEqual(
      {
        error: 'unauthorized',
        reason: 'wrong bearer token',
      },
    );

    const refused = await call('POST', `/v1/actions/${actionId}/retry`, retry, operator);
    expect(refused.status).toBe(409);
    expect(refused.body.reason).toBe(
      'retryStep: step "attest" is waiting; only a failed or expired step can be retried',
    );
    const bad = await call('POST', `/v1/actions/${actionId}/compensate`, { reason: '' }, operator);
    expect(bad).toMatchObject({ status: 400, body: { issues: [{ path: 'reason' }] } });
    expect((await call('POST', '/v1/actions/no-such-action/cancel', { reason: 'x' }, operator)).status).toBe(404);

    const resolved = await call(
      'POST',
      `/v1/actions/${actionId}/resolve`,
      { step: 'attest', evidence: { kind: 'finalized', source: 'ops' }, reason: 'checked', operator: 'alice' },
      operator,
    );
    expect(resolved.status).toBe(200);
    expect(resolved.body.steps[0]).toMatchObject({ state: 'final' });
    expect(resolved.body.steps[0].transitions.at(-1)).toMatchObject({ operator: 'default:alice' });

    const cancelled = await call(
      'POST',
      `/v1/actions/${actionId}/cancel`,
      { reason: 'stop', operator: 'bob' },
      operator,
    );
    expect(cancelled.status).toBe(200);
    expect(cancelled.body.phase).toBe('cancelled');
    // The audit trail names the credential that acted ("default", SETTLE_API_TOKEN), then the body's operator.
    expect(cancelled.body.phaseTransitions.at(-1)).toMatchObject({ operator: 'default:bob' });
  });
});
