import type { BlockHeader, ChainSource, Inclusion } from '../../networks/evm/chain-reader';
import type { FollowedActions } from '../../workers/watcher/directory';
import type { Report } from '../../workers/watcher/evidence-rules';
import { jsonLogger } from '../../workers/watcher/log';
import { WatcherMetrics } from '../../workers/watcher/metrics';
import { NetworkFollower } from '../../workers/watcher/network-follower';
import type { Delivery, EvidenceSender } from '../../workers/watcher/sender';
import type { WatchedTx } from '../../workers/watcher/watched';
import { emptyTrack } from '../../workflows/machine/track';

const REF = '0x1111111111111111111111111111111111111111111111111111111111111111';

/** A chain whose blocks are built by the test: a branch letter per block, transactions placed in blocks or pending. */
class FakeChain implements ChainSource {
  blocks: BlockHeader[] = [];
  pending = new Set<string>();

  constructor(length: number) {
    for (let i = 0; i < length; i++) this.mine();
  }

  mine(fork = 'a', transactions: string[] = []): BlockHeader {
    const number = BigInt(this.blocks.length);
    const block = {
      number,
      hash: `0x${fork.repeat(2)}${number.toString(16).padStart(62, '0')}`,
      parentHash: this.blocks[this.blocks.length - 1]?.hash ?? `0x${'0'.repeat(64)}`,
      timestamp: 1_000n + number,
      transactions,
    };
    for (const tx of transactions) this.pending.delete(tx);
    this.blocks.push(block);
    return block;
  }

  /** `evm_revert`: back to `height`, and the transactions above it are gone (not pending either). */
  revert(height: number): void {
    this.blocks = this.blocks.slice(0, height + 1);
  }

  async latest() {
    return this.blocks[this.blocks.length - 1];
  }
  async blockAt(number: bigint) {
    return this.blocks[Number(number)];
  }
  async tagged() {
    return undefined;
  }
  async inclusion(hash: string): Promise<Inclusion | undefined> {
    const block = this.blocks.find((b) => b.transactions.includes(hash));
    return block && { block: { number: block.number.toString(), hash: block.hash }, reverted: false };
  }
  async knows(hash: string) {
    return this.pending.has(hash) || !!(await this.inclusion(hash));
  }
  async actionEvents() {
    return [];
  }
}

class FakeActions implements FollowedActions {
  forgotten: string[] = [];
  constructor(public txs: WatchedTx[]) {}
  txsOn(network: string) {
    return this.txs.filter((tx) => tx.network === network);
  }
  async hint() {}
  async retryUnattributed() {}
  forget(actionId: string) {
    this.forgotten.push(actionId);
    this.txs = this.txs.filter((tx) => tx.actionId !== actionId);
  }
}

class RecordingSender implements EvidenceSender {
  sent: string[] = [];
  next: Delivery[] = [];
  async send(tx: WatchedTx, report: Report): Promise<Delivery> {
    const delivery = this.next.shift() ?? 'sent';
    if (delivery === 'sent')
      this.sent.push(`${tx.stepId}:${report.kind}${'block' in report ? `@${report.block.number}` : ''}`);
    return delivery;
  }
}

function watched(fields: Partial<WatchedTx> = {}): WatchedTx {
  return {
    actionId: 'xfer-1',
    stepId: 'lock',
    for: 'operation',
    network: 'chainA',
    ref: REF,
    policy: { confirmations: 3 },
    current: true,
    facts: emptyTrack(),
    needsReceipt: true,
    needsVerify: true,
    missingChecks: 0,
    ...fields,
  };
}

function setUp(tx: WatchedTx = watched(), chain = new FakeChain(5)) {
  const actions = new FakeActions([tx]);
  const sender = new RecordingSender();
  const follower = new NetworkFollower({
    network: {
      name: 'chainA',
      chainId: 31337,
      rpcUrls: ['http://127.0.0.1:1'],
      blockTimeMs: 1000,
      finality: { confirmations: 3 },
      headPollMs: 0,
    },
    chain,
    directory: actions,
    sender,
    logger: jsonLogger('error', () => undefined),
    metrics: new WatcherMetrics(),
    reorgDepth: 16,
    dropAfterMs: 0,
  });
  return { chain, actions, sender, follower };
}

it('signals included and then the confirmation that meets the policy, once each over many heads', async () => {
  const { chain, sender, follower } = setUp();
  chain.pending.add(REF);
  await follower.tick();
  chain.mine('a', [REF]);
  for (let i = 0; i < 8; i++) {
    await follower.tick();
    chain.mine();
  }

  expect(sender.sent).toEqual(['lock:included@5', 'lock:confirmed@5']);
});

it('signals the orphaned block, then the dropped transaction, then its inclusion once it is sent again', async () => {
  const { chain, sender, follower } = setUp();
  chain.mine('a', [REF]);
  await follower.tick();

  chain.revert(4);
  chain.mine('b');
  await follower.tick();
  await follower.tick();
  await follower.tick();
  chain.pending.add(REF); // the worker rebroadcasts the same signed transaction
  await follower.tick();
  chain.mine('b', [REF]);
  chain.mine('b');
  chain.mine('b');
  await follower.tick();

  expect(sender.sent).toEqual([
    'lock:included@5',
    'lock:reorged@5',
    'lock:dropped',
    'lock:included@6',
    'lock:confirmed@6',
  ]);
});

it('finds a transaction mined before it started and reports its inclusion and confirmations on the first head', async () => {
  const chain = new FakeChain(3);
  chain.mine('a', [REF]);
  for (let i = 0; i < 5; i++) chain.mine();
  const { sender, follower } = setUp(watched(), chain);

  await follower.tick();

  expect(sender.sent).toEqual(['lock:included@3', 'lock:confirmed@3']);
});

it('checks a final block older than its window against the chain on discovery: orphaned, then the new inclusion', async () => {
  const chain = new FakeChain(3);
  const stale = { number: '3', hash: `0x${'ff'.repeat(32)}` };
  const tx = watched({
    facts: { ...emptyTrack(), sightings: { [stale.hash]: { ...stale, confirmations: 3, finalized: true } } },
  });
  chain.mine('a', [REF]);
  for (let i = 0; i < 40; i++) chain.mine();
  const { sender, follower } = setUp(tx, chain);

  await follower.tick();

  expect(sender.sent).toEqual(['lock:reorged@3', 'lock:included@3', 'lock:confirmed@3']);
});

it('sends a report again on the next head when its delivery failed, and stops following an action that is gone', async () => {
  const { chain, sender, actions, follower } = setUp();
  chain.mine('a', [REF]);
  sender.next = ['failed'];
  await follower.tick();
  expect(sender.sent).toEqual([]);

  await follower.tick();
  expect(sender.sent).toEqual(['lock:included@5']);

  chain.mine();
  chain.mine();
  sender.next = ['gone'];
  await follower.tick();
  expect(actions.forgotten).toEqual(['xfer-1']);
});
