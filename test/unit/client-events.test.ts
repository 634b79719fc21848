import { newTransitions, START_CURSOR } from '../../contract/transition-events';
import type { ActionStatus, StepStatus, Transition } from '../../contract/status';

const t = (from: string, to: string, at: string, source = 'test'): Transition => ({ from, to, at, source });

function step(id: string, network: string, transitions: Transition[]): StepStatus {
  return {
    id,
    network,
    kind: 'await',
    state: (transitions.at(-1)?.to ?? 'waiting') as StepStatus['state'],
    attempt: 1,
    finality: { tag: 'finalized' },
    transitions,
  };
}

function status(steps: StepStatus[], phaseTransitions: Transition[] = []): ActionStatus {
  return {
    actionId: 'a-1',
    type: 'demo',
    phase: (phaseTransitions.at(-1)?.to ?? 'running') as ActionStatus['phase'],
    progress: { total: steps.length, locallyConfirmed: 0, final: 0 },
    steps,
    alarms: [],
    phaseTransitions,
    startedAt: '2026-01-01T00:00:00Z',
    updatedAt: '2026-01-01T00:00:00Z',
  };
}

describe('newTransitions', () => {
  it('merges step and phase transitions by time, numbering them in delivery order', () => {
    const current = status(
      [
        step('lock', 'chainA', [
          t('waiting', 'submitted', '2026-01-01T00:00:01Z'),
          t('submitted', 'final', '2026-01-01T00:00:05Z'),
        ]),
        step('mint', 'chainB', [t('waiting', 'final', '2026-01-01T00:00:06Z')]),
      ],
      [t('running', 'completed', '2026-01-01T00:00:06Z', 'settle')],
    );
    const { events } = newTransitions(current, START_CURSOR, 0);
    expect(events.map((e) => [e.sequence, e.kind, e.step ?? '-', e.to])).toEqual([
      [1, 'step', 'lock', 'submitted'],
      [2, 'step', 'lock', 'final'],
      // At the same instant, the step's transition comes before the phase change it caused.
      [3, 'step', 'mint', 'final'],
      [4, 'phase', '-', 'completed'],
    ]);
    expect(events[0]).toMatchObject({ actionId: 'a-1', network: 'chainA', source: 'test' });
  });

  it('returns only what the cursor has not seen, continuing the sequence', () => {
    const before = status([step('lock', 'chainA', [t('waiting', 'submitted', '2026-01-01T00:00:01Z')])]);
    const first = newTransitions(before, START_CURSOR, 0);
    const after = status([
      step('lock', 'chainA', [
        t('waiting', 'submitted', '2026-01-01T00:00:01Z'),
        t('submitted', 'included', '2026-01-01T00:00:02Z'),
      ]),
    ]);
    const second = newTransitions(after, first.next, 1);
    expect(second.events.map((e) => [e.sequence, e.to])).toEqual([[2, 'included']]);
    expect(newTransitions(after, second.next, 2).events).toEqual([]);
  });

  it("keeps each step's own order even when an observer's clock says otherwise", () => {
    const current = status([
      step('lock', 'chainA', [
        t('waiting', 'included', '2026-01-01T00:00:09Z'),
        t('included', 'final', '2026-01-01T00:00:01+00:00'),
      ]),
      step('mint', 'chainB', [t('waiting', 'included', '2026-01-01T00:00:05Z')]),
    ]);
    const order = newTransitions(current, START_CURSOR, 0).events.map((e) => `${e.step}:${e.to}`);
    expect(order.indexOf('lock:included')).toBeLessThan(order.indexOf('lock:final'));
    expect(order).toHaveLength(3);
  });
});
