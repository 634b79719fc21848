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
export * from './plans';
export * from './settle-client';
export * from '../networks/webhook/signature';
/** Transitions as events (SSE, `status --watch`, webhooks): the workflow's notification outbox uses the same code. */
export * from '../contract/transition-events';
export {
  ActionSpecSchema,
  ActionStatusSchema,
  CancelInputSchema,
  CompensateInputSchema,
  ErrorType,
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
  type ErrorTypeName,
  type EvidenceInput,
  type ParseOptions,
  type Phase,
  type StepStatus,
  type StepStateName,
  type Transition,
} from '../contract';
