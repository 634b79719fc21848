/**
 * Billable actions by Temporal Cloud's published rules (docs.temporal.io/cloud/actions), read off an event history:
 * a workflow started (by a client, a continue-as-new or a parent), a signal, an update, an activity attempt (started
 * or retried), local activities (one per workflow task that ran any), a timer, a search-attribute or memo upsert.
 * `patched()` upserts `TemporalChangeVersion`, so a patch marker costs an upsert: counted apart. Queries and
 * heartbeats leave no event; the benchmarks count them at the server's frontend.
 */
import type { History } from '@temporalio/common/lib/proto-utils';

type HistoryEvent = NonNullable<History['events']>[number];

/** Server time of an event, in ms. */
export function eventMs(event: HistoryEvent): number {
  const { seconds, nanos } = event.eventTime ?? {};
  return Number(seconds ?? 0) * 1000 + Math.floor((nanos ?? 0) / 1e6);
}

/** Billable actions among the events recorded between `from` and `to` (server time, ms). */
export function billable(history: History, from = -Infinity, to = Infinity): Record<string, number> {
  const events = (history.events ?? []).filter((e) => eventMs(e) >= from && eventMs(e) <= to);
  const count = (pick: (e: HistoryEvent) => unknown) => events.filter(pick).length;
  const isPatchUpsert = (e: HistoryEvent) =>
    Boolean(e.upsertWorkflowSearchAttributesEventAttributes?.searchAttributes?.indexedFields?.TemporalChangeVersion);
  const started = events.find(
    (e) => e.workflowExecutionStartedEventAttributes,
  )?.workflowExecutionStartedEventAttributes;
  return {
    'workflow started': started && !started.continuedExecutionRunId ? 1 : 0,
    'continue-as-new (new run started)': started?.continuedExecutionRunId ? 1 : 0,
    signals: count((e) => e.workflowExecutionSignaledEventAttributes),
    updates: count((e) => e.workflowExecutionUpdateAcceptedEventAttributes),
    ...activityAttempts(history.events ?? [], events),
    'local activities (one per workflow task)': new Set(
      events
        .filter((e) => e.markerRecordedEventAttributes?.markerName === 'core_local_activity')
        .map((e) => String(e.markerRecordedEventAttributes!.workflowTaskCompletedEventId)),
    ).size,
    timers: count((e) => e.timerStartedEventAttributes),
    'search-attribute upserts': count((e) => e.upsertWorkflowSearchAttributesEventAttributes && !isPatchUpsert(e)),
    'patch-marker upserts (TemporalChangeVersion)': count(isPatchUpsert),
    'memo upserts': count((e) => e.workflowPropertiesModifiedEventAttributes),
  };
}

/** Activity attempts (started or retried) among `events`, by activity type (looked up in the whole history). */
function activityAttempts(all: HistoryEvent[], events: HistoryEvent[]): Record<string, number> {
  const typeOf = new Map<number, string>();
  for (const e of all) {
    const name = e.activityTaskScheduledEventAttributes?.activityType?.name;
    if (name) typeOf.set(Number(e.eventId), name);
  }
  const attempts: Record<string, number> = {};
  for (const e of events) {
    const started = e.activityTaskStartedEventAttributes;
    if (!started) continue;
    const key = `activity attempts: ${typeOf.get(Number(started.scheduledEventId)) ?? 'unknown'}`;
    attempts[key] = (attempts[key] ?? 0) + (started.attempt ?? 1);
  }
  return attempts;
}
