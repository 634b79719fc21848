import { keccak256, toBytes } from 'viem';
import type { OperationArg } from '../../contract/action-spec';
import { ErrorType, nonRetryable } from '../../contract/errors';
import type { JsonValue } from '../../contract/primitives';
import { interpolate, parseTemplate, wholeTemplate, type TemplateContext } from '../../contract/templates';

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
  const whole = wholeTemplate(value);
  if (whole !== undefined) return toArg(lookup(whole, context), whole);
  return interpolate(value, (expression) => String(toArg(lookup(expression, context), expression)));
}

function lookup(expression: string, context: TemplateContext): JsonValue | undefined {
  const reference = parseTemplate(expression);
  if (!reference) throw invalid(`unknown template {{${expression}}}`);
  if (reference.kind === 'action.id') return context.actionId;
  if (reference.kind === 'action.idHash') return actionIdHash(context.actionId);
  const step = context.steps[reference.step];
  if (!step) throw invalid(`template {{${expression}}}: unknown step "${reference.step}"`);
  if (reference.kind === 'step.ref') return step.ref;
  if (reference.kind === 'step.block') return step.block?.number;
  return outputField(step.output, reference.field);
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

function invalid(message: string) {
  return nonRetryable(ErrorType.InvalidOperation, message);
}
