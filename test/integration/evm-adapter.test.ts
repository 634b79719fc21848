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
import { DEV_KEYS, deployBridge, rpc, startChain, type BridgeContracts, type RunningChain } from '../../devnet/chains';
import { LOCK_FUNCTION, MINT_FUNCTION } from '../../client/plans';
import { BRIDGE, freePort, USER } from '../support/chains';
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
