import fc from 'fast-check';
import { ActionSpecSchema, type ActionSpecInput, type StepSpec } from '../../contract/action-spec';
import type { Evidence, EvidenceTarget } from '../../contract/evidence';
import type { BlockRef } from '../../contract/primitives';
import { applyStepEvent, initialState, policyOf, type ActionState } from '../../workflows/machine/action';
import { inFlight } from '../../workflows/machine/compensation';
import {
  cancel,
  compensate,
  decide,
  expireDeadline,
  expireStep,
  followerKey,
  newFollowers,
  retryStep,
  type Followers,
  type PhaseCommand,
} from '../../workflows/machine/phase';
import { trackState } from '../../workflows/machine/step';
import { validateActive, validateRetry } from '../../workflows/machine/update-validators';
import { CancelInputSchema, CompensateInputSchema } from '../../contract/updates';

/**
 * Property tests for the phase machine. Each run generates an action (a DAG of up to five steps, submitted or awaited,
 * with or without compensation, `onDeadline` compensate or hold) and a life for it: watcher evidence about whatever is
 * being followed (submissions, inclusions, finality, reverts, drops, reorgs), step timeouts, the deadline, and operator
 * retries, compensations and cancellations. A harness plays the workflow: it calls the machine after every event and
 * does what a follower does at once (mark the operation as submitting). The oracles below are written from the design
 * brief, not from the machine's code.
 */

/** Fewer runs under mutation testing (StrykerJS runs the covering tests once per mutant, without bailing). */
const NUM_RUNS = process.env.STRYKER_MUTATOR_WORKER ? 100 : 400;
const AT = '2026-11-26T10:00:00.000Z';

interface StepShape {
  awaited: boolean;
  compensation: 'none' | 'evm' | 'await';
  deps: { index: number; stage: 'included' | 'final' }[];
}

const stepShapeArb = (i: number): fc.Arbitrary<StepShape> =>
  fc.record({
    awaited: fc.boolean(),
    compensation: fc.constantFrom<StepShape['compensation']>('none', 'evm', 'evm', 'await'),
    deps:
      i === 0
        ? fc.constant([])
        : fc.uniqueArray(
            fc.record({
              index: fc.integer({ min: 0, max: i - 1 }),
              stage: fc.constantFrom<'included' | 'final'>('included', 'final'),
            }),
            { maxLength: 2, selector: (d) => d.index },
          ),
  });

const specArb: fc.Arbitrary<ActionSpecInput> = fc
  .integer({ min: 1, max: 5 })
  .chain((n) => fc.tuple(...Array.from({ length: n }, (_, i) => stepShapeArb(i))))
  .chain((shapes) =>
    fc.constantFrom<'compensate' | 'hold'>('compensate', 'hold').map((onDeadline) => ({
      actionId: 'prop',
      deadline: 60_000,
      onDeadline,
      steps: shapes.map((shape, i) => {
        const evm = { kind: 'evm.call' as const, signer: 's', to: `0x${'1'.repeat(40)}`, function: 'function f()' };
        return {
          id: `s${i}`,
          network: `net${i}`,
          operation: shape.awaited ? { kind: 'await' as const } : evm,
          ...(shape.compensation === 'none'
            ? {}
            : { compensation: shape.compensation === 'evm' ? evm : { kind: 'await' as const } }),
          after: shape.deps.map((d) => ({ step: `s${d.index}`, stage: d.stage })),
        };
      }),
    })),
  );

type LifeEvent =
  | {
      type: 'evidence';
      pick: number;
      target: EvidenceTarget;
      kind: 'submitted' | 'included' | 'finalized' | 'failed' | 'dropped' | 'reorged';
    }
  | { type: 'timeout'; pick: number; stale: boolean }
  | { type: 'deadline' }
  | { type: 'retry'; pick: number }
  | { type: 'compensate' }
  | { type: 'cancel' };

const lifeEventArb: fc.Arbitrary<LifeEvent> = fc.oneof(
  {
    weight: 12,
    arbitrary: fc.record({
      type: fc.constant('evidence' as const),
      pick: fc.nat(),
      target: fc.constantFrom<EvidenceTarget>('operation', 'operation', 'compensation'),
      kind: fc.constantFrom('submitted', 'included', 'finalized', 'finalized', 'failed', 'dropped', 'reorged'),
    }),
  },
  { weight: 2, arbitrary: fc.record({ type: fc.constant('timeout' as const), pick: fc.nat(), stale: fc.boolean() }) },
  { weight: 1, arbitrary: fc.constant({ type: 'deadline' as const }) },
  { weight: 2, arbitrary: fc.record({ type: fc.constant('retry' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.constant({ type: 'compensate' as const }) },
  { weight: 1, arbitrary: fc.constant({ type: 'cancel' as const }) },
);

const lifeArb = fc.record({ spec: specArb, events: fc.array(lifeEventArb, { maxLength: 40 }) });

/** Every step that depends on `stepId` through `after`, directly or not: the oracle's own walk of the DAG. */
function dependentsOf(steps: StepSpec[], stepId: string): string[] {
  const found = new Set<string>();
  let frontier = [stepId];
  while (frontier.length > 0) {
    const next = steps.filter((s) => !found.has(s.id) && s.after.some((d) => frontier.includes(d.step)));
    next.forEach((s) => found.add(s.id));
    frontier = next.map((s) => s.id);
  }
  return [...found];
}

function opState(state: ActionState, stepId: string) {
  return trackState(state.steps[stepId].operation, policyOf(state, stepId));
}

/** The operation has an effect on its network: it is in a block (the design's "effect that exists"). */
function hasEffect(state: ActionState, stepId: string): boolean {
  return ['included', 'final'].includes(opState(state, stepId));
}

/** Awaited with no compensation: the step reports something external, there is nothing of ours to undo. */
function undoable(spec: StepSpec): boolean {
  return spec.operation.kind !== 'await' || spec.compensation !== undefined;
}

/** Nothing of this step is left to undo, nor can appear: undone, never on chain, reverted, or replaced and gone. */
function settled(state: ActionState, spec: StepSpec): boolean {
  if (!undoable(spec)) return true;
  const step = state.steps[spec.id];
  if (step.compensation) return trackState(step.compensation, policyOf(state, spec.id)) === 'final';
  const op = opState(state, spec.id);
  const { refs, dropped } = step.operation;
  return op === 'pending' || op === 'failed' || (op === 'submitted' && refs.every((r) => dropped.includes(r)));
}

interface Trace {
  /** Every call to the machine: the state before it, what it returned, the state after it. */
  calls: { before: ActionState; followersBefore: Followers; commands: PhaseCommand[]; after: ActionState }[];
  operatorCompensated: boolean;
}

/** Plays an action's life the way the workflow does, recording every decision. */
function live(specInput: ActionSpecInput, events: LifeEvent[]): { state: ActionState; trace: Trace } {
  const spec = ActionSpecSchema.parse(specInput);
  const state = initialState(spec, {}, AT);
  const followers = newFollowers();
  const trace: Trace = { calls: [], operatorCompensated: false };
  const blocks = new Map<string, number>();
  const meta = { at: AT, source: 'test' };

  const call = (machine: () => PhaseCommand[]) => {
    const before = structuredClone(state);
    const followersBefore = { steps: new Set(followers.steps), compensations: new Set(followers.compensations) };
    const commands = machine();
    trace.calls.push({ before, followersBefore, commands, after: structuredClone(state) });
    // What each follower does before its first await.
    for (const c of commands) {
      const step = spec.steps.find((s) => s.id === c.stepId)!;
      const target = c.kind === 'followStep' ? 'operation' : 'compensation';
      const operation = target === 'operation' ? step.operation : step.compensation!;
      const track = target === 'operation' ? state.steps[c.stepId].operation : state.steps[c.stepId].compensation!;
      if (operation.kind !== 'await' && trackState(track, policyOf(state, c.stepId)) === 'pending')
        applyStepEvent(state, c.stepId, { type: 'submitting', for: target }, meta);
    }
  };
  // A step follower ends once it has nothing left to follow; the machine may then start it again.
  const endFollowers = () => {
    for (const s of spec.steps) {
      const step = state.steps[s.id];
      const active =
        state.phase !== 'cancelled' &&
        (state.compensating ? inFlight(state, s.id) : !['final', 'failed', 'expired'].includes(step.state));
      if (!active) followers.steps.delete(followerKey(s.id, step.attempt));
    }
  };
  const mainLoop = () => {
    endFollowers();
    call(() => decide(state, followers, AT));
  };

  mainLoop();
  let deadlinePassed = false;
  for (const event of events) {
    if (['completed', 'compensated', 'failed', 'cancelled'].includes(state.phase)) break;
    if (event.type === 'evidence') {
      const candidates = spec.steps.filter((s) =>
        event.target === 'operation' ? state.steps[s.id].startedAt : state.steps[s.id].compensation,
      );
      if (candidates.length === 0) continue;
      const stepId = candidates[event.pick % candidates.length].id;
      const attempt = state.steps[stepId].attempt;
      const track = `${stepId}-${attempt}-${event.target}`;
      const height = blocks.get(track) ?? 0;
      const block: BlockRef = { number: String(100 + height), hash: `0x${track}-${height}` };
      const ref = `0x${track}`;
      const evidence: Evidence = { step: stepId, for: event.target, source: 'watcher', kind: event.kind, ref };
      if (['included', 'finalized', 'failed', 'reorged'].includes(event.kind)) evidence.block = block;
      if (event.kind === 'failed') evidence.reason = 'execution reverted';
      if (event.kind === 'reorged') blocks.set(track, height + 1);
      applyStepEvent(state, stepId, { type: 'evidence', evidence }, { at: AT, source: 'watcher' });
      call(() => decide(state, followers, AT));
    } else if (event.type === 'timeout') {
      const started = spec.steps.filter((s) => state.steps[s.id].startedAt);
      if (started.length === 0) continue;
      const stepId = started[event.pick % started.length].id;
      const attempt = state.steps[stepId].attempt - (event.stale ? 1 : 0);
      expireStep(state, stepId, attempt, 1_000, AT);
    } else if (event.type === 'deadline') {
      if (deadlinePassed) continue;
      deadlinePassed = true;
      call(() => expireDeadline(state, followers, AT));
    } else if (event.type === 'retry') {
      const stepId = spec.steps[event.pick % spec.steps.length].id;
      if (!accepted(() => validateRetry(state, { step: stepId, reason: 'retry' }))) continue;
      call(() => retryStep(state, followers, stepId, meta));
    } else {
      const what = event.type;
      const schema = what === 'cancel' ? CancelInputSchema : CompensateInputSchema;
      if (!accepted(() => validateActive(state, schema, { reason: 'ops' }, what))) continue;
      trace.operatorCompensated = true;
      call(() => (what === 'cancel' ? cancel : compensate)(state, followers, { ...meta, reason: what }));
    }
    mainLoop();
  }
  return { state, trace };
}

function accepted(validate: () => void): boolean {
  try {
    validate();
    return true;
  } catch {
    return false;
  }
}

function check(property: (life: { spec: ActionSpecInput; state: ActionState; trace: Trace }) => void) {
  fc.assert(
    fc.property(lifeArb, ({ spec, events }) => property({ spec, ...live(spec, events) })),
    { numRuns: NUM_RUNS },
  );
}

const steps = (state: ActionState) => state.spec.steps;
const followed = (commands: PhaseCommand[], kind: PhaseCommand['kind']) =>
  commands.filter((c) => c.kind === kind).map((c) => c.stepId);

describe('the phase machine, over any life of an action', () => {
  it('is completed exactly when every step is final and compensation was never decided', () => {
    check(({ trace }) => {
      for (const { after } of trace.calls) {
        const allFinal = steps(after).every((s) => after.steps[s.id].state === 'final');
        expect(after.phase === 'completed').toBe(allFinal && !after.compensating);
      }
    });
  });

  it('starts a step only when each dependency reached its stage, never a final one nor one already followed', () => {
    check(({ trace }) => {
      for (const { before, followersBefore, commands } of trace.calls) {
        for (const c of commands) {
          if (c.kind !== 'followStep') continue;
          expect(followersBefore.steps.has(followerKey(c.stepId, c.attempt))).toBe(false);
          expect(before.steps[c.stepId].state).not.toBe('final');
          const spec = steps(before).find((s) => s.id === c.stepId)!;
          for (const dep of spec.after) {
            expect(before.steps[dep.step].compensation).toBeUndefined();
            expect(dep.stage === 'final' ? ['final'] : ['included', 'final']).toContain(opState(before, dep.step));
          }
        }
      }
    });
  });

  it('starts no step once compensation is decided', () => {
    check(({ trace }) => {
      for (const { before, commands } of trace.calls) {
        if (before.compensating) expect(followed(commands, 'followStep')).toEqual([]);
      }
    });
  });

  it('compensates a step only for an effect that exists, and at most once', () => {
    check(({ trace }) => {
      const compensated: string[] = [];
      for (const { before, commands } of trace.calls) {
        for (const stepId of followed(commands, 'followCompensation')) {
          expect(steps(before).find((s) => s.id === stepId)!.compensation).toBeDefined();
          expect(before.steps[stepId].skipped).toBe(false);
          expect(hasEffect(before, stepId)).toBe(true);
          expect(compensated).not.toContain(stepId);
          compensated.push(stepId);
        }
      }
    });
  });

  it('compensates in reverse dependency order: only once every dependent has nothing left to undo', () => {
    check(({ trace }) => {
      for (const { before, commands } of trace.calls) {
        for (const stepId of followed(commands, 'followCompensation')) {
          for (const dependent of dependentsOf(steps(before), stepId)) {
            expect({
              dependent,
              settled: settled(
                before,
                steps(before).find((s) => s.id === dependent)!,
              ),
            }).toEqual({
              dependent,
              settled: true,
            });
          }
        }
      }
    });
  });

  it('ends compensated only when every effect that exists is undone and nothing is in flight', () => {
    check(({ state }) => {
      if (state.phase !== 'compensated') return;
      for (const spec of steps(state))
        expect({ step: spec.id, settled: settled(state, spec) }).toEqual({ step: spec.id, settled: true });
    });
  });

  it('skips only steps that never started, unless the action is cancelled', () => {
    check(({ state }) => {
      if (state.phase === 'cancelled') return;
      for (const spec of steps(state)) {
        if (state.steps[spec.id].skipped) expect(state.steps[spec.id].startedAt).toBeUndefined();
      }
    });
  });

  it('with onDeadline "hold", compensates nothing unless an operator asks', () => {
    check(({ spec, trace }) => {
      if (spec.onDeadline !== 'hold' || trace.operatorCompensated) return;
      for (const { after, commands } of trace.calls) {
        expect(followed(commands, 'followCompensation')).toEqual([]);
        expect(after.compensating).toBe(false);
      }
    });
  });

  it('starts nothing while a step is failed or expired and compensation is not decided', () => {
    check(({ trace }) => {
      for (const { after, commands } of trace.calls) {
        const troubled = steps(after).some((s) => ['failed', 'expired'].includes(after.steps[s.id].state));
        if (troubled && !after.compensating) {
          expect(commands).toEqual([]);
          expect(after.phase).toBe('needs_action');
        }
      }
    });
  });

  it('with onDeadline "hold", starts no step after the deadline while a step it expired is still expired', () => {
    check(({ spec, trace }) => {
      if (spec.onDeadline !== 'hold') return;
      const deadline = trace.calls.findIndex((c) => c.after.reason === 'the action deadline passed');
      if (deadline < 0) return;
      const expired = steps(trace.calls[deadline].after)
        .filter((s) => trace.calls[deadline].after.steps[s.id].state === 'expired')
        .map((s) => s.id);
      for (const { after, commands } of trace.calls.slice(deadline)) {
        const stillHeld = expired.some((id) => after.steps[id].state === 'expired');
        if (stillHeld) expect(followed(commands, 'followStep')).toEqual([]);
      }
    });
  });
});
