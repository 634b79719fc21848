/**
 * The EVM adapter alone against a hardhat chain whose blocks the test mines by hand: idempotent submission, nonce
 * races, gap repair, fee bumps, dead transactions, reverts, and what `check` reports.
 */
import { ApplicationFailure } from '@temporalio/common';
import { createWalletClient, http, type Hex } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { EvmAdapter } from '../../networks/evm/adapter';
import { memoryNonceOwners, type NonceOwner, type NonceOwnerFactory } from '../../networks/evm/nonce-owner';
import type { SubmitStepInput } from '../../contract/activity-io';
import {
  DEV_KEYS,
  deployBridge,
  localBridgePolicy,
  rpc,
  startChain,
  type BridgeContracts,
  type RunningChain,
} from '../../devnet/chains';
import { LOCK_FUNCTION, MINT_FUNCTION, UNLOCK_FUNCTION } from '../../client/plans';
import { BRIDGE, freePort, USER, waitFor } from '../support/chains';
import { uniqueId } from '../support/temporal';

let chain: RunningChain;
let contracts: BridgeContracts;

beforeAll(async () => {
  chain = await startChain({ name: 'chainA', chainId: 31337, port: await freePort(), blockTimeMs: 1000 });
  contracts = await deployBridge(chain);
  await rpc(chain.rpcUrl, 'evm_setAutomine', [false]);
}, 120_000);

afterAll(async () => {
  await chain?.stop();
});

function adapter(options: { feeBumpAfterMs?: number; nonceOwners?: NonceOwnerFactory } = {}) {
  return new EvmAdapter({
    network: 'chainA',
    chainId: 31337,
    rpcUrls: [chain.rpcUrl],
    send: true,
    signers: { bridge: DEV_KEYS.bridge },
    policies: { bridge: localBridgePolicy(contracts) },
    nonceOwners: memoryNonceOwners(),
    ...options,
  });
}

function lock(actionId: string, amount = '10', attempt = 1): SubmitStepInput {
  return {
    actionId,
    stepId: 'lock',
    network: 'chainA',
    attempt,
    for: 'operation',
    operation: {
      kind: 'evm.call',
      signer: 'bridge',
      to: contracts.escrow,
      function: LOCK_FUNCTION,
      args: ['{{action.idHash}}', USER, amount],
    },
    context: { actionId, steps: {} },
  };
}

const mine = () => rpc(chain.rpcUrl, 'evm_mine');
const nonce = (tag: 'latest' | 'pending' = 'latest') =>
  rpc<string>(chain.rpcUrl, 'eth_getTransactionCount', [BRIDGE, tag]).then(Number);
const pendingCount = () =>
  rpc<{ transactions: unknown[] }>(chain.rpcUrl, 'eth_getBlockByNumber', ['pending', false]).then(
    (b) => b.transactions.length,
  );

it('signs one transaction per step attempt: retries, even concurrent ones, rebroadcast it', async () => {
  const evm = adapter();
  const before = await nonce();
  const input = lock(uniqueId('idem'));
  const [a, b] = await Promise.all([evm.submit(input), evm.submit(input)]);
  const c = await evm.submit(input);
  expect(new Set([a.ref, b.ref, c.ref]).size).toBe(1);
  await mine();
  // Mined: a retry now meets "nonce too low" for its own transaction, which is success.
  expect((await evm.submit(input)).ref).toBe(a.ref);
  expect(await nonce()).toBe(before + 1);
  const observations = await evm.check({ ...input, refs: [a.ref], finality: { confirmations: 1 } });
  expect(observations).toEqual([
    expect.objectContaining({
      kind: 'confirmed',
      ref: a.ref,
      confirmations: 1,
      output: expect.objectContaining({ amount: '10' }),
    }),
  ]);
});

it('looks for a transaction it just sent in a block when asked, and reports what it saw with the result', async () => {
  const evm = adapter();
  const observe = { finality: { confirmations: 2 }, forMs: 60_000 };
  // Nothing is mined until the submission has returned its transaction to the node: mined once it is pending.
  const pending = evm.submit({ ...lock(uniqueId('observed')), observe });
  await waitFor('the lock to be pending', async () => (await pendingCount()) > 0);
  await mine();
  const result = await pending;
  expect(result.observations).toEqual([
    expect.objectContaining({ kind: 'confirmed', ref: result.ref, confirmations: 1, block: expect.anything() }),
  ]);
  // Not mined within the time asked: the result says only that it was sent.
  const unseen = await evm.submit({ ...lock(uniqueId('unseen')), observe: { ...observe, forMs: 100 } });
  expect(unseen.observations).toBeUndefined();
  // Without asking, nothing is looked for.
  const plain = await evm.submit(lock(uniqueId('plain')));
  await mine();
  expect(plain.observations).toBeUndefined();
});

it('gives racing attempts of one signer distinct consecutive nonces', async () => {
  const evm = adapter();
  const before = await nonce('pending');
  const results = await Promise.all([1, 2, 3, 4].map((i) => evm.submit(lock(uniqueId(`race${i}`)))));
  const nonces = results.map((r) => r.output!.nonce as number).sort((x, y) => x - y);
  expect(nonces).toEqual([before, before + 1, before + 2, before + 3]);
  await mine();
  expect(await nonce()).toBe(before + 4);
});

it('repairs a nonce gap: a dropped transaction below is rebroadcast before the next one', async () => {
  const evm = adapter();
  const first = await evm.submit(lock(uniqueId('gap1')));
  const second = await evm.submit(lock(uniqueId('gap2')));
  await rpc(chain.rpcUrl, 'hardhat_dropTransaction', [first.ref]);
  expect(await evm.check({ ...lock('x'), refs: [first.ref], finality: { confirmations: 1 } })).toEqual([
    expect.objectContaining({ kind: 'dropped', ref: first.ref }),
  ]);
  const third = await evm.submit(lock(uniqueId('gap3')));
  await mine();
  for (const ref of [first.ref, second.ref, third.ref]) {
    const receipt = await rpc<{ status: string } | null>(chain.rpcUrl, 'eth_getTransactionReceipt', [ref]);
    expect(receipt?.status).toBe('0x1');
  }
});

it('replaces a transaction pending too long with the same nonce and higher fees; one of them is mined', async () => {
  const evm = adapter({ feeBumpAfterMs: 0 });
  const input = lock(uniqueId('bump'));
  const first = await evm.submit(input);
  const bumped = await evm.submit(input);
  expect(bumped.ref).not.toBe(first.ref);
  expect(bumped.output).toMatchObject({ nonce: first.output!.nonce, replaces: first.ref });
  expect(await pendingCount()).toBe(1);
  await mine();
  const observations = await evm.check({ ...input, refs: [first.ref, bumped.ref], finality: { confirmations: 1 } });
  expect(observations).toEqual([expect.objectContaining({ kind: 'confirmed', ref: bumped.ref })]);
});

it('signs again with a new nonce only once its recorded nonce was used by another transaction deep enough', async () => {
  const evm = adapter();
  const input = lock(uniqueId('dead'));
  const first = await evm.submit(input);
  await rpc(chain.rpcUrl, 'hardhat_dropTransaction', [first.ref]);
  // Someone else uses the bridge key with that nonce.
  const wallet = createWalletClient({ account: privateKeyToAccount(DEV_KEYS.bridge), transport: http(chain.rpcUrl) });
  await wallet.sendTransaction({ chain: null, to: USER, value: 1n, nonce: first.output!.nonce as number });
  await mine();
  // One block deep, a lagging backend could still be hiding our own transaction: nothing is signed, retry later.
  const pendingBefore = await nonce('pending');
  await expect(evm.submit(input)).rejects.toThrow(/waiting before signing it again/);
  expect(await nonce('pending')).toBe(pendingBefore);
  await rpc(chain.rpcUrl, 'hardhat_mine', ['0xc']);
  const again = await evm.submit(input);
  expect(again.ref).not.toBe(first.ref);
  await mine();
  const observations = await evm.check({ ...input, refs: [first.ref, again.ref], finality: { confirmations: 1 } });
  expect(observations).toEqual([expect.objectContaining({ kind: 'confirmed', ref: again.ref })]);
});

it('takes the mined version as the result when the original of a fee bump is mined instead of the bump', async () => {
  const owners = memoryNonceOwners();
  let owner: NonceOwner | undefined;
  const evm = adapter({ feeBumpAfterMs: 0, nonceOwners: (scope, address) => (owner = owners(scope, address)) });
  const input = lock(uniqueId('bump-raced'));
  const first = await evm.submit(input);
  const bumped = await evm.submit(input);
  expect(bumped.ref).not.toBe(first.ref);
  // The original wins the race: the bump leaves the mempool, the original is mined.
  const at = first.output!.nonce as number;
  const [record] = await owner!.between(at, at + 1);
  await rpc(chain.rpcUrl, 'hardhat_dropTransaction', [bumped.ref]);
  await rpc(chain.rpcUrl, 'eth_sendRawTransaction', [record.txs[0].raw]);
  await mine();
  const result = await evm.submit(input);
  expect(result.ref).toBe(first.ref);
  expect(result.output).toMatchObject({ txHash: first.ref, nonce: first.output!.nonce });
});

it('fails a reverting call before signing, non-retryably, with the decoded reason', async () => {
  const evm = adapter();
  const before = await nonce('pending');
  const input = lock(uniqueId('revert'), '0');
  await expect(evm.submit(input)).rejects.toMatchObject({
    type: 'ExecutionReverted',
    nonRetryable: true,
    message: 'execution reverted: ZeroAmount()',
  });
  // The escrow has no mint: the call reverts without data, still a non-retryable failure.
  const wrong = { ...input, operation: { ...input.operation, function: MINT_FUNCTION } } as SubmitStepInput;
  await expect(evm.submit(wrong)).rejects.toBeInstanceOf(ApplicationFailure);
  expect(await nonce('pending')).toBe(before);
});

it('reports a known block that is no longer canonical as reorged', async () => {
  const evm = adapter();
  const input = lock(uniqueId('orphan'));
  const { ref } = await evm.submit(input);
  await mine();
  const stale = { number: '1', hash: `0x${'ee'.repeat(32)}` as Hex };
  const observations = await evm.check({ ...input, refs: [ref], finality: { confirmations: 1 }, knownBlock: stale });
  expect(observations.map((o) => o.kind)).toEqual(['reorged', 'confirmed']);
  expect(observations[0].block).toEqual(stale);
});

describe('the signing policy, at the last moment before signing', () => {
  const pending = () => nonce('pending');

  it('signs nothing for a call the policy forbids, and fails it non-retryably naming the rule', async () => {
    const evm = adapter();
    const before = await pending();
    const input = lock(uniqueId('forbidden'));
    const transfer = {
      ...input,
      operation: {
        ...input.operation,
        to: contracts.token,
        function: 'function transfer(address to, uint256 amount)',
        args: [USER, '1'],
      },
    } as SubmitStepInput;
    await expect(evm.submit(transfer)).rejects.toMatchObject({
      type: 'PolicyViolation',
      nonRetryable: true,
      message: `policy: bridge on chainA may not call ${contracts.token}:transfer(address,uint256) (the contract is not in its policy)`,
    });
    await expect(evm.submit(lock(uniqueId('absurd'), (10n ** 30n).toString()))).rejects.toMatchObject({
      type: 'PolicyViolation',
      message: 'policy: lock amount 10^30 is over the cap 1000000 for bridge on chainA',
    });
    expect(await pending()).toBe(before);
  });

  it('holds a call whose budget is spent, signing nothing, until its room comes back', async () => {
    const policy = localBridgePolicy(contracts);
    const lockRule = {
      function: LOCK_FUNCTION,
      amount: { arg: 'amount', max: '100', budget: { limit: '25', window: 1 } },
    };
    policy.contracts[contracts.escrow].functions = [lockRule];
    const evm = new EvmAdapter({
      network: 'chainA',
      chainId: 31337,
      rpcUrls: [chain.rpcUrl],
      send: true,
      signers: { bridge: DEV_KEYS.bridge },
      policies: { bridge: policy },
      nonceOwners: memoryNonceOwners(),
    });
    const first = await evm.submit(lock(uniqueId('budget1'), '20'));
    const before = await pending();
    const held = lock(uniqueId('budget2'), '10');
    const error = await evm.submit(held).catch((e: unknown) => e as ApplicationFailure);
    expect(error).toBeInstanceOf(ApplicationFailure);
    expect(error).toMatchObject({ type: 'BudgetExhausted', nonRetryable: false });
    expect((error as Error).message).toMatch(
      /^waiting for budget: escrow 0x[0-9a-f]{40}:lock\(bytes32,address,uint256\) for bridge on chainA has 20 of 25 per 1ms spent or pending, and this call needs 10; it fits once 1 transaction\(s\) still pending/,
    );
    expect(await pending()).toBe(before);
    // The first lock is mined and settled deep: its room comes back (its window is long over), and the step resumes.
    for (let i = 0; i < 14; i++) await mine();
    const resumed = await evm.submit(held);
    expect(resumed.ref).not.toBe(first.ref);
    expect(await pending()).toBe(before + 1);
    await mine();
  });

  it('checks a re-sign at a new nonce again, but never a fee bump of what is already recorded', async () => {
    const owners = memoryNonceOwners();
    const input = lock(uniqueId('policy-changed'));
    const first = await adapter({ nonceOwners: owners, feeBumpAfterMs: 0 }).submit(input);
    // The deployment now allows no lock at all.
    const strict = localBridgePolicy(contracts);
    strict.contracts[contracts.escrow].functions = [{ function: UNLOCK_FUNCTION }];
    const restricted = new EvmAdapter({
      network: 'chainA',
      chainId: 31337,
      rpcUrls: [chain.rpcUrl],
      send: true,
      signers: { bridge: DEV_KEYS.bridge },
      policies: { bridge: strict },
      nonceOwners: owners,
      feeBumpAfterMs: 0,
    });
    // A fee bump of the recorded lock is the same effect: replaced, not refused.
    const bumped = await restricted.submit(input);
    expect(bumped.output).toMatchObject({ nonce: first.output!.nonce, replaces: first.ref });
    // Its nonce goes to another transaction, deep: signing the lock again would be a new effect, and is refused.
    await rpc(chain.rpcUrl, 'hardhat_dropTransaction', [bumped.ref]);
    const wallet = createWalletClient({ account: privateKeyToAccount(DEV_KEYS.bridge), transport: http(chain.rpcUrl) });
    await wallet.sendTransaction({ chain: null, to: USER, value: 1n, nonce: first.output!.nonce as number });
    for (let i = 0; i < 14; i++) await mine();
    const before = await pending();
    await expect(restricted.submit(input)).rejects.toMatchObject({
      type: 'PolicyViolation',
      message: expect.stringMatching(/may not call 0x[0-9a-fA-F]{40}:lock\(bytes32,address,uint256\)/),
    });
    expect(await pending()).toBe(before);
  });
});
