import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { evidenceSignal, statusQuery } from '../../contract/messages';
import { createTestWorker, startTestServer, uniqueId } from '../support/temporal';
import { networkInfo, StubAdapter } from '../support/stub-adapter';

let env: TestWorkflowEnvironment;
beforeAll(async () => {
  env = await startTestServer();
});
afterAll(async () => {
  await env?.teardown();
});

it('completes an awaited step on one evidence signal, through a real server and worker', async () => {
  const worker = await createTestWorker(env, {
    networks: { chainA: networkInfo('chainA') },
    adapters: { chainA: new StubAdapter('chainA') },
  });
  const actionId = uniqueId('smoke');
  const result = await worker.runUntil(async () => {
    const handle = await env.client.workflow.start('crossNetworkAction', {
      taskQueue: worker.options.taskQueue,
      workflowId: actionId,
      args: [{ actionId, steps: [{ id: 'attest', network: 'attester', operation: { kind: 'await' } }] }],
    });
    await handle.signal(evidenceSignal, { step: 'attest', kind: 'finalized', source: 'test' });
    return handle.result();
  });
  expect(result.phase).toBe('completed');
  expect(result.steps[0]).toMatchObject({ id: 'attest', state: 'final' });
  void statusQuery;
});
