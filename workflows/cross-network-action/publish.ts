/**
 * What the action shows outside the `status` query: search attributes (to find it), the Web UI's current details
 * (the steps table), and push notifications (an outbox of transitions, delivered in order).
 */
import { condition, log, setCurrentDetails, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import { SettleNetworks, SettlePhase, SettleRefs, SettleType } from '../../contract/search-attributes';
import { enqueueNotifications, searchableRefs, type ActionState } from '../machine/action';
import { stepsTable, toActionStatus } from '../machine/views';
import type { ActionRun } from './action-run';
import { deliverNotification, notifyOptions } from './activity-profiles';

/**
 * Queues the new transitions for notification; upserts the search attributes only when the phase or the refs
 * changed; shows the steps table every time. The status is built once for all three.
 */
export function publish(run: ActionRun): void {
  const { state } = run;
  const status = toActionStatus(state);
  enqueueNotifications(state, status);
  const refs = searchableRefs(state);
  const refsKey = refs.join(',');
  if (run.published.phase !== state.phase || run.published.refs !== refsKey) {
    upsertSearchAttributes([
      { key: SettlePhase, value: state.phase },
      ...(run.published.phase
        ? []
        : [
            { key: SettleType, value: state.spec.type },
            { key: SettleNetworks, value: [...new Set(state.spec.steps.map((s) => s.network))] },
          ]),
      ...(refs.length > 0 ? [{ key: SettleRefs, value: refs }] : []),
    ]);
    run.published = { phase: state.phase, refs: refsKey };
  }
  setCurrentDetails(stepsTable(status));
}

/**
 * What the search attributes already say when the run starts: those the client set at start (`SettleClient.start`
 * sets the type, the networks and the first phase), or those a continued run carried over. Read from the start event,
 * so replay decides the same. Anything missing or different is upserted by the first `publish`.
 */
export function publishedAtStart(state: ActionState): ActionRun['published'] {
  const attributes = workflowInfo().typedSearchAttributes;
  const networks = [...new Set(state.spec.steps.map((s) => s.network))];
  const typed =
    attributes.get(SettleType) === state.spec.type &&
    JSON.stringify(attributes.get(SettleNetworks)) === JSON.stringify(networks);
  const phase = attributes.get(SettlePhase);
  if (!typed || phase === undefined) return { phase: '', refs: '' };
  return { phase, refs: (attributes.get(SettleRefs) ?? []).join(',') };
}

/** One delivery at a time, in sequence order: at least once, never blocking or failing the action. */
export async function deliverNotifications(
  state: ActionState,
  notifications: NonNullable<ActionState['notifications']>,
): Promise<void> {
  for (;;) {
    await condition(() => notifications.outbox.length > 0);
    const event = notifications.outbox[0];
    try {
      await deliverNotification.executeWithOptions(
        {
          ...notifyOptions(state),
          summary: `notify #${event.sequence}: ${event.step ?? 'phase'} ${event.from} → ${event.to}`,
        },
        [{ url: state.spec.webhook, actionId: state.spec.actionId, sequence: event.sequence, event }],
      );
    } catch (error) {
      log.warn('dropping a notification that could not be delivered', {
        sequence: event.sequence,
        error: String(error),
      });
    }
    notifications.outbox.shift();
  }
}
