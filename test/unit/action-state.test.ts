import type { NetworkInfo } from '../../contract/activity-io';
import {
  applyStepEvent,
  dependenciesMet,
  initialState,
  policyOf,
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
  });
});
