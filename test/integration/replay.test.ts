import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Worker } from '@temporalio/worker';
import { HISTORIES_DIR } from '../support/histories';
import { workflowBundle } from '../support/temporal';

const fixtures = readdirSync(HISTORIES_DIR).filter((f) => f.endsWith('.json'));

/** A crossNetworkAction's workflow ID is its actionId, which it checks: read it from the recorded input. */
function workflowIdOf(history: {
  events: { workflowExecutionStartedEventAttributes?: { input?: { payloads?: { data?: string }[] } } }[];
}): string {
  const data = history.events[0].workflowExecutionStartedEventAttributes?.input?.payloads?.[0]?.data;
  const input = data ? (JSON.parse(Buffer.from(data, 'base64').toString('utf8')) as { actionId?: string }) : {};
  return input?.actionId ?? 'replayed-workflow';
}

it('has recorded histories to replay', () => {
  expect(fixtures.length).toBeGreaterThanOrEqual(5);
});

it.each(fixtures)('replays %s with the current workflow code', async (file) => {
  const history = JSON.parse(readFileSync(path.join(HISTORIES_DIR, file), 'utf8'));
  await Worker.runReplayHistory({ workflowBundle: await workflowBundle() }, history, workflowIdOf(history));
});
