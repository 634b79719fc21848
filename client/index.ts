/**
 * Settle's client library: the typed client, its errors, the plan builders, signature helpers for signed evidence and
 * webhooks, and the contract's schemas and types.
 *
 * @example
 * import { SettleClient } from 'settle/client';
 * const settle = await SettleClient.connect();
 */
export * from './action-id';
export * from './config';
export * from './errors';
export * from './events';
export * from './plans';
export * from './settle-client';
export * from '../networks/webhook/signature';
export {
  ActionSpecSchema,
  ActionStatusSchema,
  CancelInputSchema,
  CompensateInputSchema,
  EvidenceSchema,
  PhaseSchema,
  ResolveStepInputSchema,
  RetryStepInputSchema,
  StepStateNameSchema,
  formatIssues,
  parseOrThrow,
  type ActionSpec,
  type ActionSpecInput,
  type ActionStatus,
  type Evidence,
  type EvidenceInput,
  type Phase,
  type StepStatus,
  type StepStateName,
  type Transition,
} from '../contract';
