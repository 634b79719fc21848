import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Worker } from '@temporalio/worker';
import { HISTORIES_DIR } from '../support/histories';
import { workflowBundle } from '../support/temporal';

const fixtures = readdirSync(HISTORIES_DIR).filter((f) => f.endsWith('.json'));

/** The workflow ID is the actionId, which the workflow checks: read it from the recorded input. */
function actionIdOf(history: {
  events: { workflowExecutionStartedEventAttributes?: { input: { payloads: { data: string }[] } } }[];
}) {
  const input = history.events[0].workflowExecutionStartedEventAttributes!.input.payloads[0].data;
  return (JSON.parse(Buffer.from(input, 'base64').toString('utf8')) as { actionId: string }).actionId;
}

it('has recorded histories to replay', () => {
  expect(fixtures.length).toBeGreaterThanOrEqual(5);
});

it.each(fixtures)('replays %s with the current workflow code', async (file) => {
  const history = JSON.parse(readFileSync(path.join(HISTORIES_DIR, file), 'utf8'));
  await Worker.runReplayHistory({ workflowBundle: await workflowBundle() }, history, actionIdOf(history));
});
