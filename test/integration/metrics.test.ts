/**
 * Metrics, scraped from the running processes (a worker, a watcher and the API, each started as `npm run …` would,
 * with its metrics endpoint on a free 127.0.0.1 port) while real actions run on a Temporal dev server and two hardhat
 * chains: Temporal's runtime metrics and Settle's own (polls, evidence by source and kind, time in each step state,
 * finality violations, policy refusals, actions by phase, stuck actions, nonce owner backlog).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { WorkflowHandle } from '@temporalio/client';
import type { LocalChains } from '../../devnet/chains';
import { evidenceSignal, statusQuery } from '../../contract/messages';
import type { ActionSpecInput } from '../../contract/action-spec';
import type { ActionStatus } from '../../contract/status';
import { bridgePlan, startTestChains, waitFor, writeTestNetworksFile } from '../support/chains';
import { spawnTsx, waitUntil, type Spawned } from '../support/processes';
import { startTestServer, uniqueId } from '../support/temporal';
import { ADDRESS_A, block, evmCall } from '../support/actions';

const TOKEN = 'metrics-test-token-0123456789abcdef';
const ARTIFACTS = path.resolve(process.env.SETTLE_TEST_ARTIFACTS ?? 'test-results', 'metrics');
const taskQueue = uniqueId('metrics');

let env: TestWorkflowEnvironment;
let local: LocalChains;
let configPath: string;
const processes: Spawned[] = [];
let worker: Spawned;
let api: Spawned;
let workerMetrics: string;
let apiMetrics: string;
let apiUrl: string;

function start(script: string, extra: Record<string, string>): Spawned {
  const spawned = spawnTsx(script, [], {
    TEMPORAL_ADDRESS: env.address,
    TEMPORAL_NAMESPACE: 'default',
    SETTLE_TASK_QUEUE: taskQueue,
    SETTLE_CONFIG: configPath,
    ...extra,
  });
  processes.push(spawned);
  return spawned;
}

/** The first match of `pattern` in the process's output (its group 1), once it is printed. */
async function printed(process: Spawned, pattern: RegExp, what: string): Promise<string> {
  await waitUntil(
    () => {
      if (process.child.exitCode !== null) throw new Error(`${what} exited:\n${process.output()}`);
      return pattern.test(process.output());
    },
    90_000,
    what,
  );
  return pattern.exec(process.output())![1];
}

beforeAll(async () => {
  [env, local] = await Promise.all([startTestServer(), startTestChains()]);
  ({ configPath } = writeTestNetworksFile(local.chains, { confirmations: 2, pollIntervalMs: 500 }));
  worker = start('workers/worker/main.ts', { SETTLE_LOG_LEVEL: 'WARN', SETTLE_WORKER_METRICS_PORT: '0' });
  api = start('workers/api/main.ts', {
    SETTLE_API_PORT: '0',
    SETTLE_API_TOKEN: TOKEN,
    SETTLE_API_LOG_LEVEL: 'warn',
    SETTLE_API_METRICS_PORT: '0',
    SETTLE_API_METRICS_REFRESH: '500ms',
    SETTLE_API_METRICS_STUCK_AFTER: '3s',
  });
  [workerMetrics, apiMetrics, apiUrl] = await Promise.all([
    printed(worker, /metrics on (http:\/\/127\.0\.0\.1:\d+\/metrics)/, 'the worker'),
    printed(api, /settle api: metrics on (http:\/\/127\.0\.0\.1:\d+\/metrics)/, 'the API metrics'),
    printed(api, /settle api: listening on (http:\/\/127\.0\.0\.1:\d+)/, 'the API'),
  ]);
}, 180_000);

afterAll(async () => {
  await Promise.all(
    processes.map(async ({ child, exited }) => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }),
  );
  await Promise.all([env?.teardown(), local?.stop()]);
}, 60_000);

/** One scrape, parsed: `name{labels} value` lines. */
async function scrape(
  url: string,
): Promise<{ text: string; series: { name: string; labels: string; value: number }[] }> {
  const response = await fetch(url);
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toMatch(/^text\/plain/);
  const text = await response.text();
  const series = text
    .split('\n')
    .filter((line) => line && !line.startsWith('#'))
    .map((line) => {
      const match = /^([a-zA-Z_:][\w:]*)(\{.*\})?\s+(\S+)/.exec(line);
      if (!match) throw new Error(`not Prometheus text: ${line}`);
      return { name: match[1], labels: match[2] ?? '', value: Number(match[3]) };
    });
  return { text, series };
}

/** Keeps a scrape in the test artefacts, for whoever builds a dashboard from it. */
function keep(name: string, scraped: { text: string }): void {
  mkdirSync(ARTIFACTS, { recursive: true });
  writeFileSync(path.join(ARTIFACTS, `${name}.prom`), scraped.text);
}

/** The sum of the series named `name` that carry every label given. */
function sum(scraped: Awaited<ReturnType<typeof scrape>>, name: string, labels: Record<string, string> = {}): number {
  return scraped.series
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels.includes(`${k}="${v}"`)))
    .reduce((total, s) => total + s.value, 0);
}

/** Scrapes until `check` holds for the scrape (the processes report asynchronously), and returns that scrape. */
async function scrapeUntil(url: string, what: string, check: (s: Awaited<ReturnType<typeof scrape>>) => boolean) {
  let last: Awaited<ReturnType<typeof scrape>> | undefined;
  try {
    return await waitFor(
      what,
      async () => {
        last = await scrape(url);
        return check(last) ? last : undefined;
      },
      60_000,
      250,
    );
  } catch (error) {
    throw new Error(`${(error as Error).message}; last scrape:\n${last?.text}`);
  }
}

async function startAction(spec: ActionSpecInput): Promise<WorkflowHandle> {
  return env.client.workflow.start('crossNetworkAction', { taskQueue, workflowId: spec.actionId, args: [spec] });
}

async function settled(handle: WorkflowHandle, timeoutMs = 150_000): Promise<ActionStatus> {
  return waitFor(
    'the action to settle',
    async () => {
      const status: ActionStatus = await handle.query(statusQuery);
      return ['completed', 'compensated', 'failed', 'needs_action'].includes(status.phase) ? status : undefined;
    },
    timeoutMs,
  );
}

it('the worker serves Temporal runtime metrics and its own: polls, evidence, time in each state, refusals', async () => {
  // No watcher yet: the workflow's polls bring the evidence.
  const transfer = await startAction(bridgePlan(local, uniqueId('polled'), { deadline: '5m' }));
  // A call the signing policy does not allow (an address that is not one of the bridge contracts).
  const refused = await startAction({
    actionId: uniqueId('refused'),
    steps: [{ id: 'pay', network: 'chainA', operation: evmCall('ping()', [], ADDRESS_A) }],
  });
  expect((await settled(transfer)).phase).toBe('completed');
  expect((await settled(refused)).phase).not.toBe('completed');

  const scraped = await scrapeUntil(
    workerMetrics,
    'the worker to report both actions',
    (s) =>
      sum(s, 'settle_step_state_seconds_count', { network: 'chainB' }) > 0 &&
      sum(s, 'settle_policy_refusals_total') > 0,
  );
  // Temporal's runtime metrics (Core's exporter, served on the same endpoint).
  expect(sum(scraped, 'temporal_workflow_completed_total')).toBeGreaterThan(0);
  expect(sum(scraped, 'temporal_activity_execution_latency_seconds_count')).toBeGreaterThan(0);
  expect(sum(scraped, 'temporal_workflow_task_schedule_to_start_latency_seconds_count')).toBeGreaterThan(0);
  // Settle's.
  expect(sum(scraped, 'settle_polls_total', { network: 'chainA', outcome: 'observed' })).toBeGreaterThan(0);
  expect(sum(scraped, 'settle_evidence_total', { network: 'chainB', via: 'poll', kind: 'confirmed' })).toBeGreaterThan(
    0,
  );
  expect(sum(scraped, 'settle_submissions_total', { network: 'chainA', outcome: 'submitted' })).toBeGreaterThan(0);
  expect(sum(scraped, 'settle_step_state_seconds_count', { network: 'chainA', state: 'submitted' })).toBeGreaterThan(0);
  expect(sum(scraped, 'settle_step_state_seconds_sum', { network: 'chainA' })).toBeGreaterThan(0);
  expect(
    sum(scraped, 'settle_policy_refusals_total', { network: 'chainA', signer: 'bridge', type: 'PolicyViolation' }),
  ).toBeGreaterThan(0);
  expect(sum(scraped, 'settle_submissions_total', { network: 'chainA', outcome: 'refused' })).toBeGreaterThan(0);
  // The process's own (prom-client's default metrics), as in every Settle process.
  expect(sum(scraped, 'nodejs_heap_size_used_bytes')).toBeGreaterThan(0);
  keep('worker', scraped);
}, 240_000);

it('counts evidence signals by source and kind, reorgs, and a finality violation once its run ends', async () => {
  const handle = await startAction({
    actionId: uniqueId('violated'),
    steps: [
      { id: 'attest', network: 'attester', operation: { kind: 'await' } },
      // Keeps the action open while attest is final, orphaned, and final again.
      { id: 'release', network: 'holder', operation: { kind: 'await' } },
    ],
  });
  const wait = (predicate: (s: ActionStatus) => boolean) =>
    waitFor('the status', async () => predicate(await handle.query(statusQuery)) || undefined, 30_000, 100);
  await handle.signal(evidenceSignal, { step: 'attest', kind: 'finalized', block: block(7), source: 'attester-1' });
  await wait((s) => s.steps[0].state === 'final');
  await handle.signal(evidenceSignal, { step: 'attest', kind: 'reorged', block: block(7), source: 'attester-1' });
  await wait((s) => s.alarms.length === 1);
  // Not reported while the run is open: the violation is counted when it ends.
  const before = await scrape(workerMetrics);
  expect(sum(before, 'settle_finality_violations_total', { network: 'attester' })).toBe(0);
  await handle.signal(evidenceSignal, { step: 'attest', kind: 'finalized', block: block(8), source: 'attester-1' });
  await wait((s) => s.steps[0].state === 'final');
  await handle.signal(evidenceSignal, { step: 'release', kind: 'finalized', source: 'holder-1' });
  const result = (await handle.result()) as ActionStatus;
  expect(result.phase).toBe('completed');

  const scraped = await scrapeUntil(
    workerMetrics,
    'the violation',
    (s) => sum(s, 'settle_finality_violations_total', { network: 'attester' }) === 1,
  );
  const signals = { network: 'attester', source: 'attester-1', via: 'signal' };
  expect(sum(scraped, 'settle_evidence_total', { ...signals, kind: 'finalized' })).toBe(2);
  expect(sum(scraped, 'settle_evidence_total', { ...signals, kind: 'reorged' })).toBe(1);
  // One observation per state left, and the orphaned final among them.
  const transitions = result.steps[0].transitions;
  expect(transitions.map((t) => t.from)).toContain('final');
  expect(sum(scraped, 'settle_step_state_seconds_count', { network: 'attester' })).toBe(transitions.length);
  expect(sum(scraped, 'settle_step_state_seconds_count', { network: 'attester', state: 'final' })).toBe(
    transitions.filter((t) => t.from === 'final').length,
  );
}, 120_000);

it('the watcher serves its metrics, and the worker counts its signals by source', async () => {
  const watcher = start('workers/watcher/main.ts', {
    SETTLE_WATCH_METRICS_PORT: '0',
    SETTLE_WATCH_REFRESH: '1s',
    SETTLE_WATCH_METRICS_LOG_EVERY: 'off',
  });
  const watcherMetrics = await printed(watcher, /"metrics":"(http:\/\/127\.0\.0\.1:\d+\/metrics)"/, 'the watcher');
  const transfer = await startAction(bridgePlan(local, uniqueId('watched'), { deadline: '5m' }));
  expect((await settled(transfer)).phase).toBe('completed');

  const watched = await scrapeUntil(
    watcherMetrics,
    'the watcher to count its signals',
    (s) => sum(s, 'settle_watcher_signals_total', { network: 'chainB' }) > 0,
  );
  expect(sum(watched, 'settle_watcher_head_block', { network: 'chainA' })).toBeGreaterThan(0);
  expect(sum(watched, 'nodejs_heap_size_used_bytes')).toBeGreaterThan(0);
  keep('watcher', watched);
  const scraped = await scrapeUntil(
    workerMetrics,
    'the worker to count the watcher signals',
    (s) => sum(s, 'settle_evidence_total', { source: 'watcher:chainB', via: 'signal' }) > 0,
  );
  expect(sum(scraped, 'settle_evidence_total', { source: 'watcher:chainA', via: 'signal' })).toBeGreaterThan(0);
}, 240_000);

it('the API serves actions by phase, stuck actions and the nonce owners backlog from visibility, and its requests', async () => {
  // Held: an await step nobody reports. With no transition for over 3 s it is stuck.
  const held = await startAction({
    actionId: uniqueId('held'),
    steps: [{ id: 'attest', network: 'attester', operation: { kind: 'await' } }],
  });
  const read = await fetch(`${apiUrl}/v1/actions/${held.workflowId}`, {
    headers: { authorization: `Bearer ${TOKEN}` },
  });
  expect(read.status).toBe(200);

  const scraped = await scrapeUntil(
    apiMetrics,
    'the held action to count as stuck',
    (s) => sum(s, 'settle_actions_stuck', { phase: 'running' }) >= 1,
  );
  expect(sum(scraped, 'settle_actions_stuck_scan_complete')).toBe(1);
  expect(sum(scraped, 'settle_actions', { phase: 'running' })).toBeGreaterThanOrEqual(1);
  const completed = sum(scraped, 'settle_actions', { phase: 'completed' });
  // The bridge signer's owners on both chains (the transfers of the tests above), each holding its records until they
  // settle deep.
  const owners = scraped.series.filter((s) => s.name === 'settle_nonce_owner_next_nonce');
  expect(owners.length).toBeGreaterThanOrEqual(2);
  expect(owners.every((s) => s.value >= 1)).toBe(true);
  expect(scraped.series.filter((s) => s.name === 'settle_nonce_owner_backlog')).toHaveLength(owners.length);
  expect(
    sum(scraped, 'settle_api_requests_total', { method: 'GET', route: '/v1/actions/:id', status: '200' }),
  ).toBeGreaterThanOrEqual(1);
  expect(sum(scraped, 'nodejs_heap_size_used_bytes')).toBeGreaterThan(0);
  keep('api', scraped);

  // A transition un-sticks it.
  await held.signal(evidenceSignal, { step: 'attest', kind: 'finalized', source: 'attester-2' });
  await held.result();
  await scrapeUntil(
    apiMetrics,
    'the action to leave the stuck count, and to count as completed',
    (s) =>
      sum(s, 'settle_actions_stuck', { phase: 'running' }) === 0 &&
      sum(s, 'settle_actions', { phase: 'completed' }) === completed + 1,
  );
}, 120_000);
