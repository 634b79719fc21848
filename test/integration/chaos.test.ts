/**
 * The reduced chaos run (`npm run chaos -- --profile reduced`): the real stack (a Temporal server on a database file,
 * two hardhat chains, two workers sharing one signer, the watcher, the HTTP API), a dozen actions, and every kind of
 * fault at least once, with the verdict read from the chains. Then the judge is shown to see what it must: a second
 * payment to a paid recipient and a transaction no action accounts for, both made behind Settle's back.
 */
import { createPublicClient, createWalletClient, http, type Hex } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { DEV_KEYS } from '../../devnet/chains';
import { FAULT_KINDS } from '../../chaos/faults';
import { PAYMENT_VALUE } from '../../chaos/load';
import { parseChaosArgs } from '../../chaos/options';
import { table, type ChaosResult } from '../../chaos/report';
import { runChaos } from '../../chaos/run';
import type { Verdict } from '../../chaos/verdict';

/** A seed makes the run's plan reproducible: `SETTLE_CHAOS_SEED=… npx jest test/integration/chaos.test.ts`. */
const SEED = process.env.SETTLE_CHAOS_SEED ?? '3';

let result: ChaosResult;
let tampered: Verdict | undefined;

beforeAll(async () => {
  const options = parseChaosArgs(['--profile', 'reduced', '--seed', SEED]);
  result = await runChaos(options, (line) => process.stdout.write(`${line}\n`), {
    afterVerdict: async (stack, judgeAgain, actions) => {
      const { chainA } = stack.local.chains;
      const transport = http(chainA.rpcUrl);
      const chain = {
        id: chainA.chainId,
        name: 'chainA',
        nativeCurrency: { name: 'Ether', symbol: 'ETH', decimals: 18 },
        rpcUrls: { default: { http: [chainA.rpcUrl] } },
      } as const;
      const reader = createPublicClient({ chain, transport });
      let target: Hex | undefined;
      for (const action of actions.filter((a) => a.kind.startsWith('payment') && a.network === 'chainA')) {
        if ((await reader.getBalance({ address: action.recipient })) === PAYMENT_VALUE) target = action.recipient;
      }
      if (!target) return;
      const user = createWalletClient({ account: privateKeyToAccount(DEV_KEYS.user), chain, transport });
      const signer = createWalletClient({ account: privateKeyToAccount(DEV_KEYS.bridge), chain, transport });
      const hashes = [
        // The same payment again, from someone else: the recipient is paid twice.
        await user.sendTransaction({ to: target, value: PAYMENT_VALUE }),
        // The signer's key used outside Settle: a nonce no action accounts for.
        await signer.sendTransaction({ to: signer.account.address, value: 0n }),
      ];
      for (const hash of hashes) await reader.waitForTransactionReceipt({ hash, pollingInterval: 100 });
      tampered = await judgeAgain();
    },
  });
  process.stdout.write(`\n${table(result)}\n`);
}, 900_000);

it('ends with no duplicate effect, no lost, stuck or falsely final action, and every nonce accounted for', () => {
  const { verdict } = result;
  const problems = verdict.actions.filter((a) => a.problems.length).map((a) => `${a.actionId}: ${a.problems}`);
  expect({ problems, balanceProblems: verdict.balanceProblems, secretLeaks: verdict.secretLeaks }).toEqual({
    problems: [],
    balanceProblems: [],
    secretLeaks: [],
  });
  expect(verdict).toMatchObject({
    duplicateEffects: 0,
    lost: 0,
    stuck: 0,
    falseFinals: 0,
    unaccountedTransactions: 0,
    openNonceGaps: 0,
  });
  expect(result.actions.started).toBe(result.actions.planned);
  expect(result.failures).toEqual([]);
});

it('injects at least one fault of each kind, and runs continue as new', () => {
  const missing = FAULT_KINDS.filter((kind) => result.faults.byKind[kind] < 1);
  expect(missing).toEqual([]);
  expect(result.verdict.continueAsNew.crossNetworkAction ?? 0).toBeGreaterThan(0);
  expect(result.verdict.continueAsNew.signerNonces ?? 0).toBeGreaterThan(0);
  expect(result.verdict.historiesScanned).toBeGreaterThan(result.actions.started);
});

it('sees a second payment and a nonce no action accounts for, when they are made behind its back', () => {
  expect(tampered).toBeDefined();
  expect(tampered!.duplicateEffects).toBe(result.verdict.duplicateEffects + 1);
  expect(tampered!.unaccountedTransactions).toBe(result.verdict.unaccountedTransactions + 1);
});
