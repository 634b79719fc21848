import type { BlockHeader } from '../../networks/evm/chain-reader';
import { BlockWindow, ChainMovedError, followHead } from '../../workers/watcher/block-window';

/** A chain as a list of branch letters per height: `new FakeChain('aaaa')`, then `reorg(2, 'bb')`. */
class FakeChain {
  blocks: BlockHeader[] = [];
  reads = 0;

  constructor(forks: string) {
    for (const fork of forks) this.extend(fork);
  }

  extend(fork: string): void {
    const number = BigInt(this.blocks.length);
    const parent = this.blocks[this.blocks.length - 1];
    this.blocks.push({
      number,
      hash: hashOf(number, fork),
      parentHash: parent?.hash ?? `0x${'0'.repeat(64)}`,
      timestamp: 1_000n + number,
      transactions: [],
    });
  }

  /** Replaces every block from `height` up with blocks of another branch. */
  reorg(height: number, forks: string): void {
    this.blocks = this.blocks.slice(0, height);
    for (const fork of forks) this.extend(fork);
  }

  /** Rolls back to `height` (an `evm_revert` before any new block). */
  rollBack(height: number): void {
    this.blocks = this.blocks.slice(0, height + 1);
  }

  get head(): BlockHeader {
    return this.blocks[this.blocks.length - 1];
  }

  blockAt = async (number: bigint): Promise<BlockHeader | undefined> => {
    this.reads += 1;
    return this.blocks[Number(number)];
  };
}

function hashOf(number: bigint, fork: string): string {
  return `0x${fork.repeat(2)}${number.toString(16).padStart(62, '0')}`;
}

const numbers = (blocks: { number: bigint | string }[]) => blocks.map((b) => String(b.number));

async function followed(chain: FakeChain, size = 8): Promise<BlockWindow> {
  const window = new BlockWindow(size);
  await followHead(window, chain.blocks[0], chain.blockAt, 64);
  for (const block of chain.blocks.slice(1)) await followHead(window, block, chain.blockAt, 64);
  return window;
}

describe('followHead', () => {
  it('adds the blocks between the kept top and a head several blocks ahead, oldest first', async () => {
    const chain = new FakeChain('aaa');
    const window = await followed(chain);
    chain.extend('a');
    chain.extend('a');
    chain.extend('a');

    const change = await followHead(window, chain.head, chain.blockAt, 64);

    expect(numbers(change.added)).toEqual(['3', '4', '5']);
    expect(change.orphaned).toEqual([]);
    expect(window.hashAt(5n)).toBe(chain.head.hash);
  });

  it('finds the orphaned blocks of a reorg that replaces the top two blocks', async () => {
    const chain = new FakeChain('aaaaa');
    const window = await followed(chain);
    chain.reorg(3, 'bbb');

    const change = await followHead(window, chain.head, chain.blockAt, 64);

    expect(change.orphaned).toEqual([
      { number: '3', hash: hashOf(3n, 'a') },
      { number: '4', hash: hashOf(4n, 'a') },
    ]);
    expect(numbers(change.added)).toEqual(['3', '4', '5']);
    expect(change.beyondWindow).toBe(false);
    expect(window.isCanonical({ number: '4', hash: hashOf(4n, 'a') })).toBe(false);
    expect(window.isCanonical({ number: '4', hash: hashOf(4n, 'b') })).toBe(true);
  });

  it('orphans the blocks above a head the chain rolled back to (a revert before any new block)', async () => {
    const chain = new FakeChain('aaaaaa');
    const window = await followed(chain);
    chain.rollBack(3);

    const change = await followHead(window, chain.head, chain.blockAt, 64);

    expect(numbers(change.orphaned)).toEqual(['4', '5']);
    expect(change.added).toEqual([]);
    expect(window.top).toBe(3n);
  });

  it('says when a reorg goes deeper than the kept hashes, and orphans every kept block it replaced', async () => {
    const chain = new FakeChain('aaaaaaaaaa');
    const window = await followed(chain, 4);
    chain.reorg(2, 'bbbbbbbbb');

    const change = await followHead(window, chain.head, chain.blockAt, 64);

    expect(change.beyondWindow).toBe(true);
    expect(numbers(change.orphaned)).toEqual(['6', '7', '8', '9']);
    expect(window.hashAt(chain.head.number)).toBe(chain.head.hash);
  });

  it('keeps no more hashes than its size', async () => {
    const window = await followed(new FakeChain('a'.repeat(20)), 5);

    expect([window.bottom, window.top]).toEqual([15n, 19n]);
    expect(window.covers(14n)).toBe(false);
    expect(window.isCanonical({ number: '3', hash: hashOf(3n, 'a') })).toBeUndefined();
  });

  it('reads nothing but the head while the head does not move', async () => {
    const chain = new FakeChain('aaaa');
    const window = await followed(chain);
    chain.reads = 0;

    const change = await followHead(window, chain.head, chain.blockAt, 64);

    expect(change).toEqual({ added: [], orphaned: [], beyondWindow: false });
    expect(chain.reads).toBe(0);
  });

  it('gives up on a branch that changes while it is being read', async () => {
    const chain = new FakeChain('aaaa');
    const window = await followed(chain);
    chain.reorg(2, 'bbbb');
    const head = chain.head;
    chain.reorg(2, 'cccc');

    await expect(followHead(window, head, chain.blockAt, 64)).rejects.toBeInstanceOf(ChainMovedError);
  });
});
