/**
 * Attacks by someone who can start actions and send signals (the Temporal client, the HTTP API with a credential):
 * what they try, and how Settle refuses each, on a real Temporal dev server and real hardhat chains (loopback only),
 * with the worker's own networks file (signing policies, a small budget on chain A, trust). Each attack asserts that
 * the chain shows no effect (balances, the signer's nonce) and that the action's state did not move; the suite prints
 * a table of the attacks and their refusals.
 */
import type { WorkflowHandle } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Worker } from '@temporalio/worker';
import { ed25519 } from '@noble/curves/ed25519';
import { createPublicClient, http, type Hex, type PublicClient } from 'viem';
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts';
import { MINT_FUNCTION } from '../../client/plans';
import type { ActionSpecInput } from '../../contract/action-spec';
import { evidenceSignal, statusQuery } from '../../contract/messages';
import type { ActionStatus, StepStatus } from '../../contract/status';
import { localBridgePolicy, LOCAL_NATIVE_CAP, type LocalChains } from '../../devnet/chains';
import { buildNetworks } from '../../networks/load';
import { eventsSinceLastSignal } from '../support/actions';
import { BRIDGE, ChainProbe, startTestChains, USER, waitFor, writeTestNetworksFile } from '../support/chains';
import { createTestWorker, startTestServer, uniqueId } from '../support/temporal';

const ETH = 10n ** 18n;
const TENTH = ETH / 10n;
const BUDGET_WINDOW_MS = 10_000;

let env: TestWorkflowEnvironment;
let local: LocalChains;
let probe: ChainProbe;
let clients: Record<string, PublicClient>;
let worker: Worker;
let running: Promise<void>;
const taskQueue = uniqueId('attacks');
const refusals: { attack: string; refusedBy: string; outcome: string; chainEffect: string }[] = [];

beforeAll(async () => {
  [env, local] = await Promise.all([startTestServer(), startTestChains()]);
  probe = new ChainProbe(local);
  clients = Object.fromEntries(
    Object.values(local.chains).map((c) => [c.name, createPublicClient({ transport: http(c.rpcUrl) })]),
  );
  const { file } = writeTestNetworksFile(local.chains, {
    confirmations: 2,
    pollIntervalMs: 500,
    // The local stack's policy, with native transfers on chain A budgeted at 0.3 ETH per 10 s.
    policy: (chain) => {
      const policy = localBridgePolicy(chain.contracts);
      if (chain.name !== 'chainA') return policy;
      const budget = { limit: (3n * TENTH).toString(), window: BUDGET_WINDOW_MS };
      return { ...policy, native: { to: 'any', max: LOCAL_NATIVE_CAP, budget } };
    },
    // Claims must be signed by the watcher's key (nobody here has it) or be seen by Settle's own RPC.
    trust: {
      verifyClaims: true,
      sources: {
        watcher: { publicKey: Buffer.from(ed25519.getPublicKey(ed25519.utils.randomPrivateKey())).toString('hex') },
      },
    },
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
  console.table(refusals);
  if (worker?.getState() === 'RUNNING') worker.shutdown();
  await running?.catch(() => undefined);
  await Promise.all([env?.teardown(), local?.stop()]);
}, 60_000);

const freshAddress = (): Hex => privateKeyToAccount(generatePrivateKey()).address;

/** What an attack may not change on either chain: the signer's nonces, token balances, and the watched addresses. */
async function chainState(watched: Hex[] = []) {
  const state: Record<string, string> = {};
  for (const network of ['chainA', 'chainB']) {
    state[`${network} bridge nonce`] = String(
      await clients[network].getTransactionCount({ address: BRIDGE, blockTag: 'pending' }),
    );
    state[`${network} USER tokens`] = String(await probe.balance(network, USER));
    for (const address of watched)
      state[`${network} ${address} wei`] = String(await clients[network].getBalance({ address }));
  }
  return state;
}

function start(spec: ActionSpecInput) {
  return env.client.workflow.start('crossNetworkAction', { taskQueue, workflowId: spec.actionId, args: [spec] });
}

const step = (status: ActionStatus, id: string): StepStatus => status.steps.find((s) => s.id === id)!;

async function statusWhen(handle: WorkflowHandle, what: string, predicate: (s: ActionStatus) => boolean, ms = 60_000) {
  return waitFor(
    what,
    async () => {
      const status = await handle.query(statusQuery);
      return predicate(status) ? status : undefined;
    },
    ms,
  );
}

/** An action of one `evm.*` step whose submission the policy must refuse: the step fails, nothing is signed. */
async function refusedAtSigning(
  attack: string,
  network: string,
  operation: ActionSpecInput['steps'][number]['operation'],
  expected: RegExp,
  watched: Hex[] = [],
) {
  const before = await chainState(watched);
  const handle = await start({ actionId: uniqueId('attack'), steps: [{ id: 'attack', network, operation }] });
  const status = await handle.result();
  const attacked = step(status, 'attack');
  expect(attacked.state).toBe('failed');
  expect(attacked.error).toMatch(expected);
  expect(attacked.ref).toBeUndefined();
  expect(attacked.refs ?? []).toEqual([]);
  expect(await chainState(watched)).toEqual(before);
  refusals.push({
    attack,
    refusedBy: 'signing policy (PolicyViolation)',
    outcome: `${status.phase}: ${attacked.error}`,
    chainEffect: 'none',
  });
}

it('refuses a call to a contract outside the policy (the token’s transfer)', async () => {
  const { token } = local.chains.chainA.contracts;
  await refusedAtSigning(
    'call a contract outside the policy: token.transfer(USER, 1)',
    'chainA',
    {
      kind: 'evm.call',
      signer: 'bridge',
      to: token,
      function: 'function transfer(address to, uint256 amount)',
      args: [USER, '1'],
    },
    new RegExp(
      `^policy: bridge on chainA may not call ${token}:transfer\\(address,uint256\\) \\(the contract is not in its policy\\)$`,
    ),
  );
});

it('refuses a function outside the policy: the token’s own mint, and a mint the bridge minter does not have', async () => {
  const { token, minter } = local.chains.chainB.contracts;
  const mint = 'function mint(address to, uint256 amount)';
  await refusedAtSigning(
    'call a function outside the policy: token.mint(USER, 10^24)',
    'chainB',
    { kind: 'evm.call', signer: 'bridge', to: token, function: mint, args: [USER, (10n ** 24n).toString()] },
    /^policy: bridge on chainB may not call 0x[0-9a-fA-F]{40}:mint\(address,uint256\) \(the contract is not in its policy\)$/,
  );
  await refusedAtSigning(
    'call an unlisted function of an allowed contract: minter.mint(address,uint256)',
    'chainB',
    { kind: 'evm.call', signer: 'bridge', to: minter, function: mint, args: [USER, '1'] },
    /^policy: bridge on chainB may not call 0x[0-9a-fA-F]{40}:mint\(address,uint256\) \(the function is not allowed there\)$/,
  );
});

it('refuses values over the caps: a native transfer of 2 ETH, a bridge mint of 10^30, even with its argument renamed', async () => {
  const to = freshAddress();
  await refusedAtSigning(
    'native transfer of 2 ETH (cap 1 ETH)',
    'chainA',
    { kind: 'evm.transfer', signer: 'bridge', to, value: (2n * ETH).toString() },
    /^policy: native value 2000000000000000000 wei is over the cap 1000000000000000000 for bridge on chainA$/,
    [to],
  );
  const { minter } = local.chains.chainB.contracts;
  const absurd = (10n ** 30n).toString();
  await refusedAtSigning(
    'bridge minter.mint of 10^30 (cap 10^6)',
    'chainB',
    {
      kind: 'evm.call',
      signer: 'bridge',
      to: minter,
      function: MINT_FUNCTION,
      args: ['{{action.idHash}}', USER, absurd],
    },
    /^policy: mint amount 10\^30 is over the cap 1000000 for bridge on chainB$/,
  );
  // The step's own signature names the amount `fee`: the policy decodes the calldata with its own signature.
  await refusedAtSigning(
    'minter.mint of 10^30 with the amount argument renamed in the spec',
    'chainB',
    {
      kind: 'evm.call',
      signer: 'bridge',
      to: minter,
      function: 'function mint(bytes32 actionId, address recipient, uint256 fee)',
      args: ['{{action.idHash}}', USER, absurd],
    },
    /^policy: mint amount 10\^30 is over the cap 1000000 for bridge on chainB$/,
  );
});

it('holds the actions a spent budget cannot cover, signing nothing, and resumes them when the window allows', async () => {
  const recipients = Array.from({ length: 5 }, freshAddress);
  const before = await chainState(recipients);
  const nonceBefore = Number(before['chainA bridge nonce']);
  const handles = await Promise.all(
    recipients.map((to) =>
      start({
        actionId: uniqueId('budget'),
        steps: [
          {
            id: 'pay',
            network: 'chainA',
            operation: { kind: 'evm.transfer', signer: 'bridge', to, value: TENTH.toString() },
          },
        ],
      }),
    ),
  );
  // Three fit the 0.3 ETH per 10 s; two wait, shown as retrying with the reason, their transactions never signed.
  const statuses = await waitFor('three payments sent and two waiting for budget', async () => {
    const all = await Promise.all(handles.map((h) => h.query(statusQuery)));
    const waiting = all.filter((s) => /^waiting for budget: /.test(step(s, 'pay').retrying?.reason ?? ''));
    const sent = all.filter((s) => step(s, 'pay').ref !== undefined);
    return waiting.length === 2 && sent.length === 3 ? all : undefined;
  });
  const waiting = statuses.filter((s) => step(s, 'pay').retrying);
  for (const status of waiting) {
    expect(step(status, 'pay')).toMatchObject({ state: 'submitting', refs: [] });
    expect(step(status, 'pay').retrying!.reason).toMatch(
      /^waiting for budget: native value for bridge on chainA has 300000000000000000 of 300000000000000000 per 10s spent or pending, and this call needs 100000000000000000; /,
    );
  }
  expect(await clients.chainA.getTransactionCount({ address: BRIDGE, blockTag: 'pending' })).toBe(nonceBefore + 3);
  const paid = await Promise.all(recipients.map((address) => clients.chainA.getBalance({ address })));
  expect(paid.filter((wei) => wei === 0n)).toHaveLength(2);
  const reason = step(waiting[0], 'pay').retrying!.reason;
  // Once the window allows, they resume by themselves.
  const results = await Promise.all(handles.map((h) => h.result()));
  expect(results.map((r) => r.phase)).toEqual(Array(5).fill('completed'));
  for (const address of recipients) expect(await clients.chainA.getBalance({ address })).toBe(TENTH);
  expect(await clients.chainA.getTransactionCount({ address: BRIDGE, blockTag: 'latest' })).toBe(nonceBefore + 5);
  refusals.push({
    attack: '5 payments of 0.1 ETH against a budget of 0.3 ETH per 10 s',
    refusedBy: 'budget in the nonce owner (BudgetExhausted, retrying)',
    outcome: `2 held as retrying (“${reason.slice(0, 60)}…”), then completed when the window allowed`,
    chainEffect: 'none while held; 0.3 ETH per window',
  });
}, 180_000);

it('refuses a foreign transaction attached to an EVM step by evidence: the step and the chain stay as they were', async () => {
  const to = freshAddress();
  // A real transaction on chain B that Settle did not submit for this action: the approval made at deployment.
  const foreign = await waitFor('a foreign transaction', async () => {
    const block = await clients.chainB.getBlock({ blockNumber: 5n, includeTransactions: false });
    return block.transactions[0] ? { ref: block.transactions[0], block: { number: '5', hash: block.hash } } : undefined;
  });
  const handle = await start({
    actionId: uniqueId('foreign'),
    steps: [
      { id: 'gate', network: 'attester', operation: { kind: 'await' } },
      {
        id: 'pay',
        network: 'chainB',
        after: [{ step: 'gate', stage: 'final' }],
        operation: { kind: 'evm.transfer', signer: 'bridge', to, value: '1000' },
      },
    ],
  });
  // Settled at the gate: the deployment described (the network's finality) and the gate started.
  const statusBefore = await statusWhen(
    handle,
    'the action to wait at its gate',
    (s) => step(s, 'gate').startedAt !== undefined && 'confirmations' in step(s, 'pay').finality,
  );
  const before = await chainState([to]);
  for (const kind of ['submitted', 'included', 'finalized'] as const) {
    await handle.signal(evidenceSignal, { step: 'pay', kind, ...foreign, source: 'watcher:chainB' });
  }
  await handle.signal(evidenceSignal, {
    ref: foreign.ref,
    network: 'chainB',
    kind: 'finalized',
    block: foreign.block,
    source: 'watcher',
  });
  await waitFor('the signals to be taken', async () =>
    (await eventsSinceLastSignal(handle)).some((e) => e.workflowTaskCompletedEventAttributes),
  );
  const statusAfter = await handle.query(statusQuery);
  expect(statusAfter).toEqual(statusBefore);
  expect(step(statusAfter, 'pay')).toMatchObject({ state: 'waiting' });
  expect(await chainState([to])).toEqual(before);
  await handle.terminate('attack over');
  refusals.push({
    attack: 'attach a foreign transaction (submitted / included / finalized) to an EVM step',
    refusedBy: 'workflow: a claim may name only a transaction Settle submitted for the step',
    outcome: 'ignored: the status is unchanged, the step still waiting',
    chainEffect: 'none',
  });
}, 60_000);

it('keeps a forged `finalized` claim as disputed: the step is never final before its policy is met', async () => {
  const to = freshAddress();
  const handle = await start({
    actionId: uniqueId('forged'),
    steps: [
      {
        id: 'pay',
        network: 'chainB',
        finality: { confirmations: 10_000 },
        operation: { kind: 'evm.transfer', signer: 'bridge', to, value: '1000' },
      },
    ],
  });
  const included = await statusWhen(handle, 'the payment to be included', (s) => step(s, 'pay').state === 'included');
  const own = step(included, 'pay');
  const before = await chainState([to]);
  // Under the watcher's name, without its signature: "final", in a block the chain does not have it in.
  const forgedBlock = { number: own.block!.number, hash: `0x${'de'.repeat(32)}` };
  await handle.signal(evidenceSignal, {
    step: 'pay',
    kind: 'finalized',
    ref: own.ref!,
    block: forgedBlock,
    source: 'watcher:chainB',
  });
  const disputed = await statusWhen(handle, 'the claim to be disputed', (s) =>
    (s.claims ?? []).some((c) => c.verdict === 'disputed'),
  );
  expect(step(disputed, 'pay').state).toBe('included');
  expect(step(disputed, 'pay').block).toEqual(own.block);
  expect(disputed.phase).toBe('running');
  expect(disputed.progress.final).toBe(0);
  expect(disputed.claims).toEqual([
    expect.objectContaining({ step: 'pay', kind: 'finalized', block: forgedBlock, proven: false, verdict: 'disputed' }),
  ]);
  // The same claim about the block the chain does show: Settle's own reading applies, and 2 confirmations are not
  // the 10,000 this step's policy asks for.
  await handle.signal(evidenceSignal, {
    step: 'pay',
    kind: 'finalized',
    ref: own.ref!,
    block: own.block!,
    source: 'watcher:chainB',
  });
  // Taken, then Settle's own look at the chain (a checkStep after it) applied: what the chain shows decides.
  await waitFor('a poll after the claim', async () => {
    const since = await eventsSinceLastSignal(handle);
    const poll = since.find((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'checkStep');
    const polled = since.findIndex(
      (e) => poll && String(e.activityTaskCompletedEventAttributes?.scheduledEventId) === String(poll.eventId),
    );
    return polled >= 0 && since.slice(polled).some((e) => e.workflowTaskCompletedEventAttributes);
  });
  const after = await handle.query(statusQuery);
  expect(step(after, 'pay').state).toBe('included');
  expect(after.progress.final).toBe(0);
  expect(await chainState([to])).toEqual(before);
  await handle.terminate('attack over');
  refusals.push({
    attack: 'forge a `finalized` claim under the watcher’s name (unsigned)',
    refusedBy: 'workflow trust: unproven claim checked against Settle’s own RPC',
    outcome: 'disputed (forged block) / not enough (real block): the step stays included, 0 final',
    chainEffect: 'none',
  });
}, 90_000);
