import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Worker } from '@temporalio/worker';
import { SettleClient } from '../../client';
import { createTestWorker, startTestServer, uniqueId } from '../support/temporal';

const BIN = path.resolve(__dirname, '../../bin/settle.js');

let env: TestWorkflowEnvironment;
let worker: Worker;
let running: Promise<void>;
let settle: SettleClient;
let taskQueue: string;
let dir: string;

beforeAll(async () => {
  env = await startTestServer();
  taskQueue = uniqueId('cli');
  worker = await createTestWorker(env, { networks: {}, adapters: {} }, { taskQueue });
  running = worker.run();
  settle = await SettleClient.connect({ env: { TEMPORAL_ADDRESS: env.address, SETTLE_TASK_QUEUE: taskQueue } });
  dir = mkdtempSync(path.join(os.tmpdir(), 'settle-cli-'));
});
afterAll(async () => {
  await settle?.close();
  worker?.shutdown();
  await running;
  await env?.teardown();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `settle …` as a user would: a separate process, configured through the environment. */
function cli(args: string[], options: { stdin?: string; onStdout?: (text: string) => void } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      env: {
        PATH: process.env.PATH,
        HOME: dir,
        TEMPORAL_ADDRESS: env.address,
        SETTLE_TASK_QUEUE: taskQueue,
        SETTLE_OPERATOR: 'cli-test',
      },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      options.onStdout?.(stdout);
    });
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(options.stdin ?? '');
  });
}

function specFile(spec: unknown): string {
  const file = path.join(dir, `${uniqueId('spec')}.json`);
  writeFileSync(file, JSON.stringify(spec, null, 2));
  return file;
}

function awaitSpec(actionId: string) {
  return { actionId, type: 'cli-demo', steps: [{ id: 'attest', network: 'attester', operation: { kind: 'await' } }] };
}

async function ready(actionId: string): Promise<void> {
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

it('starts an action from a spec file, idempotently', async () => {
  const actionId = uniqueId('cli-start');
  const file = specFile(awaitSpec(actionId));
  const first = await cli(['start', '--spec', file, '--json']);
  expect(first.code).toBe(0);
  const started = JSON.parse(first.stdout);
  expect(started).toEqual({ actionId, runId: expect.any(String), created: true });

  const again = await cli(['start', '--spec', file]);
  expect(again.code).toBe(0);
  expect(again.stdout).toBe(`${actionId} already exists (run ${started.runId}); nothing new was started\n`);
  await settle.cancel(actionId, { reason: 'test done' }).catch(() => undefined);
});

it('rejects a bad spec with its field path and rule, exits 3, and starts nothing', async () => {
  const actionId = uniqueId('cli-bad');
  const spec = { ...awaitSpec(actionId), deadline: 'soon' };
  const run = await cli(['start', '--spec', '-'], { stdin: JSON.stringify(spec) });
  expect(run.code).toBe(3);
  expect(run.stdout).toBe('');
  expect(run.stderr).toContain('invalid ActionSpec:');
  expect(run.stderr).toContain('deadline: must be a positive duration such as "30s", "10m", "2h", "7d"');
  const status = await cli(['status', actionId]);
  expect(status.code).toBe(4);
  expect(status.stderr).toBe(`settle: action "${actionId}" not found\n`);
});

it('watches an action until it completes, printing every transition in order', async () => {
  const actionId = uniqueId('cli-watch');
  const ref = `0x${Date.now().toString(16)}`;
  expect((await cli(['start', '--spec', specFile(awaitSpec(actionId))])).code).toBe(0);
  await ready(actionId);

  let watching!: () => void;
  const started = new Promise<void>((resolve) => (watching = resolve));
  const watch = cli(['status', actionId, '--watch', '--interval', '100'], {
    onStdout: (text) => text.includes('phase running') && watching(),
  });
  await started;
  const included = await cli([
    'evidence',
    actionId,
    '--step',
    'attest',
    '--kind',
    'included',
    '--ref',
    ref,
    '--block-number',
    '7',
    '--block-hash',
    '0x07',
    '--source',
    'watcher:attester',
  ]);
  expect(included).toMatchObject({ code: 0, stdout: `evidence delivered to ${actionId}\n` });
  await new Promise((r) => setTimeout(r, 400));
  expect((await cli(['evidence', actionId, '--step', 'attest', '--kind', 'finalized'])).code).toBe(0);

  const watched = await watch;
  expect(watched.code).toBe(0);
  const lines = watched.stdout.trim().split('\n');
  expect(lines[0]).toBe(`${actionId}: phase running · local 0/1 · global 0/1`);
  const transitions = lines.filter((line) => line.includes('→'));
  expect(transitions.map((line) => line.replace(/^\S+\s+/, '').replace(/ \[.*\]/, ''))).toEqual([
    'step attest@attester: waiting → included  (watcher:attester)',
    'step attest@attester: included → final  (settle-cli)',
    'phase: running → completed  (settle)',
  ]);
  expect(lines.at(-1)).toBe(`${actionId}: phase completed · local 1/1 · global 1/1`);

  // Finding it by the ref its evidence carried (visibility is eventually consistent).
  let found: Run | undefined;
  for (let i = 0; i < 50; i++) {
    found = await cli(['find', ref, '--json']);
    if (found.code === 0) break;
    await new Promise((r) => setTimeout(r, 300));
  }
  expect(found!.code).toBe(0);
  expect(JSON.parse(found!.stdout)).toEqual([expect.objectContaining({ actionId, refs: [ref], type: 'cli-demo' })]);
  const missing = await cli(['find', '0xdoesnotexist']);
  expect(missing).toMatchObject({ code: 4, stdout: 'no action has ref 0xdoesnotexist\n' });
});

it('acts as an operator: a rejected retry exits 5, cancel exits 0, and --watch on a cancelled action exits 7', async () => {
  const actionId = uniqueId('cli-ops');
  expect((await cli(['start', '--spec', specFile(awaitSpec(actionId))])).code).toBe(0);
  await ready(actionId);

  const retry = await cli(['retry', actionId, '--step', 'attest', '--reason', 'again']);
  expect(retry.code).toBe(5);
  expect(retry.stderr).toContain('only a failed or expired step can be retried');

  const noReason = await cli(['cancel', actionId, '--json']);
  expect(noReason.code).toBe(3);
  expect(JSON.parse(noReason.stderr).error.issues).toEqual([{ path: 'reason', message: expect.any(String) }]);

  const cancel = await cli(['cancel', actionId, '--reason', 'customer withdrew', '--json']);
  expect(cancel.code).toBe(0);
  const status = JSON.parse(cancel.stdout);
  expect(status.phase).toBe('cancelled');
  expect(status.phaseTransitions.at(-1)).toMatchObject({ operator: 'cli-test', reason: 'cancel: customer withdrew' });

  const watch = await cli(['status', actionId, '--watch', '--json']);
  expect(watch.code).toBe(7);
  expect(JSON.parse(watch.stdout.trim().split('\n').at(-1)!).phase).toBe('cancelled');

  const compensate = await cli(['compensate', actionId, '--reason', 'late']);
  expect(compensate).toMatchObject({
    code: 5,
    stderr: `settle: action "${actionId}" is closed: compensate is not possible any more\n`,
  });
});

it('resolves a step with operator evidence and lists the action by type and phase', async () => {
  const actionId = uniqueId('cli-resolve');
  const type = uniqueId('resolved');
  expect((await cli(['start', '--spec', specFile({ ...awaitSpec(actionId), type })])).code).toBe(0);
  await ready(actionId);
  const resolve = await cli([
    'resolve',
    actionId,
    '--step',
    'attest',
    '--kind',
    'finalized',
    '--reason',
    'checked on the explorer',
    '--operator',
    'alice',
  ]);
  expect(resolve.code).toBe(0);
  expect(resolve.stdout).toMatch(/attest\s+attester\s+final/);

  let listed: unknown[] = [];
  for (let i = 0; i < 50 && listed.length === 0; i++) {
    listed = JSON.parse((await cli(['list', '--type', type, '--phase', 'completed', '--json'])).stdout);
    if (listed.length === 0) await new Promise((r) => setTimeout(r, 300));
  }
  expect(listed).toEqual([expect.objectContaining({ actionId, phase: 'completed', execution: 'COMPLETED' })]);
  const usage = await cli(['list', '--colour']);
  expect(usage.code).toBe(2);
  expect(usage.stderr).toContain("Unknown option '--colour'");
});
