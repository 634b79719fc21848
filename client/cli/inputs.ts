/**
 * Turns what the user gave (a file, standard input, flags) into validated inputs, before any connection is made:
 * an invalid input never reaches Temporal.
 */
import { readFile } from 'node:fs/promises';
import { ActionSpecSchema, type ActionSpecInput } from '../../contract/action-spec';
import { EvidenceSchema, type EvidenceInput } from '../../contract/evidence';
import { parseOrThrow, ValidationError } from '../../contract/validation';
import {
  CancelInputSchema,
  CompensateInputSchema,
  ResolveStepInputSchema,
  RetryStepInputSchema,
} from '../../contract/updates';
import type { CancelInput, CompensateInput, ResolveStepInput, RetryStepInput } from '../settle-client';

type Flags = Record<string, string | boolean | undefined>;

/** Reads `-` (standard input) or a file. */
export async function readSource(source: string, readStdin: () => Promise<string>, subject: string): Promise<string> {
  if (source === '-') return readStdin();
  try {
    return await readFile(source, 'utf8');
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw new ValidationError(subject, [{ path: '(file)', message: `cannot read ${source}: ${reason}` }]);
  }
}

export function parseJson(text: string, subject: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new ValidationError(subject, [{ path: '(root)', message: `must be JSON: ${(error as Error).message}` }]);
  }
}

/** A spec file's text, validated against the contract. Returns the spec as written (not its parsed form). */
export function specFromText(text: string): ActionSpecInput {
  const spec = parseJson(text, 'ActionSpec');
  parseOrThrow(ActionSpecSchema, spec, 'ActionSpec');
  return spec as ActionSpecInput;
}

/** Evidence from `--file` (optional) and flags (which win), validated. */
export function evidenceFromFlags(base: unknown, flags: Flags, defaults: { source: string }): EvidenceInput {
  const evidence = { ...objectOr(base, 'evidence'), ...evidenceFields(flags) };
  if (evidence.source === undefined) evidence.source = defaults.source;
  parseOrThrow(EvidenceSchema, evidence, 'evidence');
  return evidence as EvidenceInput;
}

/** A resolveStep input from `--file` (optional), the update's flags and the evidence flags. */
export function resolveFromFlags(
  base: unknown,
  update: { step?: string; reason?: string; operator?: string },
  flags: Flags,
  defaults: { source: string; operator?: string },
): ResolveStepInput {
  const file = objectOr(base, 'resolveStep input');
  const evidence = { ...objectOr(file.evidence ?? {}, 'resolveStep input'), ...evidenceFields(flags) };
  delete evidence.step;
  if (evidence.source === undefined) evidence.source = defaults.source;
  const input = {
    ...file,
    ...defined(update),
    evidence,
  };
  if (input.operator === undefined && defaults.operator) input.operator = defaults.operator;
  parseOrThrow(ResolveStepInputSchema, input, 'resolveStep input');
  return input as ResolveStepInput;
}

export function retryInput(update: { step?: string; reason?: string; operator?: string }): RetryStepInput {
  return parseOrThrow(RetryStepInputSchema, defined(update), 'retryStep input');
}

export function compensateInput(update: { reason?: string; operator?: string }): CompensateInput {
  return parseOrThrow(CompensateInputSchema, defined(update), 'compensate input');
}

export function cancelInput(update: { reason?: string; operator?: string }): CancelInput {
  return parseOrThrow(CancelInputSchema, defined(update), 'cancel input');
}

function objectOr(value: unknown, subject: string): Record<string, unknown> {
  if (value === undefined) return {};
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ValidationError(subject, [{ path: '(root)', message: 'must be a JSON object' }]);
  }
  return { ...(value as Record<string, unknown>) };
}

function defined<T extends object>(object: T): T {
  return Object.fromEntries(Object.entries(object).filter(([, v]) => v !== undefined)) as T;
}

/** Flags to evidence fields: numbers where the contract wants numbers, `block` from its two halves. */
function evidenceFields(flags: Flags): Record<string, unknown> {
  const fields: Record<string, unknown> = {};
  const text = (key: string) => (typeof flags[key] === 'string' ? (flags[key] as string) : undefined);
  for (const [flag, field] of [
    ['step', 'step'],
    ['network', 'network'],
    ['for', 'for'],
    ['kind', 'kind'],
    ['ref', 'ref'],
    ['orphaned-hash', 'orphanedHash'],
    ['reason', 'reason'],
    ['source', 'source'],
    ['observed-at', 'observedAt'],
  ] as const) {
    if (text(flag) !== undefined) fields[field] = text(flag);
  }
  const confirmations = text('confirmations');
  if (confirmations !== undefined) {
    fields.confirmations = /^-?\d+$/.test(confirmations) ? Number(confirmations) : confirmations;
  }
  if (text('block-number') !== undefined || text('block-hash') !== undefined) {
    fields.block = defined({ number: text('block-number'), hash: text('block-hash') });
  }
  const output = text('output');
  if (output !== undefined) fields.output = parseJson(output, 'evidence output');
  return fields;
}
