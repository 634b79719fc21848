import { IdentifierSchema } from '../contract/primitives';
import { parseOrThrow } from '../contract/validation';

/** An action id is a workflow id: checked before it reaches Temporal, with the rule it breaks. */
export function checkActionId(actionId: unknown): string {
  return parseOrThrow(IdentifierSchema, actionId, 'action id', { root: 'actionId' });
}
