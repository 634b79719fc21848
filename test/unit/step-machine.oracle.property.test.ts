import fc from 'fast-check';
import type { FinalityPolicy } from '../../contract/action-spec';
import type { Evidence, EvidenceTarget } from '../../contract/evidence';
import type { StepStateName } from '../../contract/status';
import { newStepRecord, reduceStep, toStepStatus, type StepRecord } from '../../workflows/machine/step';

/**
 * The step reducer against an independent model of the evidence. Each run generates the chain history of one
 * transaction (a submission, maybe a fee-bump replacement, inclusions in blocks that gather confirmations or a
 * finalized tag, reverts, reorgs, a rejection, a drop from the mempool, the step's timeout), turns it into the
 * evidence an honest watcher sends, and delivers that evidence shuffled and duplicated. Two oracles, neither of which
 * calls the reducer's helpers:
 * - from the history itself (what the chain really did): the state the step must claim once every fact is delivered;
 * - from the evidence delivered so far (the design brief's rules, applied to a plain list): the state the step may
 *   claim after every single delivery, with the block and confirmations it shows.
 */

/** Fewer runs under mutation testing (StrykerJS runs the covering tests once per mutant, without bailing). */
const NUM_RUNS = process.env.STRYKER_MUTATOR_WORKER ? 100 : 400;

interface Inclusion {
  /** Height relative to the previous inclusion: 0 is a fork at the same height (a reorg's replacement block). */
  heightDelta: number;
  confirmations: number[];
  finalized: boolean;
  /** The transaction reverted in this block: the watcher reports `failed` with the block. */
  reverted: boolean;
  /** A reverted block is also reported as included (and confirmed) by a poller reading the receipt. */
  revertEchoed: boolean;
  reorgNamedBy: 'block' | 'orphanedHash';
}

interface ChainHistory {
  policy: FinalityPolicy;
  /** The first transaction was replaced at the same nonce; the replacement is the one that can be mined. */
  replaced: boolean;
  /** The node rejected the transaction: a `failed` report with no block, and it is never mined. */
  rejected: boolean;
  inclusions: Inclusion[];
  /** The last inclusion was orphaned too: the transaction is back in the mempool. */
  lastOrphaned: boolean;
  /** With no block left, the transaction also fell out of the mempool. */
  droppedAtEnd: boolean;
  /** Where, among the deliveries, the step's timeout fires (as a fraction), if it does. */
  timeoutAt?: number;
}

const policyArb: fc.Arbitrary<FinalityPolicy> = fc.oneof(
  fc.integer({ min: 1, max: 5 }).map((confirmations) => ({ confirmations })),
  fc.constantFrom<FinalityPolicy>({ tag: 'finalized' }, { tag: 'safe' }),
);

const inclusionArb: fc.Arbitrary<Inclusion> = fc.record({
  heightDelta: fc.integer({ min: -2, max: 2 }),
  confirmations: fc.array(fc.integer({ min: 1, max: 7 }), { maxLength: 3 }),
  finalized: fc.boolean(),
  reverted: fc.oneof({ weight: 4, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
  revertEchoed: fc.boolean(),
  reorgNamedBy: fc.constantFrom<Inclusion['reorgNamedBy']>('block', 'orphanedHash'),
});

const historyArb: fc.Arbitrary<ChainHistory> = fc.record(
  {
    policy: policyArb,
    replaced: fc.boolean(),
    rejected: fc.oneof({ weight: 6, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
    inclusions: fc.array(inclusionArb, { maxLength: 4 }),
    lastOrphaned: fc.boolean(),
    droppedAtEnd: fc.boolean(),
    timeoutAt: fc.double({ min: 0, max: 1, noNaN: true }),
  },
  { requiredKeys: ['policy', 'replaced', 'rejected', 'inclusions', 'lastOrphaned', 'droppedAtEnd'] },
);

const ref = (target: EvidenceTarget, n: number) =>
  `0x${target === 'operation' ? 'a' : 'c'}${String(n).padStart(63, '0')}`;
const hashOf = (target: EvidenceTarget, i: number) =>
  `0x${target === 'operation' ? 'b' : 'd'}${i.toString(16).padStart(63, '0')}`;

/** The evidence an honest watcher sends for a history, in the order things happened. */
function evidenceOf(history: ChainHistory, target: EvidenceTarget): Evidence[] {
  const out: Evidence[] = [];
  const report = (fields: Omit<Evidence, 'for' | 'source'>) => out.push({ for: target, source: 'watcher', ...fields });
  const current = ref(target, history.replaced ? 2 : 1);
  report({ kind: 'submitted', ref: ref(target, 1) });
  if (history.replaced) {
    report({ kind: 'submitted', ref: current });
    report({ kind: 'dropped', ref: ref(target, 1), reason: 'replaced' });
  }
  if (history.rejected) {
    report({ kind: 'failed', ref: current, reason: 'nonce too low' });
    return out;
  }
  let height = 100;
  history.inclusions.forEach((inclusion, i) => {
    height += inclusion.heightDelta;
    const block = { number: String(height), hash: hashOf(target, i) };
    if (inclusion.reverted) report({ kind: 'failed', ref: current, block, reason: 'execution reverted' });
    if (!inclusion.reverted || inclusion.revertEchoed) {
      report({ kind: 'included', ref: current, block });
      for (const confirmations of [...inclusion.confirmations].sort((a, b) => a - b))
        report({ kind: 'confirmed', ref: current, block, confirmations });
      if (inclusion.finalized) report({ kind: 'finalized', ref: current, block });
    }
    if (i < history.inclusions.length - 1 || history.lastOrphaned) {
      report(
        inclusion.reorgNamedBy === 'block'
          ? { kind: 'reorged', ref: current, block }
          : { kind: 'reorged', ref: current, orphanedHash: block.hash },
      );
    }
  });
  const mined = history.inclusions.length > 0 && !history.lastOrphaned;
  if (!mined && history.droppedAtEnd) report({ kind: 'dropped', ref: current, reason: 'not in the mempool' });
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Oracle 1: from the history. What the chain did, once every report about it has arrived.

/** The state of the transaction's track once everything is known (before the timeout is taken into account). */
function truthOf(history: ChainHistory): { track: string; block?: string; confirmations?: number; ref: string } {
  const current = ref('operation', history.replaced ? 2 : 1);
  if (history.rejected) return { track: 'failed', ref: current };
  const last = history.inclusions.length - 1;
  if (last < 0 || history.lastOrphaned) return { track: 'submitted', ref: current };
  const inclusion = history.inclusions[last];
  const shown = !inclusion.reverted || inclusion.revertEchoed;
  const confirmations = shown ? Math.max(1, ...inclusion.confirmations) : undefined;
  const block = shown ? hashOf('operation', last) : undefined;
  if (inclusion.reverted) return { track: 'failed', block, confirmations, ref: current };
  const finalByPolicy =
    inclusion.finalized || ('confirmations' in history.policy && confirmations! >= history.policy.confirmations);
  return { track: finalByPolicy ? 'final' : 'included', block, confirmations, ref: current };
}

// ---------------------------------------------------------------------------------------------------------------
// Oracle 2: from the evidence delivered so far, read as a plain list of claims.

interface Claim {
  track: 'submitting' | 'submitted' | 'included' | 'final' | 'failed';
  block?: string;
  confirmations?: number;
}

/**
 * What the evidence shows: a block counts unless a reorg of it was reported. When several blocks count (a reorg not
 * reported yet), the transaction is in the deepest: finalized, then most confirmed, then highest. Forks at the same
 * height with the same depth are equally plausible: every one of them is an acceptable claim.
 */
function claimsOf(delivered: Evidence[], policy: FinalityPolicy): Claim[] {
  const orphaned = new Set<string>();
  const blocks = new Map<string, { number: number; depth: number; finalized: boolean }>();
  const reverted = new Set<string>();
  let rejected = false;
  let anyRef = false;
  for (const e of delivered) {
    if (e.ref) anyRef = true;
    if (e.kind === 'reorged') orphaned.add((e.block?.hash ?? e.orphanedHash)!);
    if (e.kind === 'failed') {
      if (e.block) reverted.add(e.block.hash);
      else rejected = true;
    }
    if (e.block && ['included', 'confirmed', 'finalized'].includes(e.kind)) {
      const seen = blocks.get(e.block.hash) ?? { number: Number(e.block.number), depth: 0, finalized: false };
      seen.depth = Math.max(seen.depth, e.kind === 'confirmed' ? e.confirmations! : 1);
      seen.finalized ||= e.kind === 'finalized';
      blocks.set(e.block.hash, seen);
    }
  }
  const counting = [...blocks].filter(([hash]) => !orphaned.has(hash));
  const rank = ([, b]: (typeof counting)[number]) => [b.finalized ? 1 : 0, b.depth, b.number];
  const deeper = (a: number[], b: number[]) => {
    const i = a.findIndex((x, j) => x !== b[j]);
    return i >= 0 && a[i] > b[i];
  };
  const deepest = counting.filter((c) => !counting.some((other) => deeper(rank(other), rank(c))));
  const revertStands = rejected || [...reverted].some((hash) => !orphaned.has(hash));
  if (deepest.length === 0) {
    if (revertStands) return [{ track: 'failed' }];
    return [{ track: anyRef ? 'submitted' : 'submitting' }];
  }
  return deepest.map(([hash, b]): Claim => {
    const shown = { block: hash, confirmations: b.depth };
    // A revert in the block the transaction is in stands however deep that block is.
    if (reverted.has(hash)) return { track: 'failed', ...shown };
    if (b.finalized || ('confirmations' in policy && b.depth >= policy.confirmations))
      return { track: 'final', ...shown };
    if (revertStands) return { track: 'failed', ...shown };
    return { track: 'included', ...shown };
  });
}

/** The step's state from its track's claim and whether its timeout expired it (final always wins). */
function stepStateOf(track: Claim['track'], expired: boolean): StepStateName {
  if (track === 'final') return 'final';
  return expired ? 'expired' : track;
}

// ---------------------------------------------------------------------------------------------------------------

const meta = (n: number) => ({ at: new Date(Date.UTC(2026, 10, 26, 10, 0, n)).toISOString(), source: 'test' });

type Delivery = ({ type: 'evidence'; evidence: Evidence } | { type: 'expire' })[];

/** The same facts in any order, some several times, and the step's timeout somewhere among them. */
function deliveryOf(history: ChainHistory, target: EvidenceTarget): fc.Arbitrary<Delivery> {
  const evidence = evidenceOf(history, target);
  const extra = fc.array(fc.constantFrom(...evidence), { maxLength: evidence.length });
  return extra.chain((duplicates) => {
    const all = [...evidence, ...duplicates];
    return fc.shuffledSubarray(all, { minLength: all.length, maxLength: all.length }).map((shuffled): Delivery => {
      const events: Delivery = shuffled.map((e) => ({ type: 'evidence', evidence: e }));
      if (history.timeoutAt !== undefined)
        events.splice(Math.floor(history.timeoutAt * (events.length + 1)), 0, { type: 'expire' });
      return events;
    });
  });
}

const runArb = historyArb.chain((history) =>
  deliveryOf(history, 'operation').map((delivery) => ({ history, delivery })),
);

function describeRun(history: ChainHistory, delivery: Delivery, i: number): string {
  const label = (d: Delivery[number]) =>
    d.type === 'expire'
      ? 'expire'
      : `${d.evidence.kind}@${d.evidence.block?.hash.slice(-2) ?? d.evidence.orphanedHash?.slice(-2) ?? d.evidence.ref?.slice(-2)}`;
  return `${JSON.stringify(history)}\n${delivery.map(label).join(', ')}\nafter ${i} deliveries`;
}

function startedStep(policy: FinalityPolicy): StepRecord {
  let step = newStepRecord({ id: 'lock', network: 'chainA', kind: 'evm.call', hasCompensation: true });
  step = reduceStep(step, { type: 'start' }, policy, meta(0));
  return reduceStep(step, { type: 'submitting' }, policy, meta(0));
}

describe('the step reducer against an independent model of the evidence', () => {
  it('claims, after every delivery, a state the evidence delivered so far supports, with its block and confirmations', () => {
    fc.assert(
      fc.property(runArb, ({ history, delivery }) => {
        const { policy } = history;
        let step = startedStep(policy);
        let expiredIfNotFinal: boolean[] = [false];
        const delivered: Evidence[] = [];
        expect(step.state).toBe('submitting');
        delivery.forEach((event, i) => {
          const before = claimsOf(delivered, policy);
          if (event.type === 'expire') {
            // The timeout expires a step that is not final at that moment (forks tied in depth: either reading).
            expiredIfNotFinal = [
              ...new Set(expiredIfNotFinal.flatMap((was) => before.map((c) => was || c.track !== 'final'))),
            ];
          } else delivered.push(event.evidence);
          step = reduceStep(step, event, policy, meta(i + 1));
          const claims = claimsOf(delivered, policy);
          const status = toStepStatus(step, policy);
          const acceptable = claims.flatMap((claim) =>
            expiredIfNotFinal.map((expired) => ({
              state: stepStateOf(claim.track, expired),
              block: claim.block,
              confirmations: claim.confirmations,
            })),
          );
          const actual = { state: step.state, block: status.block?.hash, confirmations: status.confirmations };
          if (!acceptable.some((a) => JSON.stringify(a) === JSON.stringify(actual)))
            throw new Error(
              `${describeRun(history, delivery, i + 1)}\nclaimed ${JSON.stringify(actual)}, the evidence supports ${JSON.stringify(acceptable)}`,
            );
        });
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it('claims what the chain did once every fact has arrived, whatever the order and duplicates', () => {
    fc.assert(
      fc.property(runArb, ({ history, delivery }) => {
        const { policy } = history;
        const step = delivery.reduce(
          (current, event, i) => reduceStep(current, event, policy, meta(i + 1)),
          startedStep(policy),
        );
        const truth = truthOf(history);
        const status = toStepStatus(step, policy);
        // Without a timeout the state is the chain's; with one, it is `expired` unless the step is final now, or
        // was final when the timer fired (then the timeout found nothing to expire).
        const states = new Set<StepStateName>([stepStateOf(truth.track as Claim['track'], false)]);
        if (history.timeoutAt !== undefined) states.add(stepStateOf(truth.track as Claim['track'], true));
        expect({ run: describeRun(history, delivery, delivery.length), state: states.has(step.state) }).toEqual({
          run: describeRun(history, delivery, delivery.length),
          state: true,
        });
        expect({ block: status.block?.hash, confirmations: status.confirmations }).toEqual({
          block: truth.block,
          confirmations: truth.confirmations,
        });
        // The transaction shown is the one that can still be mined (the replaced one is dropped).
        // (When it fell out of the mempool too, no ref is pending: which one is shown is not a claim about the chain.)
        const mined = history.inclusions.length > 0 && !history.lastOrphaned;
        if (history.rejected || mined || !history.droppedAtEnd) expect(status.ref).toBe(truth.ref);
        if (history.timeoutAt === undefined) expect(step.state).toBe(stepStateOf(truth.track as Claim['track'], false));
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it('tracks a compensation the same way: compensated when the evidence shows it final, compensation_failed when failed', () => {
    const compensationArb = historyArb.chain((history) =>
      deliveryOf({ ...history, timeoutAt: undefined }, 'compensation').map((delivery) => ({ history, delivery })),
    );
    fc.assert(
      fc.property(compensationArb, ({ history, delivery }) => {
        const { policy } = history;
        let step = startedStep(policy);
        step = reduceStep(step, { type: 'compensate' }, policy, meta(1));
        step = reduceStep(step, { type: 'submitting', for: 'compensation' }, policy, meta(1));
        expect(step.state).toBe('compensating');
        const delivered: Evidence[] = [];
        delivery.forEach((event, i) => {
          if (event.type === 'evidence') delivered.push(event.evidence);
          step = reduceStep(step, event, policy, meta(i + 2));
          const claims = claimsOf(delivered, policy);
          const compensation = toStepStatus(step, policy).compensation!;
          const actual = { track: compensation.state, state: step.state, block: compensation.block?.hash };
          const acceptable = claims.map((c) => ({
            track: c.track,
            state: { final: 'compensated', failed: 'compensation_failed' }[c.track as string] ?? 'compensating',
            block: c.block,
          }));
          expect(acceptable).toContainEqual(actual);
        });
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it('covers every state it checks (the generator is not degenerate)', () => {
    const seen = new Set<string>();
    fc.assert(
      fc.property(runArb, ({ history, delivery }) => {
        let step = startedStep(history.policy);
        seen.add(step.state);
        for (const [i, event] of delivery.entries()) {
          step = reduceStep(step, event, history.policy, meta(i + 1));
          seen.add(step.state);
        }
      }),
      { numRuns: NUM_RUNS, seed: 7 },
    );
    expect([...seen].sort()).toEqual(['expired', 'failed', 'final', 'included', 'submitted', 'submitting']);
  });
});
