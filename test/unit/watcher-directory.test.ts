import type { Client } from '@temporalio/client';
import type { ActionStatus, StepStatus } from '../../contract/status';
import { SettleRefs } from '../../contract/search-attributes';
import type { ActionEvent } from '../../networks/evm/chain-reader';
import { actionIdHash } from '../../networks/evm/templates';
import { ActionDirectory } from '../../workers/watcher/directory';
import { jsonLogger } from '../../workers/watcher/log';
import { WatcherMetrics } from '../../workers/watcher/metrics';
import { statusRefs } from '../../workers/watcher/watched';

const LOCK = `0x${'1'.repeat(64)}`;
const MINT = `0x${'2'.repeat(64)}`;

function step(id: string, network: string, ref?: string): StepStatus {
  return {
    id,
    network,
    kind: 'evm.call',
    state: ref ? 'submitted' : 'pending',
    attempt: 1,
    finality: { confirmations: 2 },
    ...(ref ? { ref, refs: [ref] } : {}),
    transitions: [],
  } as StepStatus;
}

/**
 * A Temporal client as the directory uses it: visibility lists each action's `SettleRefs` as the workflow last
 * published them (`listed`), the status query answers what the workflow holds (`status`); both count their calls.
 */
class FakeTemporal {
  readonly listed = new Map<string, string[]>();
  readonly status = new Map<string, ActionStatus>();
  queries = 0;
  lists: string[] = [];

  /** The workflow records a submission: its status names it at once, visibility once `publish` is called. */
  submit(actionId: string, stepId: string, network: string, ref: string, publish = true): void {
    const status = this.status.get(actionId)!;
    status.steps = status.steps.map((s) => (s.id === stepId ? step(stepId, network, ref) : s));
    if (publish) this.publish(actionId);
  }

  publish(actionId: string): void {
    this.listed.set(actionId, [...statusRefs(this.status.get(actionId)!)]);
  }

  start(actionId: string): void {
    this.status.set(actionId, {
      actionId,
      type: 'bridge-transfer',
      phase: 'running',
      steps: [step('lock', 'chainA'), step('mint', 'chainB')],
    } as unknown as ActionStatus);
    this.listed.set(actionId, []);
  }

  get client(): Client {
    const listed = (query: string) => {
      this.lists.push(query);
      const ids = /WorkflowId IN \((.*)\)/.exec(query)?.[1];
      const wanted = ids ? new Set(ids.split(', ').map((id) => id.slice(1, -1))) : undefined;
      return [...this.listed]
        .filter(([id]) => !wanted || wanted.has(id))
        .map(([workflowId, refs]) => ({
          workflowId,
          typedSearchAttributes: { get: (key: unknown) => (key === SettleRefs ? refs : undefined) },
        }));
    };
    return {
      workflow: {
        list: ({ query }: { query: string }) => ({
          async *[Symbol.asyncIterator]() {
            yield* listed(query);
          },
        }),
        getHandle: (id: string) => ({
          query: async () => {
            this.queries++;
            return structuredClone(this.status.get(id));
          },
        }),
      },
      withDeadline: (_deadline: number, fn: () => Promise<unknown>) => fn(),
    } as unknown as Client;
  }
}

function directory(temporal: FakeTemporal, networks = ['chainA', 'chainB']) {
  return new ActionDirectory({
    client: temporal.client,
    networks,
    logger: jsonLogger('error', () => undefined),
    metrics: new WatcherMetrics({ processMetrics: false }),
    queryTimeoutMs: 1_000,
  });
}

const event = (actionId: string, txHash: string): ActionEvent =>
  ({ actionIdHash: actionIdHash(actionId), txHash }) as ActionEvent;

const passMs = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('ActionDirectory: status queries only for refs it has not read', () => {
  it('never queries an action that has no transaction yet, however often it lists', async () => {
    const temporal = new FakeTemporal();
    temporal.start('a1');
    const actions = directory(temporal);
    for (let i = 0; i < 3; i++) await actions.refresh();
    expect(actions.size).toBe(1);
    expect(temporal.queries).toBe(0);
    expect(actions.txsOn('chainA')).toEqual([]);
  });

  it('reads the status once per new ref listed, and not again while the refs stay the same', async () => {
    const temporal = new FakeTemporal();
    temporal.start('a1');
    const actions = directory(temporal);
    await actions.refresh();
    temporal.submit('a1', 'lock', 'chainA', LOCK);
    await actions.refresh();
    await passMs(120);
    await actions.refresh();
    expect(temporal.queries).toBe(1);
    expect(actions.txsOn('chainA').map((tx) => [tx.stepId, tx.ref])).toEqual([['lock', LOCK]]);

    temporal.submit('a1', 'mint', 'chainB', MINT);
    await passMs(120);
    await actions.refresh();
    await actions.refresh();
    expect(temporal.queries).toBe(2);
    expect(actions.txsOn('chainB').map((tx) => [tx.stepId, tx.ref])).toEqual([['mint', MINT]]);
  });

  it('a shard reads a ref on another network once, not at every listing', async () => {
    const temporal = new FakeTemporal();
    temporal.start('a1');
    temporal.submit('a1', 'mint', 'chainB', MINT);
    const actions = directory(temporal, ['chainA']);
    await actions.refresh();
    await passMs(120);
    await actions.refresh();
    await actions.refresh();
    expect(temporal.queries).toBe(1);
    expect(actions.txsOn('chainA')).toEqual([]);
  });

  it('an event naming a listed ref reads the status at once; the listing after it does not read it again', async () => {
    const temporal = new FakeTemporal();
    temporal.start('a1');
    const actions = directory(temporal);
    await actions.refresh();
    temporal.submit('a1', 'lock', 'chainA', LOCK);
    await actions.hint([event('a1', LOCK)]);
    expect(temporal.queries).toBe(1);
    expect(actions.txsOn('chainA').map((tx) => tx.ref)).toEqual([LOCK]);
    await passMs(120);
    await actions.refresh();
    expect(temporal.queries).toBe(1);
  });

  it('an event ahead of the workflow waits in visibility (list calls), then reads the status once', async () => {
    const temporal = new FakeTemporal();
    temporal.start('a1');
    const actions = directory(temporal);
    await actions.refresh();
    const listsBefore = temporal.lists.length;
    // Mined before the workflow recorded it: neither the status nor visibility names it yet.
    await actions.hint([event('a1', LOCK)]);
    for (let i = 0; i < 3; i++) {
      await passMs(260);
      await actions.retryUnattributed();
    }
    expect(temporal.queries).toBe(0);
    expect(temporal.lists.length - listsBefore).toBeGreaterThanOrEqual(3);
    expect(temporal.lists.slice(listsBefore).every((q) => q === "WorkflowId IN ('a1')")).toBe(true);

    temporal.submit('a1', 'lock', 'chainA', LOCK);
    await passMs(260);
    await actions.retryUnattributed();
    expect(temporal.queries).toBe(1);
    expect(actions.txsOn('chainA').map((tx) => tx.ref)).toEqual([LOCK]);
    await passMs(260);
    await actions.retryUnattributed();
    await actions.refresh();
    expect(temporal.queries).toBe(1);
  });

  it('a status that does not name a listed ref is not read again for it', async () => {
    const temporal = new FakeTemporal();
    temporal.start('a1');
    temporal.listed.set('a1', [`0x${'9'.repeat(64)}`]);
    const actions = directory(temporal);
    await actions.refresh();
    for (let i = 0; i < 3; i++) {
      await passMs(120);
      await actions.refresh();
      await actions.retryUnattributed();
    }
    expect(temporal.queries).toBe(1);
  });

  it('forgets an action that is no longer listed', async () => {
    const temporal = new FakeTemporal();
    temporal.start('a1');
    temporal.submit('a1', 'lock', 'chainA', LOCK);
    const actions = directory(temporal);
    await actions.refresh();
    expect(actions.txsOn('chainA')).toHaveLength(1);
    temporal.listed.delete('a1');
    await actions.refresh();
    expect(actions.size).toBe(0);
    expect(actions.txsOn('chainA')).toEqual([]);
  });
});

describe('statusRefs', () => {
  it('names every ref of every step, lower case: current, earlier, retired, compensation', () => {
    const status = {
      steps: [
        {
          ...step('lock', 'chainA', LOCK.toUpperCase().replace('0X', '0x')),
          retiredRefs: [`0x${'3'.repeat(64)}`],
          compensation: { state: 'submitted', ref: `0x${'4'.repeat(64)}`, refs: [`0x${'5'.repeat(64)}`], orphaned: [] },
        },
        step('mint', 'chainB'),
      ],
    } as unknown as ActionStatus;
    expect([...statusRefs(status)].sort()).toEqual(
      [LOCK, `0x${'3'.repeat(64)}`, `0x${'4'.repeat(64)}`, `0x${'5'.repeat(64)}`].sort(),
    );
  });
});
