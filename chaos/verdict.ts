/**
 * The verdict of a chaos run, read from the chains first and only then compared with what Settle says: how many times
 * each recipient was paid, the bridge's lock, mint and unlock events per action, balances that must add up, every
 * transaction the signer had mined (each one accounted for by an action's refs), its nonce (no gap left open), and
 * no step `final` that the chain contradicts; then every action's phase (none stuck), and a scan of every log and
 * workflow history for the private keys.
 */
import { readFileSync } from 'node:fs';
import type { Client } from '@temporalio/client';
import { createPublicClient, http, parseAbi, type Hex, type PublicClient } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { statusQuery } from '../contract/messages';
import type { ActionStatus } from '../contract/status';
import { DEV_KEYS, type LocalChains } from '../devnet/chains';
import { actionIdHash } from '../networks/evm/templates';
import { PAYMENT_VALUE, type PlannedAction } from './load';

export const SIGNER = privateKeyToAccount(DEV_KEYS.bridge).address;

const ABI = parseAbi([
  'event Locked(bytes32 indexed actionId, address indexed depositor, address recipient, uint256 amount)',
  'event Unlocked(bytes32 indexed actionId, address indexed depositor, uint256 amount)',
  'event Minted(bytes32 indexed actionId, address indexed recipient, uint256 amount, bytes32 messageId)',
  'function balanceOf(address) view returns (uint256)',
  'function totalSupply() view returns (uint256)',
]);

export interface ChainBaseline {
  /** The signer's nonce and the head when the load began (after deployment). */
  nonce: Record<string, number>;
  block: Record<string, bigint>;
  /** chainB's token supply and chainA's escrow balance before any action. */
  supplyB: bigint;
  escrowA: bigint;
}

export interface ActionVerdict {
  actionId: string;
  kind: string;
  phase: string | 'missing';
  reason?: string;
  /** What the chain shows: payments received, or lock/mint/unlock events. */
  effects: { paid?: number; locks?: number; mints?: number; unlocks?: number };
  problems: string[];
  /** What is worth knowing and is no failure (a final a deeper-than-policy reorg contradicted). */
  notes: string[];
  duplicate: boolean;
  lost: boolean;
  stuck: boolean;
  falseFinals: number;
  alarmedFinals: number;
  /** Finals reached before a reorg deeper than the policy orphaned their block, with no alarm (closed: unwatched). */
  closedBeforeDeepReorg: number;
  continuedRuns: number;
}

export interface Verdict {
  actions: ActionVerdict[];
  byPhase: Record<string, number>;
  duplicateEffects: number;
  lost: number;
  stuck: number;
  falseFinals: number;
  /** Finals the chain later contradicted (a reorg deeper than the policy) for which Settle raised an alarm. */
  alarmedFinals: number;
  /** Finals reached before a reorg deeper than the policy, which it contradicted, with no alarm (the policy's limit). */
  closedBeforeDeepReorg: number;
  chains: Record<
    string,
    {
      signerTransactions: number;
      nonceAdvance: number;
      unaccounted: string[];
      reverted: number;
      pendingAtEnd: number;
    }
  >;
  extraTransactions: number;
  unaccountedTransactions: number;
  openNonceGaps: number;
  balanceProblems: string[];
  continueAsNew: Record<string, number>;
  secretLeaks: string[];
  historiesScanned: number;
  logsScanned: number;
}

type Logs = Map<string, { amount: bigint }[]>;

async function eventsById(client: PublicClient, address: Hex, name: 'Locked' | 'Unlocked' | 'Minted'): Promise<Logs> {
  const event = ABI.find((e) => e.type === 'event' && e.name === name) as Extract<
    (typeof ABI)[number],
    { type: 'event' }
  >;
  const logs = await client.getLogs({ address, event, fromBlock: 0n, toBlock: 'latest' });
  const out: Logs = new Map();
  for (const log of logs) {
    const args = log.args as { actionId: string; amount: bigint };
    out.set(args.actionId, [...(out.get(args.actionId) ?? []), { amount: args.amount }]);
  }
  return out;
}

async function pool<T, R>(items: T[], size: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: size }, async () => {
      while (next < items.length) {
        const i = next++;
        results[i] = await work(items[i]);
      }
    }),
  );
  return results;
}

/** Every transaction hash an action's status accounts for: each step's refs (retired ones too) and compensation's. */
function refsOf(status: ActionStatus): string[] {
  return status.steps.flatMap((s) => [
    ...(s.ref ? [s.ref] : []),
    ...(s.refs ?? []),
    ...(s.retiredRefs ?? []),
    ...(s.compensation?.ref ? [s.compensation.ref] : []),
    ...(s.compensation?.refs ?? []),
  ]);
}

export async function readStatuses(client: Client, actions: PlannedAction[]) {
  const statuses = new Map<string, ActionStatus>();
  await pool(actions, 6, async (action) => {
    for (let tries = 0; tries < 5; tries++) {
      try {
        statuses.set(action.actionId, await client.workflow.getHandle(action.actionId).query(statusQuery));
        return;
      } catch (error) {
        if ((error as Error).name === 'WorkflowNotFoundError') return;
        await new Promise((r) => setTimeout(r, 1_000));
      }
    }
  });
  return statuses;
}

export interface VerdictInput {
  client: Client;
  local: LocalChains;
  actions: PlannedAction[];
  started: Set<string>;
  baseline: ChainBaseline;
  logFiles: string[];
  secrets: string[];
  /** The reorgs injected: orphaned block ranges (inclusive), when, and whether deeper than the policy. */
  reorgs: { chain: string; from: string; to: string; at: number; deep: boolean }[];
}

export async function judge(input: VerdictInput): Promise<Verdict> {
  const { local, baseline } = input;
  const clients: Record<string, PublicClient> = Object.fromEntries(
    Object.values(local.chains).map((c) => [c.name, createPublicClient({ transport: http(c.rpcUrl) })]),
  );
  const { chainA, chainB } = local.chains;

  // 1. The chains, before Settle is asked anything.
  const [locked, unlocked, minted] = await Promise.all([
    eventsById(clients.chainA, chainA.contracts.escrow, 'Locked'),
    eventsById(clients.chainA, chainA.contracts.escrow, 'Unlocked'),
    eventsById(clients.chainB, chainB.contracts.minter, 'Minted'),
  ]);
  const chainFacts = await pool(input.actions, 8, async (action) => {
    if (action.kind === 'payment' || action.kind === 'payment-held') {
      const balance = await clients[action.network].getBalance({ address: action.recipient });
      return { balance };
    }
    const balance = await clients.chainB.readContract({
      address: chainB.contracts.token,
      abi: ABI,
      functionName: 'balanceOf',
      args: [action.recipient],
    });
    return { balance };
  });
  const signerTxs: Record<string, { hash: string; reverted: boolean }[]> = {};
  for (const [name, client] of Object.entries(clients)) {
    const head = await client.getBlockNumber();
    const numbers: bigint[] = [];
    for (let n = baseline.block[name] + 1n; n <= head; n++) numbers.push(n);
    const blocks = await pool(numbers, 8, (n) => client.getBlock({ blockNumber: n, includeTransactions: true }));
    const mine = blocks.flatMap((b) => b.transactions.filter((t) => t.from.toLowerCase() === SIGNER.toLowerCase()));
    signerTxs[name] = await pool(mine, 8, async (t) => ({
      hash: t.hash,
      reverted: (await client.getTransactionReceipt({ hash: t.hash })).status !== 'success',
    }));
  }

  // 2. What Settle says.
  const statuses = await readStatuses(input.client, input.actions);
  const accounted = new Set<string>();
  for (const status of statuses.values()) for (const ref of refsOf(status)) accounted.add(ref.toLowerCase());

  const continueAsNew: Record<string, number> = {};
  const continuedByAction = new Map<string, number>();
  const runs: { workflowId: string; runId: string }[] = [];
  for await (const execution of input.client.workflow.list()) {
    runs.push({ workflowId: execution.workflowId, runId: execution.runId });
    if (execution.status.name === 'CONTINUED_AS_NEW') {
      continueAsNew[execution.type] = (continueAsNew[execution.type] ?? 0) + 1;
      continuedByAction.set(execution.workflowId, (continuedByAction.get(execution.workflowId) ?? 0) + 1);
    }
  }

  // 3. Each action: the chain's facts against Settle's status.
  const verdicts: ActionVerdict[] = [];
  for (const [i, action] of input.actions.entries()) {
    const status = statuses.get(action.actionId);
    const problems: string[] = [];
    const id = actionIdHash(action.actionId);
    const isPayment = action.kind === 'payment' || action.kind === 'payment-held';
    const balance = chainFacts[i].balance;
    const effects: ActionVerdict['effects'] = isPayment
      ? { paid: Number(balance / PAYMENT_VALUE) }
      : {
          locks: locked.get(id)?.length ?? 0,
          mints: minted.get(id)?.length ?? 0,
          unlocks: unlocked.get(id)?.length ?? 0,
        };
    let duplicate = false;
    let lost = false;
    if (isPayment) {
      if (balance % PAYMENT_VALUE !== 0n)
        problems.push(`recipient balance ${balance} is not a whole number of payments`);
      if (effects.paid! > 1) duplicate = true;
    } else {
      if (effects.locks! > 1 || effects.mints! > 1 || effects.unlocks! > 1) duplicate = true;
      if (balance !== action.amount * BigInt(effects.mints!)) {
        problems.push(`recipient holds ${balance} on chainB for ${effects.mints} mint(s) of ${action.amount}`);
      }
      if (effects.unlocks! > effects.locks!) problems.push('an unlock without a lock');
    }
    if (duplicate) problems.push(`duplicate effect: ${JSON.stringify(effects)}`);
    const phase = status?.phase ?? 'missing';
    if (!status) {
      if (input.started.has(action.actionId)) {
        lost = true;
        problems.push('started, but Temporal does not know it');
      }
    } else {
      const effected = isPayment ? effects.paid! > 0 : effects.mints! > 0;
      if (phase === 'completed') {
        const complete = isPayment
          ? effects.paid === 1
          : effects.locks === 1 && effects.mints === 1 && !effects.unlocks;
        if (!complete) {
          lost = true;
          problems.push(`completed, but the chain shows ${JSON.stringify(effects)}`);
        }
      } else if (['compensated', 'cancelled', 'failed'].includes(phase)) {
        if (!isPayment && effects.locks !== effects.unlocks) {
          lost = true;
          problems.push(`${phase} with ${effects.locks} lock(s) and ${effects.unlocks} unlock(s)`);
        }
        // An effect that exists must show in the status as a step that reached the chain.
        const shown = status.steps.some(
          (s) => s.id !== 'lock' && ['final', 'included', 'compensated'].includes(s.state),
        );
        if (effected && !shown) {
          lost = true;
          problems.push(`${phase} and the chain shows ${JSON.stringify(effects)}, which no step reports`);
        }
      }
      if (!isPayment && effects.unlocks! > 0 && phase === 'completed') problems.push('unlocked, yet completed');
    }
    const stuck =
      !!status &&
      (['running', 'compensating'].includes(phase) ||
        (phase === 'needs_action' && !status.reason) ||
        status.steps.some((s) => ['submitting', 'compensating'].includes(s.state)));
    if (stuck) problems.push(`stuck: ${phase} (${status!.steps.map((s) => `${s.id}:${s.state}`).join(', ')})`);

    // No step `final` that the chain contradicts: its transaction mined, successfully, in the block it names.
    let falseFinals = 0;
    let alarmedFinals = 0;
    let closedBeforeDeepReorg = 0;
    const notes: string[] = [];
    for (const step of status?.steps ?? []) {
      const tracks = [
        { for: 'operation', state: step.state, ref: step.ref, block: step.block },
        ...(step.compensation
          ? [
              {
                for: 'compensation',
                state: step.compensation.state,
                ref: step.compensation.ref,
                block: step.compensation.block,
              },
            ]
          : []),
      ];
      for (const track of tracks) {
        if (track.state !== 'final' || !track.ref) continue;
        const receipt = await clients[step.network]
          .getTransactionReceipt({ hash: track.ref as Hex })
          .catch(() => undefined);
        const contradicted =
          !receipt ||
          receipt.status !== 'success' ||
          (track.block?.hash && receipt.blockHash.toLowerCase() !== track.block.hash.toLowerCase());
        if (!contradicted) continue;
        const alarmed = status!.alarms.some((a) => a.step === step.id && a.for === track.for);
        const number = BigInt(track.block?.number ?? '-1');
        const finalAt = Math.max(
          ...step.transitions
            .filter((t) => t.to === 'final' && (t.for ?? 'operation') === track.for)
            .map((t) => Date.parse(t.at)),
        );
        // A policy of n confirmations promises nothing against a reorg deeper than n: a final reached before such a
        // reorg and contradicted by it is the policy's limit (alarmed if the action was still watched), not a lie.
        const deepReorg = input.reorgs.find(
          (r) =>
            r.deep && r.chain === step.network && number >= BigInt(r.from) && number <= BigInt(r.to) && finalAt < r.at,
        );
        const closedAt = (await input.client.workflow.getHandle(action.actionId).describe()).closeTime?.getTime();
        const found = receipt ? `block ${receipt.blockNumber} ${receipt.blockHash.slice(0, 10)}…` : 'no receipt';
        const detail =
          `${step.id} (${track.for}) final at ${new Date(finalAt).toISOString()} in block ${track.block?.number} ` +
          `${track.block?.hash?.slice(0, 10)}…, the chain has it in ${found}; action closed ` +
          `${closedAt ? new Date(closedAt).toISOString() : 'not yet'}; reorgs on ${step.network}: ` +
          input.reorgs
            .filter((r) => r.chain === step.network)
            .map((r) => `${r.from}-${r.to} at ${new Date(r.at).toISOString()}`)
            .join(', ');
        if (alarmed) alarmedFinals++;
        else if (deepReorg) {
          closedBeforeDeepReorg++;
          notes.push(`contradicted by the reorg deeper than the policy: ${detail}`);
        } else {
          falseFinals++;
          problems.push(`false final: ${detail}`);
        }
      }
    }
    verdicts.push({
      actionId: action.actionId,
      kind: action.kind,
      phase,
      ...(status?.reason ? { reason: status.reason } : {}),
      effects,
      problems,
      notes,
      duplicate,
      lost,
      stuck,
      falseFinals,
      alarmedFinals,
      closedBeforeDeepReorg,
      continuedRuns: continuedByAction.get(action.actionId) ?? 0,
    });
  }

  // 4. The signer's transactions and nonce on each chain; balances that add up.
  const chains: Verdict['chains'] = {};
  for (const [name, client] of Object.entries(clients)) {
    const [latest, pending] = await Promise.all([
      client.getTransactionCount({ address: SIGNER, blockTag: 'latest' }),
      client.getTransactionCount({ address: SIGNER, blockTag: 'pending' }),
    ]);
    const txs = signerTxs[name];
    chains[name] = {
      signerTransactions: txs.length,
      nonceAdvance: latest - baseline.nonce[name],
      unaccounted: txs.filter((t) => !accounted.has(t.hash.toLowerCase())).map((t) => t.hash),
      reverted: txs.filter((t) => t.reverted).length,
      pendingAtEnd: pending - latest,
    };
  }
  const balanceProblems: string[] = [];
  const sum = (logs: Logs) => [...logs.values()].flat().reduce((total, l) => total + l.amount, 0n);
  const escrow = await clients.chainA.readContract({
    address: chainA.contracts.token,
    abi: ABI,
    functionName: 'balanceOf',
    args: [chainA.contracts.escrow],
  });
  if (escrow - baseline.escrowA !== sum(locked) - sum(unlocked)) {
    balanceProblems.push(
      `chainA escrow holds ${escrow - baseline.escrowA}, locks minus unlocks is ${sum(locked) - sum(unlocked)}`,
    );
  }
  const supply = await clients.chainB.readContract({
    address: chainB.contracts.token,
    abi: ABI,
    functionName: 'totalSupply',
  });
  if (supply - baseline.supplyB !== sum(minted)) {
    balanceProblems.push(`chainB supply grew by ${supply - baseline.supplyB}, mints add up to ${sum(minted)}`);
  }
  for (const [name, c] of Object.entries(chains)) {
    if (c.nonceAdvance !== c.signerTransactions) {
      balanceProblems.push(
        `${name}: the signer's nonce advanced ${c.nonceAdvance}, it has ${c.signerTransactions} transactions`,
      );
    }
  }

  // 5. No private key in any log or history.
  const secretLeaks: string[] = [];
  const needles = input.secrets.map((s) => s.replace(/^0x/, '').toLowerCase());
  const leaks = (text: string) => needles.some((n) => text.toLowerCase().includes(n));
  for (const file of input.logFiles) if (leaks(readFileSync(file, 'utf8'))) secretLeaks.push(file);
  await pool(runs, 6, async ({ workflowId, runId }) => {
    const history = await input.client.workflow.getHandle(workflowId, runId).fetchHistory();
    if (leaks(textOf(history))) secretLeaks.push(`history ${workflowId}/${runId}`);
  });

  const count = (f: (v: ActionVerdict) => boolean) => verdicts.filter(f).length;
  const byPhase: Record<string, number> = {};
  for (const v of verdicts) byPhase[v.phase] = (byPhase[v.phase] ?? 0) + 1;
  return {
    actions: verdicts,
    byPhase,
    duplicateEffects: count((v) => v.duplicate),
    lost: count((v) => v.lost),
    stuck: count((v) => v.stuck),
    falseFinals: verdicts.reduce((n, v) => n + v.falseFinals, 0),
    alarmedFinals: verdicts.reduce((n, v) => n + v.alarmedFinals, 0),
    closedBeforeDeepReorg: verdicts.reduce((n, v) => n + v.closedBeforeDeepReorg, 0),
    chains,
    extraTransactions: Object.values(chains).reduce((n, c) => n + c.reverted, 0),
    unaccountedTransactions: Object.values(chains).reduce((n, c) => n + c.unaccounted.length, 0),
    openNonceGaps: Object.values(chains).reduce((n, c) => n + c.pendingAtEnd, 0),
    balanceProblems,
    continueAsNew,
    secretLeaks,
    historiesScanned: runs.length,
    logsScanned: input.logFiles.length,
  };
}

/** Every string and every byte payload (as UTF-8) in a decoded history: payloads are JSON bytes. */
function textOf(value: unknown): string {
  const parts: string[] = [];
  const walk = (v: unknown) => {
    if (typeof v === 'string') parts.push(v);
    else if (v instanceof Uint8Array) parts.push(Buffer.from(v).toString('utf8'));
    else if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === 'object') Object.values(v).forEach(walk);
  };
  walk(value);
  return parts.join('\n');
}
