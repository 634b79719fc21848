/**
 * What to tell a workflow about one transaction, given what it has already been told and what the chain says now.
 * Pure: the watcher signals only transitions (included, the confirmation count that meets the policy, the policy's
 * tag reaching the block, reorged, dropped, failed), never once per block.
 *
 * What the workflow knows about one ref is kept as the step reducer's own track facts (`workflows/machine/track`):
 * what its status showed when the watcher (re)discovered the ref, plus every report delivered since, added with the
 * reducer's `addFacts`. On top of the reducer's rules, a report about a block means the chain shows the block and the
 * transaction again: the block is no longer orphaned and the ref no longer dropped.
 */
import type { FinalityPolicy } from '../../contract/action-spec';
import type { Evidence } from '../../contract/evidence';
import type { BlockRef, StepOutput } from '../../contract/primitives';
import type { StepStatus, Track } from '../../contract/status';
import type { Inclusion } from '../../networks/evm/chain-reader';
import { addFacts, cloneTrack, type TrackFacts } from '../../workflows/machine/track';

/** One report about a transaction: evidence without the step, network, source and time (the sender adds those). */
export type Report =
  | { kind: 'included'; ref: string; block: BlockRef; output?: StepOutput }
  | { kind: 'confirmed'; ref: string; block: BlockRef; confirmations: number }
  | { kind: 'finalized'; ref: string; block: BlockRef }
  | { kind: 'reorged'; ref: string; block: BlockRef }
  | { kind: 'dropped'; ref: string }
  | { kind: 'failed'; ref: string; block: BlockRef; reason: string };

/** Where the transaction is on the chain now, as far as the watcher has read it. */
export interface ChainFacts {
  /** The canonical block it is mined in, if any. */
  inclusion?: Inclusion;
  /** The newest block processed. */
  head: bigint;
  /** The number of the block the policy's tag (finalized/safe) points at, for tag policies. */
  tagged?: bigint;
  /** Neither pending nor mined for long enough (the caller counts the checks). */
  missing: boolean;
  /** Whether a block (one the workflow was told about) is known to be orphaned. */
  isOrphaned(block: BlockRef): boolean;
}

/** What a step's status shows about its current ref (or a compensation's, in the same shape). */
export type StatusView = Pick<StepStatus, 'ref' | 'block' | 'confirmations' | 'error'> & { final: boolean };

/** What the workflow knows about one block it was told the transaction is in; undefined if orphaned or unknown. */
function knownBlock(facts: TrackFacts, hash: string) {
  const sighting = facts.orphaned.includes(hash) ? undefined : facts.sightings[hash];
  if (!sighting) return undefined;
  return { ...sighting, failed: facts.failures.some((failure) => failure.blockHash === hash) };
}

/**
 * The reports due, in the order to send them: reorgs first (so the step moves back before it moves on), then the
 * current block's inclusion, its confirmations or tag, a revert, or a drop.
 *
 * @example reportsDue({ confirmations: 2 }, 'Ox…', emptyTrack(), chain) // [{ kind: 'included', … }]
 */
export function reportsDue(policy: FinalityPolicy, ref: string, facts: TrackFacts, chain: ChainFacts): Report[] {
  const reports: Report[] = [];
  for (const [hash, sighting] of Object.entries(facts.sightings)) {
    if (facts.orphaned.includes(hash) || sighting.hash === undefined) continue;
    const block = { number: sighting.number, hash };
    if (chain.isOrphaned(block)) reports.push({ kind: 'reorged', ref, block });
  }
  const inclusion = chain.inclusion;
  if (inclusion && !chain.isOrphaned(inclusion.block)) {
    const known = knownBlock(facts, inclusion.block.hash);
    if (inclusion.reverted) {
      if (!known?.failed) {
        reports.push({ kind: 'failed', ref, block: inclusion.block, reason: inclusion.reason ?? 'execution reverted' });
      }
      return reports;
    }
    if (!known) {
      reports.push({
        kind: 'included',
        ref,
        block: inclusion.block,
        ...(inclusion.output ? { output: inclusion.output } : {}),
      });
    }
    const confirmations = Number(chain.head - BigInt(inclusion.block.number) + 1n);
    if ('confirmations' in policy) {
      const told = Math.max(known?.confirmations ?? 0, 1);
      if (!known?.finalized && told < policy.confirmations && confirmations >= policy.confirmations) {
        reports.push({ kind: 'confirmed', ref, block: inclusion.block, confirmations });
      }
    } else if (!known?.finalized && chain.tagged !== undefined && chain.tagged >= BigInt(inclusion.block.number)) {
      reports.push({ kind: 'finalized', ref, block: inclusion.block });
    }
    return reports;
  }
  if (!inclusion && chain.missing && !facts.dropped.includes(ref)) reports.push({ kind: 'dropped', ref });
  return reports;
}

/** A report's own fields, as they appear in its evidence (the sender adds step, network, source and time). */
export function reportFields(report: Report): Pick<Evidence, 'kind' | 'ref' | 'block' | 'confirmations' | 'reason'> {
  return {
    kind: report.kind,
    ref: report.ref,
    ...('block' in report ? { block: report.block } : {}),
    ...(report.kind === 'confirmed' ? { confirmations: report.confirmations } : {}),
    ...(report.kind === 'failed' ? { reason: report.reason } : {}),
  };
}

/** Adds one report to the facts as the reducer would add its evidence. */
function addReport(facts: TrackFacts, report: Report): void {
  addFacts(facts, { for: 'operation', ...reportFields(report), source: 'watcher' });
}

/** The facts after a report was delivered. */
export function recordReport(facts: TrackFacts, report: Report): TrackFacts {
  const next = cloneTrack(facts);
  addReport(next, report);
  if (report.kind === 'dropped' || report.kind === 'reorged') return next;
  next.orphaned = next.orphaned.filter((hash) => hash !== report.block.hash);
  next.dropped = next.dropped.filter((dropped) => dropped !== report.ref);
  // The reducer keeps only the hash of a block a transaction failed in; the watcher keeps the block as a sighting too,
  // so that a reorg of it is reported with its number.
  if (report.kind === 'failed') addReport(next, { kind: 'included', ref: report.ref, block: report.block });
  return next;
}

/** The facts once the ref was seen again (pending or mined) after a drop: a later drop is news again. */
export function seenAgain(facts: TrackFacts, ref: string): TrackFacts {
  return { ...facts, dropped: facts.dropped.filter((dropped) => dropped !== ref) };
}

/**
 * What a step's status says the workflow knows about one of its refs: the block it is in now, with its
 * confirmations, finality and failure. Merged into what the watcher already recorded (facts only grow).
 */
export function mergeStatusFacts(facts: TrackFacts, view: StatusView, ref: string): TrackFacts {
  if (view.ref !== ref || !view.block) return facts;
  const block = view.block;
  const shown: Report[] = [
    { kind: 'included', ref, block },
    { kind: 'confirmed', ref, block, confirmations: view.confirmations ?? 1 },
    // A final step needs nothing more about this block (whichever report made it final).
    ...(view.final ? [{ kind: 'finalized' as const, ref, block }] : []),
    ...(view.error ? [{ kind: 'failed' as const, ref, block, reason: view.error }] : []),
  ];
  return shown.reduce(recordReport, facts);
}

/**
 * Folds the facts of a newer reading of the status into those kept: facts only grow, and a block the status shows
 * as current is not orphaned as far as the workflow knows.
 */
export function mergeKnown(facts: TrackFacts, latest: TrackFacts, ref: string): TrackFacts {
  const next = cloneTrack(facts);
  for (const [hash, sighting] of Object.entries(latest.sightings)) {
    next.orphaned = next.orphaned.filter((orphaned) => orphaned !== hash);
    const block = { number: sighting.number, hash };
    addReport(next, { kind: 'confirmed', ref, block, confirmations: sighting.confirmations });
    if (sighting.finalized) addReport(next, { kind: 'finalized', ref, block });
    for (const failure of latest.failures.filter((f) => f.blockHash === hash)) {
      addReport(next, { kind: 'failed', ref, block, reason: failure.reason });
    }
  }
  return next;
}

/** A compensation track in the same shape as a step's own fields. */
export function compensationView(track: Track): StatusView {
  return {
    ...(track.ref ? { ref: track.ref } : {}),
    ...(track.block ? { block: track.block } : {}),
    ...(track.confirmations !== undefined ? { confirmations: track.confirmations } : {}),
    ...(track.error ? { error: track.error } : {}),
    final: track.state === 'final',
  };
}
