/**
 * Exactly once for the whole life of an action, with the chain as the judge: native payments to fresh addresses
 * (no contract protects them against a second payment, so the recipient's balance is the ground truth), on a real
 * hardhat chain and a real Temporal server.
 */
import type { WorkflowHandle } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Worker } from '@temporalio/worker';
import { createPublicClient, http, type Hex, type PublicClient } from 'viem';
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts';
import type { ActionSpecInput } from '../../contract/action-spec';
import { cancelUpdate, retryStepUpdate, statusQuery } from '../../contract/messages';
import type { ActionStatus } from '../../contract/status';
import { rpc, type LocalChains } from '../../devnet/chains';
import { buildNetworks } from '../../networks/load';
import type { ContinuedAction } from '../../workflows/cross-network-action/workflow';
import { BRIDGE, RpcOutage, startTestChains, waitFor, writeTestNetworksFile } from '../support/chains';
import { recordHistory } from '../support/histories';
import { createTestWorker, startTestServer, uniqueId } from '../support/temporal';

const VALUE = 1_000_000_007n;

let env: TestWorkflowEnvironment;
let local: LocalChains;
let chainA: PublicClient;
let outage: RpcOutage;
let worker: Worker;
let running: Promise<void>;
const taskQueue = uniqueId('exactly-once');

beforeAll(async () => {
  [env, local] = await Promise.all([startTestServer(), startTestChains()]);
  chainA = createPublicClient({ transport: http(local.chains.chainA.rpcUrl) });
  const target = new URL(local.chains.chainA.rpcUrl);
  outage = new RpcOutage({ host: target.hostname, port: Number(target.port) });
  await outage.start();
  // The worker reaches chainA through a proxy the tests can take down; chainB directly.
  const { file } = writeTestNetworksFile(local.chains, {
    confirmations: 2,
    pollIntervalMs: 500,
    rpcUrls: { chainA: outage.url },
  });
  const deps = buildNetworks(
    file,
    { TEMPORAL_ADDRESS: env.address, TEMPORAL_NAMESPACE: 'default', SETTLE_TASK_QUEUE: taskQueue },
    { client: env.client },
  );
  worker = await createTestWorker(env, deps, { taskQueue });
  running = worker.run();
}, 180_000);

afterAll(async () => {
  if (worker?.getState() === 'RUNNING') worker.shutdown();
  await running?.catch(() => undefined);
  await outage?.stop();
  await Promise.all([env?.teardown(), local?.stop()]);
}, 60_000);

function freshAddress(): Hex {
  return privateKeyToAccount(generatePrivateKey()).address;
}

function payment(actionId: string, recipient: Hex, extra: Partial<ActionSpecInput> = {}): ActionSpecInput {
  return {
    actionId,
    type: 'payment',
    steps: [
      {
        id: 'pay',
        network: 'chainA',
        operation: { kind: 'evm.transfer', signer: 'bridge', to: recipient, value: VALUE.toString() },
      },
    ],
    ...extra,
  };
}

async function start(spec: ActionSpecInput, continued?: ContinuedAction) {
  return env.client.workflow.start('crossNetworkAction', {
    taskQueue,
    workflowId: spec.actionId,
    args: continued ? [spec, continued] : [spec],
  });
}

async function settled(handle: WorkflowHandle, timeoutMs = 120_000): Promise<ActionStatus> {
  return waitFor(
    'the action to settle',
    async () => {
      const status = await handle.query(statusQuery);
      return ['completed', 'compensated', 'failed', 'cancelled'].includes(status.phase) ? status : undefined;
    },
    timeoutMs,
    200,
  );
}

/** Waits until the signer has nothing in chainA's mempool: every transaction it sent is mined (or gone). */
async function mempoolDrained(): Promise<void> {
  await waitFor('the signer to have no pending transaction', async () => {
    const [pending, latest] = await Promise.all([
      chainA.getTransactionCount({ address: BRIDGE, blockTag: 'pending' }),
      chainA.getTransactionCount({ address: BRIDGE, blockTag: 'latest' }),
    ]);
    return pending === latest;
  });
}

async function pauseMining(): Promise<void> {
  await rpc(local.chains.chainA.rpcUrl, 'evm_setIntervalMining', [0]);
}

async function resumeMining(): Promise<void> {
  await rpc(local.chains.chainA.rpcUrl, 'evm_setIntervalMining', [local.chains.chainA.blockTimeMs]);
}

async function runIdOf(handle: WorkflowHandle): Promise<string> {
  return (await handle.describe()).runId;
}

describe('a retry while the first transaction is still live', () => {
  it('pays the recipient once when an operator retries a step whose payment sat in the mempool', async () => {
    const recipient = freshAddress();
    await pauseMining();
    let handle: WorkflowHandle;
    try {
      handle = await start(
        payment(uniqueId('retry-live'), recipient, {
          onDeadline: 'hold',
          steps: [
            {
              id: 'pay',
              network: 'chainA',
              timeout: '3s',
              operation: { kind: 'evm.transfer', signer: 'bridge', to: recipient, value: VALUE.toString() },
            },
          ],
        }),
      );
      await waitFor('the step to expire with its payment pending', async () => {
        const status = await handle.query(statusQuery);
        return status.phase === 'needs_action' && status.steps[0].state === 'expired' && status.steps[0].ref;
      });
      await handle.executeUpdate(retryStepUpdate, { args: [{ step: 'pay', reason: 'fee was too low' }] });
      await waitFor('the retry to be submitted', async () => {
        const step = (await handle.query(statusQuery)).steps[0];
        return step.attempt === 2 && ['submitted', 'included', 'final'].includes(step.state);
      });
    } finally {
      await resumeMining();
    }
    await mempoolDrained();
    expect(await chainA.getBalance({ address: recipient })).toBe(VALUE);
    expect((await settled(handle)).phase).toBe('completed');
    await recordHistory('retry-live-payment.exactly-once', handle);
  });
});

describe('compensation of a transaction still pending', () => {
  it('cancels a pending payment with a same-nonce no-op when the action is cancelled: nothing is paid', async () => {
    const recipient = freshAddress();
    const nonceBefore = await chainA.getTransactionCount({ address: BRIDGE, blockTag: 'latest' });
    await pauseMining();
    let handle: WorkflowHandle;
    try {
      handle = await start(payment(uniqueId('cancel-pending'), recipient));
      await waitFor('the payment to be pending', async () => (await handle.query(statusQuery)).steps[0].ref);
      const status = await handle.executeUpdate(cancelUpdate, { args: [{ reason: 'customer withdrew' }] });
      expect(status.phase).toBe('compensating');
      // The no-op replaces the payment in the mempool before any block is mined.
      await waitFor('the no-op to be sent', async () => (await handle.query(statusQuery)).steps[0].refs!.length === 2);
    } finally {
      await resumeMining();
    }
    const result = await settled(handle);
    await mempoolDrained();
    expect(await chainA.getBalance({ address: recipient })).toBe(0n);
    // One nonce used, by the no-op: settled under the owner's control, nothing left to rebroadcast.
    expect(await chainA.getTransactionCount({ address: BRIDGE, blockTag: 'latest' })).toBe(nonceBefore + 1);
    expect(result.phase).toBe('compensated');
    expect(result.steps[0]).toMatchObject({ state: 'failed', error: 'cancelled: a same-nonce no-op was mined' });
    await recordHistory('cancel-pending-payment.cancel-pending', handle);
    await recordHistory('cancel-pending-payment.noop-final', handle);
  });
});

describe('a new run that reuses an actionId', () => {
  it('pays its own recipient instead of adopting the earlier run’s transaction', async () => {
    const actionId = uniqueId('reused');
    const first = freshAddress();
    const second = freshAddress();
    expect((await settled(await start(payment(actionId, first)))).phase).toBe('completed');
    const again = await settled(await start(payment(actionId, second)));
    expect(again.phase).toBe('completed');
    await mempoolDrained();
    expect(await chainA.getBalance({ address: first })).toBe(VALUE);
    expect(await chainA.getBalance({ address: second })).toBe(VALUE);
  });
});

describe('continue-as-new with work in flight', () => {
  it('submits a step again after continuing as new while its submission was retrying an RPC outage', async () => {
    const recipient = freshAddress();
    await outage.down();
    let handle: WorkflowHandle;
    let firstRun: string;
    try {
      handle = await start(payment(uniqueId('can-submit'), recipient), { historyEventLimit: 20 });
      firstRun = await runIdOf(handle);
      await waitFor('the run to continue as new while submitting', async () => {
        const status = await handle.query(statusQuery);
        return (await runIdOf(handle)) !== firstRun && status.steps[0].state === 'submitting';
      });
    } finally {
      await outage.up();
    }
    expect((await settled(handle)).phase).toBe('completed');
    await mempoolDrained();
    expect(await chainA.getBalance({ address: recipient })).toBe(VALUE);
    // The run that continued as new in its submit pause, and the last run, which submitted again from the state.
    await recordHistory(
      'continue-as-new-in-submit-pause.exactly-once',
      env.client.workflow.getHandle(handle.workflowId, firstRun),
    );
    await recordHistory('continued-submission-completed.lean', handle);
  }, 300_000);

  it('follows a refund to the end after continuing as new during compensation', async () => {
    const recipient = freshAddress();
    const refund = freshAddress();
    // A low history limit makes every run continue as new as soon as it is idle past 20 events: with the refund's
    // submission retrying an outage, that happens while compensation is in flight.
    const handle = await start(
      {
        actionId: uniqueId('can-compensate'),
        type: 'payment-with-refund',
        steps: [
          {
            id: 'pay',
            network: 'chainA',
            operation: { kind: 'evm.transfer', signer: 'bridge', to: recipient, value: VALUE.toString() },
            compensation: { kind: 'evm.transfer', signer: 'bridge', to: refund, value: VALUE.toString() },
          },
          {
            id: 'confirm',
            network: 'partner',
            operation: { kind: 'await' },
            after: [{ step: 'pay', stage: 'final' }],
            timeout: '5s',
          },
        ],
      },
      { historyEventLimit: 20 },
    );
    await waitFor('the payment to be final', async () => (await handle.query(statusQuery)).steps[0].state === 'final');
    await outage.down();
    let compensatingRun: string;
    try {
      await waitFor('compensation to start', async () => (await handle.query(statusQuery)).phase === 'compensating');
      compensatingRun = await runIdOf(handle);
      await waitFor('the run to continue as new while compensating', async () => {
        const status = await handle.query(statusQuery);
        return (await runIdOf(handle)) !== compensatingRun && status.phase === 'compensating';
      });
    } finally {
      await outage.up();
    }
    expect((await settled(handle)).phase).toBe('compensated');
    await mempoolDrained();
    expect(await chainA.getBalance({ address: recipient })).toBe(VALUE);
    expect(await chainA.getBalance({ address: refund })).toBe(VALUE);
    await recordHistory(
      'continue-as-new-while-compensating.exactly-once',
      env.client.workflow.getHandle(handle.workflowId, compensatingRun),
    );
    await recordHistory('continued-compensation-compensated.exactly-once', handle);
  }, 300_000);
});
