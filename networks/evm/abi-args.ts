import { parseAbiItem, type AbiFunction, type AbiParameter } from 'viem';
import type { OperationArg } from '../../contract/action-spec';
import { ErrorType, nonRetryable } from '../../contract/errors';

/** Parses a human-readable signature such as `function lock(bytes32 id, uint256 amount)`. */
export function parseFunction(signature: string): AbiFunction {
  let item;
  try {
    item = parseAbiItem(signature);
  } catch (error) {
    throw invalid(`function: cannot parse "${signature}": ${(error as Error).message.split('\n')[0]}`);
  }
  if (item.type !== 'function') throw invalid(`function: "${signature}" is not a function signature`);
  return item;
}

/**
 * Converts JSON arguments to what viem encodes for each ABI parameter: decimal strings become bigint for integer
 * types; arrays and tuples are converted element by element. Bad input names the argument and the rule.
 */
export function toAbiArgs(fn: AbiFunction, args: OperationArg[]): unknown[] {
  if (args.length !== fn.inputs.length) {
    throw invalid(`args: ${fn.name} takes ${fn.inputs.length} arguments, got ${args.length}`);
  }
  return fn.inputs.map((param, i) => toAbiValue(param, args[i], `args[${i}]`));
}

function toAbiValue(param: AbiParameter, value: OperationArg, where: string): unknown {
  const type = param.type;
  const array = /^(.*)\[(\d*)\]$/.exec(type);
  if (array) {
    if (!Array.isArray(value)) throw invalid(`${where}: ${type} needs an array`);
    const inner = { ...param, type: array[1] } as AbiParameter;
    return value.map((item, i) => toAbiValue(inner, item, `${where}[${i}]`));
  }
  if (type === 'tuple') {
    const components = (param as { components: readonly AbiParameter[] }).components;
    if (!Array.isArray(value) || value.length !== components.length)
      throw invalid(`${where}: tuple needs an array of ${components.length} values`);
    return components.map((component, i) => toAbiValue(component, value[i], `${where}[${i}]`));
  }
  if (/^u?int\d*$/.test(type)) {
    if (typeof value === 'number' && Number.isSafeInteger(value)) return BigInt(value);
    if (typeof value === 'string' && /^-?\d+$/.test(value)) return BigInt(value);
    throw invalid(`${where}: ${type} needs a decimal string, got ${JSON.stringify(value)}`);
  }
  if (type === 'bool') {
    if (typeof value === 'boolean') return value;
    if (value === 'true' || value === 'false') return value === 'true';
    throw invalid(`${where}: bool needs true or false`);
  }
  if (type === 'address') {
    if (typeof value === 'string' && /^0x[0-9a-fA-F]{40}$/.test(value)) return value;
    throw invalid(`${where}: address needs a 0x-prefixed 20-byte hex string`);
  }
  const bytes = /^bytes(\d*)$/.exec(type);
  if (bytes) {
    const size = bytes[1] ? Number(bytes[1]) : undefined;
    const hex = typeof value === 'string' && /^0x([0-9a-fA-F]{2})*$/.test(value);
    if (hex && (size === undefined || value.length === 2 + 2 * size)) return value;
    throw invalid(`${where}: ${type} needs 0x-prefixed hex${size ? ` of ${size} bytes` : ''}`);
  }
  if (type === 'string') return String(value);
  throw invalid(`${where}: unsupported ABI type ${type}`);
}

function invalid(message: string) {
  return nonRetryable(ErrorType.InvalidOperation, message);
}
