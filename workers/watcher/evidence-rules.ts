/**
 * What to tell a workflow about one transaction, given what it has already been told and what the chain says now.
 * Pure: the watcher signals only transitions (included, the confirmation count that meets the policy, the policy's
 * tag reaching the block, reorged, dropped, failed), never once per block.
 */
import type { FinalityPolicy } from '../../contract/action-spec';
import type { BlockRef, StepOutput } from '../../contract/primitives';
import type { StepStatus, Track } from '../../contract/status';

/** One report about a transaction: evidence without the step, network, source and time (the sender adds those). */
export type Report =
  | { kind: 'included'; ref: string; block: BlockRef; output?: StepOutput }
  | { kind: 'confirmed'; ref: string; block: BlockRef; confirmations: number }
  | { kind: 'finalized'; ref: string; block: BlockRef }
  | { kind: 'reorged'; ref: string; block: BlockRef }
  | { kind: 'dropped'; ref: string }
  | { kind: 'failed'; ref: string; block: BlockRef; reason: string };

export interface ReportedBlock {
  number: string;
  /** The most confirmations the workflow knows for this block. */
  confirmations: number;
  finalized: boolean;
  failed: boolean;
}

/** What the workflow knows about one ref: from its status when the watcher (re)discovered it, plus what was sent. */
export interface ReportedFacts {
  blocks: Record<string, ReportedBlock>;
  /** Block hashes reported orphaned. */
  orphaned: string[];
  /** `dropped` was sent and the transaction has not been seen since. */
  dropped: boolean;
}

/** Where the transaction is on the chain now, as far as the watcher has read it. */
export interface ChainFacts {
  /** The canonical block it is mined in, if any. */
  inclusion?: { block: BlockRef; reverted: boolean; reason?: string; output?: StepOutput };
  /** The newest block processed. */
  head: bigint;
  /** The number of the block the policy's tag (finalized/safe) points at, for tag policies. */
  tagged?: bigint;
  /** Neither pending nor mined for long enough (the caller counts the checks). */
  missing: boolean;
  /** Whether a block (one the workflow was told about) is known to be orphaned. */
  isOrphaned(block: BlockRef): boolean;
}

export function noFacts(): ReportedFacts {
  return { blocks: {}, orphaned: [], dropped: false };
}

/**
 * The reports due, in the order to send them: reorgs first (so the step moves back before it moves on), then the
 * current block's inclusion, its confirmations or tag, a revert, or a drop.
 *
 * @example reportsDue({ confirmations: 2 }, 'Ox…', noFacts(), chain) // [{ kind: 'included', … }]
 */
export function reportsDue(policy: FinalityPolicy, ref: string, facts: ReportedFacts, chain: ChainFacts): Report[] {
  const reports: Report[] = [];
  for (const [hash, block] of Object.entries(facts.blocks)) {
    if (facts.orphaned.includes(hash)) continue;
    const ref_ = { number: block.number, hash };
    if (chain.isOrphaned(ref_)) reports.push({ kind: 'reorged', ref, block: ref_ });
  }
  const inclusion = chain.inclusion;
  if (inclusion && !chain.isOrphaned(inclusion.block)) {
    const known = facts.orphaned.includes(inclusion.block.hash) ? undefined : facts.blocks[inclusion.block.hash];
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
  if (!inclusion && chain.missing && !facts.dropped) reports.push({ kind: 'dropped', ref });
  return reports;
}

/** The facts after a report was delivered. */
export function recordReport(facts: ReportedFacts, report: Report): ReportedFacts {
  const next: ReportedFacts = {
    blocks: Object.fromEntries(Object.entries(facts.blocks).map(([hash, block]) => [hash, { ...block }])),
    orphaned: [...facts.orphaned],
    dropped: facts.dropped,
  };
  if (report.kind === 'dropped') {
    next.dropped = true;
    return next;
  }
  const hash = report.block.hash;
  if (report.kind === 'reorged') {
    if (!next.orphaned.includes(hash)) next.orphaned.push(hash);
    return next;
  }
  const block = (next.blocks[hash] ??= {
    number: report.block.number,
    confirmations: 0,
    finalized: false,
    failed: false,
  });
  next.orphaned = next.orphaned.filter((h) => h !== hash);
  next.dropped = false;
  if (report.kind === 'failed') block.failed = true;
  else block.confirmations = Math.max(block.confirmations, report.kind === 'confirmed' ? report.confirmations : 1);
  if (report.kind === 'finalized') block.finalized = true;
  return next;
}

/**
 * What a step's status says the workflow knows about one of its refs: the block it is in now, with its
 * confirmations, finality and failure. Merged into what the watcher already recorded (facts only grow).
 */
export function mergeStatusFacts(
  facts: ReportedFacts,
  view: Pick<StepStatus, 'ref' | 'block' | 'confirmations' | 'error'> & { final: boolean },
  ref: string,
): ReportedFacts {
  if (view.ref !== ref || !view.block) return facts;
  const next = recordReport(facts, { kind: 'included', ref, block: view.block });
  const block = next.blocks[view.block.hash];
  block.confirmations = Math.max(block.confirmations, view.confirmations ?? 1);
  // A final step needs nothing more about this block (whichever report made it final).
  if (view.final) block.finalized = true;
  if (view.error) block.failed = true;
  return next;
}

/** A compensation track in the same shape as a step's own fields. */
export function trackFacts(track: Track): Pick<StepStatus, 'ref' | 'block' | 'confirmations' | 'error'> & {
  final: boolean;
} {
  return {
    ...(track.ref ? { ref: track.ref } : {}),
    ...(track.block ? { block: track.block } : {}),
    ...(track.confirmations !== undefined ? { confirmations: track.confirmations } : {}),
    ...(track.error ? { error: track.error } : {}),
    final: track.state === 'final',
  };
}
