/**
 * The recent canonical chain as the watcher last saw it: block number → hash, enough of it to find where a new head
 * branches off. Following a head compares the new branch with the kept hashes; the kept blocks it replaces are the
 * orphaned ones.
 */
import type { BlockRef } from '../../contract/primitives';
import type { BlockHeader } from '../../networks/evm/chain-reader';

export interface HeadChange {
  /** New canonical blocks, oldest first. */
  added: BlockHeader[];
  /** Kept blocks that are no longer canonical, oldest first. */
  orphaned: BlockRef[];
  /**
   * The branch point was not found among the kept hashes: a reorg deeper than the window, or a watcher so far behind
   * that it cannot tell. Whatever was reported about older blocks must be checked against the chain again.
   */
  beyondWindow: boolean;
}

export class BlockWindow {
  private readonly hashes = new Map<bigint, string>();
  private lowest?: bigint;
  private highest?: bigint;

  constructor(public size: number) {}

  get top(): bigint | undefined {
    return this.highest;
  }

  get bottom(): bigint | undefined {
    return this.lowest;
  }

  get isEmpty(): boolean {
    return this.highest === undefined;
  }

  hashAt(number: bigint): string | undefined {
    return this.hashes.get(number);
  }

  /** Whether the window can say if a block at this number is canonical. */
  covers(number: bigint): boolean {
    return this.lowest !== undefined && this.highest !== undefined && number >= this.lowest && number <= this.highest;
  }

  /** Canonical as far as the window knows: true/false inside it, undefined outside it. */
  isCanonical(block: BlockRef): boolean | undefined {
    const number = BigInt(block.number);
    return this.covers(number) ? this.hashes.get(number) === block.hash : undefined;
  }

  /** Removes every block above `number` and returns them, oldest first. */
  cutAbove(number: bigint): BlockRef[] {
    const cut: BlockRef[] = [];
    if (this.highest === undefined) return cut;
    for (let n = number + 1n; n <= this.highest; n++) {
      const hash = this.hashes.get(n);
      if (hash) cut.push({ number: n.toString(), hash });
      this.hashes.delete(n);
    }
    this.highest = this.hashes.size === 0 ? undefined : number < this.highest ? number : this.highest;
    if (this.highest === undefined || (this.lowest !== undefined && this.lowest > this.highest)) this.clear();
    return cut;
  }

  clear(): void {
    this.hashes.clear();
    this.lowest = this.highest = undefined;
  }

  /** Appends the next block (its number must follow the top) and forgets the oldest beyond the window's size. */
  push(block: BlockHeader): void {
    this.hashes.set(block.number, block.hash);
    this.highest = block.number;
    this.lowest ??= block.number;
    while (this.highest - this.lowest + 1n > BigInt(this.size)) {
      this.hashes.delete(this.lowest);
      this.lowest += 1n;
    }
  }
}

/** Thrown when the chain changed while its new branch was being read: read the head again. */
export class ChainMovedError extends Error {
  override name = 'ChainMovedError';
}

/**
 * Moves the window to a new head: walks back from it through parent hashes until a kept block matches, reading at
 * most `maxWalk` blocks. Kept blocks above the branch point are orphaned.
 *
 * @example const change = await followHead(window, await latest(), (n) => blockAt(n), 256);
 */
export async function followHead(
  window: BlockWindow,
  head: BlockHeader,
  blockAt: (number: bigint) => Promise<BlockHeader | undefined>,
  maxWalk: number,
): Promise<HeadChange> {
  if (window.isEmpty) {
    window.push(head);
    return { added: [head], orphaned: [], beyondWindow: false };
  }
  if (window.hashAt(head.number) === head.hash) {
    // The head is a block we kept: anything kept above it was rolled back (the chain got shorter).
    return { added: [], orphaned: window.cutAbove(head.number), beyondWindow: false };
  }
  const branch: BlockHeader[] = [head];
  let cursor = head;
  let branchPoint: bigint | undefined;
  for (;;) {
    const parentNumber = cursor.number - 1n;
    if (cursor.number === 0n) break;
    if (window.hashAt(parentNumber) === cursor.parentHash) {
      branchPoint = parentNumber;
      break;
    }
    const bottom = window.bottom!;
    if (parentNumber < bottom || branch.length >= maxWalk) break;
    const parent = await blockAt(parentNumber);
    if (!parent || parent.hash !== cursor.parentHash) throw new ChainMovedError(`block ${parentNumber} changed`);
    branch.push(parent);
    cursor = parent;
  }
  branch.reverse();
  if (branchPoint === undefined) {
    // No kept hash matches: every kept block from the branch's parent up differs from the chain now. Older kept blocks
    // are unknown (too far behind to tell); the caller checks what it reported about them.
    const orphaned = window.cutAbove(branch[0].number - 2n);
    window.clear();
    for (const block of branch) window.push(block);
    return { added: branch, orphaned, beyondWindow: true };
  }
  const orphaned = window.cutAbove(branchPoint);
  for (const block of branch) window.push(block);
  return { added: branch, orphaned, beyondWindow: false };
}
