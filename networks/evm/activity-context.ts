/** What the sender asks of the activity it runs in, if any: its attempt, and a heartbeat. */
import { Context } from '@temporalio/activity';

/** When each attempt first said it was alive: heartbeats start a quarter of its heartbeat timeout later. */
const aliveSince = new WeakMap<Context, number>();

/**
 * Inside an activity, tells Temporal the submission is alive; outside one (tools, tests), nothing. A heartbeat that
 * reaches the server is a billable action, and most submissions end in well under a second: none is sent in the
 * first quarter of the heartbeat timeout (a dead worker is still noticed within the timeout).
 */
export function heartbeat(): void {
  try {
    const context = Context.current();
    const since = aliveSince.get(context) ?? aliveSince.set(context, Date.now()).get(context)!;
    if (Date.now() - since >= (context.info.heartbeatTimeoutMs ?? 0) / 4) context.heartbeat();
  } catch {
    // Outside an activity (tools, tests): nobody to tell.
  }
}

/** Whether this is the first attempt of the submitting activity (outside an activity: no, so nothing is assumed). */
export function isFirstAttempt(): boolean {
  try {
    return Context.current().info.attempt === 1;
  } catch {
    return false;
  }
}

/**
 * The cancellation of the activity the caller runs in (cancelled by Temporal, or by its worker shutting down); outside
 * an activity, none. Calls to Temporal made with a client of Settle's own (not the activity's) must be tied to it, or a
 * worker that is draining waits on them for ever.
 */
export function cancellationSignal(): AbortSignal | undefined {
  try {
    return Context.current().cancellationSignal;
  } catch {
    return undefined;
  }
}
