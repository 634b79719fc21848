import { ApplicationFailure } from '@temporalio/common';
import { keccak256, toBytes } from 'viem';
import type { OperationArg } from '../../contract/action-spec';
import type { JsonValue } from '../../contract/primitives';
import type { TemplateContext } from '../../contract/templates';

const TEMPLATE = /\{\{\s*([^{}]*?)\s*\}\}/g;
const WHOLE_TEMPLATE = /^\{\{\s*([^{}]*?)\s*\}\}$/;

/** `{{action.idHash}}`: keccak256 of the action id's UTF-8 bytes, as bytes32. What contracts key actions by. */
export function actionIdHash(actionId: string): `0x${string}` {
  return keccak256(toBytes(actionId));
}

/**
 * Resolves `{{…}}` templates in an operation argument. A string that is one template becomes the referenced value
 * itself (so a number stays a number); templates inside a longer string are interpolated.
 *
 * @example resolveTemplates('{{steps.lock.output.amount}}', context) // '1000'
 */
export function resolveTemplates(value: OperationArg, context: TemplateContext): OperationArg {
  if (Array.isArray(value)) return value.map((item) => resolveTemplates(item, context));
  if (typeof value !== 'string') return value;
  const whole = WHOLE_TEMPLATE.exec(value);
  if (whole) return toArg(lookup(whole[1], context), whole[1]);
  return value.replace(TEMPLATE, (_, expression: string) => String(toArg(lookup(expression, context), expression)));
}

function lookup(expression: string, context: TemplateContext): JsonValue | undefined {
  if (expression === 'action.id') return context.actionId;
  if (expression === 'action.idHash') return actionIdHash(context.actionId);
  const match = /^steps\.([A-Za-z][A-Za-z0-9_-]*)\.(ref|block|output\.(.+))$/.exec(expression);
  if (!match) throw invalid(`unknown template {{${expression}}}`);
  const step = context.steps[match[1]];
  if (!step) throw invalid(`template {{${expression}}}: unknown step "${match[1]}"`);
  if (match[2] === 'ref') return step.ref;
  if (match[2] === 'block') return step.block?.number;
  return outputField(step.output, match[3]);
}

/** `output.a.b`: the key "a.b" if the output has it, else the nested field a → b. */
function outputField(output: Record<string, JsonValue> | undefined, path: string): JsonValue | undefined {
  if (!output) return undefined;
  if (path in output) return output[path];
  let current: JsonValue | undefined = output;
  for (const part of path.split('.')) {
    if (current === null || typeof current !== 'object') return undefined;
    current = Array.isArray(current) ? current[Number(part)] : current[part];
  }
  return current;
}

function toArg(value: JsonValue | undefined, expression: string): OperationArg {
  if (value === undefined || value === null) {
    // The step it names has not produced it (yet): retrying cannot help within this attempt.
    throw invalid(`template {{${expression}}} has no value yet`);
  }
  if (typeof value === 'object' && !Array.isArray(value)) throw invalid(`template {{${expression}}} is an object`);
  return value as OperationArg;
}

function invalid(message: string): ApplicationFailure {
  return ApplicationFailure.nonRetryable(message, 'InvalidOperation');
}
