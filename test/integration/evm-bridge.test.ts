/**
 * Bridge transfers against real hardhat chains and a real Temporal server: completion, a reorg on the source chain,
 * a mint that reverts and a missed deadline (both compensated by exactly one unlock).
 */
import type { WorkflowHandle } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Worker } from '@temporalio/worker';
import { createWalletClient, http, parseAbi } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { actionIdHash } from '../../networks/evm/templates';
import { burnAttestMint, type BridgeParams } from '../../client/plans';
import { DEV_KEYS, type LocalChains } from '../../devnet/chains';
import { buildNetworks } from '../../networks/load';
import { evidenceSignal, statusQuery } from '../../contract/messages';
import type { ActionStatus } from '../../contract/status';
import { SettleNetworks, SettlePhase, SettleRefs, SettleType } from '../../contract/search-attributes';
import {
  BRIDGE,
  bridgePlan,
  ChainProbe,
  startTestChains,
  USER,
  waitFor,
  writeTestNetworksFile,
} from '../support/chains';
import { recordHistory } from '../support/histories';
import { createTestWorker, startTestServer, uniqueId } from '../support/temporal';

let env: TestWorkflowEnvironment;
let local: LocalChains;
let probe: ChainProbe;
let worker: Worker;
let running: Promise<void>;
const taskQueue = uniqueId('evm-bridge');

beforeAll(async () => {
  [env, local] = await Promise.all([startTestServer(), startTestChains()]);
  probe = new ChainProbe(local);
  const { file } = writeTestNetworksFile(local.chains, { confirmations: 2, pollIntervalMs: 500 });
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
  await Promise.all([env?.teardown(), local?.stop()]);
}, 60_000);

function plan(actionId: string, overrides: Partial<BridgeParams> = {}) {
  return bridgePlan(local, actionId, overrides);
}

async function start(spec: ReturnType<typeof plan>) {
  return env.client.workflow.start('crossNetworkAction', { taskQueue, workflowId: spec.actionId, args: [spec] });
}

/** Queries the status until the action settles, checking at every observation that it claims no more than the chain. */
async function watch(handle: WorkflowHandle, onStatus: (status: ActionStatus) => Promise<void> = async () => {}) {
  const seen: ActionStatus[] = [];
  const status = await waitFor(
    'the action to settle',
    async () => {
      const current = await handle.query(statusQuery);
      seen.push(current);
      await onStatus(current);
      return ['completed', 'compensated', 'failed', 'needs_action'].includes(current.phase) ? current : undefined;
    },
    120_000,
    200,
  );
  return { status, seen };
}

async function assertTruthful(status: ActionStatus) {
  const lock = status.steps.find((s) => s.id === 'lock')!;
  const mint = status.steps.find((s) => s.id === 'mint')!;
  if (mint.state !== 'waiting' && mint.state !== 'skipped') expect(lock.state).toBe('final');
  if (status.phase === 'completed') expect([lock.state, mint.state]).toEqual(['final', 'final']);
  expect(status.progress.final).toBe(status.steps.filter((s) => s.state === 'final').length);
  if (lock.state === 'final' && lock.block && lock.ref) {
    const receipt = await probe.clients.chainA.getTransactionReceipt({ hash: lock.ref as `0x${string}` });
    const head = await probe.blockNumber('chainA');
    expect(receipt.blockHash).toBe(lock.block.hash);
    expect(head - receipt.blockNumber + 1n).toBeGreaterThanOrEqual(2n);
  }
}

it('moves the tokens: locked on chain A, the same amount minted on chain B, status and search attributes truthful', async () => {
  const actionId = uniqueId('xfer');
  const escrowBefore = await probe.balance('chainA', local.chains.chainA.contracts.escrow);
  const bridgeBefore = await probe.balance('chainA', BRIDGE);
  const userBefore = await probe.balance('chainB', USER);
  const handle = await start(plan(actionId));

  const { status, seen } = await watch(handle, assertTruthful);

  expect(status.phase).toBe('completed');
  expect(status.progress).toEqual({ total: 2, locallyConfirmed: 2, final: 2 });
  const states = new Set(seen.flatMap((s) => s.steps.map((step) => `${step.id}:${step.state}`)));
  expect(states).toContain('lock:final');
  expect(states).toContain('mint:waiting');
  expect(await probe.balance('chainA', local.chains.chainA.contracts.escrow)).toBe(escrowBefore + 1000n);
  expect(await probe.balance('chainA', BRIDGE)).toBe(bridgeBefore - 1000n);
  expect(await probe.balance('chainB', USER)).toBe(userBefore + 1000n);
  expect(await probe.events('chainA', 'Locked', actionId)).toHaveLength(1);
  const minted = await probe.events('chainB', 'Minted', actionId);
  expect(minted).toHaveLength(1);
  expect(minted[0].args).toMatchObject({ recipient: USER, amount: 1000n });
  const mint = status.steps.find((s) => s.id === 'mint')!;
  expect(mint.output).toMatchObject({ actionId: actionIdHash(actionId), amount: '1000', txHash: mint.ref });

  const attributes = await waitFor('search attributes to catch up', async () => {
    const description = await handle.describe();
    const phase = description.typedSearchAttributes.get(SettlePhase);
    return phase === 'completed' ? description.typedSearchAttributes : undefined;
  });
  expect(attributes.get(SettleRefs)).toEqual(expect.arrayContaining(status.steps.map((s) => s.ref)));
  expect(attributes.get(SettleType)).toBe('bridge-transfer');
  expect([...(attributes.get(SettleNetworks) ?? [])].sort()).toEqual(['chainA', 'chainB']);

  await recordHistory('evm-bridge-transfer.lean', handle);
  for await (const owner of env.client.workflow.list({ query: "WorkflowType = 'signerNonces'" })) {
    await recordHistory('signer-nonces.bounded', env.client.workflow.getHandle(owner.workflowId));
    break;
  }
});

it('moves the lock back when chain A reorgs it away, rebroadcasts the same transaction, and ends with one lock and one mint', async () => {
  const actionId = uniqueId('reorg');
  const snapshot = await probe.snapshot('chainA');
  const handle = await start(plan(actionId, { sourceFinality: { confirmations: 8 } }));
  const included = await waitFor('the lock to be included', async () => {
    const status = await handle.query(statusQuery);
    const lock = status.steps.find((s) => s.id === 'lock')!;
    return lock.state === 'included' ? lock : undefined;
  });
  expect(await probe.events('chainA', 'Locked', actionId)).toHaveLength(1);

  await probe.revert('chainA', snapshot);
  expect(await probe.events('chainA', 'Locked', actionId)).toHaveLength(0);

  const { status } = await watch(handle);
  expect(status.phase).toBe('completed');
  const lock = status.steps.find((s) => s.id === 'lock')!;
  const movedBack = lock.transitions.find((t) => t.from === 'included' && t.to === 'submitted');
  expect(movedBack).toBeDefined();
  // The same signed transaction came back: one ref, now in another block.
  expect(lock.ref).toBe(included.ref);
  expect(lock.block?.hash).not.toBe(included.block?.hash);
  expect(await probe.events('chainA', 'Locked', actionId)).toHaveLength(1);
  expect(await probe.events('chainB', 'Minted', actionId)).toHaveLength(1);
});

it('compensates a mint that reverts: the escrow unlocks once and the action ends compensated', async () => {
  const actionId = uniqueId('revert');
  // Someone already minted for this action id on chain B: the bridge's mint must revert (AlreadyMinted).
  const wallet = createWalletClient({
    account: privateKeyToAccount(DEV_KEYS.bridge),
    transport: http(local.chains.chainB.rpcUrl),
  });
  const hash = await wallet.writeContract({
    chain: null,
    address: local.chains.chainB.contracts.minter,
    abi: parseAbi(['function mint(bytes32 actionId, address recipient, uint256 amount)']),
    functionName: 'mint',
    args: [actionIdHash(actionId), USER, 1n],
  });
  await probe.clients.chainB.waitForTransactionReceipt({ hash, pollingInterval: 200 });
  const escrowBefore = await probe.balance('chainA', local.chains.chainA.contracts.escrow);

  const { status } = await watch(await start(plan(actionId)));

  expect(status.phase).toBe('compensated');
  const [lock, mint] = status.steps;
  expect(mint).toMatchObject({ state: 'failed', error: expect.stringContaining('AlreadyMinted') });
  expect(lock).toMatchObject({ state: 'compensated', compensation: { state: 'final' } });
  expect(await probe.events('chainA', 'Locked', actionId)).toHaveLength(1);
  expect(await probe.events('chainA', 'Unlocked', actionId)).toHaveLength(1);
  expect(await probe.events('chainB', 'Minted', actionId)).toHaveLength(1); // only the one minted beforehand
  expect(await probe.balance('chainA', local.chains.chainA.contracts.escrow)).toBe(escrowBefore);
});

it('unlocks once when the deadline passes before the mint can happen, and ends compensated', async () => {
  const actionId = uniqueId('late');
  const escrowBefore = await probe.balance('chainA', local.chains.chainA.contracts.escrow);

  const { status } = await watch(
    await start(plan(actionId, { deadline: '3s', sourceFinality: { confirmations: 12 } })),
  );

  expect(status.phase).toBe('compensated');
  expect(status.reason ?? '').toMatch(/deadline/);
  const [lock, mint] = status.steps;
  expect(lock.state).toBe('compensated');
  expect(mint.state).toBe('skipped');
  expect(await probe.events('chainA', 'Locked', actionId)).toHaveLength(1);
  expect(await probe.events('chainA', 'Unlocked', actionId)).toHaveLength(1);
  expect(await probe.events('chainB', 'Minted', actionId)).toHaveLength(0);
  expect(await probe.balance('chainA', local.chains.chainA.contracts.escrow)).toBe(escrowBefore);
});

it('burns, waits for the attestation, then mints with the burn message id and the attestation', async () => {
  const actionId = uniqueId('bam');
  const spec = burnAttestMint({
    actionId,
    from: 'chainA',
    to: 'chainB',
    token: { escrow: local.chains.chainA.contracts.escrow, minter: local.chains.chainB.contracts.minter },
    amount: '250',
    recipient: USER,
  });
  const handle = await start(spec);
  const burn = await waitFor('the burn to be final', async () => {
    const status = await handle.query(statusQuery);
    return status.steps[0].state === 'final' ? status.steps[0] : undefined;
  });
  const messageId = burn.output?.messageId;
  expect(messageId).toMatch(/^0x[0-9a-f]{64}$/);
  await handle.signal(evidenceSignal, {
    step: 'attest',
    kind: 'finalized',
    output: { attestation: '0xa77e57' },
    source: 'attester:test',
  });

  const { status } = await watch(handle);
  expect(status.phase).toBe('completed');
  const minted = await probe.events('chainB', 'Minted', actionId);
  expect(minted).toHaveLength(1);
  expect(minted[0].args).toMatchObject({ recipient: USER, amount: 250n, messageId });
});
