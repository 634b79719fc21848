/**
 * The `npm start` demo: one bridge transfer between the local chains, its progress shown live in the terminal
 * (steps, states, confirmations, local vs global) with the Web UI link to the run.
 */
import type { Client } from '@temporalio/client';
import { createPublicClient, http, parseAbi, type Hex } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { bridgeTransfer } from '../client/plans';
import { statusQuery } from '../contract/messages';
import { TERMINAL_PHASES, type ActionStatus, type Phase, type StepStatus } from '../contract/status';
import { DEV_KEYS, type LocalChains } from './chains';

export interface DemoOptions {
  client: Client;
  taskQueue: string;
  chains: LocalChains['chains'];
  uiUrl: string;
  namespace: string;
  out?: NodeJS.WriteStream;
  amount?: string;
  timeoutMs?: number;
}

/** Where the demo stops waiting: the action has ended, or it waits for an operator. */
const STOP_WAITING_PHASES: readonly Phase[] = [...TERMINAL_PHASES, 'needs_action'];
const BALANCE = parseAbi(['function balanceOf(address) view returns (uint256)']);

/** Runs one bridge transfer chainA → chainB and renders its status until it settles; returns the final status. */
export async function runDemoTransfer(options: DemoOptions): Promise<ActionStatus> {
  const out = options.out ?? process.stdout;
  const { chainA, chainB } = options.chains;
  const recipient = privateKeyToAccount(DEV_KEYS.user).address;
  const amount = options.amount ?? '1000';
  const actionId = `demo-${new Date()
    .toISOString()
    .replace(/[-:.TZ]/g, '')
    .slice(0, 14)}-${Math.random().toString(36).slice(2, 6)}`;
  const spec = bridgeTransfer({
    actionId,
    from: 'chainA',
    to: 'chainB',
    token: { escrow: chainA.contracts.escrow, minter: chainB.contracts.minter },
    amount,
    recipient,
    deadline: '5m',
  });
  const balances = async () => ({
    escrow: await balanceOf(chainA.rpcUrl, chainA.contracts.token, chainA.contracts.escrow),
    recipient: await balanceOf(chainB.rpcUrl, chainB.contracts.token, recipient),
  });
  const before = await balances();
  const handle = await options.client.workflow.start('crossNetworkAction', {
    taskQueue: options.taskQueue,
    workflowId: actionId,
    args: [spec],
  });
  out.write(
    [
      `settle: bridge transfer ${actionId}: ${amount} STL from chainA (lock) to ${recipient} on chainB (mint)`,
      `settle: Web UI: ${options.uiUrl}/namespaces/${options.namespace}/workflows/${actionId}`,
      '',
    ].join('\n'),
  );
  const started = Date.now();
  const render = out.isTTY ? redrawing(out) : appending(out);
  let status: ActionStatus;
  for (;;) {
    status = await handle.query(statusQuery);
    render(status, Date.now() - started);
    if (STOP_WAITING_PHASES.includes(status.phase)) break;
    if (Date.now() - started > (options.timeoutMs ?? 5 * 60_000)) break;
    await new Promise((r) => setTimeout(r, 300));
  }
  const after = await balances();
  out.write(
    `settle: ${status.phase}: escrow on chainA ${before.escrow} → ${after.escrow}; ` +
      `recipient on chainB ${before.recipient} → ${after.recipient}\n`,
  );
  return status;
}

async function balanceOf(rpcUrl: string, token: Hex, owner: Hex): Promise<bigint> {
  return createPublicClient({ transport: http(rpcUrl) }).readContract({
    address: token,
    abi: BALANCE,
    functionName: 'balanceOf',
    args: [owner],
  });
}

/** The status as lines: the action's phase and progress, then one line per step. */
export function statusLines(status: ActionStatus, elapsedMs: number): string[] {
  const { total, locallyConfirmed, final } = status.progress;
  return [
    `[${(elapsedMs / 1000).toFixed(1).padStart(5)}s] ${status.phase.padEnd(12)} local ${locallyConfirmed}/${total} · global ${final}/${total}`,
    ...status.steps.map((step) => `          ${stepLine(step)}`),
  ];
}

function stepLine(step: StepStatus): string {
  const need = 'confirmations' in step.finality ? `/${step.finality.confirmations}` : ` (${step.finality.tag})`;
  const confirmations = step.confirmations !== undefined ? `${step.confirmations}${need} confirmations` : '';
  const ref = step.ref ? `${step.ref.slice(0, 10)}…` : '';
  const compensation = step.compensation ? ` · compensation ${step.compensation.state}` : '';
  const error = step.error ? ` · ${step.error}` : '';
  return [
    step.id.padEnd(6),
    step.network.padEnd(7),
    step.state.padEnd(12),
    confirmations.padEnd(18),
    ref,
    compensation + error,
  ].join(' ');
}

function redrawing(out: NodeJS.WriteStream) {
  let drawn = 0;
  return (status: ActionStatus, elapsedMs: number) => {
    const lines = statusLines(status, elapsedMs);
    if (drawn > 0) out.write(`\x1b[${drawn}A\x1b[J`);
    out.write(`${lines.join('\n')}\n`);
    drawn = lines.length;
  };
}

/** Without a terminal (CI, pipes): a line each time something changes. */
function appending(out: NodeJS.WriteStream) {
  let last = '';
  return (status: ActionStatus, elapsedMs: number) => {
    const lines = statusLines(status, elapsedMs);
    const key = lines.slice(1).join('\n') + status.phase;
    if (key === last) return;
    last = key;
    out.write(`${lines.join('\n')}\n`);
  };
}
