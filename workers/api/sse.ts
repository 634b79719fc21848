/**
 * `GET /v1/actions/:id/events`: every transition as Server-Sent Events, in order. The stream reads the status query
 * on an interval and sends the transitions it has not sent yet (first the ones that already happened), then `end`
 * once the action has ended.
 */
import type { ServerResponse } from 'node:http';
import { isTerminalPhase, type ActionStatus } from '../../contract/status';
import { newTransitions, START_CURSOR } from '../../contract/transition-events';

const HEARTBEAT_MS = 15_000;

export interface StreamOptions {
  /** The status as first read (before the response was committed, so an unknown action still answers 404). */
  first: ActionStatus;
  read: () => Promise<ActionStatus>;
  pollIntervalMs: number;
  /** Aborted when the client goes away or the server closes. */
  signal: AbortSignal;
}

export async function streamTransitions(response: ServerResponse, options: StreamOptions): Promise<void> {
  response.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache, no-transform',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
  });
  response.write('retry: 2000\n\n');
  let cursor = START_CURSOR;
  let sequence = 0;
  let status = options.first;
  let lastWrite = Date.now();
  try {
    for (;;) {
      const { events, next } = newTransitions(status, cursor, sequence);
      cursor = next;
      for (const event of events) {
        response.write(`id: ${event.sequence}\nevent: transition\ndata: ${JSON.stringify(event)}\n\n`);
        sequence = event.sequence;
        lastWrite = Date.now();
      }
      if (isTerminalPhase(status.phase)) {
        const end = { actionId: status.actionId, phase: status.phase, progress: status.progress };
        response.write(`event: end\ndata: ${JSON.stringify(end)}\n\n`);
        return;
      }
      if (Date.now() - lastWrite >= HEARTBEAT_MS) {
        response.write(': keep-alive\n\n');
        lastWrite = Date.now();
      }
      if (!(await pause(options.pollIntervalMs, options.signal))) return;
      status = await options.read();
    }
  } catch (error) {
    response.write(`event: error\ndata: ${JSON.stringify({ error: (error as Error).message })}\n\n`);
  } finally {
    response.end();
  }
}

/** Waits; false when aborted meanwhile. */
function pause(ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
