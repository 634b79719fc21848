import {
  BaseError,
  ContractFunctionRevertedError,
  decodeErrorResult,
  decodeEventLog,
  type Abi,
  type AbiEvent,
  type Log,
  type PublicClient,
  type TransactionReceipt,
} from 'viem';
import escrow from '../../contracts/artifacts/BridgeEscrow.json';
import minter from '../../contracts/artifacts/BridgeMinter.json';
import token from '../../contracts/artifacts/SettleToken.json';
import type { JsonValue, StepOutput } from '../../contract/primitives';

type AbiError = Extract<Abi[number], { type: 'error' }>;

/** Events and errors of Settle's own contracts: what receipts and reverts are decoded with. */
const KNOWN: Abi = [...(escrow.abi as Abi), ...(minter.abi as Abi), ...(token.abi as Abi)];
export const KNOWN_EVENTS = dedupe(KNOWN.filter((item): item is AbiEvent => item.type === 'event'));
export const KNOWN_ERRORS = dedupe(KNOWN.filter((item): item is AbiError => item.type === 'error'));

function dedupe<T extends { name: string; inputs: readonly unknown[] }>(items: T[]): T[] {
  const seen = new Set<string>();
  return items.filter((item) => {
    const key = `${item.name}/${JSON.stringify(item.inputs)}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** Plain JSON for payloads: bigint as decimal strings. */
export function toJson(value: unknown): JsonValue {
  if (typeof value === 'bigint') return value.toString();
  if (Array.isArray(value)) return value.map(toJson);
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, toJson(v)]));
  }
  if (value === undefined) return null;
  return value as JsonValue;
}

/**
 * Decodes the logs a receipt carries with the known events: `events` lists them, and each event's fields are also
 * copied to the top level (first occurrence wins), so a later step can use `{{steps.burn.output.messageId}}`.
 */
export function decodeReceiptLogs(logs: Log[]): StepOutput {
  const events: JsonValue[] = [];
  const fields: StepOutput = {};
  for (const log of logs) {
    try {
      const decoded = decodeEventLog({ abi: KNOWN_EVENTS, data: log.data, topics: log.topics });
      const args = toJson(decoded.args ?? {}) as Record<string, JsonValue>;
      events.push({ name: decoded.eventName ?? '?', address: log.address, args });
      for (const [key, value] of Object.entries(args)) if (!(key in fields)) fields[key] = value;
    } catch {
      // not one of ours
    }
  }
  return { ...fields, events };
}

/** The revert reason in words: `AlreadyMinted(0x…)`, `transfer failed`, or viem's short message. */
export function revertReason(error: unknown): string {
  if (error instanceof BaseError) {
    const reverted = error.walk((e) => e instanceof ContractFunctionRevertedError);
    if (reverted instanceof ContractFunctionRevertedError) {
      if (reverted.data?.errorName) {
        const args = (reverted.data.args ?? []).map((a) => String(toJson(a)));
        return `${reverted.data.errorName}(${args.join(', ')})`;
      }
      if (reverted.reason) return reverted.reason;
    }
    const data = findRevertData(error);
    if (data) {
      try {
        const decoded = decodeErrorResult({ abi: KNOWN_ERRORS, data });
        return `${decoded.errorName}(${((decoded.args ?? []) as readonly unknown[]).map((a) => String(toJson(a))).join(', ')})`;
      } catch {
        return `reverted with data ${data.slice(0, 74)}`;
      }
    }
    return error.shortMessage;
  }
  return error instanceof Error ? error.message : String(error);
}

function findRevertData(error: BaseError): `0x${string}` | undefined {
  let found: `0x${string}` | undefined;
  const isHex = (value: unknown): value is `0x${string}` =>
    typeof value === 'string' && /^0x[0-9a-fA-F]{8,}$/.test(value);
  error.walk((e) => {
    // viem puts it in `data`; hardhat nests it as `data.data`, or only names it in the message.
    const data = (e as { data?: unknown }).data;
    const nested = data && typeof data === 'object' ? (data as { data?: unknown }).data : undefined;
    const inMessage = /return data: (0x[0-9a-fA-F]+)/.exec(String((e as Error).message))?.[1];
    found ??= [data, nested, inMessage].find(isHex);
    return false;
  });
  return found;
}

/** Whether an RPC error says the execution reverted (as opposed to the node being unreachable or refusing). */
export function isRevert(error: unknown): boolean {
  if (!(error instanceof BaseError)) return false;
  if (error.walk((e) => e instanceof ContractFunctionRevertedError)) return true;
  const text = `${error.shortMessage} ${error.details ?? ''}`.toLowerCase();
  return text.includes('revert') || text.includes('execution reverted');
}

/** Replays a reverted transaction against the state before its block to read the reason. */
export async function replayRevertReason(client: PublicClient, receipt: TransactionReceipt): Promise<string> {
  try {
    const tx = await client.getTransaction({ hash: receipt.transactionHash });
    await client.call({
      account: tx.from,
      to: tx.to ?? undefined,
      data: tx.input,
      value: tx.value,
      gas: tx.gas,
      blockNumber: receipt.blockNumber - 1n,
    });
    return 'reverted on chain (the replay before its block succeeds)';
  } catch (error) {
    return revertReason(error);
  }
}
