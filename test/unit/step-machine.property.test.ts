import fc from 'fast-check';
import type { FinalityPolicy } from '../../contract/action-spec';
import type { Evidence, EvidenceTarget } from '../../contract/evidence';
import type { BlockRef } from '../../contract/primitives';
import {
  deriveStepState,
  finalityViolation,
  newStepRecord,
  reduceStep,
  trackView,
  type StepEvent,
  type StepRecord,
} from '../../workflows/machine/step';

/**
 * Property tests for the step machine. Each run first generates a realistic chain history for one transaction
 * (submission, maybe a replacement, inclusions with confirmation reports and finalized tags, reorgs of some of those
 * blocks, re-inclusion in another block, reverts), turns it into the evidence an honest watcher would send in order,
 * then delivers that evidence shuffled and duplicated. The views derived from the facts must not depend on the order.
 */

/** Fewer runs under mutation testing (StrykerJS runs the covering tests once per mutant, without bailing). */
const NUM_RUNS = process.env.STRYKER_MUTATOR_WORKER ? 100 : 300;

interface Inclusion {
  /** Height relative to the previous inclusion: a re-inclusion may land below, beside or above the orphaned block. */
  heightDelta: number;
  /** Confirmation counts a watcher reported for this block, in any order (the history sorts them). */
  confirmations: number[];
  finalized: boolean;
  /** The transaction reverted in this block: the watcher reports `failed` with the block instead of `included`. */
  reverted: boolean;
  /** How the reorg report names the orphaned block. */
  reorgNamedBy: 'block' | 'orphanedHash';
}

interface ChainHistory {
  policy: FinalityPolicy;
  /** The first transaction was replaced (same nonce, higher fee) and reported dropped. */
  replaced: boolean;
  inclusions: Inclusion[];
  /** Whether the last inclusion was orphaned too (then the transaction is back in the mempool). */
  lastOrphaned: boolean;
}

const policyArb: fc.Arbitrary<FinalityPolicy> = fc.oneof(
  fc.integer({ min: 1, max: 6 }).map((confirmations) => ({ confirmations })),
  fc.constantFrom<FinalityPolicy>({ tag: 'finalized' }, { tag: 'safe' }),
);

const inclusionArb: fc.Arbitrary<Inclusion> = fc.record({
  heightDelta: fc.integer({ min: -2, max: 3 }),
  confirmations: fc.array(fc.integer({ min: 1, max: 8 }), { maxLength: 4 }),
  finalized: fc.boolean(),
  reverted: fc.oneof({ weight: 5, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
  reorgNamedBy: fc.constantFrom<Inclusion['reorgNamedBy']>('block', 'orphanedHash'),
});

const historyArb: fc.Arbitrary<ChainHistory> = fc.record({
  policy: policyArb,
  replaced: fc.boolean(),
  inclusions: fc.array(inclusionArb, { maxLength: 4 }),
  lastOrphaned: fc.boolean(),
});

function txRef(target: EvidenceTarget, n: number): string {
  return `0x${target === 'operation' ? 'a' : 'c'}${String(n).padStart(63, '0')}`;
}

function blockOf(target: EvidenceTarget, index: number, height: number): BlockRef {
  const prefix = target === 'operation' ? 'b' : 'd';
  return { number: String(height), hash: `0x${prefix}${index.toString(16).padStart(63, '0')}` };
}

/** The evidence an honest watcher sends for a history, in the order things happened. */
function evidenceInOrder(history: ChainHistory, target: EvidenceTarget = 'operation'): Evidence[] {
  const source = `watcher:${target}`;
  const evidence: Evidence[] = [];
  const report = (fields: Omit<Evidence, 'for' | 'source'>) => evidence.push({ for: target, source, ...fields });
  let ref = txRef(target, 1);
  report({ kind: 'submitted', ref });
  if (history.replaced) {
    const replacement = txRef(target, 2);
    report({ kind: 'submitted', ref: replacement });
    report({ kind: 'dropped', ref, reason: 'replaced' });
    ref = replacement;
  }
  let height = 100;
  history.inclusions.forEach((inclusion, i) => {
    height = Math.max(1, height + inclusion.heightDelta);
    const block = blockOf(target, i, height);
    if (inclusion.reverted) {
      report({ kind: 'failed', ref, block, reason: 'execution reverted' });
    } else {
      report({ kind: 'included', ref, block });
      for (const confirmations of [...inclusion.confirmations].sort((a, b) => a - b)) {
        report({ kind: 'confirmed', ref, block, confirmations });
      }
      if (inclusion.finalized) report({ kind: 'finalized', ref, block });
    }
    const isLast = i === history.inclusions.length - 1;
    if (!isLast || history.lastOrphaned) {
      if (inclusion.reorgNamedBy === 'block') report({ kind: 'reorged', ref, block });
      else report({ kind: 'reorged', ref, orphanedHash: block.hash });
    }
  });
  return evidence;
}

/** A delivery of the same facts: any order, some of them several times (including stale echoes after a reorg). */
function shuffledDelivery(evidence: Evidence[]): fc.Arbitrary<Evidence[]> {
  if (evidence.length === 0) return fc.constant([]);
  const duplicates = fc.array(fc.constantFrom(...evidence), { maxLength: evidence.length });
  return duplicates.chain((extra) => {
    const all = [...evidence, ...extra];
    return fc.shuffledSubarray(all, { minLength: all.length, maxLength: all.length });
  });
}

const historyAndDeliveryArb = historyArb.chain((history) =>
  shuffledDelivery(evidenceInOrder(history)).map((delivery) => ({ history, delivery })),
);

const meta = (n: number) => ({ at: new Date(Date.UTC(2026, 10, 26, 10, 0, n)).toISOString(), source: 'test' });

function startedStep(policy: FinalityPolicy): StepRecord {
  let step = newStepRecord({ id: 'lock', network: 'chainA', kind: 'evm.call', hasCompensation: true });
  step = reduceStep(step, { type: 'start' }, policy, meta(0));
  return reduceStep(step, { type: 'submitting' }, policy, meta(0));
}

function deliver(step: StepRecord, evidence: Evidence[], policy: FinalityPolicy): StepRecord[] {
  const states: StepRecord[] = [];
  evidence.forEach((e, i) => {
    step = reduceStep(step, { type: 'evidence', evidence: e } satisfies StepEvent, policy, meta(i + 1));
    states.push(step);
  });
  return states;
}

function finalStep(step: StepRecord, evidence: Evidence[], policy: FinalityPolicy): StepRecord {
  const states = deliver(step, evidence, policy);
  return states.length > 0 ? states[states.length - 1] : step;
}

/** What the status derives from the facts (the transition log is left out: it is the arrival-order audit trail). */
function derivedView(step: StepRecord, policy: FinalityPolicy, target: EvidenceTarget = 'operation') {
  const track = target === 'operation' ? step.operation : step.compensation!;
  const view = trackView(track, policy);
  return {
    state: deriveStepState(step, policy),
    storedState: step.state,
    track: view.state,
    ref: view.ref,
    refs: [...view.refs].sort(),
    block: view.block,
    confirmations: view.confirmations,
    orphaned: [...view.orphaned].sort(),
    error: view.error,
    finalityViolation: finalityViolation(step, policy),
  };
}

/**
 * An independent reading of the evidence delivered so far: which blocks are orphaned and which met the policy. It
 * does not use the reducer's own helpers, so the properties below are checked against the evidence itself.
 */
function oracle(delivered: Evidence[], policy: FinalityPolicy) {
  const hashOf = (e: Evidence) => e.block?.hash ?? e.orphanedHash;
  const orphaned = new Set(delivered.filter((e) => e.kind === 'reorged').map(hashOf));
  // Being included is the first confirmation.
  const confirmationsOf = (e: Evidence) =>
    e.kind === 'confirmed' ? (e.confirmations ?? 0) : e.kind === 'included' ? 1 : 0;
  const metPolicy = new Set(
    delivered
      .filter(
        (e) => e.kind === 'finalized' || ('confirmations' in policy && confirmationsOf(e) >= policy.confirmations),
      )
      .map(hashOf),
  );
  const liveFinalBlocks = [...metPolicy].filter((hash) => !orphaned.has(hash));
  const violatedBlocks = [...metPolicy].filter((hash) => orphaned.has(hash));
  return { orphaned, metPolicy, liveFinalBlocks, violatedBlocks };
}

function describeRun(history: ChainHistory, delivery: Evidence[]) {
  return JSON.stringify({
    history,
    delivery: delivery.map((e) => `${e.kind}@${e.block?.hash ?? e.orphanedHash ?? e.ref}`),
  });
}

describe('step machine properties', () => {
  it('derives the same state from shuffled, duplicated and stale evidence as from the facts delivered once in order', () => {
    fc.assert(
      fc.property(historyAndDeliveryArb, ({ history, delivery }) => {
        const inOrder = finalStep(startedStep(history.policy), evidenceInOrder(history), history.policy);
        const shuffled = finalStep(startedStep(history.policy), delivery, history.policy);
        expect(derivedView(shuffled, history.policy)).toEqual(derivedView(inOrder, history.policy));
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it('derives the same compensation state whatever order the compensation evidence arrives in', () => {
    const compensationArb = historyArb.chain((history) =>
      shuffledDelivery(evidenceInOrder(history, 'compensation')).map((delivery) => ({ history, delivery })),
    );
    fc.assert(
      fc.property(compensationArb, ({ history, delivery }) => {
        const { policy } = history;
        const compensating = (step: StepRecord) =>
          reduceStep(
            reduceStep(step, { type: 'compensate' }, policy, meta(0)),
            { type: 'submitting', for: 'compensation' },
            policy,
            meta(0),
          );
        const inOrder = finalStep(compensating(startedStep(policy)), evidenceInOrder(history, 'compensation'), policy);
        const shuffled = finalStep(compensating(startedStep(policy)), delivery, policy);
        expect(derivedView(shuffled, policy, 'compensation')).toEqual(derivedView(inOrder, policy, 'compensation'));
        expect(['compensating', 'compensated', 'compensation_failed']).toContain(shuffled.state);
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it('ignores whatever arrives about an earlier attempt once the step was retried', () => {
    const retriedArb = fc.tuple(historyArb, historyArb).chain(([first, second]) => {
      const secondHistory = { ...second, policy: first.policy };
      // The earlier attempt's refs and blocks must differ from the new attempt's: renumber them.
      const earlier = evidenceInOrder(first).map((e) => ({
        ...e,
        ...(e.ref ? { ref: e.ref.replace('0xa', '0xe') } : {}),
        ...(e.block ? { block: { ...e.block, hash: e.block.hash.replace('0xb', '0xf') } } : {}),
        ...(e.orphanedHash ? { orphanedHash: e.orphanedHash.replace('0xb', '0xf') } : {}),
      }));
      const current = evidenceInOrder(secondHistory);
      return fc
        .tuple(shuffledDelivery(earlier), shuffledDelivery([...earlier, ...current]))
        .map(([beforeRetry, afterRetry]) => ({ policy: first.policy, earlier, current, beforeRetry, afterRetry }));
    });
    fc.assert(
      fc.property(retriedArb, ({ policy, earlier, current, beforeRetry, afterRetry }) => {
        const retried = (step: StepRecord) =>
          reduceStep(reduceStep(step, { type: 'retry' }, policy, meta(50)), { type: 'submitting' }, policy, meta(50));
        const inOrder = finalStep(retried(finalStep(startedStep(policy), earlier, policy)), current, policy);
        const shuffled = finalStep(retried(finalStep(startedStep(policy), beforeRetry, policy)), afterRetry, policy);
        expect(shuffled.attempt).toBe(2);
        expect(derivedView(shuffled, policy)).toEqual(derivedView(inOrder, policy));
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it('is never final unless the policy is met for the current block, or a finality violation is reported', () => {
    fc.assert(
      fc.property(historyAndDeliveryArb, ({ history, delivery }) => {
        const { policy } = history;
        deliver(startedStep(policy), delivery, policy).forEach((step, i) => {
          const facts = oracle(delivery.slice(0, i + 1), policy);
          const view = trackView(step.operation, policy);
          const violation = finalityViolation(step, policy);
          const context = () => `${describeRun(history, delivery)} after ${i + 1} evidence`;
          if (violation) {
            // The alarm is genuine: that block met the policy and was orphaned.
            expect({ context: context(), violated: facts.violatedBlocks.includes(violation.block?.hash) }).toEqual({
              context: context(),
              violated: true,
            });
          }
          if (step.state === 'final' && !violation) {
            const hash = view.block?.hash;
            expect({
              context: context(),
              metPolicy: facts.metPolicy.has(hash),
              orphaned: facts.orphaned.has(hash),
            }).toEqual({ context: context(), metPolicy: true, orphaned: false });
          }
          // And it claims no less: a live block that met the policy makes the step final.
          if (facts.liveFinalBlocks.length > 0)
            expect({ context: context(), state: step.state }).toEqual({
              context: context(),
              state: 'final',
            });
        });
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it('never silently undoes final: every later state is final or reports a finality violation', () => {
    fc.assert(
      fc.property(historyAndDeliveryArb, ({ history, delivery }) => {
        const { policy } = history;
        let wasFinal = false;
        deliver(startedStep(policy), delivery, policy).forEach((step, i) => {
          if (wasFinal) {
            expect({
              context: `${describeRun(history, delivery)} after ${i + 1} evidence`,
              finalOrAlarm: step.state === 'final' || finalityViolation(step, policy) !== undefined,
            }).toEqual(expect.objectContaining({ finalOrAlarm: true }));
          }
          wasFinal ||= step.state === 'final';
        });
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it('never silently undoes final when some reports name no block (an operator resolving from the explorer)', () => {
    const blocklessReportArb = fc.oneof(
      fc.constant<Omit<Evidence, 'for' | 'source' | 'ref'>>({ kind: 'finalized' }),
      fc.integer({ min: 1, max: 8 }).map((confirmations) => ({ kind: 'confirmed' as const, confirmations })),
    );
    const withBlocklessArb = historyArb.chain((history) =>
      fc.array(blocklessReportArb, { minLength: 1, maxLength: 2 }).chain((reports) => {
        const ref = txRef('operation', history.replaced ? 2 : 1);
        const blockless = reports.map((r): Evidence => ({ for: 'operation', source: 'ops-console', ref, ...r }));
        return shuffledDelivery([...evidenceInOrder(history), ...blockless]).map((delivery) => ({ history, delivery }));
      }),
    );
    fc.assert(
      fc.property(withBlocklessArb, ({ history, delivery }) => {
        const { policy } = history;
        let wasFinal = false;
        deliver(startedStep(policy), delivery, policy).forEach((step, i) => {
          if (wasFinal) {
            expect({
              context: `${describeRun(history, delivery)} after ${i + 1} evidence`,
              finalOrAlarm: step.state === 'final' || finalityViolation(step, policy) !== undefined,
            }).toEqual(expect.objectContaining({ finalOrAlarm: true }));
          }
          wasFinal ||= step.state === 'final';
        });
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it('treats finalized evidence as inclusion: a step with a live finalized block is at least included', () => {
    fc.assert(
      fc.property(historyAndDeliveryArb, ({ history, delivery }) => {
        const { policy } = history;
        deliver(startedStep(policy), delivery, policy).forEach((step, i) => {
          const delivered = delivery.slice(0, i + 1);
          const facts = oracle(delivered, policy);
          const liveFinalized = delivered.some((e) => e.kind === 'finalized' && !facts.orphaned.has(e.block?.hash));
          if (liveFinalized) expect(['included', 'final']).toContain(step.state);
        });
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it('covers the interesting histories (the generator is not degenerate)', () => {
    const seen = { violation: 0, reincludedFinal: 0, backToSubmitted: 0, failed: 0, tag: 0, confirmations: 0 };
    fc.assert(
      fc.property(historyArb, (history) => {
        const step = finalStep(startedStep(history.policy), evidenceInOrder(history), history.policy);
        if (finalityViolation(step, history.policy)) seen.violation++;
        else if (step.state === 'final' && step.operation.orphaned.length > 0) seen.reincludedFinal++;
        if (step.state === 'submitted' && step.operation.orphaned.length > 0) seen.backToSubmitted++;
        if (step.state === 'failed') seen.failed++;
        if ('tag' in history.policy) seen.tag++;
        else seen.confirmations++;
      }),
      { numRuns: NUM_RUNS, seed: 42 },
    );
    for (const [name, count] of Object.entries(seen)) {
      expect({ name, covered: count > 0 }).toEqual({ name, covered: true });
    }
  });
});
