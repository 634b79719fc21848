/**
 * The production topology (`npm run cluster`) as one would run it: PostgreSQL, the Temporal server 1.29.1 with
 * PostgreSQL visibility, the UI server, two workers, a watcher per chain and the HTTP API, each its own process. Bridge
 * transfers are started through the API and complete while the workers and then the Temporal server are killed
 * (SIGKILL) and restarted; their state is read back from visibility, through Temporal and straight from PostgreSQL; a
 * Ctrl-C stops every process, and a restart finds the same state.
 */
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { z } from 'zod';
import { bridgeTransfer } from '../../client/plans';
import type { ActionStatus } from '../../contract/status';
import type { LocalChains } from '../../devnet/chains';
import { ensureCluster } from '../../devnet/cluster';
import { findPostgres } from '../../devnet/cluster/postgres';
import { ChainProbe, USER, waitFor } from '../support/chains';
import { freePort, portOpen, spawnTsx, type Spawned } from '../support/processes';

const ClusterFileSchema = z.object({
  pid: z.number(),
  state: z.string(),
  temporal: z.object({ address: z.string(), namespace: z.string() }),
  ui: z.string(),
  api: z.string(),
  apiTokensFile: z.string(),
  postgres: z.object({ address: z.string(), user: z.string(), dataDir: z.string() }),
  components: z.record(z.string(), z.object({ pid: z.number(), restarts: z.number() })),
});
type ClusterFile = z.infer<typeof ClusterFileSchema>;

const ChainsFileSchema = z.record(
  z.string(),
  z.object({
    chainId: z.number(),
    rpcUrl: z.string(),
    contracts: z.object({ token: z.string(), escrow: z.string(), minter: z.string() }),
  }),
);

const stateDir = mkdtempSync(path.join(os.tmpdir(), 'settle-cluster-'));
// PostgreSQL runs as an unprivileged user, who must be able to reach its folder inside (mkdtemp makes it 700).
chmodSync(stateDir, 0o755);
const runners: Spawned[] = [];
let env: NodeJS.ProcessEnv;
let runner: Spawned;
let cluster: ClusterFile;
let lastSeen: ClusterFile | undefined;

function readCluster(): ClusterFile | undefined {
  const file = path.join(stateDir, 'cluster.json');
  if (!existsSync(file)) return undefined;
  const parsed = ClusterFileSchema.safeParse(JSON.parse(readFileSync(file, 'utf8')));
  if (parsed.success) lastSeen = parsed.data;
  return parsed.success ? parsed.data : undefined;
}

/** Starts `npm run cluster` and waits until it reports itself running. */
async function startCluster(): Promise<Spawned> {
  const spawned = spawnTsx('devnet/cluster.ts', [], env);
  runners.push(spawned);
  cluster = await waitFor(
    'the cluster to run',
    async () => {
      if (spawned.child.exitCode !== null) throw new Error(`the cluster exited:\n${spawned.output().slice(-4000)}`);
      const file = readCluster();
      return file?.state === 'running' && file.pid === spawned.child.pid ? file : undefined;
    },
    300_000,
    500,
  );
  return spawned;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function api<T>(method: 'GET' | 'POST', route: string, body?: unknown): Promise<T> {
  const { operator } = JSON.parse(readFileSync(cluster.apiTokensFile, 'utf8')) as { operator: { token: string } };
  const response = await fetch(`${cluster.api}${route}`, {
    method,
    headers: { authorization: `Bearer ${operator.token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  if (!response.ok) throw new Error(`${method} ${route}: ${response.status} ${await response.text()}`);
  return (await response.json()) as T;
}

function chainProbe(): ChainProbe {
  const chains = ChainsFileSchema.parse(JSON.parse(readFileSync(path.join(stateDir, 'chains.json'), 'utf8')));
  const local = {
    chains: Object.fromEntries(Object.entries(chains).map(([name, chain]) => [name, { name, ...chain }])),
  } as unknown as LocalChains;
  return new ChainProbe(local);
}

function startTransfers(prefix: string, count: number): Promise<string[]> {
  const chains = ChainsFileSchema.parse(JSON.parse(readFileSync(path.join(stateDir, 'chains.json'), 'utf8')));
  return Promise.all(
    Array.from({ length: count }, async (_, i) => {
      const actionId = `${prefix}-${i + 1}-${path.basename(stateDir).slice(-6)}`;
      const spec = bridgeTransfer({
        actionId,
        from: 'chainA',
        to: 'chainB',
        token: { escrow: chains.chainA.contracts.escrow, minter: chains.chainB.contracts.minter },
        amount: String(100 + i),
        recipient: USER,
        deadline: '10m',
      });
      await api('POST', '/v1/actions', spec);
      return actionId;
    }),
  );
}

const status = (actionId: string) => api<ActionStatus>('GET', `/v1/actions/${actionId}`);

/** Kills a component with SIGKILL and waits until the cluster has started it again. */
async function killAndAwaitRestart(name: string): Promise<void> {
  const before = cluster.components[name];
  process.kill(before.pid, 'SIGKILL');
  cluster = await waitFor(
    `${name} to be restarted`,
    async () => {
      const file = readCluster();
      const now = file?.components[name];
      return now && now.restarts > before.restarts && now.pid !== before.pid && alive(now.pid) ? file : undefined;
    },
    60_000,
  );
}

async function temporalClient(): Promise<Client> {
  const connection = await Connection.connect({ address: cluster.temporal.address });
  return new Client({ connection, namespace: cluster.temporal.namespace });
}

/** Settle's search attributes as PostgreSQL stores them: the visibility row's JSON, under the namespace's field names. */
async function visibilityRow(client: Client, actionId: string): Promise<Record<string, unknown>> {
  const described = await client.workflowService.describeNamespace({ namespace: cluster.temporal.namespace });
  const aliases = described.config?.customSearchAttributeAliases ?? {};
  const field = (alias: string) => Object.entries(aliases).find(([, name]) => name === alias)?.[0];
  const [phase, refs] = [field('SettlePhase'), field('SettleRefs')];
  if (!phase || !refs)
    throw new Error(`the namespace has no field for SettlePhase or SettleRefs: ${JSON.stringify(aliases)}`);
  const [host, port] = cluster.postgres.address.split(':');
  const sql =
    `SELECT json_build_object('phase', search_attributes->'${phase}', 'refs', search_attributes->'${refs}') ` +
    `FROM executions_visibility WHERE workflow_id = '${actionId}'`;
  const output = await new Promise<string>((resolve, reject) => {
    const psql = spawn(
      path.join(findPostgres()!.binDir, 'psql'),
      ['-h', host, '-p', port, '-U', cluster.postgres.user, '-d', 'temporal_visibility', '-Atc', sql],
      {
        env: {
          ...process.env,
          PGPASSWORD: readFileSync(path.join(stateDir, 'secrets/postgres-password'), 'utf8').trim(),
        },
      },
    );
    let text = '';
    psql.stdout.on('data', (chunk: Buffer) => (text += chunk.toString()));
    psql.stderr.on('data', (chunk: Buffer) => (text += chunk.toString()));
    psql.on('exit', (code) => (code === 0 ? resolve(text) : reject(new Error(`psql: ${text}`))));
  });
  return JSON.parse(output.trim() || '{}') as Record<string, unknown>;
}

beforeAll(async () => {
  // Built once and cached (.ci/run obtains them before the tests); a no-op when they are there.
  await ensureCluster();
  env = {
    SETTLE_CLUSTER_DIR: stateDir,
    SETTLE_TEMPORAL_PORT: String(await freePort()),
    SETTLE_TEMPORAL_UI_PORT: String(await freePort()),
    SETTLE_API_PORT: String(await freePort()),
    SETTLE_CHAIN_A_PORT: String(await freePort()),
    SETTLE_CHAIN_B_PORT: String(await freePort()),
  };
  runner = await startCluster();
}, 900_000);

afterAll(async () => {
  for (const spawned of runners) if (spawned.child.exitCode === null) spawned.child.kill('SIGINT');
  await Promise.race([Promise.all(runners.map((s) => s.exited)), new Promise((r) => setTimeout(r, 60_000))]);
  // Whatever a failed run left behind: every component's process group, then the runners.
  for (const component of Object.values(lastSeen?.components ?? {})) {
    for (const target of [-component.pid, component.pid]) {
      try {
        process.kill(target, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
  for (const spawned of runners) if (spawned.child.exitCode === null) spawned.child.kill('SIGKILL');
  rmSync(stateDir, { recursive: true, force: true });
}, 120_000);

describe('npm run cluster', () => {
  const transfers: string[] = [];

  it('serves the Web UI and the API, with Temporal on PostgreSQL, each part its own process', async () => {
    expect(Object.keys(cluster.components).sort()).toEqual(
      ['api', 'postgres', 'temporal', 'ui', 'watcher-chainA', 'watcher-chainB', 'worker-1', 'worker-2'].sort(),
    );
    const pids = Object.values(cluster.components).map((c) => c.pid);
    expect(new Set(pids).size).toBe(pids.length);
    expect(pids.every(alive)).toBe(true);
    expect((await fetch(cluster.ui)).status).toBe(200);
    expect(cluster.postgres.dataDir).toBe(path.join(stateDir, 'postgres', 'data'));
  });

  it('completes bridge transfers while both workers, then the Temporal server, are killed and restarted', async () => {
    transfers.push(...(await startTransfers('killed', 3)));
    await waitFor('every lock to be submitted', async () =>
      (await Promise.all(transfers.map(status))).every((s) => s.steps.find((step) => step.id === 'lock')?.ref),
    );
    // Killed mid-flight: the locks are sent, the mints are not final yet.
    expect((await Promise.all(transfers.map(status))).some((s) => s.phase === 'running')).toBe(true);
    await Promise.all([killAndAwaitRestart('worker-1'), killAndAwaitRestart('worker-2')]);
    await killAndAwaitRestart('temporal');
    await waitFor('the restarted Temporal server to serve', () =>
      portOpen(Number(cluster.temporal.address.split(':')[1])),
    );
    // The restarted cluster takes new work too.
    transfers.push(
      ...(await waitFor('the API to start actions again', () => startTransfers('after', 2).catch(() => undefined))),
    );

    const settled = await waitFor(
      'every transfer to complete',
      async () => {
        const all = await Promise.all(transfers.map((id) => status(id).catch(() => undefined)));
        return all.every((s) => s?.phase === 'completed') ? (all as ActionStatus[]) : undefined;
      },
      240_000,
      1_000,
    );
    const probe = chainProbe();
    for (const s of settled) {
      expect(s.steps.map((step) => step.state)).toEqual(['final', 'final']);
      // Exactly once on each chain, kills and restarts notwithstanding.
      expect(await probe.events('chainA', 'Locked', s.actionId)).toHaveLength(1);
      expect(await probe.events('chainB', 'Minted', s.actionId)).toHaveLength(1);
    }
  }, 420_000);

  it('reads the phase and the transaction hashes back from visibility, which lives in PostgreSQL', async () => {
    expect(transfers).toHaveLength(5);
    const transfersRefs: string[] = [];
    const client = await temporalClient();
    try {
      for (const actionId of transfers) {
        const { steps } = await status(actionId);
        const lockRef = steps.find((s) => s.id === 'lock')!.ref!;
        const mintRef = steps.find((s) => s.id === 'mint')!.ref!;
        transfersRefs.push(lockRef);
        // Found from its transaction, as an operator would in the Web UI.
        const found = await waitFor(`${actionId} in visibility`, async () => {
          const ids: string[] = [];
          for await (const run of client.workflow.list({
            query: `SettleRefs = "${lockRef}" AND SettlePhase = "completed"`,
          })) {
            ids.push(run.workflowId);
          }
          return ids.length > 0 ? ids : undefined;
        });
        expect(found).toEqual([actionId]);
        const row = await visibilityRow(client, actionId);
        expect(row.phase).toBe('completed');
        expect([...(row.refs as string[])].sort()).toEqual([lockRef, mintRef].sort());
      }
      // The Web UI server reads the same visibility.
      const query = encodeURIComponent(`SettlePhase = "completed" AND SettleRefs = "${transfersRefs[0]}"`);
      const listed = await fetch(
        `${new URL(cluster.ui).origin}/api/v1/namespaces/${cluster.temporal.namespace}/workflows?query=${query}`,
      );
      expect(listed.status).toBe(200);
      const { executions } = (await listed.json()) as { executions: { execution: { workflowId: string } }[] };
      expect(executions.map((e) => e.execution.workflowId)).toEqual([transfers[0]]);
    } finally {
      await client.connection.close();
    }
  });

  it('stops every process on Ctrl-C and finds the same state when started again', async () => {
    const before = cluster;
    runner.child.kill('SIGINT');
    expect(await runner.exited).toBe(0);
    expect(
      Object.values(before.components)
        .map((c) => c.pid)
        .filter(alive),
    ).toEqual([]);
    expect(existsSync(path.join(stateDir, 'cluster.json'))).toBe(false);
    expect(await portOpen(Number(before.temporal.address.split(':')[1]))).toBe(false);

    runner = await startCluster();
    expect(runner.output()).not.toMatch(/creating a PostgreSQL cluster/);
    expect(cluster.postgres).toEqual(before.postgres);
    const client = await temporalClient();
    try {
      const completed: string[] = [];
      for await (const run of client.workflow.list({ query: 'SettlePhase = "completed"' }))
        completed.push(run.workflowId);
      expect(completed.sort()).toEqual(expect.arrayContaining([...transfers].sort()));
      expect((await status(transfers[0])).phase).toBe('completed');
    } finally {
      await client.connection.close();
    }
  }, 420_000);
});
