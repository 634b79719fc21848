import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { freePort, portOpen, spawnTsx, waitUntil, type Spawned } from '../support/processes';

const started: Spawned[] = [];
const stateDirs: string[] = [];
afterAll(() => {
  for (const s of started) if (s.child.exitCode === null) s.child.kill('SIGKILL');
  for (const dir of stateDirs) rmSync(dir, { recursive: true, force: true });
});

function stateDir(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'settle-state-'));
  stateDirs.push(dir);
  return dir;
}

describe('npm run temporal', () => {
  it('serves the Web UI on its port, registers the search attributes, and keeps its data across a restart', async () => {
    const env = {
      SETTLE_TEMPORAL_PORT: String(await freePort()),
      SETTLE_TEMPORAL_UI_PORT: String(await freePort()),
      SETTLE_STATE_DIR: stateDir(),
    };
    const address = `127.0.0.1:${env.SETTLE_TEMPORAL_PORT}`;
    const start = () => {
      const server = spawnTsx('devnet/temporal-server.ts', [], env);
      started.push(server);
      return server;
    };
    let server = start();
    await waitUntil(() => server.output().includes('Web UI'), 60_000, 'the server');

    const ui = await fetch(`http://127.0.0.1:${env.SETTLE_TEMPORAL_UI_PORT}/`);
    expect(ui.status).toBe(200);
    const list = spawnSync(
      process.env.SETTLE_TEST_TEMPORAL_CLI!,
      ['operator', 'search-attribute', 'list', '--address', address],
      { encoding: 'utf8' },
    );
    for (const [name, type] of [
      ['SettlePhase', 'Keyword'],
      ['SettleType', 'Keyword'],
      ['SettleNetworks', 'KeywordList'],
      ['SettleRefs', 'KeywordList'],
    ]) {
      expect(list.stdout).toMatch(new RegExp(`${name}\\s+${type}\\b`));
    }

    const connect = async () => new Client({ connection: await Connection.connect({ address }) });
    let client = await connect();
    await client.workflow.start('crossNetworkAction', {
      taskQueue: 'nobody-polls-this',
      workflowId: 'survives-restart',
      args: [{ actionId: 'survives-restart', steps: [{ id: 'a', network: 'n', operation: { kind: 'await' } }] }],
    });
    await client.connection.close();

    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(0);
    await waitUntil(async () => !(await portOpen(Number(env.SETTLE_TEMPORAL_PORT))), 10_000, 'the port to close');

    server = start();
    await waitUntil(() => server.output().includes('Web UI'), 60_000, 'the restarted server');
    client = await connect();
    const description = await client.workflow.getHandle('survives-restart').describe();
    expect(description.status.name).toBe('RUNNING');
    await client.connection.close();
    server.child.kill('SIGINT');
    expect(await server.exited).toBe(0);
  });
});

describe('npm start', () => {
  async function stackEnv() {
    return {
      SETTLE_TEMPORAL_PORT: String(await freePort()),
      SETTLE_TEMPORAL_UI_PORT: String(await freePort()),
      SETTLE_CHAIN_A_PORT: String(await freePort()),
      SETTLE_CHAIN_B_PORT: String(await freePort()),
      SETTLE_STATE_DIR: stateDir(),
      SETTLE_TASK_QUEUE: 'settle-start-test',
    };
  }
  const ports = (env: Record<string, string>) =>
    ['SETTLE_TEMPORAL_PORT', 'SETTLE_TEMPORAL_UI_PORT', 'SETTLE_CHAIN_A_PORT', 'SETTLE_CHAIN_B_PORT'].map((k) =>
      Number(env[k]),
    );

  it('runs a real bridge transfer to completion with --once, then stops everything it started', async () => {
    const env = await stackEnv();
    const stack = spawnTsx('devnet/start.ts', ['--once'], env);
    started.push(stack);
    const code = await stack.exited;
    expect({ code, output: stack.output().slice(-3000) }).toMatchObject({ code: 0 });
    expect(stack.output()).toContain('completed');
    for (const port of ports(env)) expect(await portOpen(port)).toBe(false);
  }, 300_000);

  it('stops every process it started on Ctrl-C', async () => {
    const env = await stackEnv();
    const stack = spawnTsx('devnet/start.ts', [], env);
    started.push(stack);
    await waitUntil(() => stack.output().includes('Ctrl-C stops everything'), 120_000, 'the stack');
    for (const port of ports(env)) expect(await portOpen(port)).toBe(true);
    stack.child.kill('SIGINT');
    // Well within the test's time even if a part outlives its drain time; a stack that hangs shows what it printed.
    const exited = await Promise.race([stack.exited.then(() => true), sleep(120_000, false, { ref: false })]);
    expect({ exited, output: stack.output().slice(-3000) }).toMatchObject({ exited: true });
    expect(stack.output()).not.toContain('did not stop within');
    for (const port of ports(env)) {
      await waitUntil(async () => !(await portOpen(port)), 15_000, `port ${port} to close`);
    }
  }, 300_000);
});
