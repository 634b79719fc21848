import { IdentifierSchema } from '../contract/primitives';
import { ValidationError } from './errors';

/** An action id is a workflow id: checked before it reaches Temporal, with the rule it breaks. */
export function checkActionId(actionId: unknown): string {
  const parsed = IdentifierSchema.safeParse(actionId);
  if (parsed.success) return parsed.data;
  throw new ValidationError(
    'action id',
    parsed.error.issues.map((issue) => ({ path: 'actionId', message: issue.message })),
  );
}
