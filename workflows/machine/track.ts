/**
 * A track: the facts about one operation (or its compensation) on its network — refs submitted, blocks it was seen
 * in, confirmations per block, blocks orphaned, drops, failures. Its state is a function of that set of facts, not of
 * the order they arrived in. Pure: shared by the step reducer and the chain watcher.
 */
import type { Evidence } from '../../contract/evidence';
import type { FinalityPolicy } from '../../contract/action-spec';
import type { StepOutput } from '../../contract/primitives';
import type { Track, TrackState } from '../../contract/status';

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
  /** Refs of same-nonce no-ops that cancel the call: one of them mined means the call never took effect. */
  noops?: string[];
  /**
   * A no-op settles the call's nonce only once its block meets the finality policy (patch `noop-final`): before,
   * a reorg can orphan the no-op and let the call be mined in its place, so the call's fate is still open. Runs
   * recorded before the patch took a no-op's inclusion as settling it.
   */
  noopsSettleWhenFinal?: true;
}

const BLOCKLESS = '~';

export function emptyTrack(): TrackFacts {
  return { submitting: false, refs: [], sightings: {}, orphaned: [], dropped: [], failures: [] };
}

export function cloneTrack(t: TrackFacts): TrackFacts {
  return {
    ...t,
    refs: [...t.refs],
    sightings: Object.fromEntries(Object.entries(t.sightings).map(([k, s]) => [k, { ...s }])),
    orphaned: [...t.orphaned],
    dropped: [...t.dropped],
    failures: t.failures.map((f) => ({ ...f })),
    ...(t.noops ? { noops: [...t.noops] } : {}),
    ...(t.output ? { output: { ...t.output } } : {}),
  };
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
  // The no-op that cancelled the call is what the chain kept at its nonce: the call has no effect (once the no-op's
  // block is final; until then the nonce is not settled and the call may still be mined: still in flight).
  if (best?.ref && track.noops?.includes(best.ref)) {
    return track.noopsSettleWhenFinal && !meetsPolicy(best, policy) ? 'submitted' : 'failed';
  }
  // A transaction that reverted in the block it is in has failed, however deep that block is.
  if (best?.hash && track.failures.some((f) => f.blockHash === best.hash)) return 'failed';
  // Only live blocks count: a final block that is orphaned moves the step back, and `violatedSighting` raises the alarm.
  if (best && meetsPolicy(best, policy)) return 'final';
  if (track.failures.some((f) => !f.blockHash || !track.orphaned.includes(f.blockHash))) return 'failed';
  if (best) return 'included';
  if (track.refs.length > 0 || track.submittedRef) return 'submitted';
  return track.submitting ? 'submitting' : 'pending';
}

/** The view of a track published in the status: the current ref, block and confirmations. */
export function trackView(track: TrackFacts, policy: FinalityPolicy): Track {
  const bestKey = bestSightingKey(track);
  const best = bestKey === undefined ? undefined : track.sightings[bestKey];
  const state = trackState(track, policy);
  const noopMined = best?.ref && track.noops?.includes(best.ref) && state === 'failed';
  const cancelled = noopMined ? 'cancelled: a same-nonce no-op was mined' : '';
  const liveFailure = cancelled
    ? { reason: cancelled }
    : track.failures.find((f) => !f.blockHash || !track.orphaned.includes(f.blockHash));
  // A dropped (replaced) ref is not current, whichever order `submitted` and `dropped` arrived in.
  const pending = (ref?: string) => (ref && !track.dropped.includes(ref) ? ref : undefined);
  const ref =
    best?.ref ??
    pending(track.submittedRef) ??
    [...track.refs].reverse().find((r) => pending(r)) ??
    track.submittedRef ??
    track.refs[track.refs.length - 1];
  return {
    state,
    ...(ref ? { ref } : {}),
    refs: [...track.refs],
    ...(best?.hash ? { block: { number: best.number, hash: best.hash } } : {}),
    ...(best ? { confirmations: best.confirmations } : {}),
    orphaned: [...track.orphaned],
    ...(track.output ? { output: track.output } : {}),
    ...(liveFailure ? { error: liveFailure.reason } : {}),
  };
}
