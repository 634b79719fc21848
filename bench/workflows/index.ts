/**
 * Baselines for the benchmarks, in their own bundle on their own task queue (production code is untouched):
 * `bareSignalled`, a workflow that completes after a number of signals and does nothing else, and `naiveTransfer`, a
 * bridge transfer as a naive design would write it: submit, then one activity that polls the receipt every block
 * until finality (heartbeating each block), then the next step.
 */
import { condition, defineSignal, proxyActivities, setHandler } from '@temporalio/workflow';
import type { BaselineActivities } from '../baseline-activities';

export const bareSignal = defineSignal('bare');

/** Completes once it has received `signals` signals. */
export async function bareSignalled(signals: number): Promise<number> {
  let received = 0;
  setHandler(bareSignal, () => void received++);
  await condition(() => received >= signals);
  return received;
}

export interface NaiveTransferInput {
  from: string;
  to: string;
  confirmations: number;
  blockTimeMs: number;
}

/** Lock on `from`, wait until final, mint on `to`, wait until final: one submit and one polling activity per step. */
export async function naiveTransfer(input: NaiveTransferInput): Promise<string[]> {
  const heartbeatTimeout = 3 * input.blockTimeMs;
  const { naiveSubmit } = proxyActivities<BaselineActivities>({ startToCloseTimeout: '1m' });
  const { naiveAwaitFinal } = proxyActivities<BaselineActivities>({ startToCloseTimeout: '30m', heartbeatTimeout });
  const hashes: string[] = [];
  for (const network of [input.from, input.to]) {
    const hash = await naiveSubmit(network);
    await naiveAwaitFinal({ network, hash, confirmations: input.confirmations, blockTimeMs: input.blockTimeMs });
    hashes.push(hash);
  }
  return hashes;
}
