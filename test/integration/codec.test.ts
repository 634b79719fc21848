/**
 * Data at rest: with the codec on, what Temporal stores for an action is ciphertext; a client without the codec
 * cannot read it; the codec server reads it for the Web UI and the CLI, and only for them.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Payload } from '@temporalio/common';
import { historyToJSON, payloadToJSON } from '@temporalio/common/lib/proto-utils';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode, DefaultLogger, Worker } from '@temporalio/worker';
import { createActivities } from '../../activities';
import { resolveClientConfig } from '../../client/config';
import { SettleClient } from '../../client/settle-client';
import { spawnTsx, waitUntil, type Spawned } from '../support/processes';
import { startTestServer, uniqueId } from '../support/temporal';
import { workflowBundleOptions } from '../../workers/worker/bundle';

const UI = 'http://127.0.0.1:8233';
const TOKEN = `codec-${randomBytes(24).toString('hex')}`;

let env: TestWorkflowEnvironment;
let dir: string;
let keyFile: string;
let codecServer: Spawned;
let codecUrl: string;

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'settle-codec-'));
  keyFile = path.join(dir, 'codec-keys.json');
  const keys = { 'k-2025': randomBytes(32).toString('base64'), 'k-2026': randomBytes(32).toString('base64') };
  writeFileSync(keyFile, JSON.stringify(keys), { mode: 0o600 });
  env = await startTestServer();
  codecServer = spawnTsx('workers/codec-server/main.ts', [], {
    SETTLE_CODEC_KEYS: keyFile,
    SETTLE_CODEC_KEY_ID: 'k-2026',
    SETTLE_CODEC_SERVER_PORT: '0',
    SETTLE_CODEC_SERVER_TOKEN: TOKEN,
    SETTLE_CODEC_SERVER_ORIGINS: UI,
    SETTLE_CODEC_SERVER_LOG_LEVEL: 'warn',
  });
  await waitUntil(() => /listening on (http:\/\/127\.0\.0\.1:\d+)/.test(codecServer.output()), 60_000, 'codec server');
  codecUrl = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(codecServer.output())![1];
});

afterAll(async () => {
  codecServer?.child.kill('SIGTERM');
  await codecServer?.exited;
  await env?.teardown();
  rmSync(dir, { recursive: true, force: true });
});

/** The environment of a deployment with the codec on, with the current key of this process. */
function codecEnv(currentKeyId: string, taskQueue: string): Record<string, string> {
  return {
    HOME: '/nonexistent',
    TEMPORAL_CONFIG_FILE: '/nonexistent/temporal.toml',
    TEMPORAL_ADDRESS: env.address,
    SETTLE_TASK_QUEUE: taskQueue,
    SETTLE_CODEC_KEYS: keyFile,
    SETTLE_CODEC_KEY_ID: currentKeyId,
  };
}

let bundle: Promise<{ code: string }> | undefined;
/** A worker as `npm run worker` builds it: the bundle carries the codec's failure converter. */
async function codecWorker(taskQueue: string): Promise<Worker> {
  const { dataConverter } = resolveClientConfig(codecEnv('k-2026', taskQueue));
  bundle ??= bundleWorkflowCode({
    ...workflowBundleOptions,
    failureConverterPath: dataConverter!.failureConverterPath,
    logger: new DefaultLogger('WARN'),
  });
  const workflowBundle = await bundle;
  return Worker.create({
    connection: env.nativeConnection,
    namespace: 'default',
    taskQueue,
    workflowBundle,
    activities: createActivities({ networks: {}, adapters: {} }),
    dataConverter,
  });
}

/**
 * Every payload anywhere in a history, as stored, with where it is. Search attributes must stay readable (visibility
 * indexes them), and so do the SDK's own marker bookkeeping (patch ids; a local activity's type, attempt and times).
 */
function payloadsIn(value: unknown, at = '', found: { at: string; payload: Payload }[] = []) {
  if (value === null || typeof value !== 'object' || value instanceof Uint8Array) return found;
  const object = value as Record<string, unknown>;
  if (object.metadata && typeof object.metadata === 'object' && object.data instanceof Uint8Array) {
    found.push({ at, payload: object as Payload });
    return found;
  }
  for (const [key, child] of Object.entries(object)) payloadsIn(child, `${at}.${key}`, found);
  return found;
}
const readableByDesign = (at: string) =>
  /\.searchAttributes\./.test(at) || /markerRecordedEventAttributes\.details\.(patch-data|data)\./.test(at);

const text = (bytes: Uint8Array | null | undefined) => Buffer.from(bytes ?? []).toString('latin1');

function codecCall(route: string, init: { method?: string; headers?: Record<string, string>; body?: unknown }) {
  return fetch(`${codecUrl}${route}`, {
    method: init.method ?? 'POST',
    headers: { 'content-type': 'application/json', ...init.headers },
    ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
  });
}

it('stores an action encrypted, mid-rotation; a client without the codec cannot read it; the codec server can', async () => {
  const actionId = uniqueId('xfer-confidential');
  const stepId = 'attest-confidential-step';
  const taskQueue = uniqueId('codec');
  const worker = await codecWorker(taskQueue);
  // The client still encrypts with last year's key, the worker already with this year's: both read both.
  const settle = await SettleClient.connect({ env: codecEnv('k-2025', taskQueue) });
  try {
    const done = await worker.runUntil(async () => {
      await settle.start({
        actionId,
        type: 'codec-demo',
        steps: [{ id: stepId, network: 'attester', operation: { kind: 'await' } }],
      });
      await settle.evidence(actionId, { step: stepId, kind: 'finalized', source: 'attester-confidential' });
      return settle.waitFor(actionId, { phase: 'completed' }, { timeoutMs: 60_000, pollIntervalMs: 200 });
    });
    expect(done.steps[0]).toMatchObject({ id: stepId, state: 'final' });
  } finally {
    await settle.close();
  }

  // What Temporal holds, read without the codec.
  const plain = env.client.workflow.getHandle(actionId);
  const everything = payloadsIn(await plain.fetchHistory());
  const stored = everything.filter(({ at }) => !readableByDesign(at)).map(({ payload }) => payload);
  expect(stored.length).toBeGreaterThanOrEqual(5); // input, summary, signal, activity and workflow results
  expect(new Set(stored.map((p) => text(p.metadata!.encoding)))).toEqual(new Set(['binary/encrypted']));
  expect(new Set(stored.map((p) => text(p.metadata!['encryption-key-id'])))).toEqual(new Set(['k-2025', 'k-2026']));
  for (const { payload } of everything) {
    const bytes = text(payload.data) + Object.values(payload.metadata!).map(text).join();
    for (const plaintext of [actionId, stepId, 'attester-confidential']) expect(bytes).not.toContain(plaintext);
  }
  await expect(plain.result()).rejects.toThrow('Unknown encoding: binary/encrypted');

  // The codec server, as the Web UI calls it, decodes all of them.
  const response = await codecCall('/decode', {
    headers: { authorization: `Bearer ${TOKEN}`, origin: UI, 'x-namespace': 'default' },
    body: { payloads: stored.map((p) => payloadToJSON(p)) },
  });
  expect(response.status).toBe(200);
  expect(response.headers.get('access-control-allow-origin')).toBe(UI);
  const decoded = ((await response.json()) as { payloads: { data?: string }[] }).payloads;
  expect(decoded).toHaveLength(stored.length);
  const plaintext = decoded.map((p) => Buffer.from(p.data ?? '', 'base64').toString('utf8')).join('\n');
  for (const expected of [actionId, stepId, 'attester-confidential', '"phase":"completed"']) {
    expect(plaintext).toContain(expected);
  }

  // So does the Temporal CLI, through the codec server, with the token; without it, it shows ciphertext.
  const show = (extra: string[]) =>
    spawnSync(
      process.env.SETTLE_TEST_TEMPORAL_CLI!,
      [
        'workflow',
        'show',
        '--address',
        env.address,
        '-w',
        actionId,
        '-o',
        'json',
        '--codec-endpoint',
        codecUrl,
        ...extra,
      ],
      { encoding: 'utf8' },
    );
  // Its JSON output keeps payload data in base64, as proto JSON does.
  const shownData = (stdout: string) =>
    [...stdout.matchAll(/"data": "([A-Za-z0-9+/=]*)"/g)]
      .map((m) => Buffer.from(m[1], 'base64').toString('latin1'))
      .join();
  const withToken = show(['--codec-auth', `Bearer ${TOKEN}`]);
  expect(withToken.status).toBe(0);
  expect(shownData(withToken.stdout)).toContain(stepId);
  expect(shownData(show([]).stdout)).not.toContain(stepId);
});

it("encrypts a failure's message: Temporal stores 'Encoded failure', the codec client reads the reason", async () => {
  const actionId = uniqueId('codec-failing');
  const taskQueue = uniqueId('codec');
  const worker = await codecWorker(taskQueue);
  const settle = await SettleClient.connect({ env: codecEnv('k-2026', taskQueue) });
  try {
    const failure = await worker.runUntil(async () => {
      // The workflow itself rejects a spec whose actionId is not its ID (the client would have refused it).
      const handle = await settle.temporal.workflow.start('crossNetworkAction', {
        taskQueue,
        workflowId: actionId,
        args: [
          { actionId: `${actionId}-mismatched`, steps: [{ id: 'a', network: 'n', operation: { kind: 'await' } }] },
        ],
      });
      return handle.result().then(
        () => undefined,
        (error: Error) => error,
      );
    });
    expect((failure?.cause as Error | undefined)?.message).toContain(`got "${actionId}-mismatched"`);
  } finally {
    await settle.close();
  }
  const raw = await env.client.workflow.getHandle(actionId).fetchHistory();
  const failed = raw.events!.find((e) => e.workflowExecutionFailedEventAttributes)!;
  expect(failed.workflowExecutionFailedEventAttributes!.failure!.message).toBe('Encoded failure');
  expect(historyToJSON(raw)).not.toContain('mismatched');
});

describe('the codec server is never open', () => {
  const body = { payloads: [] };

  it('answers the Web UI preflight, and refuses any other origin', async () => {
    const preflight = (origin: string) =>
      codecCall('/decode', {
        method: 'OPTIONS',
        headers: {
          origin,
          'access-control-request-method': 'POST',
          'access-control-request-headers': 'authorization,content-type,x-namespace',
        },
      });
    const ui = await preflight(UI);
    expect(ui.status).toBe(204);
    expect(ui.headers.get('access-control-allow-origin')).toBe(UI);
    const other = await preflight('http://evil.example');
    expect(other.status).toBe(403);
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
    const call = await codecCall('/decode', {
      headers: { authorization: `Bearer ${TOKEN}`, origin: 'http://evil.example' },
      body,
    });
    expect(call.status).toBe(403);
  });

  it('refuses a call without the token, or with another', async () => {
    expect((await codecCall('/decode', { headers: { origin: UI }, body })).status).toBe(401);
    expect((await codecCall('/decode', { headers: { authorization: `Bearer ${TOKEN}0` }, body })).status).toBe(401);
    expect((await codecCall('/encode', { body })).status).toBe(401);
    expect((await codecCall('/decode', { headers: { authorization: `Bearer ${TOKEN}` }, body })).status).toBe(200);
  });

  it('refuses to start with a key file others may read', async () => {
    chmodSync(keyFile, 0o644);
    try {
      const loose = spawnTsx('workers/codec-server/main.ts', [], {
        SETTLE_CODEC_KEYS: keyFile,
        SETTLE_CODEC_KEY_ID: 'k-2026',
        SETTLE_CODEC_SERVER_PORT: '0',
        SETTLE_CODEC_SERVER_TOKEN: TOKEN,
      });
      expect(await loose.exited).toBe(1);
      expect(loose.output()).toContain('may be read or written by its group or others (mode 644): chmod 600 it');
    } finally {
      chmodSync(keyFile, 0o600);
    }
  });
});
