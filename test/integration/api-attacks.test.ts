/**
 * The HTTP API under attack, as it runs: its own process on loopback, configured with named tokens (a file, one token
 * given only as its SHA-256) and named evidence keys, in front of a real Temporal server and worker. Each attack is
 * tried, refused with a clear error, and leaves no trace: no workflow started, no signal in any history. The table of
 * what was refused is printed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request, type ClientRequest, type IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Worker } from '@temporalio/worker';
import {
  ActionNotFoundError,
  ActionSpecSchema,
  SettleClient,
  signBody,
  signEvidence,
  ValidationError,
} from '../../client';
import { createTestWorker, startTestServer, uniqueId } from '../support/temporal';

const ROOT = path.resolve(__dirname, '../..');
const TOKENS = {
  starter: 'starter-token-0123456789abcdef',
  reader: 'reader-token-0123456789abcdef',
  ops: 'ops-token-0123456789abcdef',
  limited: 'limited-token-0123456789abcdef',
  dashboard: 'dashboard-token-0123456789abcdef',
};
const KEYS = { attester: 'attester-secret-0123456789', watcher: 'watcher-secret-0123456789' };
const MAX_STREAMS = 2;
const LIMITED_RATE = 2;

let env: TestWorkflowEnvironment;
let worker: Worker;
let running: Promise<void>;
let settle: SettleClient;
let api: ChildProcess;
let port: number;
let dir: string;
let startupLines = '';
let taskQueue: string;
let tokensFile: string;
/** A second API process, when a test starts one. */
let secondApi: ChildProcess | undefined;

beforeAll(async () => {
  env = await startTestServer();
  taskQueue = uniqueId('attacks');
  worker = await createTestWorker(env, { networks: {}, adapters: {} }, { taskQueue });
  running = worker.run();
  settle = await SettleClient.connect({ env: { TEMPORAL_ADDRESS: env.address, SETTLE_TASK_QUEUE: taskQueue } });
  // Tokens from a file; "reader" only as its SHA-256, so the file need not hold that secret.
  dir = mkdtempSync(path.join(tmpdir(), 'settle-api-'));
  tokensFile = path.join(dir, 'tokens.json');
  writeFileSync(
    tokensFile,
    JSON.stringify({
      starter: { token: TOKENS.starter, scopes: ['start', 'read'] },
      reader: { sha256: createHash('sha256').update(TOKENS.reader).digest('hex'), scopes: ['read'] },
      ops: { token: TOKENS.ops, scopes: ['read', 'operate'] },
      limited: { token: TOKENS.limited, scopes: ['start'], rateLimit: LIMITED_RATE },
      dashboard: { token: TOKENS.dashboard, scopes: ['read'] },
    }),
  );
  ({ child: api, port } = await startApi(tokensFile, taskQueue, (line) => (startupLines += line)));
}, 60_000);

afterAll(async () => {
  if (api) await stopApi(api);
  if (secondApi) await stopApi(secondApi);
  await settle?.close();
  worker?.shutdown();
  await running;
  await env?.teardown();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** The API as a process of its own, on a free port; `onOutput` sees what it prints. */
async function startApi(
  tokensFile: string,
  taskQueue: string,
  onOutput: (text: string) => void = () => {},
): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, [path.join(ROOT, 'node_modules/tsx/dist/cli.mjs'), 'workers/api/main.ts'], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      TEMPORAL_ADDRESS: env.address,
      SETTLE_TASK_QUEUE: taskQueue,
      SETTLE_API_PORT: '0',
      SETTLE_API_TOKENS: tokensFile,
      SETTLE_EVIDENCE_KEYS: JSON.stringify(KEYS),
      SETTLE_API_MAX_STREAMS: String(MAX_STREAMS),
      SETTLE_SSE_POLL_INTERVAL: '100ms',
      SETTLE_API_LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let printed = '';
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      printed += chunk.toString();
      onOutput(chunk.toString());
      const match = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(printed);
      if (match && printed.includes('evidence keys')) resolve(Number(match[1]));
    });
    child.once('exit', (code) => reject(new Error(`the API exited with ${code}: ${printed}`)));
  });
  return { child, port };
}

async function stopApi(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

interface Answer {
  status: number;
  body: Record<string, unknown>;
  bytes: number;
}

/** A raw HTTP/1.1 request on loopback, so the Host header can be anything. */
function send(
  method: string,
  url: string,
  options: { token?: string; body?: string; headers?: Record<string, string>; port?: number } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: options.port ?? port,
        method,
        path: url,
        headers: {
          ...(options.body === undefined ? {} : { 'content-type': 'application/json' }),
          ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
          ...options.headers,
        },
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => {
          const text = Buffer.concat(chunks).toString();
          resolve({ status: response.statusCode!, body: text ? JSON.parse(text) : {}, bytes: Buffer.byteLength(text) });
        });
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

/** Opens an event stream and keeps it open; resolves with its status once the head arrives. */
function openStream(actionId: string, token: string): Promise<{ status: number; close: () => void; body: string }> {
  return new Promise((resolve, reject) => {
    let req: ClientRequest | undefined = undefined;
    req = request(
      {
        host: '127.0.0.1',
        port,
        path: `/v1/actions/${actionId}/events`,
        headers: { authorization: `Bearer ${token}` },
      },
      (response: IncomingMessage) => {
        let body = '';
        response.on('data', (chunk: Buffer) => (body += chunk.toString()));
        const close = () => req!.destroy();
        if (response.statusCode === 200) resolve({ status: 200, close, body });
        else response.on('end', () => resolve({ status: response.statusCode!, close, body }));
      },
    );
    req.on('error', (error) => ((error as { code?: string }).code === 'ECONNRESET' ? undefined : reject(error)));
    req.end();
  });
}

function spec(actionId: string, steps = ['attest']) {
  return {
    actionId,
    type: 'attack-demo',
    steps: steps.map((id) => ({ id, network: 'attester', operation: { kind: 'await' } })),
  };
}

async function started(actionId: string): Promise<boolean> {
  try {
    await settle.status(actionId);
    return true;
  } catch (error) {
    if (error instanceof ActionNotFoundError) return false;
    throw error;
  }
}

async function signalsIn(actionId: string): Promise<number> {
  const history = await env.client.workflow.getHandle(actionId).fetchHistory();
  return (history.events ?? []).filter((event) => event.workflowExecutionSignaledEventAttributes).length;
}

async function startReady(actionId: string, body: object = spec(actionId)) {
  expect((await send('POST', '/v1/actions', { token: TOKENS.starter, body: JSON.stringify(body) })).status).toBe(201);
  for (let i = 0; i < 100; i++) {
    if (
      await settle.status(actionId).then(
        () => true,
        () => false,
      )
    )
      return;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A 467 KB spec with ~90,000 invalid templates: unbounded, its issues ran to several megabytes. */
function hugeInvalidSpec(actionId: string): string {
  const arg = '{{x}}'.repeat(1450);
  return JSON.stringify({
    actionId,
    type: 'amplifier',
    steps: Array.from({ length: 64 }, (_, i) => ({
      id: `s${i}`,
      network: 'chainA',
      operation: {
        kind: 'evm.call',
        signer: 'bridge',
        to: `0x${'1'.repeat(40)}`,
        function: 'function f(string a)',
        args: [arg],
      },
    })),
  });
}

interface Attack {
  attack: string;
  /** Tries it; returns the answer and whether the state stayed as it was. */
  run: () => Promise<{ answer: Answer; unchanged: boolean; expected: number }>;
}

it('refuses every attack in the table with a clear error, and changes nothing', async () => {
  const target = uniqueId('target');
  const other = uniqueId('other');
  await startReady(target);
  await startReady(other);
  const signalsBefore = { target: await signalsIn(target), other: await signalsIn(other) };
  const noSignal = async () =>
    (await signalsIn(target)) === signalsBefore.target && (await signalsIn(other)) === signalsBefore.other;
  const evidence = JSON.stringify({ step: 'attest', kind: 'finalized', source: 'eu-1' });

  const attacks: Attack[] = [
    {
      attack: 'unauthenticated start',
      run: async () => {
        const id = uniqueId('anon');
        const answer = await send('POST', '/v1/actions', { body: JSON.stringify(spec(id)) });
        return { answer, expected: 401, unchanged: !(await started(id)) };
      },
    },
    {
      attack: 'start with a token without the start scope',
      run: async () => {
        const id = uniqueId('reader');
        const answer = await send('POST', '/v1/actions', { token: TOKENS.reader, body: JSON.stringify(spec(id)) });
        return { answer, expected: 403, unchanged: !(await started(id)) };
      },
    },
    {
      attack: 'start with a wrong token',
      run: async () => {
        const id = uniqueId('wrong');
        const answer = await send('POST', '/v1/actions', {
          token: `${TOKENS.starter}x`,
          body: JSON.stringify(spec(id)),
        });
        return { answer, expected: 401, unchanged: !(await started(id)) };
      },
    },
    {
      attack: 'Host header of another origin (DNS rebinding)',
      run: async () => {
        const id = uniqueId('rebind');
        const answer = await send('POST', '/v1/actions', {
          token: TOKENS.starter,
          body: JSON.stringify(spec(id)),
          headers: { host: `attacker.example:${port}` },
        });
        return { answer, expected: 421, unchanged: !(await started(id)) };
      },
    },
    {
      attack: 'huge invalid spec (467 KB, ~90k issues)',
      run: async () => {
        const id = uniqueId('huge');
        const body = hugeInvalidSpec(id);
        expect(body.length).toBeGreaterThan(460_000);
        const answer = await send('POST', '/v1/actions', { token: TOKENS.starter, body });
        const bounded = answer.bytes < 16_384 && (answer.body.issues as unknown[]).length === 20;
        const parsed = ActionSpecSchema.safeParse(JSON.parse(body));
        const unbounded = parsed.success
          ? 0
          : JSON.stringify(ValidationError.fromZod('ActionSpec', parsed.error)).length;
        answer.body.reason = `${answer.body.omittedIssues} issues omitted; unbounded: ${(unbounded / 1e6).toFixed(1)} MB`;
        return { answer, expected: 400, unchanged: bounded && !(await started(id)) };
      },
    },
    {
      attack: 'evidence signed for another action',
      run: async () => {
        const signature = signEvidence({ keyId: 'attester', secret: KEYS.attester, actionId: other, body: evidence });
        const answer = await send('POST', `/v1/actions/${target}/evidence`, {
          body: evidence,
          headers: { 'settle-signature': signature },
        });
        return { answer, expected: 401, unchanged: await noSignal() };
      },
    },
    {
      attack: 'evidence with an unknown key id',
      run: async () => {
        const signature = signEvidence({ keyId: 'mallory', secret: KEYS.attester, actionId: target, body: evidence });
        const answer = await send('POST', `/v1/actions/${target}/evidence`, {
          body: evidence,
          headers: { 'settle-signature': signature },
        });
        return { answer, expected: 401, unchanged: await noSignal() };
      },
    },
    {
      attack: 'evidence in the older unbound form (t=…,v1=…)',
      run: async () => {
        const answer = await send('POST', `/v1/actions/${target}/evidence`, {
          body: evidence,
          headers: { 'settle-signature': signBody(KEYS.attester, evidence) },
        });
        return { answer, expected: 401, unchanged: await noSignal() };
      },
    },
    {
      attack: 'unsigned evidence with a read-only token',
      run: async () => {
        const answer = await send('POST', `/v1/actions/${target}/evidence`, { token: TOKENS.reader, body: evidence });
        return { answer, expected: 403, unchanged: await noSignal() };
      },
    },
    {
      attack: `rate limit exceeded (token "limited", ${LIMITED_RATE}/min)`,
      run: async () => {
        for (let i = 0; i < LIMITED_RATE; i++) {
          const allowed = await send('POST', '/v1/actions', {
            token: TOKENS.limited,
            body: JSON.stringify(spec(uniqueId('limited-ok'))),
          });
          expect(allowed.status).toBe(201);
        }
        const id = uniqueId('limited');
        const answer = await send('POST', '/v1/actions', { token: TOKENS.limited, body: JSON.stringify(spec(id)) });
        return { answer, expected: 429, unchanged: !(await started(id)) };
      },
    },
    {
      attack: `too many event streams (at most ${MAX_STREAMS} per credential)`,
      run: async () => {
        const open = [];
        for (let i = 0; i < MAX_STREAMS; i++) open.push(await openStream(target, TOKENS.dashboard));
        expect(open.map((s) => s.status)).toEqual(Array(MAX_STREAMS).fill(200));
        const refused = await openStream(target, TOKENS.dashboard);
        // Another credential is not held back by this one's streams; a closed stream gives its slot back.
        const elsewhere = await openStream(target, TOKENS.reader);
        open.forEach((s) => s.close());
        elsewhere.close();
        await new Promise((r) => setTimeout(r, 300));
        const again = await openStream(target, TOKENS.dashboard);
        again.close();
        const unchanged = elsewhere.status === 200 && again.status === 200 && (await noSignal());
        return {
          answer: { status: refused.status, body: JSON.parse(refused.body), bytes: refused.body.length },
          expected: 429,
          unchanged,
        };
      },
    },
  ];

  const table: Record<string, string | number | boolean>[] = [];
  for (const { attack, run } of attacks) {
    const { answer, expected, unchanged } = await run();
    table.push({
      attack,
      status: answer.status,
      error: String(answer.body.error),
      reason: String(
        answer.body.reason ?? (answer.body.issues ? `${answer.body.omittedIssues} more issues omitted` : ''),
      ).slice(0, 90),
      'answer bytes': answer.bytes,
      refused: answer.status === expected,
      'state unchanged': unchanged,
    });
  }
  console.table(table);
  for (const row of table) expect([row.attack, row.refused, row['state unchanged']]).toEqual([row.attack, true, true]);
  // The real thing still works: the right key for this action is accepted, and its source is the key id.
  const signature = signEvidence({ keyId: 'attester', secret: KEYS.attester, actionId: target, body: evidence });
  expect(
    (
      await send('POST', `/v1/actions/${target}/evidence`, {
        body: evidence,
        headers: { 'settle-signature': signature },
      })
    ).status,
  ).toBe(202);
  const status = await settle.waitFor(target, { phase: 'completed' }, { timeoutMs: 10_000 });
  expect(status.steps[0].transitions.at(-1)).toMatchObject({ to: 'final', source: 'attester:eu-1' });
  expect(await signalsIn(other)).toBe(signalsBefore.other);
});

it('applies signed evidence once, whichever API process takes it: a replay after a retry fails nothing', async () => {
  const actionId = uniqueId('replayed');
  await startReady(actionId, { ...spec(actionId), onDeadline: 'hold' });
  const refusal = JSON.stringify({ step: 'attest', kind: 'failed', reason: 'no quorum', source: 'eu-1' });
  const headers = {
    'settle-signature': signEvidence({ keyId: 'attester', secret: KEYS.attester, actionId, body: refusal }),
  };
  const url = `/v1/actions/${actionId}/evidence`;
  expect((await send('POST', url, { body: refusal, headers })).status).toBe(202);
  await settle.waitFor(actionId, { phase: 'needs_action' }, { timeoutMs: 10_000 });
  await settle.retryStep(actionId, { step: 'attest', reason: 'quorum restored' });
  // The same request again: this process refuses it; a second API process (its own memory) passes it on.
  expect((await send('POST', url, { body: refusal, headers })).status).toBe(401);
  let second: number;
  ({ child: secondApi, port: second } = await startApi(tokensFile, taskQueue));
  expect((await send('POST', url, { body: refusal, headers, port: second })).status).toBe(202);
  const done = JSON.stringify({ step: 'attest', kind: 'finalized', source: 'eu-1' });
  const signature = signEvidence({ keyId: 'attester', secret: KEYS.attester, actionId, body: done });
  expect(
    (await send('POST', url, { body: done, headers: { 'settle-signature': signature }, port: second })).status,
  ).toBe(202);
  const status = await settle.waitFor(actionId, { phase: ['completed', 'needs_action'] }, { timeoutMs: 10_000 });
  expect(status.phase).toBe('completed');
  expect(status.steps[0].transitions.filter((t) => t.to === 'failed')).toHaveLength(1);
});

it('records the credential that acted: the operator and the source come from it, whatever the body claims', async () => {
  const actionId = uniqueId('audit');
  await startReady(actionId);
  // The body claims to be the chain watcher; the key is the attester's.
  const body = JSON.stringify({
    step: 'attest',
    kind: 'included',
    ref: '0xa7',
    block: { number: '1', hash: '0x01' },
    source: 'watcher',
  });
  const signature = signEvidence({ keyId: 'attester', secret: KEYS.attester, actionId, body });
  expect(
    (await send('POST', `/v1/actions/${actionId}/evidence`, { body, headers: { 'settle-signature': signature } }))
      .status,
  ).toBe(202);
  const cancelled = await send('POST', `/v1/actions/${actionId}/cancel`, {
    token: TOKENS.ops,
    body: JSON.stringify({ reason: 'drill', operator: 'admin' }),
  });
  expect(cancelled.status).toBe(200);
  const status = await settle.status(actionId);
  expect(status.steps[0].transitions[0]).toMatchObject({ to: 'included', source: 'attester:watcher' });
  expect(status.phaseTransitions.at(-1)).toMatchObject({ operator: 'ops:admin', reason: 'cancel: drill' });
  // The start-up line names the credentials and never their secrets.
  expect(startupLines).toContain('tokens: starter (start, read); reader (read); ops (read, operate)');
  expect(startupLines).toContain('evidence keys: attester, watcher');
  for (const secret of [...Object.values(TOKENS), ...Object.values(KEYS)]) expect(startupLines).not.toContain(secret);
});

it('refuses to start without credentials, with a message that says what to set', async () => {
  const child = spawn(process.execPath, [path.join(ROOT, 'node_modules/tsx/dist/cli.mjs'), 'workers/api/main.ts'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, TEMPORAL_ADDRESS: env.address, SETTLE_API_PORT: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const code = await new Promise((resolve) => child.once('exit', resolve));
  expect(code).toBe(1);
  expect(output).toContain('settle api: invalid configuration:');
  expect(output).toContain('no credentials: set SETTLE_API_TOKENS (or SETTLE_API_TOKEN)');
  expect(output).not.toContain('listening');
});
