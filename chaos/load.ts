/**
 * The load of a chaos run: actions of four kinds started over time, each with a fresh recipient so the chain alone
 * says how many times it was paid. Native payments (`evm.transfer`) have no contract to refuse a second payment: the
 * recipient's balance is the ground truth for exactly-once. Bridge transfers lock on chainA and mint on chainB, after
 * the lock is final (safe path) or only included (fast path).
 */
import { keccak256, toHex, type Hex } from 'viem';
import type { ActionSpecInput } from '../contract/action-spec';
import { bridgeTransfer } from '../client/plans';
import type { LocalChains } from '../devnet/chains';
import type { Prng } from './prng';

export const ACTION_KINDS = ['payment', 'payment-held', 'bridge', 'bridge-fast'] as const;
export type ActionKind = (typeof ACTION_KINDS)[number];

/** The native value of each payment (odd, so an accidental other transfer cannot look like one). */
export const PAYMENT_VALUE = 1_000_000_007n;

export interface PlannedAction {
  actionId: string;
  kind: ActionKind;
  /** Seconds after the load began. */
  at: number;
  via: 'client' | 'api';
  network: 'chainA' | 'chainB';
  recipient: Hex;
  /** Token units for a transfer, wei for a payment. */
  amount: bigint;
  spec: ActionSpecInput;
}

function freshAddress(seed: number, i: number): Hex {
  return `0x${keccak256(toHex(`settle-chaos/${seed}/${i}`)).slice(-40)}` as Hex;
}

/** The actions of a run, in start order: the same seed, the same actions. */
export function planActions(
  rng: Prng,
  local: LocalChains,
  options: { actions: number; loadSeconds: number; apiShare: number },
): PlannedAction[] {
  const times = Array.from({ length: options.actions }, () => rng.next() * options.loadSeconds).sort((a, b) => a - b);
  return times.map((at, i) => {
    const kind = ACTION_KINDS[i % ACTION_KINDS.length];
    const actionId = `chaos-${rng.seed}-${String(i).padStart(4, '0')}-${kind}`;
    const recipient = freshAddress(rng.seed, i);
    const via = rng.chance(options.apiShare) ? 'api' : 'client';
    if (kind === 'payment' || kind === 'payment-held') {
      const network = rng.pick(['chainA', 'chainB'] as const);
      const held = kind === 'payment-held';
      const spec: ActionSpecInput = {
        actionId,
        type: kind,
        deadline: '4m',
        // A held payment gets a step timeout short enough to pass under a freeze or a fee spike: it waits for an
        // operator (who retries it, sometimes while its first transaction is still pending).
        onDeadline: held ? 'hold' : 'compensate',
        steps: [
          {
            id: 'pay',
            network,
            operation: { kind: 'evm.transfer', signer: 'bridge', to: recipient, value: PAYMENT_VALUE.toString() },
            ...(held ? { timeout: '5s' } : {}),
          },
        ],
      };
      return { actionId, kind, at, via, network, recipient, amount: PAYMENT_VALUE, spec };
    }
    const amount = BigInt(rng.int(1, 1000));
    const spec = bridgeTransfer({
      actionId,
      from: 'chainA',
      to: 'chainB',
      token: { escrow: local.chains.chainA.contracts.escrow, minter: local.chains.chainB.contracts.minter },
      amount: amount.toString(),
      recipient,
      deadline: '4m',
    });
    if (kind === 'bridge-fast') {
      spec.type = 'bridge-transfer-fast';
      const mint = spec.steps.find((s) => s.id === 'mint')!;
      mint.after = [{ step: 'lock', stage: 'included' }];
    }
    return { actionId, kind, at, via, network: 'chainA', recipient, amount, spec };
  });
}
