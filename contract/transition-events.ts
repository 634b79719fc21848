/**
 * Transitions as events: what the SSE stream, `settle status --watch` and webhooks deliver. Pure (no Node, no
 * clock), so the workflow may use the same shape for its notification outbox.
 */
import type { ActionStatus, Transition } from './status';

/** One step or phase transition of an action, numbered in the order it is delivered. */
export interface TransitionEvent extends Transition {
  actionId: string;
  /** 1, 2, 3… per action and per stream: deliveries are in this order. */
  sequence: number;
  /** A step's record moved (`step`, `network` set), or the action's phase did. */
  kind: 'step' | 'phase';
  step?: string;
  network?: string;
}

/** How many transitions of each list have been seen: phase transitions, and each step's. */
export interface TransitionCursor {
  phase: number;
  steps: Record<string, number>;
}

export const START_CURSOR: TransitionCursor = { phase: 0, steps: {} };

/**
 * The transitions in `status` that `cursor` has not seen, oldest first, and the cursor after them. Each list keeps
 * its own order; lists are merged by time, and at the same instant step transitions come before the phase change they
 * caused.
 *
 * @example
 * let cursor = START_CURSOR;
 * const { events, next } = newTransitions(await settle.status(id), cursor, 0);
 */
export function newTransitions(
  status: ActionStatus,
  cursor: TransitionCursor,
  lastSequence: number,
): { events: TransitionEvent[]; next: TransitionCursor } {
  const queues: Omit<TransitionEvent, 'sequence'>[][] = status.steps.map((step) =>
    step.transitions.slice(cursor.steps[step.id] ?? 0).map((t) => ({
      ...t,
      actionId: status.actionId,
      kind: 'step' as const,
      step: step.id,
      network: step.network,
    })),
  );
  queues.push(
    status.phaseTransitions
      .slice(cursor.phase)
      .map((t) => ({ ...t, actionId: status.actionId, kind: 'phase' as const })),
  );
  const events: TransitionEvent[] = [];
  for (;;) {
    let pick = -1;
    for (let i = 0; i < queues.length; i++) {
      if (queues[i].length > 0 && (pick < 0 || time(queues[i][0].at) < time(queues[pick][0].at))) pick = i;
    }
    if (pick < 0) break;
    events.push({ ...queues[pick].shift()!, sequence: lastSequence + events.length + 1 });
  }
  return {
    events,
    next: {
      phase: status.phaseTransitions.length,
      steps: Object.fromEntries(status.steps.map((s) => [s.id, s.transitions.length])),
    },
  };
}

/** Milliseconds since the epoch; an unreadable time sorts first rather than holding the others back. */
function time(at: string): number {
  const ms = Date.parse(at);
  return Number.isNaN(ms) ? -Infinity : ms;
}

export { isTerminalPhase, TERMINAL_PHASES } from './status';
