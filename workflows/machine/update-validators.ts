/**
 * Validators of the operator updates: pure checks on the action's state, run before an update is accepted. A
 * rejection names the problem and leaves no trace in history.
 */
import { stepSpec, type ActionState } from './action';
import { formatPath } from '../../contract/validation';
import { TERMINAL_PHASES } from '../../contract/status';
import { ResolveStepInputSchema, RetryStepInputSchema } from '../../contract/updates';

interface Parser<T> {
  safeParse(
    raw: unknown,
  ): { success: true; data: T } | { success: false; error: { issues: { path: PropertyKey[]; message: string }[] } };
}

/** Parses an update's input; a bad one is rejected with every field path and rule. */
export function parseUpdate<T>(schema: Parser<T>, raw: unknown, what: string): T {
  const parsed = schema.safeParse(raw);
  if (parsed.success) return parsed.data;
  throw new Error(`${what}: ${parsed.error.issues.map((i) => `${formatPath(i.path)}: ${i.message}`).join('; ')}`);
}

/** `compensate` and `cancel`: valid input, and an action still running or held. */
export function validateActive<T>(state: ActionState, schema: Parser<T>, raw: unknown, what: string): void {
  parseUpdate(schema, raw, what);
  if (!['running', 'needs_action'].includes(state.phase))
    throw new Error(`cannot ${what}: the action is ${state.phase}`);
}

export function validateRetry(state: ActionState, raw: unknown): void {
  const input = parseUpdate(RetryStepInputSchema, raw, 'retryStep');
  const step = state.steps[input.step];
  if (!step) throw new Error(`retryStep: unknown step "${input.step}"`);
  if (step.state === 'compensation_failed' && state.exactlyOnce && state.phase === 'needs_action') return;
  if (!['failed', 'expired'].includes(step.state)) {
    throw new Error(`retryStep: step "${input.step}" is ${step.state}; only a failed or expired step can be retried`);
  }
  if (!['running', 'needs_action'].includes(state.phase) || state.compensating) {
    throw new Error(
      `retryStep: the action is ${state.phase}${state.compensating ? ' (compensation was decided)' : ''}`,
    );
  }
}

/**
 * An operator's evidence about an EVM step speaks of Settle's own transaction: it may omit the block (the operator
 * checked), never name a transaction Settle did not submit, nor resolve a step nothing was submitted for.
 */
function validateOwnTransaction(
  state: ActionState,
  stepId: string,
  target: 'operation' | 'compensation',
  ref?: string,
) {
  const spec = stepSpec(state, stepId);
  const operation = target === 'compensation' ? spec.compensation : spec.operation;
  if (!operation || operation.kind === 'await') return;
  const step = state.steps[stepId];
  const track = target === 'compensation' ? step.compensation : step.operation;
  if (ref && !track?.refs.includes(ref)) {
    throw new Error(`resolveStep: ${ref} is not a transaction Settle submitted for step "${stepId}"`);
  }
  if (!track?.submitting && !track?.refs.length) {
    throw new Error(`resolveStep: nothing was submitted for step "${stepId}" (${target}): there is nothing to resolve`);
  }
}

export function validateResolve(state: ActionState, raw: unknown): void {
  const input = parseUpdate(ResolveStepInputSchema, raw, 'resolveStep');
  const step = state.steps[input.step];
  if (!step) throw new Error(`resolveStep: unknown step "${input.step}"`);
  const target = input.evidence.for;
  if (target === 'compensation' && !step.compensation) {
    throw new Error(`resolveStep: step "${input.step}" is not being compensated`);
  }
  if (target === 'operation' && (step.state === 'skipped' || step.compensation)) {
    throw new Error(`resolveStep: step "${input.step}" is ${step.state}`);
  }
  if (state.exactlyOnce) validateOwnTransaction(state, input.step, target, input.evidence.ref);
  const submitted = step.operation.submitting || step.operation.refs.length > 0 || input.evidence.ref;
  if (target === 'operation' && step.kind !== 'await' && !submitted) {
    throw new Error(
      `resolveStep: step "${input.step}" has not been submitted; evidence about it needs the transaction's ref`,
    );
  }
  if (TERMINAL_PHASES.includes(state.phase)) throw new Error(`resolveStep: the action is ${state.phase}`);
}
