/**
 * `npm run bench:cost`: history events and billable Temporal actions (Temporal Cloud's published rules) of a 2-step
 * action, completed (a) by 2 evidence signals per step and (b) by polling alone. Runs a real dev server and worker;
 * the networks are in-memory stubs, so only Temporal's side is measured.
 */
import type { History } from '@temporalio/common/lib/proto-utils';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, Runtime, Worker } from '@temporalio/worker';
import { createActivities } from '../activities';
import { ensureTemporalCli } from '../devnet/temporal-cli';
import { evidenceSignal } from '../contract/messages';
import type { ActionSpecInput } from '../contract/action-spec';
import { SETTLE_SEARCH_ATTRIBUTES } from '../contract/search-attributes';
import { networkInfo, refFor, StubAdapter } from '../test/support/stub-adapter';
import { billable } from './billable';
import { machineFacts, writeResults } from './support';
// The bundle the worker process builds (shared modules preloaded), as the tests run it.
import { workflowBundle } from '../test/support/temporal';

const LOCK = 'function lock(bytes32 id)';

function twoStepSpec(actionId: string): ActionSpecInput {
  return {
    actionId,
    type: 'bridge-transfer',
    steps: [lockStep('lock', 'chainA', 'a1'), lockStep('mint', 'chainB', 'b2', [{ step: 'lock', stage: 'final' }])],
  };
}

/** One `lock` call on a stub network (the contract at `0x<byte × 20>`), after `after`. */
function lockStep(id: string, network: string, addressByte: string, after?: { step: string; stage: 'final' }[]) {
  const to = `0x${addressByte.repeat(20)}`;
  const operation = { kind: 'evm.call' as const, signer: 'bridge', to, function: LOCK, args: ['{{action.idHash}}'] };
  return { id, network, operation, ...(after ? { after } : {}) };
}

/** Billable actions per Temporal Cloud's rules (bench/billable.ts), read off a closed run's history. */
export function billableActions(history: History): Record<string, number> {
  const actions = billable(history);
  const total = Object.values(actions).reduce((a, b) => a + b, 0);
  return { ...actions, total, 'history events': history.events?.length ?? 0 };
}

async function main(): Promise<void> {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const env = await TestWorkflowEnvironment.createLocal({
    server: {
      executable: { type: 'existing-path', path: await ensureTemporalCli() },
      ip: '127.0.0.1',
      searchAttributes: SETTLE_SEARCH_ATTRIBUTES,
    },
  });
  try {
    const results: Record<string, Record<string, number>> = {};
    for (const mode of ['signals', 'polling'] as const) {
      const pollIntervalMs = mode === 'signals' ? 60_000 : 500;
      const worker = await Worker.create({
        connection: env.nativeConnection,
        taskQueue: `bench-${mode}`,
        workflowBundle: await workflowBundle(),
        activities: createActivities({
          networks: {
            chainA: networkInfo('chainA', { pollIntervalMs, finality: { confirmations: 2 } }),
            chainB: networkInfo('chainB', { pollIntervalMs, finality: { confirmations: 2 } }),
          },
          adapters: { chainA: new StubAdapter('chainA'), chainB: new StubAdapter('chainB') },
        }),
      });
      const actionId = `cost-${mode}-${Date.now()}`;
      await worker.runUntil(async () => {
        const handle = await env.client.workflow.start('crossNetworkAction', {
          taskQueue: `bench-${mode}`,
          workflowId: actionId,
          args: [twoStepSpec(actionId)],
        });
        if (mode === 'signals') {
          for (const [step, n] of [
            ['lock', 1],
            ['mint', 2],
          ] as const) {
            const ref = refFor(actionId, step, 1);
            const block = { number: String(n), hash: `0x${String(n).repeat(64)}` };
            await waitForRef(handle, step);
            await handle.signal(evidenceSignal, { step, kind: 'included', ref, block, source: 'bench' });
            await handle.signal(evidenceSignal, {
              step,
              kind: 'confirmed',
              ref,
              block,
              confirmations: 2,
              source: 'bench',
            });
          }
        }
        await handle.result();
        results[mode] = billableActions(await handle.fetchHistory());
      });
    }
    console.log('2-step action (lock@chainA → final → mint@chainB), 2 confirmations each');
    console.table(results);
    const file = writeResults('cost', { benchmark: 'cost', machine: machineFacts(), results });
    process.stdout.write(`written to ${file}\n`);
  } finally {
    await env.teardown();
  }
}

async function waitForRef(handle: { query: (q: 'status') => Promise<unknown> }, step: string): Promise<void> {
  for (;;) {
    const status = (await handle.query('status')) as { steps: { id: string; ref?: string }[] };
    if (status.steps.find((s) => s.id === step)?.ref) return;
    await new Promise((r) => setTimeout(r, 50));
  }
}

if (require.main === module) {
  main().catch((error) => {
    console.error(error);
    process.exit(1);
  });
}
