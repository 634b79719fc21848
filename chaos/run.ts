/**
 * `npm run chaos`: a fault-injection run with the chains as the judge. It starts the real stack (chaos/stack.ts),
 * starts actions over time (chaos/load.ts), injects faults at seeded random moments (chaos/faults.ts), lets every
 * action settle, then reads the verdict from the chains and compares it with Settle's status (chaos/verdict.ts).
 * Prints a table, writes the raw data (`--out`, `bench/results/chaos.json` for the full profile), and exits non-zero
 * when an acceptance zero is not zero. `--profile reduced` is the short run `npm test` makes.
 *
 * @example npm run chaos -- --seed 42
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import { createPublicClient, http, parseAbi, type PublicClient } from 'viem';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { isTerminalPhase } from '../contract/status';
import { DEV_KEYS } from '../devnet/chains';
import { FAULT_KINDS, FaultInjector, type FaultKind } from './faults';
import { planActions, type PlannedAction } from './load';
import { parseChaosArgs, type ChaosOptions } from './options';
import { Prng } from './prng';
import { countActions, countFaults, table, workerKills, writeResult, type ChaosResult } from './report';
import { startStack, ROOT, TASK_QUEUE, type Stack } from './stack';
import { judge, readStatuses, SIGNER, type ChainBaseline, type Verdict } from './verdict';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const TOKEN_ABI = parseAbi([
  'function balanceOf(address) view returns (uint256)',
  'function totalSupply() view returns (uint256)',
]);

async function baselineOf(stack: Stack): Promise<ChainBaseline> {
  const { chainA, chainB } = stack.local.chains;
  const clients: Record<string, PublicClient> = {
    chainA: createPublicClient({ transport: http(chainA.rpcUrl) }),
    chainB: createPublicClient({ transport: http(chainB.rpcUrl) }),
  };
  const nonce: Record<string, number> = {};
  const block: Record<string, bigint> = {};
  for (const [name, client] of Object.entries(clients)) {
    block[name] = await client.getBlockNumber();
    nonce[name] = await client.getTransactionCount({ address: SIGNER, blockNumber: block[name] });
  }
  const supplyB = await clients.chainB.readContract({
    address: chainB.contracts.token,
    abi: TOKEN_ABI,
    functionName: 'totalSupply',
  });
  const escrowA = await clients.chainA.readContract({
    address: chainA.contracts.token,
    abi: TOKEN_ABI,
    functionName: 'balanceOf',
    args: [chainA.contracts.escrow],
  });
  return { nonce, block, supplyB, escrowA };
}

/** Starts one action, through the Temporal client or the HTTP API; retried while the server is down. */
async function startAction(stack: Stack, action: PlannedAction): Promise<void> {
  const deadline = Date.now() + 180_000;
  for (;;) {
    try {
      if (action.via === 'api') {
        const response = await fetch(`${stack.apiUrl}/v1/actions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${stack.apiToken}` },
          body: JSON.stringify(action.spec),
        });
        if (response.status === 200 || response.status === 201) return;
        throw new Error(`HTTP ${response.status}: ${(await response.text()).slice(0, 300)}`);
      }
      await stack.client().workflow.start('crossNetworkAction', {
        taskQueue: TASK_QUEUE,
        workflowId: action.actionId,
        args: [action.spec],
      });
      return;
    } catch (error) {
      if (error instanceof WorkflowExecutionAlreadyStartedError) return;
      if (Date.now() > deadline) throw error;
      await sleep(1_000);
    }
  }
}

/** Fault moments: spread over the load period (the watcher is stopped for good last). */
function scheduleFaults(rng: Prng, options: ChaosOptions): { kind: FaultKind; at: number }[] {
  const plan: { kind: FaultKind; at: number }[] = [];
  for (const kind of FAULT_KINDS) {
    for (let i = 0; i < options.faults[kind]; i++) {
      const at = kind === 'watcher-stop' ? options.load * 0.92 : options.load * (0.08 + 0.8 * rng.next());
      plan.push({ kind, at });
    }
  }
  return plan.sort((a, b) => a.at - b.at);
}

/** Waits until every started action is terminal or held with a reason, and none has a step mid-submission. */
async function drain(stack: Stack, actions: PlannedAction[], seconds: number, log: (s: string) => void) {
  const deadline = Date.now() + seconds * 1_000;
  for (;;) {
    const statuses = await readStatuses(stack.client(), actions);
    const open = actions.filter((a) => {
      const s = statuses.get(a.actionId);
      if (!s) return true;
      const busy = s.steps.some((step) => ['submitting', 'compensating'].includes(step.state));
      return busy || !(isTerminalPhase(s.phase) || s.phase === 'needs_action');
    });
    if (open.length === 0 || Date.now() > deadline) {
      log(
        `drain: ${open.length} action(s) still open${open.length ? `: ${open.slice(0, 5).map((a) => a.actionId)}` : ''}`,
      );
      return;
    }
    await sleep(3_000);
  }
}

/** Waits (bounded) until the signer has nothing in either mempool, and a few more blocks are mined. */
async function settleChains(stack: Stack): Promise<void> {
  const deadline = Date.now() + 90_000;
  for (const chain of Object.values(stack.local.chains)) {
    const client = createPublicClient({ transport: http(chain.rpcUrl) });
    while (Date.now() < deadline) {
      const [pending, latest] = await Promise.all([
        client.getTransactionCount({ address: SIGNER, blockTag: 'pending' }),
        client.getTransactionCount({ address: SIGNER, blockTag: 'latest' }),
      ]);
      if (pending === latest) break;
      await sleep(500);
    }
  }
}

export interface ChaosHooks {
  /**
   * Called with the stack still up, after the verdict: `judgeAgain` reads the chains and Settle once more (the test
   * uses it to show that the judge sees an effect it did not expect).
   */
  afterVerdict?: (stack: Stack, judgeAgain: () => Promise<Verdict>, actions: PlannedAction[]) => Promise<void>;
}

export async function runChaos(
  options: ChaosOptions,
  log: (line: string) => void = () => undefined,
  hooks: ChaosHooks = {},
) {
  const began = Date.now();
  const rng = new Prng(options.seed);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'settle-chaos-'));
  log(`chaos: seed ${options.seed}, profile ${options.profile}, state in ${dir}`);
  const stack = await startStack({
    dir,
    code: options.code,
    workers: options.workers,
    confirmations: options.confirmations,
    suggestContinueAsNew: options.suggestContinueAsNew,
    feeBumpAfterMs: 4_000,
    blockTimes: { chainA: 500, chainB: 800 },
  });
  try {
    log(`chaos: stack up after ${Math.round((Date.now() - began) / 1000)} s (temporal ${stack.temporalAddress})`);
    const baseline = await baselineOf(stack);
    const actions = planActions(rng, stack.local, { ...options, loadSeconds: options.load });
    const faultPlan = scheduleFaults(rng, options);
    const started = new Set<string>();
    const loadBegan = Date.now();
    const clock = () => (Date.now() - loadBegan) / 1000;
    const injector = new FaultInjector({
      stack,
      rng,
      actions,
      started,
      confirmations: options.confirmations,
      clock,
      log,
    });
    const at = (seconds: number) => sleep(Math.max(0, loadBegan + seconds * 1000 - Date.now()));
    const starting = actions.map(async (action) => {
      await at(action.at);
      await startAction(stack, action);
      started.add(action.actionId);
    });
    const faulting = faultPlan.map(async ({ kind, at: when }) => {
      await at(when);
      await injector.inject(kind, when);
    });
    const startErrors = (await Promise.allSettled(starting)).filter((r) => r.status === 'rejected');
    for (const error of startErrors) log(`chaos: an action could not be started: ${String(error.reason)}`);
    log(`chaos: all ${started.size} actions started after ${Math.round(clock())} s`);
    await Promise.all(faulting);
    log(`chaos: faults done after ${Math.round(clock())} s; draining`);
    for (const worker of stack.workers) if (!worker.running) await worker.start();
    await drain(
      stack,
      actions.filter((a) => started.has(a.actionId)),
      options.drain,
      log,
    );
    await settleChains(stack);
    const judgeAgain = () =>
      judge({
        client: stack.client(),
        local: stack.local,
        actions,
        started,
        baseline,
        logFiles: stack.logFiles,
        secrets: [DEV_KEYS.bridge, ...stackSecrets(stack)],
        reorgs: injector.injected.flatMap((f) => (f.orphaned ? [f.orphaned] : [])),
      });
    const verdict = await judgeAgain();
    const faults = countFaults(injector.injected);
    const result: ChaosResult = {
      options,
      startedAt: new Date(began).toISOString(),
      wallSeconds: (Date.now() - began) / 1000,
      actions: countActions(actions, started),
      faults: { ...faults, list: injector.injected },
      unplannedRestarts: Object.fromEntries(
        [stack.temporal, ...stack.workers, stack.watcher, stack.api].map((p) => [p.spec.name, p.unplannedExits]),
      ),
      broadcasts: Object.fromEntries(
        Object.entries(stack.ledgers).map(([k, l]) => [k, { broadcasts: l.broadcasts, replacements: l.replacements }]),
      ),
      verdict,
      passed: false,
      failures: [],
    };
    result.failures = acceptance(result);
    result.passed = result.failures.length === 0;
    await hooks.afterVerdict?.(stack, judgeAgain, actions);
    return result;
  } finally {
    await stack.stop();
    if (!process.env.SETTLE_CHAOS_KEEP) rmSync(dir, { recursive: true, force: true });
  }
}

/** The watcher's claim-signing key, kept in the run's folder: a secret too. */
function stackSecrets(stack: Stack): string[] {
  try {
    return [readFileSync(path.join(stack.dir, 'watcher.key'), 'utf8').trim()];
  } catch {
    return [];
  }
}

/** What must hold: the zeros always; for the full profile, the issue's minimum numbers too. */
export function acceptance(result: ChaosResult): string[] {
  const { verdict, faults, actions } = result;
  const failures: string[] = [];
  const zero = (what: string, n: number) => n !== 0 && failures.push(`${what}: ${n}`);
  zero('duplicate effects', verdict.duplicateEffects);
  zero('lost actions', verdict.lost);
  zero('stuck actions', verdict.stuck);
  zero('false finals', verdict.falseFinals);
  zero('unaccounted signer transactions', verdict.unaccountedTransactions);
  zero('nonce gaps left open', verdict.openNonceGaps);
  zero('balances that do not add up', verdict.balanceProblems.length);
  zero('private keys in logs or histories', verdict.secretLeaks.length);
  zero('actions not started', actions.planned - actions.started);
  const want = result.options.profile === 'full' ? FULL_MINIMUMS : undefined;
  const kills = workerKills(faults);
  const reorgs = faults.byKind['reorg-shallow'] + faults.byKind['reorg-deep'];
  const operator = faults.byKind['operator-cancel'] + faults.byKind['operator-retry'];
  const can = Object.values(verdict.continueAsNew).reduce((a, b) => a + b, 0);
  if (want) {
    const atLeast = (what: string, n: number, min: number) => n < min && failures.push(`${what}: ${n} < ${min}`);
    atLeast('actions', actions.started, want.actions);
    atLeast('worker kills', kills, want.workerKills);
    atLeast('server restarts', faults.byKind['server-restart'], want.serverRestarts);
    atLeast('chain freezes', faults.byKind['chain-freeze'], want.chainFreezes);
    atLeast('reorgs', reorgs, want.reorgs);
    atLeast('operator interventions', operator, want.operator);
    atLeast('continue-as-new', can, want.continueAsNew);
  } else {
    for (const kind of FAULT_KINDS) {
      if (result.options.faults[kind] > 0 && faults.byKind[kind] === 0) failures.push(`no ${kind} struck`);
    }
    if (can === 0) failures.push('no run continued as new');
  }
  return failures;
}

const FULL_MINIMUMS = {
  actions: 200,
  workerKills: 20,
  serverRestarts: 2,
  chainFreezes: 3,
  reorgs: 10,
  operator: 5,
  continueAsNew: 3,
};

if (require.main === module) {
  let options: ChaosOptions;
  try {
    options = parseChaosArgs(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n`);
    process.exit(2);
  }
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  const log = (line: string) => process.stdout.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);
  runChaos(options, log)
    .then((result) => {
      process.stdout.write(`\n${table(result)}\n\n`);
      if (options.out) {
        writeResult(path.resolve(ROOT, options.out), result);
        process.stdout.write(`raw data: ${options.out}\n`);
      }
      for (const v of result.verdict.actions.filter((a) => a.problems.length || a.notes.length)) {
        process.stdout.write(`${v.actionId} (${v.phase}): ${[...v.problems, ...v.notes].join('; ')}\n`);
      }
      process.stdout.write(result.passed ? 'chaos: PASSED\n' : `chaos: FAILED: ${result.failures.join('; ')}\n`);
      process.exit(result.passed ? 0 : 1);
    })
    .catch((error: Error) => {
      process.stderr.write(`chaos: ${error.stack ?? error.message}\n`);
      process.exit(1);
    });
}
