/**
 * The signing policy of one signer on one chain: the only transactions the worker signs for it. Written in the
 * networks file (`networks.<name>.policies.<signer>`), compiled once at start-up, and checked by the sender on the
 * decoded transaction it is about to sign: the contracts it may call and, per contract, the functions (selectors);
 * native transfers (destinations and a cap per transaction); a cap per call on the amount an allowed function moves
 * (one named argument); and rolling spend budgets per route, which the signer's nonce owner keeps (see `Spend`).
 */
import {
  decodeFunctionData,
  encodeFunctionData,
  parseAbiItem,
  toFunctionSelector,
  toFunctionSignature,
  type AbiFunction,
  type Hex,
} from 'viem';
import { z } from 'zod';
import { formatDuration, DurationSchema } from '../../contract/duration';
import { ErrorType, nonRetryable } from '../../contract/errors';
import { DecimalStringSchema, HexAddressSchema } from '../../contract/primitives';
import type { Spend } from '../../workflows/machine/nonce-book';

/** A rolling budget: at most `limit` (token units or wei) per `window`, over every call of its route. */
const BudgetSchema = z.strictObject({ limit: DecimalStringSchema, window: DurationSchema });

const FunctionRuleSchema = z
  .union(
    [
      z.strictObject({
        /** A human-readable signature, `function lock(bytes32 actionId, address recipient, uint256 amount)`. */
        function: z.string().min(1),
        /** The argument that says how much the call moves: capped per call, and counted against the budget. */
        amount: z
          .strictObject({ arg: z.string().min(1), max: DecimalStringSchema, budget: BudgetSchema.optional() })
          .optional(),
      }),
      /** A bare selector: allowed without decoding, so without amount rules. */
      z.strictObject({
        selector: z.string().regex(/^0x[0-9a-fA-F]{8}$/, 'must be a 4-byte selector (0x + 8 hex digits)'),
      }),
    ],
    { error: 'must be { "function": "function name(type arg, …)", "amount"?: … } or { "selector": "0x12345678" }' },
  )
  .superRefine((rule, ctx) => {
    compileRule(rule, (message, path = []) => ctx.addIssue({ code: 'custom', path, message }));
  });

const ContractRuleSchema = z
  .strictObject({ label: z.string().optional(), functions: z.array(FunctionRuleSchema) })
  .superRefine((contract, ctx) => {
    const selectors = new Set<string>();
    contract.functions.forEach((rule, i) => {
      const compiled = compileRule(rule, () => undefined);
      if (compiled && selectors.has(compiled.selector)) {
        ctx.addIssue({
          code: 'custom',
          path: ['functions', i],
          message: `selector ${compiled.selector} is listed twice`,
        });
      }
      if (compiled) selectors.add(compiled.selector);
    });
  });

export const SignerPolicySchema = z
  .strictObject({
    /** Contract address → what may be called on it. */
    contracts: z.record(HexAddressSchema, ContractRuleSchema).default({}),
    /** Transactions that carry value (plain transfers, or value sent with a call). Absent: none. */
    native: z
      .strictObject({
        to: z.union([z.literal('any'), z.array(HexAddressSchema).min(1)], {
          error: 'must be "any" or a list of addresses',
        }),
        max: DecimalStringSchema,
        budget: BudgetSchema.optional(),
      })
      .optional(),
  })
  .superRefine((policy, ctx) => {
    const seen = new Set<string>();
    for (const address of Object.keys(policy.contracts)) {
      if (seen.has(address.toLowerCase())) {
        ctx.addIssue({ code: 'custom', path: ['contracts', address], message: 'the same contract is listed twice' });
      }
      seen.add(address.toLowerCase());
    }
  });
export type SignerPolicyInput = z.input<typeof SignerPolicySchema>;
export type SignerPolicy = z.output<typeof SignerPolicySchema>;

interface Budget {
  limit: bigint;
  windowMs: number;
}
interface FunctionRule {
  selector: Hex;
  /** `lock(bytes32,address,uint256)`, or the selector for a bare-selector rule. */
  signature: string;
  abi?: AbiFunction;
  amount?: { name: string; index: number; max: bigint; budget?: Budget };
}
/** A policy ready to check transactions against. */
export interface CompiledPolicy {
  signer: string;
  network: string;
  contracts: Map<string, { label?: string; functions: Map<string, FunctionRule> }>;
  native?: { to: 'any' | Set<string>; max: bigint; budget?: Budget };
}

type Issue = (message: string, path?: (string | number)[]) => void;

function compileRule(rule: z.output<typeof FunctionRuleSchema>, issue: Issue): FunctionRule | undefined {
  if ('selector' in rule)
    return { selector: rule.selector.toLowerCase() as Hex, signature: rule.selector.toLowerCase() };
  let abi;
  try {
    abi = parseAbiItem(rule.function.trim().startsWith('function ') ? rule.function : `function ${rule.function}`);
  } catch (error) {
    return void issue(`cannot parse "${rule.function}": ${(error as Error).message.split('\n')[0]}`, ['function']);
  }
  if (abi.type !== 'function') return void issue(`"${rule.function}" is not a function signature`, ['function']);
  const compiled: FunctionRule = { selector: toFunctionSelector(abi), signature: toFunctionSignature(abi), abi };
  if (!rule.amount) return compiled;
  const index = abi.inputs.findIndex((input) => input.name === rule.amount!.arg);
  if (index < 0 || !/^uint\d*$/.test(abi.inputs[index].type)) {
    return void issue(`"${rule.amount.arg}" is not a uint argument of ${compiled.signature}`, ['amount', 'arg']);
  }
  const { max, budget } = rule.amount;
  return {
    ...compiled,
    amount: { name: rule.amount.arg, index, max: BigInt(max), ...(budget ? { budget: budgetOf(budget) } : {}) },
  };
}

const budgetOf = (budget: { limit: string; window: number }): Budget => ({
  limit: BigInt(budget.limit),
  windowMs: budget.window,
});

/** Compiles a policy parsed with {@link SignerPolicySchema} (its rules are known to be valid). */
export function compilePolicy(policy: SignerPolicy, where: { signer: string; network: string }): CompiledPolicy {
  const contracts: CompiledPolicy['contracts'] = new Map();
  for (const [address, contract] of Object.entries(policy.contracts)) {
    const functions = new Map<string, FunctionRule>();
    for (const rule of contract.functions) {
      const compiled = compileRule(rule, (message) => {
        throw new Error(message);
      })!;
      functions.set(compiled.selector, compiled);
    }
    contracts.set(address.toLowerCase(), { ...(contract.label ? { label: contract.label } : {}), functions });
  }
  const { native } = policy;
  return {
    ...where,
    contracts,
    ...(native
      ? {
          native: {
            to: native.to === 'any' ? 'any' : new Set(native.to.map((a) => a.toLowerCase())),
            max: BigInt(native.max),
            ...(native.budget ? { budget: budgetOf(native.budget) } : {}),
          },
        }
      : {}),
  };
}

/** What is about to be signed: the transaction's destination, calldata and value. */
export interface CheckedCall {
  to: Hex;
  data?: Hex;
  value: bigint;
}

/**
 * Checks a transaction against the policy on its decoded calldata (never on the step's own strings) and returns what
 * it spends per budgeted route. A violation is a non-retryable `PolicyViolation` that names the rule. `hint` (the
 * operation's signature) only names a refused selector in the message.
 *
 * @example const spend = checkCall(policy, { to: escrow, data, value: 0n }); // [{ route: '0x…:lock(…)', … }]
 */
export function checkCall(policy: CompiledPolicy, call: CheckedCall, hint?: string): Spend[] {
  const spend: Spend[] = [];
  const to = call.to.toLowerCase();
  const data = call.data && call.data !== '0x' ? (call.data.toLowerCase() as Hex) : undefined;
  if (call.value > 0n || !data) spend.push(...checkNative(policy, to, call.value));
  if (!data) return spend;
  const selector = data.slice(0, 10);
  const contract = policy.contracts.get(to);
  const rule = contract?.functions.get(selector);
  const who = `${policy.signer} on ${policy.network}`;
  if (!contract || !rule) {
    const why = contract ? 'the function is not allowed there' : 'the contract is not in its policy';
    throw violation(`policy: ${who} may not call ${call.to}:${name(selector, hint)} (${why})`);
  }
  if (!rule.abi) return spend;
  let args: readonly unknown[];
  try {
    args = decodeFunctionData({ abi: [rule.abi], data }).args ?? [];
  } catch {
    throw violation(`policy: the calldata for ${call.to}:${rule.signature} does not decode as ${rule.signature}`);
  }
  const canonical = encodeFunctionData({ abi: [rule.abi], functionName: rule.abi.name, args }).toLowerCase();
  if (canonical !== data) {
    throw violation(`policy: the calldata for ${call.to}:${rule.signature} is not its canonical encoding`);
  }
  if (!rule.amount) return spend;
  const amount = args[rule.amount.index] as bigint;
  const fn = `${rule.abi.name} ${rule.amount.name}`;
  if (amount > rule.amount.max) {
    throw violation(`policy: ${fn} ${formatAmount(amount)} is over the cap ${rule.amount.max} for ${who}`);
  }
  const route = `${to}:${rule.signature}`;
  if (rule.amount.budget) spend.push(spendOf(route, amount, rule.amount.budget, `${fn} ${formatAmount(amount)}`, who));
  return spend;
}

function checkNative(policy: CompiledPolicy, to: string, value: bigint): Spend[] {
  const who = `${policy.signer} on ${policy.network}`;
  const { native } = policy;
  if (!native) throw violation(`policy: ${who} may not send native value (${formatAmount(value)} wei to ${to})`);
  if (native.to !== 'any' && !native.to.has(to)) {
    throw violation(`policy: ${who} may not send native value to ${to} (not a listed destination)`);
  }
  if (value > native.max) {
    throw violation(`policy: native value ${formatAmount(value)} wei is over the cap ${native.max} for ${who}`);
  }
  return native.budget ? [spendOf('native', value, native.budget, `native value ${formatAmount(value)} wei`, who)] : [];
}

function spendOf(route: string, amount: bigint, budget: Budget, what: string, who: string): Spend {
  // A call the whole budget cannot hold would wait forever: it is refused like one over its cap.
  if (amount > budget.limit) {
    throw violation(
      `policy: ${what} is over the whole budget ${budget.limit} per ${formatDuration(budget.windowMs)} for ${who}`,
    );
  }
  return { route, amount: amount.toString(), limit: budget.limit.toString(), windowMs: budget.windowMs };
}

/** The refused selector, named by the operation's signature when that is what it is. */
function name(selector: string, hint?: string): string {
  if (!hint) return selector;
  try {
    const fn = parseAbiItem(hint.trim().startsWith('function ') ? hint : `function ${hint}`);
    if (fn.type === 'function' && toFunctionSelector(fn) === selector) return toFunctionSignature(fn);
  } catch {
    // not a signature: the selector alone
  }
  return selector;
}

/** `10^30` for a round power of ten (the absurd amounts people try), else the decimal number. */
export function formatAmount(amount: bigint): string {
  const text = amount.toString();
  return /^10{6,}$/.test(text) ? `10^${text.length - 1}` : text;
}

/** A route's name in messages: the contract's label and function, or native value. */
export function routeLabel(policy: CompiledPolicy, route: string): string {
  if (route === 'native') return 'native value';
  const [address, signature] = route.split(':');
  const label = policy.contracts.get(address)?.label;
  return `${label ? `${label} ` : ''}${address}:${signature}`;
}

function violation(message: string) {
  return nonRetryable(ErrorType.PolicyViolation, message);
}
