/** The client's errors. All extend `SettleError`, as do ValidationError, the configuration errors and PlanError. */
import { SettleError } from '../contract/errors';
import type { ActionStatus, Phase } from '../contract/status';

export { SettleError } from '../contract/errors';
export { ValidationError } from '../contract/validation';

/** No action (workflow) with this id exists in the namespace. */
export class ActionNotFoundError extends SettleError {
  override name = 'ActionNotFoundError';
  constructor(readonly actionId: string) {
    super(`action "${actionId}" not found`);
  }
}

/** The action has closed: it takes no more evidence or operator updates. */
export class ActionClosedError extends SettleError {
  override name = 'ActionClosedError';
  constructor(
    readonly actionId: string,
    readonly what: string,
  ) {
    super(`action "${actionId}" is closed: ${what} is not possible any more`);
  }
}

/** The workflow's update validator refused an operator update (unknown step, illegal state); nothing changed. */
export class UpdateRejectedError extends SettleError {
  override name = 'UpdateRejectedError';
  constructor(
    readonly actionId: string,
    readonly update: string,
    readonly reason: string,
  ) {
    super(`${update} on "${actionId}" rejected: ${reason}`);
  }
}

/** Temporal could not be reached (address, TLS or credentials). */
export class ConnectionError extends SettleError {
  override name = 'ConnectionError';
  constructor(
    readonly address: string,
    reason: string,
  ) {
    super(`cannot reach Temporal at ${address}: ${reason}`);
  }
}

/** `waitFor` gave up before the condition held. */
export class WaitTimeoutError extends SettleError {
  override name = 'WaitTimeoutError';
  constructor(
    readonly actionId: string,
    readonly condition: string,
    readonly last: ActionStatus,
  ) {
    super(`timed out waiting for ${condition} on "${actionId}" (phase ${last.phase})`);
  }
}

/** `waitFor` saw the action close without the condition ever holding. */
export class ActionSettledError extends SettleError {
  override name = 'ActionSettledError';
  constructor(
    readonly actionId: string,
    readonly condition: string,
    readonly phase: Phase,
    readonly status: ActionStatus,
  ) {
    super(`action "${actionId}" ended ${phase} without reaching ${condition}`);
  }
}
