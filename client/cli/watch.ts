/** `settle status <id> --watch`: follows an action until it ends, redrawing (TTY) or printing transitions. */
import { isTerminalPhase, type ActionStatus } from '../../contract/status';
import { newTransitions, START_CURSOR } from '../../contract/transition-events';
import { renderProgress, renderStatus, renderTransition } from './render';

export interface WatchOutput {
  write(text: string): void;
  /** A terminal: redraw the whole view in place. Otherwise: one line per transition. */
  tty: boolean;
  /** One JSON status per line, each time it changes. */
  json: boolean;
}

const CLEAR = '\x1b[H\x1b[2J';

/** Polls the status and shows every change; returns the final status once the action has ended. */
export async function watchStatus(
  read: () => Promise<ActionStatus>,
  out: WatchOutput,
  intervalMs: number,
  signal?: AbortSignal,
): Promise<ActionStatus> {
  let cursor = START_CURSOR;
  let sequence = 0;
  let shown = '';
  for (;;) {
    const status = await read();
    const snapshot = JSON.stringify(status);
    if (snapshot !== shown) {
      shown = snapshot;
      if (out.json) out.write(`${snapshot}\n`);
      else if (out.tty) out.write(`${CLEAR}${renderStatus(status)}\n`);
      else {
        const { events, next } = newTransitions(status, cursor, sequence);
        cursor = next;
        sequence += events.length;
        for (const event of events) out.write(`${renderTransition(event)}\n`);
        out.write(`${renderProgress(status)}\n`);
      }
    }
    if (isTerminalPhase(status.phase) || signal?.aborted) return status;
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
