/**
 * The Web UI in a real browser: a Temporal dev server with its UI (as `npm run temporal` starts it), a worker process,
 * a bridge transfer on two hardhat chains; headless Chromium (Debian's, driven by playwright-core) finds the run by
 * `SettlePhase` and shows its route summary, its activities' and timers' summaries, and the steps table (current
 * details). A screenshot of the run's page is saved in the test artefacts (SETTLE_TEST_ARTIFACTS, default
 * `test-results/`), under `web-ui/`.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext, type Frame, type Locator, type Page } from 'playwright-core';
import { SettleClient } from '../../client/settle-client';
import type { ActionStatus } from '../../contract/status';
import type { LocalChains } from '../../devnet/chains';
import { startTemporalServer, type TemporalServer } from '../../devnet/temporal-server';
import { bridgePlan, freePort, startTestChains, waitFor, writeTestNetworksFile } from '../support/chains';
import { spawnTsx, waitUntil, type Spawned } from '../support/processes';
import { uniqueId } from '../support/temporal';

const CHROMIUM = process.env.SETTLE_CHROMIUM ?? '/usr/bin/chromium';
const ARTIFACTS = path.resolve(process.env.SETTLE_TEST_ARTIFACTS ?? 'test-results', 'web-ui');
const taskQueue = uniqueId('web-ui');

let local: LocalChains;
let server: TemporalServer;
let worker: Spawned | undefined;
let settle: SettleClient | undefined;
let browser: BrowserContext | undefined;
const dirs: string[] = [];

function tempDir(prefix: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  dirs.push(dir);
  return dir;
}

beforeAll(async () => {
  const [temporalPort, uiPort] = [await freePort(), await freePort()];
  [local, server] = await Promise.all([
    startTestChains(),
    startTemporalServer(
      {
        SETTLE_TEMPORAL_IP: '127.0.0.1',
        SETTLE_TEMPORAL_PORT: temporalPort,
        SETTLE_TEMPORAL_UI_PORT: uiPort,
        SETTLE_STATE_DIR: tempDir('settle-web-ui-'),
        TEMPORAL_NAMESPACE: 'default',
      },
      { stdio: 'ignore' },
    ),
  ]);
  const { configPath } = writeTestNetworksFile(local.chains, { confirmations: 2, pollIntervalMs: 500 });
  const connection = { TEMPORAL_ADDRESS: server.address, TEMPORAL_NAMESPACE: 'default', SETTLE_TASK_QUEUE: taskQueue };
  worker = spawnTsx('workers/worker/main.ts', [], {
    ...connection,
    SETTLE_CONFIG: configPath,
    SETTLE_LOG_LEVEL: 'WARN',
  });
  await waitUntil(
    () => {
      if (worker!.child.exitCode !== null) throw new Error(`the worker exited:\n${worker!.output()}`);
      return worker!.output().includes('settle worker:');
    },
    90_000,
    'the worker',
  );
  settle = await SettleClient.connect({ env: connection });
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await settle?.close();
  if (worker && worker.child.exitCode === null && worker.child.signalCode === null) {
    worker.child.kill('SIGTERM');
    const timer = setTimeout(() => worker!.child.kill('SIGKILL'), 10_000);
    await worker.exited;
    clearTimeout(timer);
  }
  await Promise.all([server?.stop(), local?.stop()]);
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
}, 60_000);

/**
 * Waits until a visible element in the page or one of its frames matches (the UI loads its data after the page, and
 * renders markdown, the summary and current details, in sandboxed iframes).
 */
async function found(page: Page, what: string, locate: (frame: Frame) => Locator, timeout = 30_000): Promise<Locator> {
  return waitFor(
    what,
    async () => {
      for (const frame of page.frames()) {
        const match = locate(frame).filter({ visible: true }).first();
        // A frame the UI replaced while it was looked in is looked in again on the next round.
        if ((await match.count().catch(() => 0)) > 0) return match;
      }
      return undefined;
    },
    timeout,
  );
}

const shows = (page: Page, text: string) => found(page, `the page to show "${text}"`, (f) => f.getByText(text));

it('finds a run by SettlePhase and shows its route, activity and timer summaries, and the steps table', async () => {
  const spec = bridgePlan(local, uniqueId('ui-transfer'), { deadline: '5m' });
  await settle!.start(spec);
  const status = await waitFor(
    'the transfer to complete',
    async () => {
      const current = await settle!.status(spec.actionId);
      return ['completed', 'compensated', 'failed', 'needs_action'].includes(current.phase) ? current : undefined;
    },
    150_000,
  );
  expect(status.phase).toBe('completed');

  // A fresh profile each run: nothing cached from an earlier one.
  browser = await chromium.launchPersistentContext(tempDir('settle-chromium-'), {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1600, height: 1000 },
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  const page = browser.pages()[0] ?? (await browser.newPage());
  mkdirSync(ARTIFACTS, { recursive: true });
  rmSync(path.join(ARTIFACTS, 'failure.png'), { force: true });
  try {
    await checkRun(page, spec, status);
  } catch (error) {
    // What the browser showed when it failed, for whoever reads the failure.
    await page.screenshot({ path: path.join(ARTIFACTS, 'failure.png'), fullPage: true }).catch(() => undefined);
    throw error;
  }
}, 300_000);

async function checkRun(page: Page, spec: ReturnType<typeof bridgePlan>, status: ActionStatus): Promise<void> {
  // The list of runs, filtered by the search attribute the workflow keeps current.
  const query = 'SettlePhase = "completed"';
  await page.goto(`${server.uiUrl}/namespaces/default/workflows?query=${encodeURIComponent(query)}`);
  const row = page.getByRole('link', { name: spec.actionId, exact: true });
  await row.first().waitFor({ state: 'visible', timeout: 60_000 });
  await page.screenshot({ path: path.join(ARTIFACTS, 'runs-by-phase.png') });
  await row.first().click();

  // The run's history: activities and timers named by step and network.
  await shows(page, 'submit lock on chainA (attempt 1)');
  await shows(page, 'submit mint on chainB (attempt 1)');
  await shows(page, 'wait for evidence: lock on chainA');
  await shows(page, 'check mint on chainB');
  await page.screenshot({ path: path.join(ARTIFACTS, 'history.png'), fullPage: true });

  // Its user metadata: the static summary (the route) and the current details (the steps table).
  await page.getByText('User Metadata', { exact: true }).first().click();
  await shows(page, 'bridge-transfer: lock@chainA → mint@chainB');
  await shows(page, 'Current Details');
  // The progress line; the markdown renderer sets `2/2` as a fraction (a fraction slash between the numbers).
  const progress = (await (await shows(page, 'locally confirmed')).innerText()).trim();
  const { locallyConfirmed, final, total } = status.progress;
  expect(progress).toMatch(
    new RegExp(`^completed · ${locallyConfirmed}\\D{0,3}${total} locally confirmed · ${final}\\D{0,3}${total} final$`),
  );
  for (const step of status.steps) {
    expect(step.state).toBe('final');
    const row = await found(page, `the row of ${step.id}`, (f) => f.getByRole('row').filter({ hasText: step.ref! }));
    const cells = await row.getByRole('cell').allInnerTexts();
    expect(cells.slice(0, 4).map((c) => c.trim())).toEqual([step.id, step.network, 'final', step.ref]);
  }
  // The same summaries, listed beside the metadata.
  await shows(page, 'Events with Metadata');
  await shows(page, 'deadline of ' + spec.actionId);
  const screenshot = path.join(ARTIFACTS, 'user-metadata.png');
  await page.screenshot({ path: screenshot, fullPage: true });
  process.stdout.write(`web ui: screenshots of ${spec.actionId} saved in ${ARTIFACTS}\n`);
}
