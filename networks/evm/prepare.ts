/** The last checks before a step's transaction is signed: its call, its policy, a simulation and its gas. */
import type { PrivateKeyAccount, PublicClient } from 'viem';
import type { SubmitStepInput } from '../../contract/activity-io';
import { ErrorType, nonRetryable } from '../../contract/errors';
import { encodeOperation } from './encode';
import { isRevert, revertReason } from './known-abi';
import type { SigningGuard } from './signing-guard';

const GAS_MARGIN_PERCENT = 125n;

/**
 * Resolves templates, encodes the call, checks it against the policy (a forbidden call is never simulated) and
 * simulates it: a revert here is final evidence, not a retry.
 */
export async function prepareCall(
  client: PublicClient,
  guard: SigningGuard,
  input: SubmitStepInput,
  { account, name, hint }: { account: PrivateKeyAccount; name: string; hint?: string },
) {
  const call = encodeOperation(input.operation, input.context);
  guard.check(name, call, hint);
  try {
    await client.call({ account: account.address, ...call, blockTag: 'pending' });
  } catch (error) {
    if (isRevert(error)) {
      throw nonRetryable(ErrorType.ExecutionReverted, `execution reverted: ${revertReason(error)}`);
    }
    throw error;
  }
  const gas = await client.estimateGas({ account: account.address, ...call, blockTag: 'pending' });
  return { ...call, gas: (gas * GAS_MARGIN_PERCENT) / 100n };
}
