/**
 * Errors, in one place. Every failure type a caller can match on (`ApplicationFailure.type`, `err.cause.type`), in one
 * table: workflows, activities and networks throw their non-retryable failures through {@link nonRetryable}, so a type
 * name is written once, here. And {@link SettleError}, the base class of the errors Settle throws in-process.
 */
import { ApplicationFailure } from '@temporalio/common';

export const ErrorType = {
  /** The ActionSpec failed validation inside the workflow (a caller bypassed the client's checks). */
  InvalidActionSpec: 'InvalidActionSpec',
  /** An operation cannot be encoded: a bad address, argument or template. */
  InvalidOperation: 'InvalidOperation',
  /** The call reverts: when simulated before signing, or on chain. */
  ExecutionReverted: 'ExecutionReverted',
  /** This worker has no adapter for the step's network. */
  UnknownNetwork: 'UnknownNetwork',
  /** This worker may not send on the network (its `send` flag is off). */
  SendingDisabled: 'SendingDisabled',
  /** The operation names a signer this worker does not hold for the network. */
  UnknownSigner: 'UnknownSigner',
  /** A notification's webhook is not an http(s) URL. */
  InvalidWebhook: 'InvalidWebhook',
  /**
   * Asked only to settle a submission already under way (once compensation is decided), the signer's nonce owner has
   * no transaction for it: nothing was signed, and none ever will be for that attempt (the owner refuses it now).
   */
  NothingSubmitted: 'NothingSubmitted',
  /**
   * The signer's signing policy does not allow the call (a contract, function, destination, or an amount over its cap,
   * checked on the decoded transaction right before signing): nothing was signed.
   */
  PolicyViolation: 'PolicyViolation',
  /**
   * Retryable: the call fits the policy, but its route's rolling spend budget is used up for now (`waiting for
   * budget: …`, saying when it allows); nothing was signed, and the step resumes by itself once the window allows.
   */
  BudgetExhausted: 'BudgetExhausted',
} as const;

export type ErrorTypeName = (typeof ErrorType)[keyof typeof ErrorType];

/**
 * Submission failures that are facts about the call, not about the network's availability: never retried. (A failure
 * thrown through {@link nonRetryable} is not retried anyway; the list also stops retries of the same type thrown as a
 * plain error by an adapter.)
 */
export const NON_RETRYABLE_SUBMIT_ERRORS: ErrorTypeName[] = [
  ErrorType.ExecutionReverted,
  ErrorType.InvalidOperation,
  ErrorType.UnknownNetwork,
];

/**
 * Failures that say something about this worker's deployment, not about the chain: another worker (or this one,
 * reconfigured) can still submit. Once a step may have a transaction, they hold it as `retrying`, never `failed`.
 */
export const DEPLOYMENT_ERRORS: readonly string[] = [
  ErrorType.UnknownNetwork,
  ErrorType.SendingDisabled,
  ErrorType.UnknownSigner,
];

/**
 * A failure that must not be retried, with its type from the table.
 *
 * @example throw nonRetryable(ErrorType.InvalidOperation, `to: "${to}" is not an address`);
 */
export function nonRetryable(type: ErrorTypeName, message: string, ...details: unknown[]): ApplicationFailure {
  return ApplicationFailure.nonRetryable(message, type, ...details);
}

export { SettleError } from './settle-error';
