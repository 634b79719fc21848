import { encodeFunctionData, type Hex } from 'viem';
import type { EvmOperation } from '../../contract/action-spec';
import type { SubmitStepInput } from '../../contract/activity-io';
import { ErrorType, nonRetryable } from '../../contract/errors';
import { parseFunction, toAbiArgs } from './abi-args';
import { KNOWN_ERRORS } from './known-abi';
import { resolveTemplates } from './templates';

/** A call ready to simulate and sign: where, the calldata (none for a plain transfer) and the value in wei. */
export interface PreparedCall {
  to: Hex;
  data?: Hex;
  value: bigint;
}

/**
 * The call an operation makes, with its templates resolved. A bad address, argument or template is non-retryable.
 *
 * @example encodeOperation({ kind: 'evm.transfer', signer: 'bridge', to: '0x…', value: '1' }, context) // { to, value: 1n }
 */
export function encodeOperation(operation: EvmOperation, context: SubmitStepInput['context']): PreparedCall {
  const to = resolveTemplates(operation.to, context);
  if (typeof to !== 'string' || !/^0x[0-9a-fA-F]{40}$/.test(to)) {
    throw nonRetryable(ErrorType.InvalidOperation, `to: ${JSON.stringify(to)} is not an address`);
  }
  if (operation.kind === 'evm.transfer') return { to: to as Hex, value: BigInt(operation.value) };
  const fn = parseFunction(operation.function);
  const args = toAbiArgs(
    fn,
    operation.args.map((arg) => resolveTemplates(arg, context)),
  );
  return {
    to: to as Hex,
    data: encodeFunctionData({ abi: [fn, ...KNOWN_ERRORS], functionName: fn.name, args }),
    value: BigInt(operation.value ?? '0'),
  };
}
