/**
 * The step state machine: a pure reducer, no Temporal imports.
 *
 * A step's operation (and later its compensation) is a *track* of facts: refs submitted, blocks it was seen in,
 * confirmations per block, blocks orphaned, failures. The track's state is a function of that set of facts, not of
 * the order they arrived in, so duplicated, reordered and stale evidence leaves the same state as the same facts
 * delivered once, in order. Only the transition log depends on arrival order: it is the audit trail.
 */
import type { Evidence, EvidenceTarget } from '../../contract/evidence';
import type { FinalityPolicy } from '../../contract/action-spec';
import type { BlockRef, StepOutput } from '../../contract/primitives';
import type { StepStateName, StepStatus, Track, TrackState, Transition } from '../../contract/status';

/** Where a track was seen included: facts about one block. Keyed by block hash (or a blockless key). */
export interface Sighting {
  number: string;
  hash?: string;
  /** The most confirmations reported for this block. */
  confirmations: number;
  /** The network's finality (per the policy's tag) covered this block. */
  finalized: boolean;
  ref?: string;
}

export interface Failure {
  reason: string;
  blockHash?: string;
}

export interface TrackFacts {
  submitting: boolean;
  refs: string[];
  submittedRef?: string;
  sightings: Record<string, Sighting>;
  orphaned: string[];
  dropped: string[];
  failures: Failure[];
  output?: StepOutput;
}

export interface StepRecord {
  id: string;
  network: string;
  kind: 'evm.call' | 'evm.transfer' | 'await';
  attempt: number;
  hasCompensation: boolean;
  startedAt?: string;
  expired: boolean;
  skipped: boolean;
  operation: TrackFacts;
  compensation?: TrackFacts;
  /** Refs of earlier attempts: reports about them are recognised and ignored. */
  retiredRefs: string[];
  state: StepStateName;
  transitions: Transition[];
}

export interface TransitionMeta {
  at: string;
  source: string;
  operator?: string;
  reason?: string;
}

export type StepEvent =
  | { type: 'evidence'; evidence: Evidence }
  | { type: 'start' }
  | { type: 'submitting'; for?: EvidenceTarget }
  | { type: 'expire' }
  | { type: 'skip' }
  | { type: 'retry' }
  | { type: 'compensate' };

const BLOCKLESS = '~';

export function emptyTrack(): TrackFacts {
  return { submitting: false, refs: [], sightings: {}, orphaned: [], dropped: [], failures: [] };
}

export function newStepRecord(spec: {
  id: string;
  network: string;
  kind: StepRecord['kind'];
  hasCompensation: boolean;
}): StepRecord {
  return {
    ...spec,
    attempt: 1,
    expired: false,
    skipped: false,
    operation: emptyTrack(),
    retiredRefs: [],
    state: 'waiting',
    transitions: [],
  };
}

/** Applies one event to a step. Pure: returns a new record, the input is left untouched. */
export function reduceStep(
  step: StepRecord,
  event: StepEvent,
  policy: FinalityPolicy,
  meta: TransitionMeta,
): StepRecord {
  const next = structuredCloneStep(step);
  switch (event.type) {
    case 'start':
      next.startedAt ??= meta.at;
      break;
    case 'submitting':
      if (event.for === 'compensation') {
        if (next.compensation) next.compensation.submitting = true;
      } else if (!isTerminal(next)) next.operation.submitting = true;
      break;
    case 'expire':
      if (!isTerminal(next) && trackState(next.operation, policy) !== 'final') next.expired = true;
      break;
    case 'skip':
      // Only a step with nothing submitted (and nothing reported) can be skipped.
      if (next.state === 'waiting') next.skipped = true;
      break;
    case 'retry':
      next.retiredRefs = [...next.retiredRefs, ...next.operation.refs];
      next.operation = emptyTrack();
      next.attempt += 1;
      next.expired = false;
      next.startedAt = meta.at;
      break;
    case 'compensate':
      next.compensation ??= emptyTrack();
      break;
    case 'evidence':
      applyEvidence(next, event.evidence);
      break;
  }
  return recordTransitions(step, next, policy, meta, event);
}

function applyEvidence(step: StepRecord, evidence: Evidence): void {
  if (evidence.for === 'compensation') {
    if (step.compensation) addFacts(step.compensation, evidence);
    return;
  }
  if (evidence.ref && step.retiredRefs.includes(evidence.ref) && !step.operation.refs.includes(evidence.ref)) return;
  // Nothing of ours can be on chain before we submitted it; an awaited step can be reported at any time.
  if (step.kind !== 'await' && !step.operation.submitting && step.operation.refs.length === 0 && !evidence.ref) return;
  if (step.skipped) return;
  addFacts(step.operation, evidence);
}

/** Adds evidence to a track's fact set. Every fact is idempotent: adding it twice changes nothing. */
export function addFacts(track: TrackFacts, evidence: Evidence): void {
  if (evidence.ref && !track.refs.includes(evidence.ref)) track.refs.push(evidence.ref);
  if (evidence.output) track.output = { ...track.output, ...evidence.output };
  const blockKey = evidence.block?.hash ?? BLOCKLESS;
  switch (evidence.kind) {
    case 'submitted':
      if (evidence.ref) track.submittedRef = evidence.ref;
      break;
    case 'included':
    case 'confirmed':
    case 'finalized': {
      const key = evidence.block ? blockKey : (bestSightingKey(track) ?? BLOCKLESS);
      const sighting = (track.sightings[key] ??= {
        number: evidence.block?.number ?? '0',
        ...(evidence.block ? { hash: evidence.block.hash } : {}),
        confirmations: 0,
        finalized: false,
      });
      sighting.confirmations = Math.max(
        sighting.confirmations,
        evidence.kind === 'confirmed' ? (evidence.confirmations ?? 1) : 1,
      );
      if (evidence.kind === 'finalized') sighting.finalized = true;
      if (evidence.ref) sighting.ref ??= evidence.ref;
      break;
    }
    case 'reorged': {
      const hash = evidence.block?.hash ?? evidence.orphanedHash;
      if (hash && !track.orphaned.includes(hash)) track.orphaned.push(hash);
      break;
    }
    case 'dropped':
      if (evidence.ref && !track.dropped.includes(evidence.ref)) track.dropped.push(evidence.ref);
      break;
    case 'failed':
      if (!track.failures.some((f) => f.reason === evidence.reason && f.blockHash === evidence.block?.hash)) {
        track.failures.push({
          reason: evidence.reason ?? 'failed',
          ...(evidence.block ? { blockHash: evidence.block.hash } : {}),
        });
      }
      break;
  }
}

function liveSightings(track: TrackFacts): [string, Sighting][] {
  return Object.entries(track.sightings).filter(([key]) => !track.orphaned.includes(key));
}

/**
 * The block the track is currently included in: among non-orphaned sightings, one that is finalized, then the most
 * confirmed, then one with a block hash, then the highest. Two live sightings mean one was orphaned and its reorg is
 * not reported yet (or a report named no block); preferring the deeper one keeps a sighting that met the policy
 * current until its reorg is known, so `final` is never undone without the finality-violation alarm.
 */
export function bestSightingKey(track: TrackFacts): string | undefined {
  let best: [string, Sighting] | undefined;
  for (const entry of liveSightings(track)) {
    if (!best || compareSightings(entry, best) > 0) best = entry;
  }
  return best?.[0];
}

function compareSightings([keyA, a]: [string, Sighting], [keyB, b]: [string, Sighting]): number {
  if (a.finalized !== b.finalized) return a.finalized ? 1 : -1;
  if (a.confirmations !== b.confirmations) return a.confirmations - b.confirmations;
  const blocklessA = keyA === BLOCKLESS ? 0 : 1;
  const blocklessB = keyB === BLOCKLESS ? 0 : 1;
  if (blocklessA !== blocklessB) return blocklessA - blocklessB;
  const byNumber = BigInt(a.number) - BigInt(b.number);
  if (byNumber !== 0n) return byNumber > 0n ? 1 : -1;
  return keyA < keyB ? -1 : keyA > keyB ? 1 : 0;
}

/** Whether the facts about one block meet a finality policy. `finalized` always does. */
export function meetsPolicy(sighting: Sighting, policy: FinalityPolicy): boolean {
  if (sighting.finalized) return true;
  return 'confirmations' in policy && sighting.confirmations >= policy.confirmations;
}

/**
 * A block that met the policy and was later orphaned: finality was claimed and then contradicted. When several were,
 * the same one is reported whatever order the evidence came in.
 */
export function violatedSighting(track: TrackFacts, policy: FinalityPolicy): Sighting | undefined {
  let violated: [string, Sighting] | undefined;
  for (const entry of Object.entries(track.sightings)) {
    if (!track.orphaned.includes(entry[0]) || !meetsPolicy(entry[1], policy)) continue;
    if (!violated || compareSightings(entry, violated) > 0) violated = entry;
  }
  return violated?.[1];
}

export function trackState(track: TrackFacts, policy: FinalityPolicy): TrackState {
  const bestKey = bestSightingKey(track);
  const best = bestKey === undefined ? undefined : track.sightings[bestKey];
  // A transaction that reverted in the block it is in has failed, however deep that block is.
  if (best?.hash && track.failures.some((f) => f.blockHash === best.hash)) return 'failed';
  // Only live blocks count: a final block that is orphaned moves the step back, and `violatedSighting` raises the alarm.
  if (best && meetsPolicy(best, policy)) return 'final';
  if (track.failures.some((f) => !f.blockHash || !track.orphaned.includes(f.blockHash))) return 'failed';
  if (best) return 'included';
  if (track.refs.length > 0 || track.submittedRef) return 'submitted';
  return track.submitting ? 'submitting' : 'pending';
}

export function isTerminal(step: StepRecord): boolean {
  return step.skipped || step.compensation !== undefined;
}

export function deriveStepState(step: StepRecord, policy: FinalityPolicy): StepStateName {
  if (step.compensation) return trackState(step.compensation, policy) === 'final' ? 'compensated' : 'compensating';
  if (step.skipped) return 'skipped';
  const state = trackState(step.operation, policy);
  if (state === 'final') return 'final';
  if (step.expired) return 'expired';
  return state === 'pending' ? 'waiting' : state;
}

/** The view of a track published in the status: the current ref, block and confirmations. */
export function trackView(track: TrackFacts, policy: FinalityPolicy): Track {
  const bestKey = bestSightingKey(track);
  const best = bestKey === undefined ? undefined : track.sightings[bestKey];
  const liveFailure = track.failures.find((f) => !f.blockHash || !track.orphaned.includes(f.blockHash));
  // A dropped (replaced) ref is not current, whichever order `submitted` and `dropped` arrived in.
  const pending = (ref?: string) => (ref && !track.dropped.includes(ref) ? ref : undefined);
  const ref =
    best?.ref ??
    pending(track.submittedRef) ??
    [...track.refs].reverse().find((r) => pending(r)) ??
    track.submittedRef ??
    track.refs[track.refs.length - 1];
  return {
    state: trackState(track, policy),
    ...(ref ? { ref } : {}),
    refs: [...track.refs],
    ...(best?.hash ? { block: { number: best.number, hash: best.hash } } : {}),
    ...(best ? { confirmations: best.confirmations } : {}),
    orphaned: [...track.orphaned],
    ...(track.output ? { output: track.output } : {}),
    ...(liveFailure ? { error: liveFailure.reason } : {}),
  };
}

export function toStepStatus(step: StepRecord, policy: FinalityPolicy): StepStatus {
  const view = trackView(step.operation, policy);
  return {
    id: step.id,
    network: step.network,
    kind: step.kind,
    state: step.state,
    attempt: step.attempt,
    finality: policy,
    ...(view.ref ? { ref: view.ref } : {}),
    refs: view.refs,
    retiredRefs: [...step.retiredRefs],
    ...(view.block ? { block: view.block } : {}),
    ...(view.confirmations !== undefined ? { confirmations: view.confirmations } : {}),
    orphaned: view.orphaned,
    ...(view.output ? { output: view.output } : {}),
    ...(view.error ? { error: view.error } : {}),
    ...(step.startedAt ? { startedAt: step.startedAt } : {}),
    ...(step.compensation ? { compensation: trackView(step.compensation, policy) } : {}),
    transitions: step.transitions,
  };
}

function recordTransitions(
  before: StepRecord,
  next: StepRecord,
  policy: FinalityPolicy,
  meta: TransitionMeta,
  event: StepEvent,
): StepRecord {
  const audit = {
    at: meta.at,
    source: meta.source,
    ...(meta.operator ? { operator: meta.operator } : {}),
    ...(meta.reason ? { reason: meta.reason } : {}),
  };
  const state = deriveStepState(next, policy);
  const view = trackView(next.operation, policy);
  if (state !== before.state || event.type === 'retry') {
    next.transitions.push({
      from: before.state,
      to: state,
      ...audit,
      ...(view.ref ? { ref: view.ref } : {}),
      ...(view.block ? { block: view.block } : {}),
      ...(view.confirmations !== undefined ? { confirmations: view.confirmations } : {}),
    });
  }
  if (next.compensation) {
    const was = before.compensation ? trackState(before.compensation, policy) : undefined;
    const now = trackState(next.compensation, policy);
    if (was !== now && was !== undefined) {
      const compensationView = trackView(next.compensation, policy);
      next.transitions.push({
        from: was,
        to: now,
        for: 'compensation',
        ...audit,
        ...(compensationView.ref ? { ref: compensationView.ref } : {}),
        ...(compensationView.block ? { block: compensationView.block } : {}),
      });
    }
  }
  next.state = state;
  return next;
}

function structuredCloneStep(step: StepRecord): StepRecord {
  const cloneTrack = (t: TrackFacts): TrackFacts => ({
    ...t,
    refs: [...t.refs],
    sightings: Object.fromEntries(Object.entries(t.sightings).map(([k, s]) => [k, { ...s }])),
    orphaned: [...t.orphaned],
    dropped: [...t.dropped],
    failures: t.failures.map((f) => ({ ...f })),
    ...(t.output ? { output: { ...t.output } } : {}),
  });
  return {
    ...step,
    operation: cloneTrack(step.operation),
    ...(step.compensation ? { compensation: cloneTrack(step.compensation) } : {}),
    retiredRefs: [...step.retiredRefs],
    transitions: [...step.transitions],
  };
}

/** A block the step was final in and that has since been orphaned, if any (the alarm). */
export function finalityViolation(
  step: StepRecord,
  policy: FinalityPolicy,
): { for: EvidenceTarget; block?: BlockRef } | undefined {
  for (const target of ['operation', 'compensation'] as const) {
    const track = target === 'operation' ? step.operation : step.compensation;
    const violated = track && violatedSighting(track, policy);
    if (violated)
      return { for: target, ...(violated.hash ? { block: { number: violated.number, hash: violated.hash } } : {}) };
  }
  return undefined;
}

/** Whether the step's operation has an effect on its network that compensation would have to undo. */
export function effectExists(step: StepRecord, policy: FinalityPolicy): boolean {
  const state = trackState(step.operation, policy);
  return state === 'included' || state === 'final';
}
