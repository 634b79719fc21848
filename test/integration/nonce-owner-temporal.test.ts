/**
 * The nonce owners as they run in production: `signerNonces` workflows on their own task queue of a real Temporal
 * server (the worker process's two Workers), reached by the EVM adapter through a Temporal client, on a real hardhat
 * chain. Many submissions at once on one signer, two network entries for one chain, an owner kept under the old
 * scope, settling, and heartbeats.
 */
import { Client, Connection, defaultGrpcRetryOptions, makeGrpcRetryInterceptor } from '@temporalio/client';
import { MockActivityEnvironment, type TestWorkflowEnvironment } from '@temporalio/testing';
import { keccak256, type Hex } from 'viem';
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts';
import type { SubmitStepInput, SubmitStepResult } from '../../contract/activity-io';
import { DEV_KEYS, rpc, startChain, startIntervalMining, type RunningChain } from '../../devnet/chains';
import { EvmAdapter } from '../../networks/evm/adapter';
import { temporalNonceOwners, type NonceOwnerFactory } from '../../networks/evm/nonce-owner';
import type { SignerPolicyInput } from '../../networks/evm/signing-policy';
import { legacyNonceScope, nonceBookQuery, nonceScope, signerNoncesWorkflowId } from '../../workflows/signer-nonces';
import { startWorker, type RunningWorker } from '../../workers/worker/main';
import { parseWorkerConfig } from '../../workers/worker/config';
import { BRIDGE, freePort, waitFor } from '../support/chains';
import { createTestWorker, startTestServer, uniqueId } from '../support/temporal';

let env: TestWorkflowEnvironment;
let chain: RunningChain;
let worker: RunningWorker;
let owners: NonceOwnerFactory;
let genesis: Hex;
const taskQueue = uniqueId('nonces');

beforeAll(async () => {
  [env, chain] = await Promise.all([
    startTestServer(),
    freePort().then((port) => startChain({ name: 'chainA', chainId: 31337, port, blockTimeMs: 500 })),
  ]);
  await startIntervalMining(chain);
  genesis = (await rpc<{ hash: Hex }>(chain.rpcUrl, 'eth_getBlockByNumber', ['0x0', false])).hash;
  // The worker process's own wiring: actions on `taskQueue`, nonce owners on `<taskQueue>-nonces`.
  const config = parseWorkerConfig({ TEMPORAL_ADDRESS: env.address, SETTLE_TASK_QUEUE: taskQueue });
  expect(config.SETTLE_NONCE_TASK_QUEUE).toBe(`${taskQueue}-nonces`);
  worker = await startWorker(config, { networks: {}, adapters: {} });
  owners = temporalNonceOwners(env.client, config.SETTLE_NONCE_TASK_QUEUE);
}, 180_000);

afterAll(async () => {
  await worker?.shutdown().catch(() => undefined);
  await Promise.all([env?.teardown(), chain?.stop()]);
}, 60_000);

function adapter(
  network = 'chainA',
  nonceOwners = owners,
  policy: SignerPolicyInput = { native: { to: 'any', max: '1000' } },
) {
  return new EvmAdapter({
    network,
    chainId: 31337,
    rpcUrls: [chain.rpcUrl],
    send: true,
    signers: { bridge: DEV_KEYS.bridge },
    // Payments of a few wei to fresh addresses (the tests below), nothing else.
    policies: { bridge: policy },
    nonceOwners,
  });
}

function payment(actionId: string, to: Hex = privateKeyToAccount(generatePrivateKey()).address): SubmitStepInput {
  return {
    actionId,
    stepId: 'pay',
    network: 'chainA',
    attempt: 1,
    for: 'operation',
    operation: { kind: 'evm.transfer', signer: 'bridge', to, value: '1' },
    context: { actionId, steps: {} },
    nonceKey: `${actionId}/run-1/pay/1/operation`,
  };
}

const receipt = (hash: string) =>
  rpc<{ status: string; blockNumber: string } | null>(chain.rpcUrl, 'eth_getTransactionReceipt', [hash]);
const nonceOf = (tag: 'latest' | 'pending') =>
  rpc<string>(chain.rpcUrl, 'eth_getTransactionCount', [BRIDGE, tag]).then(Number);
const ownerId = () => signerNoncesWorkflowId(nonceScope(31337, genesis), BRIDGE);

async function allMined(refs: string[]): Promise<void> {
  await waitFor(`${refs.length} transactions to be mined`, async () => {
    const receipts = await Promise.all(refs.map(receipt));
    return receipts.every((r) => r?.status === '0x1');
  });
}

it('gives twenty concurrent submissions on one signer distinct consecutive nonces, and all are mined', async () => {
  const evm = adapter();
  const before = await nonceOf('pending');
  const results = await Promise.all(Array.from({ length: 20 }, (_, i) => evm.submit(payment(uniqueId(`crowd${i}`)))));
  const nonces = results.map((r) => r.output!.nonce as number).sort((a, b) => a - b);
  expect(nonces).toEqual(Array.from({ length: 20 }, (_, i) => before + i));
  await allMined(results.map((r) => r.ref));
  // One owner for the signer on this chain, on the owners' own task queue.
  const description = await env.client.workflow.getHandle(ownerId()).describe();
  expect(description.taskQueue).toBe(`${taskQueue}-nonces`);
});

it('gives two network entries for one chain one owner: their submissions never share a nonce', async () => {
  const [a, b] = [adapter('chainA'), adapter('chainA-archive')];
  const before = await nonceOf('pending');
  const results = await Promise.all(
    Array.from({ length: 6 }, (_, i) => (i % 2 ? a : b).submit(payment(uniqueId(`twin${i}`)))),
  );
  const nonces = results.map((r) => r.output!.nonce as number).sort((x, y) => x - y);
  expect(nonces).toEqual(Array.from({ length: 6 }, (_, i) => before + i));
  await allMined(results.map((r) => r.ref));
});

it('records a first submission with one update, no lookup, and falls back to the lookup when its guess is stale', async () => {
  const calls: string[] = [];
  const counting: NonceOwnerFactory = (scope, address, options) => {
    const owner = owners(scope, address, options);
    return {
      ...owner,
      lookup: (input) => (calls.push('lookup'), owner.lookup(input)),
      record: (input) => (calls.push('record'), owner.record(input)),
    };
  };
  const evm = adapter('chainA', counting);
  const first = new MockActivityEnvironment({ attempt: 1 });
  const submit = (id: string, env = first) =>
    env.run(() => evm.submit({ ...payment(uniqueId(id)), fresh: true })) as Promise<SubmitStepResult>;
  const before = await nonceOf('pending');
  // This process has not recorded with the owner yet: it looks the key up first.
  const a = await submit('fresh-a');
  expect(calls.splice(0)).toEqual(['lookup', 'record']);
  // Now it knows the next nonce: one update.
  const b = await submit('fresh-b');
  expect(calls.splice(0)).toEqual(['record']);
  // Another worker recorded the nonce this one expects, and has not broadcast it yet: refused, then looked up and
  // recorded at the nonce after it.
  const book = owners(nonceScope(31337, genesis), BRIDGE);
  const { next } = await book.lookup({ key: uniqueId('peek'), chainNonce: await nonceOf('pending') });
  const raw = await privateKeyToAccount(DEV_KEYS.bridge).signTransaction({
    type: 'eip1559',
    chainId: 31337,
    nonce: next,
    to: privateKeyToAccount(generatePrivateKey()).address,
    value: 1n,
    gas: 21_000n,
    maxFeePerGas: 50_000_000_000n,
    maxPriorityFeePerGas: 1_000_000_000n,
  });
  const elsewhere = await book.record({
    key: uniqueId('elsewhere'),
    nonce: next,
    hash: keccak256(raw),
    raw,
    mode: 'new',
  });
  expect(elsewhere.accepted).toBe(true);
  const d = await submit('fresh-d');
  expect(calls.splice(0)).toEqual(['record', 'lookup', 'record']);
  // (Sent now unless the sender already sent it to close the gap below its own nonce.)
  await rpc(chain.rpcUrl, 'eth_sendRawTransaction', [raw]).catch((error: unknown) => {
    if (!/known transaction|nonce too low/i.test(String(error))) throw error;
  });
  const c = { ref: keccak256(raw), output: { nonce: next } };
  // A retry of the activity may find what its first attempt recorded: it always looks up.
  const e = await submit('fresh-e', new MockActivityEnvironment({ attempt: 2 }));
  expect(calls.splice(0)).toEqual(['lookup', 'record']);
  const nonces = [a, b, c, d, e].map((r) => r.output!.nonce as number).sort((x, y) => x - y);
  expect(nonces).toEqual(Array.from({ length: 5 }, (_, i) => before + i));
  await allMined([a, b, c, d, e].map((r) => r.ref));
});

it('answers a first attempt run again (an activity or workflow reset) with the transaction its key has, though the call would no longer pass', async () => {
  const key = generatePrivateKey();
  await rpc(chain.rpcUrl, 'hardhat_setBalance', [privateKeyToAccount(key).address, '0xde0b6b3a7640000']);
  const signerWith = (policy: SignerPolicyInput) =>
    new EvmAdapter({
      network: 'chainA',
      chainId: 31337,
      rpcUrls: [chain.rpcUrl],
      send: true,
      signers: { bridge: key },
      policies: { bridge: policy },
      nonceOwners: owners,
    });
  const input = { ...payment(uniqueId('reset')), fresh: true };
  const attempt1 = (evm: EvmAdapter, call: SubmitStepInput) =>
    new MockActivityEnvironment({ attempt: 1 }).run(() => evm.submit(call)) as Promise<SubmitStepResult>;
  const first = await attempt1(signerWith({ native: { to: 'any', max: '1000' } }), input);
  await allMined([first.ref]);
  // The worker's policy now allows payments to one other address only, and this worker has recorded with the owner
  // (so a first attempt takes the one-update path): the same call would no longer pass the checks before signing.
  const other = privateKeyToAccount(generatePrivateKey()).address;
  const strict = signerWith({ native: { to: [other], max: '1000' } });
  await allMined([(await attempt1(strict, { ...payment(uniqueId('prime'), other), fresh: true })).ref]);
  // Attempt 1 again, with the same input: the record of its key answers, as a lookup would.
  const again = await attempt1(strict, input);
  expect(again.ref).toBe(first.ref);
  expect(again.output!.nonce).toBe(first.output!.nonce);
});

it('hands an owner kept under the old scope (network name) over to the chain scope, unresolved records and all', async () => {
  // An owner started by an earlier release, under `chainB:<genesis>` (a network entry of its own), holding a signed
  // transaction it never broadcast: its nonce is taken, and its attempt may still be retried.
  // (Old owners run on the actions' task queue, where the worker still serves them.)
  const legacy = temporalNonceOwners(env.client, taskQueue)(legacyNonceScope('chainB', genesis), BRIDGE);
  const old = payment(uniqueId('legacy'));
  const nonce = await nonceOf('pending');
  const account = privateKeyToAccount(DEV_KEYS.bridge);
  const raw = await account.signTransaction({
    type: 'eip1559',
    chainId: 31337,
    nonce,
    to: (old.operation as { to: Hex }).to,
    value: 1n,
    gas: 21_000n,
    maxFeePerGas: 10_000_000_000n,
    maxPriorityFeePerGas: 1_000_000_000n,
  });
  await legacy.lookup({ key: old.nonceKey!, chainNonce: nonce });
  const recorded = await legacy.record({ key: old.nonceKey!, nonce, hash: keccak256(raw), raw, mode: 'new' });
  expect(recorded.accepted).toBe(true);

  // The next submission through `chainB` moves that book to the chain's owner first: the new transaction gets the next
  // nonce, and the old one is broadcast to fill the hole below it.
  const evm = adapter('chainB');
  const fresh = await evm.submit(payment(uniqueId('after-move')));
  expect(fresh.output!.nonce).toBe(nonce + 1);
  // A retry of the old attempt finds its record with the new owner: the same transaction, never a second one.
  const retried = await evm.submit({ ...old, network: 'chainB' });
  expect(retried.ref).toBe(keccak256(raw));
  await allMined([fresh.ref, retried.ref]);

  // The old owner records nothing more; the new one remembers whom it adopted.
  const late = await legacy.record({ key: 'late/attempt', nonce: nonce + 5, hash: keccak256(raw), raw, mode: 'new' });
  expect(late).toMatchObject({ accepted: false, reason: expect.stringContaining('moved to') });
  const summary = await env.client.workflow.getHandle(ownerId()).query(nonceBookQuery);
  expect(summary.adopted).toEqual([signerNoncesWorkflowId(legacyNonceScope('chainB', genesis), BRIDGE)]);
});

it('settles what is mined deep: the owner keeps a tombstone, not the bytes, and a late retry gets the same answer', async () => {
  const evm = adapter();
  const input = payment(uniqueId('settled'));
  const first = await evm.submit(input);
  await allMined([first.ref]);
  // Real blocks (hardhat_mine's reserved blocks answer historical nonce reads with the genesis state).
  for (let i = 0; i < 16; i++) await rpc(chain.rpcUrl, 'evm_mine');
  const handle = env.client.workflow.getHandle(ownerId());
  const before = await handle.query(nonceBookQuery);
  expect(before.records).toBeGreaterThanOrEqual(1);
  // Any submission on the signer settles, by their receipts, records whose nonce the chain used 12 blocks ago.
  const lookup = () => owners(nonceScope(31337, genesis), BRIDGE).lookup({ key: input.nonceKey!, chainNonce: 0 });
  const sweepers: string[] = [];
  while (!(await lookup()).settled && sweepers.length < 4) {
    sweepers.push((await adapter().submit(payment(uniqueId('sweeper')))).ref);
  }
  expect((await lookup()).settled).toMatchObject({ hash: first.ref, nonce: first.output!.nonce });
  // What is left unresolved is only what is not deep yet: the sweepers' own transactions.
  const after = await handle.query(nonceBookQuery);
  expect(after.records).toBeLessThanOrEqual(sweepers.length);
  expect(after.settled).toBeGreaterThanOrEqual(before.settled + before.records);
  const pending = await nonceOf('pending');
  const again = await evm.submit(input);
  expect(again).toMatchObject({ ref: first.ref, output: { nonce: first.output!.nonce } });
  expect(await nonceOf('pending')).toBe(pending);
  await allMined(sweepers);
});

it('never lets racing workers overspend a budget: the owner reserves it in the update that records each transaction', async () => {
  // Five "workers" (each its own adapter: no shared turns in memory), twenty payments of 1 wei, 10 wei per hour.
  const budgeted: SignerPolicyInput = { native: { to: 'any', max: '1', budget: { limit: '10', window: '1h' } } };
  const workers = Array.from({ length: 5 }, () => adapter('chainA', owners, budgeted));
  const before = await nonceOf('pending');
  const results = await Promise.allSettled(
    Array.from({ length: 20 }, (_, i) => workers[i % 5].submit(payment(uniqueId(`budget${i}`)))),
  );
  const sent = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value.ref] : []));
  const held = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as Error] : []));
  expect(sent).toHaveLength(10);
  expect(held).toHaveLength(10);
  for (const error of held) {
    expect(error).toMatchObject({ type: 'BudgetExhausted', nonRetryable: false });
    expect(error.message).toMatch(/^waiting for budget: native value for bridge on chainA has 10 of 10 per 1h/);
  }
  // Exactly ten transactions exist: the refused ones were never recorded nor sent.
  expect(await nonceOf('pending')).toBe(before + 10);
  await allMined(sent);
  // The budget lives in the owner, not in a worker: a worker started now finds it spent for the hour.
  await expect(adapter('chainA', owners, budgeted).submit(payment(uniqueId('late')))).rejects.toMatchObject({
    type: 'BudgetExhausted',
    message: expect.stringMatching(/^waiting for budget: native value for bridge on chainA has 10 of 10 per 1h/),
  });
  expect(await nonceOf('pending')).toBe(before + 10);
}, 120_000);

it('heartbeats between its round trips when it submits inside an activity', async () => {
  const activity = new MockActivityEnvironment();
  let heartbeats = 0;
  activity.on('heartbeat', () => heartbeats++);
  const result = (await activity.run(() => adapter().submit(payment(uniqueId('alive'))))) as { ref: string };
  expect(heartbeats).toBeGreaterThanOrEqual(3);
  await allMined([result.ref]);
});

it('applies every update of an owner whose worker stalls: past ten in flight, the server refuses and they are sent again', async () => {
  // A client that gives up after two tries (the default one retries for ~40 s before the refusal reaches the sender).
  const connection = await Connection.connect({
    address: env.address,
    interceptors: [makeGrpcRetryInterceptor(defaultGrpcRetryOptions({ maxAttempts: 2 }))],
  });
  // The server's refusals (more than ten updates in flight on one workflow), counted as the client sees them.
  let refusals = 0;
  const client = new Client({
    connection,
    interceptors: {
      workflow: [
        {
          startUpdate: (input, next) =>
            next(input).catch((error: unknown) => {
              if (/RESOURCE_EXHAUSTED|in-flight updates/i.test(`${String(error)} ${String((error as Error).cause)}`))
                refusals++;
              throw error;
            }),
        },
      ],
    },
  });
  const queue = uniqueId('stalled');
  const owner = temporalNonceOwners(client, queue)('eip155-1:stalled', BRIDGE);
  let stalled = await createTestWorker(env, { networks: {}, adapters: {} }, { taskQueue: queue });
  let running = stalled.run();
  const { next } = await owner.lookup({ key: 'first', chainNonce: 0 });
  stalled.shutdown();
  await running;
  const hash = (n: number) => `0x${n.toString(16).padStart(64, '0')}`;
  // Twenty submissions at once while no worker runs the owner: the first ten wait, the others are refused.
  const records = Promise.allSettled(
    Array.from({ length: 20 }, (_, i) =>
      owner.record({ key: `stalled/${i}`, nonce: next, hash: hash(i + 1), raw: '0x02', mode: 'new' }),
    ),
  );
  // The worker comes back once the server has refused updates past its limit, ten times in all (not after a fixed wait).
  await waitFor('ten refused updates', async () => refusals >= 10);
  stalled = await createTestWorker(env, { networks: {}, adapters: {} }, { taskQueue: queue });
  running = stalled.run();
  const results = await records;
  stalled.shutdown();
  await running;
  await connection.close();
  expect(results.filter((r) => r.status === 'rejected')).toEqual([]);
  // One of them got the nonce; every other was refused by the book (not by the server) and told the next one.
  const answers = results.map((r) => (r as PromiseFulfilledResult<{ accepted: boolean }>).value);
  expect(answers.filter((a) => a.accepted)).toHaveLength(1);
}, 120_000);

it('gives up waiting on an owner nobody runs when its activity is cancelled (a worker shutting down drains)', async () => {
  // The owner's queue has no worker: its updates are accepted by nobody, and would be awaited for ever.
  const owner = temporalNonceOwners(env.client, uniqueId('nobody-runs'))('eip155-1:unrun', BRIDGE);
  const activity = new MockActivityEnvironment();
  const waiting = activity.run(() => owner.lookup({ key: 'waits', chainNonce: 0 }));
  const outcome = waiting.then(
    () => 'answered',
    (error: Error) => error.name,
  );
  // Once the update is on its way (the owner's run exists), the activity is cancelled, as on worker shutdown.
  await waitFor('the owner to be started', async () =>
    env.client.workflow
      .getHandle(signerNoncesWorkflowId('eip155-1:unrun', BRIDGE))
      .describe()
      .then(() => true)
      .catch(() => false),
  );
  activity.cancel('WORKER_SHUTDOWN');
  expect(await outcome).toBe('CancelledFailure');
}, 60_000);
