import type { NetworkInfo } from '../../contract/activity-io';
import {
  allFinal,
  allRefs,
  applyStepEvent,
  dependenciesMet,
  enableNotifications,
  enqueueNotifications,
  initialState,
  isFinal,
  policyOf,
  setPhase,
  stepSpec,
  templateContext,
  type ActionState,
} from '../../workflows/machine/action';
import { compensationPlan } from '../../workflows/machine/compensation';
import { routeSummary, stepsTable, toActionStatus } from '../../workflows/machine/views';
import { ActionSpecSchema, type ActionSpecInput } from '../../contract/action-spec';
import type { Evidence } from '../../contract/evidence';
import type { BlockRef } from '../../contract/primitives';

const ESCROW = '0x00000000000000000000000000000000000000a1';
const MINTER = '0x00000000000000000000000000000000000000b2';
const AT = '2026-11-26T10:00:00.000Z';

function call(fn: string, to = ESCROW) {
  return { kind: 'evm.call' as const, signer: 'bridge', to, function: `function ${fn}`, args: ['{{action.idHash}}'] };
}

function network(name: string, confirmations: number): NetworkInfo {
  return {
    network: name,
    finality: { confirmations },
    pollIntervalMs: 1_000,
    maxPollIntervalMs: 10_000,
    pollable: true,
    canSubmit: true,
  };
}

const NETWORKS = { chainA: network('chainA', 3), chainB: network('chainB', 2) };

/** lock → attest → mint, the bridge of the design brief. */
const BRIDGE: ActionSpecInput = {
  actionId: 'xfer-7f3a',
  type: 'bridge-transfer',
  steps: [
    {
      id: 'lock',
      network: 'chainA',
      operation: call('lock(bytes32 id)'),
      compensation: call('unlock(bytes32 id)'),
    },
    { id: 'attest', network: 'attester', operation: { kind: 'await' }, after: [{ step: 'lock', stage: 'final' }] },
    {
      id: 'mint',
      network: 'chainB',
      operation: call('mint(bytes32 id)', MINTER),
      compensation: call('burn(bytes32 id)', MINTER),
      after: [{ step: 'attest', stage: 'final' }],
    },
  ],
};

function stateOf(spec: ActionSpecInput): ActionState {
  return initialState(ActionSpecSchema.parse(spec), NETWORKS, AT);
}

function block(n: number): BlockRef {
  return { number: String(n), hash: `0x${n.toString(16).padStart(64, '0')}` };
}

function report(
  state: ActionState,
  stepId: string,
  fields: Omit<Evidence, 'for' | 'source' | 'step'> & Partial<Pick<Evidence, 'for'>>,
) {
  applyStepEvent(
    state,
    stepId,
    { type: 'evidence', evidence: { for: 'operation', source: 'watcher', step: stepId, ...fields } },
    { at: AT, source: 'watcher' },
  );
}

function included(state: ActionState, stepId: string, n = 100) {
  report(state, stepId, { kind: 'included', ref: `0x${stepId}`, block: block(n) });
}

function final(state: ActionState, stepId: string, n = 100) {
  report(state, stepId, { kind: 'finalized', ref: `0x${stepId}`, block: block(n) });
}

function compensated(state: ActionState, stepId: string) {
  applyStepEvent(state, stepId, { type: 'compensate' }, { at: AT, source: 'workflow' });
  report(state, stepId, { kind: 'finalized', for: 'compensation', ref: `0xc${stepId}`, block: block(500) });
}

describe('action state', () => {
  describe('policyOf', () => {
    it("uses the step's own policy, then the network's, then requires finalized evidence", () => {
      const state = stateOf({
        actionId: 'a',
        steps: [
          { id: 'own', network: 'chainA', operation: { kind: 'await' }, finality: { tag: 'safe' } },
          { id: 'configured', network: 'chainA', operation: { kind: 'await' } },
          { id: 'unknown', network: 'elsewhere', operation: { kind: 'await' } },
        ],
      });
      expect(policyOf(state, 'own')).toEqual({ tag: 'safe' });
      expect(policyOf(state, 'configured')).toEqual({ confirmations: 3 });
      expect(policyOf(state, 'unknown')).toEqual({ tag: 'finalized' });
    });
  });

  describe('dependenciesMet', () => {
    const fastPath: ActionSpecInput = {
      actionId: 'fast',
      steps: [
        { id: 'lock', network: 'chainA', operation: call('lock(bytes32 id)') },
        { id: 'quote', network: 'chainB', operation: { kind: 'await' }, after: [{ step: 'lock', stage: 'included' }] },
        { id: 'settle', network: 'chainB', operation: { kind: 'await' }, after: [{ step: 'lock', stage: 'final' }] },
      ],
    };

    it('starts a step with no dependencies at once', () => {
      expect(dependenciesMet(stateOf(fastPath), 'lock')).toBe(true);
    });

    it('lets an included-stage dependent start as soon as its dependency is included, a final-stage one only when final', () => {
      const state = stateOf(fastPath);
      applyStepEvent(state, 'lock', { type: 'submitting' }, { at: AT, source: 'workflow' });
      expect(dependenciesMet(state, 'quote')).toBe(false);

      included(state, 'lock');
      expect(dependenciesMet(state, 'quote')).toBe(true);
      expect(dependenciesMet(state, 'settle')).toBe(false);

      report(state, 'lock', { kind: 'confirmed', ref: '0xlock', block: block(100), confirmations: 3 });
      expect(dependenciesMet(state, 'quote')).toBe(true);
      expect(dependenciesMet(state, 'settle')).toBe(true);
    });

    it('withdraws an included-stage dependency when its block is orphaned', () => {
      const state = stateOf(fastPath);
      included(state, 'lock');
      report(state, 'lock', { kind: 'reorged', ref: '0xlock', block: block(100) });
      expect(dependenciesMet(state, 'quote')).toBe(false);
    });

    it('never starts a dependent of a step being compensated', () => {
      const state = stateOf(fastPath);
      final(state, 'lock');
      applyStepEvent(state, 'lock', { type: 'compensate' }, { at: AT, source: 'workflow' });
      expect(dependenciesMet(state, 'quote')).toBe(false);
      expect(dependenciesMet(state, 'settle')).toBe(false);
    });
  });

  describe('compensationPlan', () => {
    it('plans nothing when no step has an effect', () => {
      expect(compensationPlan(stateOf(BRIDGE))).toEqual([]);
    });

    it('undoes the last effect first, in reverse dependency order, even through a step with nothing to undo', () => {
      const state = stateOf(BRIDGE);
      final(state, 'lock');
      final(state, 'attest');
      included(state, 'mint');
      // Unlocking before the minted tokens are burnt would leave both sides funded.
      expect(compensationPlan(state)).toEqual([{ kind: 'start', stepId: 'mint' }]);

      applyStepEvent(state, 'mint', { type: 'compensate' }, { at: AT, source: 'workflow' });
      expect(compensationPlan(state)).toEqual([]);

      report(state, 'mint', { kind: 'finalized', for: 'compensation', ref: '0xcmint', block: block(501) });
      expect(compensationPlan(state)).toEqual([{ kind: 'start', stepId: 'lock' }]);
    });

    it('compensates only the effects that exist', () => {
      const state = stateOf(BRIDGE);
      final(state, 'lock');
      expect(compensationPlan(state)).toEqual([{ kind: 'start', stepId: 'lock' }]);
    });

    it('starts independent compensations together', () => {
      const state = stateOf({
        actionId: 'pair',
        steps: [
          {
            id: 'left',
            network: 'chainA',
            operation: call('lock(bytes32 id)'),
            compensation: call('unlock(bytes32 id)'),
          },
          {
            id: 'right',
            network: 'chainB',
            operation: call('lock(bytes32 id)', MINTER),
            compensation: call('unlock(bytes32 id)', MINTER),
          },
        ],
      });
      included(state, 'left');
      final(state, 'right');
      expect(compensationPlan(state)).toEqual([
        { kind: 'start', stepId: 'right' },
        { kind: 'start', stepId: 'left' },
      ]);
    });

    it('reports a step with an effect and no compensation as blocked, and holds back what it depends on', () => {
      const state = stateOf({
        ...BRIDGE,
        steps: BRIDGE.steps.map((s) => (s.id === 'mint' ? { ...s, compensation: undefined } : s)),
      });
      final(state, 'lock');
      final(state, 'attest');
      final(state, 'mint');
      expect(compensationPlan(state)).toEqual([
        { kind: 'blocked', stepId: 'mint', reason: 'step "mint" has an effect on chainB and no compensation' },
      ]);
    });

    it('leaves an awaited step without compensation out: there is nothing of ours to undo', () => {
      const state = stateOf(BRIDGE);
      final(state, 'lock');
      final(state, 'attest');
      expect(compensationPlan(state)).toEqual([{ kind: 'start', stepId: 'lock' }]);
    });

    it('never plans a compensation twice', () => {
      const state = stateOf(BRIDGE);
      final(state, 'lock');
      compensated(state, 'lock');
      expect(compensationPlan(state)).toEqual([]);
      expect(state.steps.lock.state).toBe('compensated');
    });
  });

  describe('status', () => {
    it('counts included and final steps as locally confirmed, and only final ones as final', () => {
      const state = stateOf(BRIDGE);
      final(state, 'lock');
      final(state, 'attest');
      included(state, 'mint');
      expect(toActionStatus(state).progress).toEqual({ total: 3, locallyConfirmed: 3, final: 2 });
      expect(toActionStatus(state).phase).toBe('running');
    });

    it('raises an alarm once when a final block is orphaned', () => {
      const state = stateOf(BRIDGE);
      final(state, 'lock');
      report(state, 'lock', { kind: 'reorged', ref: '0xlock', block: block(100) });
      report(state, 'lock', { kind: 'reorged', ref: '0xlock', orphanedHash: block(100).hash });
      expect(toActionStatus(state).alarms).toEqual([
        expect.objectContaining({ step: 'lock', for: 'operation', finalBlock: block(100), source: 'watcher' }),
      ]);
    });

    it('shows the whole action: each step, a submission retrying, the phase, its reason and times', () => {
      const state = stateOf(BRIDGE);
      const retrying = { reason: 'rpc down', attempts: 3, since: AT };
      state.retrying['lock:operation'] = { for: 'operation', ...retrying };
      state.retrying['mint:compensation'] = { for: 'compensation', ...retrying };
      setPhase(state, 'needs_action', { at: '2026-11-26T10:01:00.000Z', source: 'settle', reason: 'held' });
      const status = toActionStatus(state);
      expect(status).toMatchObject({
        actionId: 'xfer-7f3a',
        type: 'bridge-transfer',
        phase: 'needs_action',
        reason: 'held',
        startedAt: AT,
        updatedAt: '2026-11-26T10:01:00.000Z',
        alarms: [],
        phaseTransitions: [{ from: 'running', to: 'needs_action' }],
      });
      expect(status.steps.map((s) => s.retrying?.for)).toEqual(['operation', undefined, 'compensation']);
      expect(status.steps[1]).not.toHaveProperty('retrying');
      expect(toActionStatus(stateOf(BRIDGE))).not.toHaveProperty('reason');
    });

    it('shows what a step is: its kind, attempt, finality, refs, start, output, error and compensation', () => {
      const state = stateOf(BRIDGE);
      applyStepEvent(state, 'lock', { type: 'start' }, { at: AT, source: 'settle' });
      report(state, 'lock', { kind: 'failed', ref: '0xold', reason: 'fee too low' });
      applyStepEvent(state, 'lock', { type: 'retry' }, { at: AT, source: 'operator' });
      report(state, 'lock', { kind: 'included', ref: '0xlock', block: block(100), output: { id: '7' } });
      applyStepEvent(state, 'lock', { type: 'compensate' }, { at: AT, source: 'settle' });
      report(state, 'lock', { kind: 'failed', for: 'compensation', ref: '0xundo', reason: 'paused' });
      const lock = toActionStatus(state).steps[0];
      expect(lock).toMatchObject({
        id: 'lock',
        network: 'chainA',
        kind: 'evm.call',
        state: 'compensation_failed',
        attempt: 2,
        finality: { confirmations: 3 },
        ref: '0xlock',
        refs: ['0xlock'],
        retiredRefs: ['0xold'],
        block: block(100),
        confirmations: 1,
        orphaned: [],
        output: { id: '7' },
        startedAt: AT,
        compensation: { state: 'failed', ref: '0xundo', error: 'paused' },
      });
      expect(lock).not.toHaveProperty('error');
      const mint = toActionStatus(state).steps[2];
      for (const field of ['ref', 'block', 'confirmations', 'output', 'error', 'startedAt', 'compensation'])
        expect(mint).not.toHaveProperty(field);
    });

    it('summarises the route for the Web UI', () => {
      expect(routeSummary(ActionSpecSchema.parse(BRIDGE))).toBe(
        'bridge-transfer: lock@chainA → attest@attester → mint@chainB',
      );
    });

    it('renders the steps as a markdown table with confirmations against the policy', () => {
      const state = stateOf(BRIDGE);
      report(state, 'lock', { kind: 'confirmed', ref: '0xlock', block: block(100), confirmations: 2 });
      final(state, 'attest');
      expect(stepsTable(toActionStatus(state))).toBe(
        [
          '**running** · 2/3 locally confirmed · 1/3 final',
          '',
          '| step | network | state | ref | confirmations |',
          '| --- | --- | --- | --- | --- |',
          '| lock | chainA | included | 0xlock | 2/3 |',
          '| attest | attester | final | 0xattest | 1 (finalized) |',
          '| mint | chainB | waiting |  |  |',
        ].join('\n'),
      );
    });

    it('shows a tag policy and no confirmations in the table', () => {
      const state = stateOf({
        actionId: 'tagged',
        steps: [{ id: 'attest', network: 'attester', operation: { kind: 'await' } }],
      });
      report(state, 'attest', { kind: 'submitted', ref: 'att-1' });
      const table = stepsTable(toActionStatus(state));
      expect(table.split('\n').at(-1)).toBe('| attest | attester | submitted | att-1 |  |');
      expect(table.split('\n')[0]).toBe('**running** · 0/1 locally confirmed · 0/1 final');
      report(state, 'attest', { kind: 'included', ref: 'att-1', block: block(1) });
      expect(stepsTable(toActionStatus(state)).split('\n').at(-1)).toBe(
        '| attest | attester | included | att-1 | 1 (finalized) |',
      );
    });

    it('shows compensation and finality alarms in the table', () => {
      const state = stateOf(BRIDGE);
      final(state, 'lock');
      report(state, 'lock', { kind: 'reorged', ref: '0xlock', block: block(100) });
      included(state, 'lock', 101);
      applyStepEvent(state, 'lock', { type: 'compensate' }, { at: AT, source: 'workflow' });
      const table = stepsTable(toActionStatus(state));
      expect(table).toContain('| lock | chainA | compensating · compensation pending | 0xlock | 1/3 |');
      expect(table).toContain(`**Finality violation**: step lock: block ${block(100).hash} was orphaned`);
    });

    it('ends the table with one line per finality alarm', () => {
      const state = stateOf(BRIDGE);
      final(state, 'lock');
      final(state, 'attest');
      report(state, 'lock', { kind: 'reorged', ref: '0xlock', block: block(100) });
      report(state, 'attest', { kind: 'reorged', ref: '0xattest', block: block(100) });
      expect(stepsTable(toActionStatus(state)).split('\n').slice(-2)).toEqual([
        `**Finality violation**: step lock: block ${block(100).hash} was orphaned after the step was final`,
        `**Finality violation**: step attest: block ${block(100).hash} was orphaned after the step was final`,
      ]);
    });
  });

  describe('the action record', () => {
    it('starts running, with every step waiting on its first attempt', () => {
      const state = stateOf(BRIDGE);
      expect(state).toMatchObject({
        phase: 'running',
        phaseTransitions: [],
        alarms: [],
        compensating: false,
        retrying: {},
        startedAt: AT,
        updatedAt: AT,
        version: 0,
      });
      expect(state.steps.lock).toMatchObject({
        id: 'lock',
        network: 'chainA',
        kind: 'evm.call',
        hasCompensation: true,
      });
      expect(state.steps.attest).toMatchObject({ kind: 'await', hasCompensation: false, attempt: 1, state: 'waiting' });
    });

    it('names an unknown step', () => {
      expect(() => stepSpec(stateOf(BRIDGE), 'nope')).toThrow('unknown step nope');
      expect(stepSpec(stateOf(BRIDGE), 'mint').network).toBe('chainB');
    });

    it('counts every change to a step and keeps the time of the latest', () => {
      const state = stateOf(BRIDGE);
      applyStepEvent(state, 'lock', { type: 'start' }, { at: '2026-11-26T10:01:00.000Z', source: 'settle' });
      applyStepEvent(state, 'lock', { type: 'start' }, { at: '2026-11-26T10:02:00.000Z', source: 'settle' });
      expect(state).toMatchObject({ version: 2, updatedAt: '2026-11-26T10:02:00.000Z' });
    });

    it('records a phase change once, with its audit, and keeps the last reason given', () => {
      const state = stateOf(BRIDGE);
      const operator = { at: '2026-11-26T10:03:00.000Z', source: 'operator', operator: 'alice', reason: 'stuck' };
      setPhase(state, 'needs_action', operator);
      setPhase(state, 'needs_action', { at: '2026-11-26T10:04:00.000Z', source: 'settle', reason: 'again' });
      expect(state.phaseTransitions).toEqual([{ from: 'running', to: 'needs_action', ...operator }]);
      expect(state).toMatchObject({ phase: 'needs_action', reason: 'stuck', version: 1, updatedAt: operator.at });
      setPhase(state, 'running', { at: '2026-11-26T10:05:00.000Z', source: 'settle' });
      expect(state.reason).toBe('stuck');
      expect(state.phaseTransitions.at(-1)).toEqual({
        from: 'needs_action',
        to: 'running',
        at: '2026-11-26T10:05:00.000Z',
        source: 'settle',
      });
    });

    it('raises an alarm for a compensation whose final block is orphaned', () => {
      const state = stateOf(BRIDGE);
      included(state, 'lock');
      compensated(state, 'lock');
      report(state, 'lock', { kind: 'reorged', for: 'compensation', ref: '0xclock', block: block(500) });
      expect(state.alarms).toEqual([
        {
          step: 'lock',
          for: 'compensation',
          finalBlock: block(500),
          evidence: `block ${block(500).hash} was orphaned after the step was final`,
          source: 'watcher',
          at: AT,
        },
      ]);
      expect(state.steps.lock.state).toBe('compensating');
    });

    it('is final only when every step is', () => {
      const state = stateOf(BRIDGE);
      final(state, 'lock');
      final(state, 'attest');
      expect(isFinal(state, 'lock')).toBe(true);
      expect(isFinal(state, 'mint')).toBe(false);
      expect(allFinal(state)).toBe(false);
      final(state, 'mint');
      expect(allFinal(state)).toBe(true);
    });

    it('gives templates the ref, block and output of each step that has them', () => {
      const state = stateOf(BRIDGE);
      report(state, 'lock', { kind: 'included', ref: '0xlock', block: block(100), output: { id: '7' } });
      report(state, 'attest', { kind: 'submitted', ref: 'att-1' });
      expect(templateContext(state)).toEqual({
        actionId: 'xfer-7f3a',
        steps: {
          lock: { ref: '0xlock', block: block(100), output: { id: '7' } },
          attest: { ref: 'att-1' },
          mint: {},
        },
      });
    });

    it('lists every ref the action has had, sorted and once: retired, current and compensations', () => {
      const state = stateOf(BRIDGE);
      report(state, 'mint', { kind: 'failed', ref: '0x03', reason: 'reverted' });
      applyStepEvent(state, 'mint', { type: 'retry' }, { at: AT, source: 'operator' });
      report(state, 'mint', { kind: 'submitted', ref: '0x02' });
      report(state, 'lock', { kind: 'included', ref: '0x01', block: block(100) });
      report(state, 'lock', { kind: 'finalized', ref: '0x01', block: block(100) });
      applyStepEvent(state, 'lock', { type: 'compensate' }, { at: AT, source: 'settle' });
      report(state, 'lock', { kind: 'failed', for: 'compensation', ref: '0x05', reason: 'paused' });
      applyStepEvent(state, 'lock', { type: 'retry', for: 'compensation' }, { at: AT, source: 'operator' });
      report(state, 'lock', { kind: 'submitted', for: 'compensation', ref: '0x04' });
      expect(allRefs(state)).toEqual(['0x01', '0x02', '0x03', '0x04', '0x05']);
      expect(allRefs(stateOf(BRIDGE))).toEqual([]);
    });
  });

  describe('notifications', () => {
    it('queues nothing until they are enabled', () => {
      const state = stateOf(BRIDGE);
      final(state, 'lock');
      enqueueNotifications(state, toActionStatus(state));
      expect(state.notifications).toBeUndefined();
    });

    it('queues each new transition once, numbered in order, and enabling twice keeps the queue', () => {
      const state = stateOf(BRIDGE);
      enableNotifications(state);
      expect(state.notifications).toEqual({ outbox: [], cursor: { phase: 0, steps: {} }, lastSequence: 0 });
      enqueueNotifications(state, toActionStatus(state));
      expect(state.notifications!.outbox).toEqual([]);
      final(state, 'lock');
      enqueueNotifications(state, toActionStatus(state));
      enqueueNotifications(state, toActionStatus(state));
      expect(state.notifications!.outbox).toEqual([
        expect.objectContaining({ sequence: 1, kind: 'step', step: 'lock', from: 'waiting', to: 'final' }),
      ]);
      enableNotifications(state);
      setPhase(state, 'needs_action', { at: AT, source: 'settle' });
      final(state, 'attest');
      enqueueNotifications(state, toActionStatus(state));
      expect(state.notifications!.outbox.map((e) => [e.sequence, e.kind, e.to])).toEqual([
        [1, 'step', 'final'],
        [2, 'step', 'final'],
        [3, 'phase', 'needs_action'],
      ]);
      expect(state.notifications).toMatchObject({
        lastSequence: 3,
        cursor: { phase: 1, steps: { lock: 1, attest: 1 } },
      });
    });
  });
});
