/**
 * The `{{…}}` template grammar of operation arguments, written once: the spec's validation checks references with it,
 * and the EVM adapter resolves them with it. Bundle-safe (no Node, no viem).
 *
 *   {{action.id}}                  the action id
 *   {{action.idHash}}              keccak256 of the action id (what Settle's contracts key actions by)
 *   {{steps.<id>.ref}}             the transaction hash (or reference) of an earlier step
 *   {{steps.<id>.block}}           the number of the block it is included in
 *   {{steps.<id>.output.<field>}}  a field of its output (`a.b` reads the key "a.b", else the nested field)
 */
import type { BlockRef, StepOutput } from './primitives';

/** What an operation's `{{…}}` templates may read: the action id and what earlier steps produced. */
export interface TemplateContext {
  actionId: string;
  steps: Record<string, { ref?: string; block?: BlockRef; output?: StepOutput }>;
}

/** Every `{{…}}` in a string; group 1 is the expression, trimmed. */
const TEMPLATE = /\{\{\s*([^{}]*?)\s*\}\}/g;

/** A string that is one template and nothing else (what an address field may hold instead of an address). */
export const WHOLE_TEMPLATE = /^\{\{\s*([^{}]+?)\s*\}\}$/;

/** The expressions of the templates in a string, in order: `'a {{ action.id }} b'` → `['action.id']`. */
export function templateExpressions(text: string): string[] {
  return [...text.matchAll(TEMPLATE)].map((match) => match[1]);
}

/** The expression when the string is one template and nothing else (its value then replaces the whole string). */
export function wholeTemplate(text: string): string | undefined {
  return WHOLE_TEMPLATE.exec(text)?.[1].trim();
}

/** The string with each template replaced by what `value` gives for its expression. */
export function interpolate(text: string, value: (expression: string) => string): string {
  return text.replace(TEMPLATE, (_, expression: string) => value(expression));
}

/** What a template expression refers to. */
export type TemplateRef =
  | { kind: 'action.id' }
  | { kind: 'action.idHash' }
  | { kind: 'step.ref'; step: string }
  | { kind: 'step.block'; step: string }
  | { kind: 'step.output'; step: string; field: string };

const REFERENCE =
  /^(?:action\.(id|idHash)|steps\.([A-Za-z][A-Za-z0-9_-]*)\.(?:(ref|block)|output\.([A-Za-z0-9_.-]+)))$/;

/**
 * Parses the expression inside `{{…}}`; undefined when it is not one of the grammar's references.
 *
 * @example parseTemplate('steps.burn.output.messageId') // { kind: 'step.output', step: 'burn', field: 'messageId' }
 */
export function parseTemplate(expression: string): TemplateRef | undefined {
  const match = REFERENCE.exec(expression.trim());
  if (!match) return undefined;
  const [, action, step, field, outputField] = match;
  if (action === 'id') return { kind: 'action.id' };
  if (action === 'idHash') return { kind: 'action.idHash' };
  if (field === 'ref') return { kind: 'step.ref', step };
  if (field === 'block') return { kind: 'step.block', step };
  return { kind: 'step.output', step, field: outputField };
}
