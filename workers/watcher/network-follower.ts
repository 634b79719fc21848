/**
 * Follows one network: reads its head, finds new and orphaned blocks, notices the transactions of running actions in
 * new blocks (by hash, and through the action id in Settle's contract events), and sends each transaction's due
 * reports. One loop per network; a failed read is retried on the next head.
 */
import type { BlockHeader, ChainSource } from '../../networks/evm/chain-reader';
import { BlockWindow, ChainMovedError, followHead } from './block-window';
import type { WatchedNetwork } from './config';
import type { FollowedActions } from './directory';
import { recordReport, reportsDue, seenAgain, type ChainFacts } from './evidence-rules';
import { errorText, type Logger } from './log';
import type { WatcherMetrics } from './metrics';
import type { EvidenceSender } from './sender';
import type { WatchedTx } from './watched';

export interface FollowerOptions {
  network: WatchedNetwork;
  chain: ChainSource;
  directory: FollowedActions;
  sender: EvidenceSender;
  logger: Logger;
  metrics: WatcherMetrics;
  /** Block hashes kept at least (more when a policy in use needs more). */
  reorgDepth: number;
  /** Missing (neither pending nor mined) this long, over at least two checks: dropped. */
  dropAfterMs: number;
}

const EVALUATE_CONCURRENCY = 16;
/** Orphaned hashes remembered, so a late report about one is recognised. */
const ORPHANED_MEMORY = 10_000;
/** How long a head waits for the status queries its events asked for. */
const STATUS_WAIT_MS = 1_000;

/** Waits for `work` at most `ms`; it goes on in the background (its failures are its own to log). */
async function withinMs(work: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    work.catch(() => undefined),
    new Promise<void>((resolve) => (timer = setTimeout(resolve, ms))),
  ]).finally(() => clearTimeout(timer));
}

export class NetworkFollower {
  readonly window: BlockWindow;
  private readonly orphaned = new Set<string>();
  private head?: BlockHeader;
  private stopped = false;
  private loop?: Promise<void>;
  private lastError?: { text: string; at: number };

  constructor(private readonly options: FollowerOptions) {
    this.window = new BlockWindow(options.reorgDepth);
  }

  get name(): string {
    return this.options.network.name;
  }

  start(): void {
    this.loop ??= this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
  }

  private async run(): Promise<void> {
    let failures = 0;
    while (!this.stopped) {
      try {
        await this.tick();
        failures = 0;
      } catch (error) {
        failures += 1;
        this.reportError(error);
      }
      const pause = Math.min(this.options.network.headPollMs * 2 ** Math.min(failures, 5), 5_000);
      await new Promise((resolve) => setTimeout(resolve, failures > 0 ? pause : this.options.network.headPollMs));
    }
  }

  /** One step: the head, its new and orphaned blocks, the events in them, then every transaction's reports. */
  async tick(): Promise<void> {
    const { chain, directory, metrics, logger, network } = this.options;
    const latest = await chain.latest();
    if (this.head?.hash === latest.hash) {
      await withinMs(directory.retryUnattributed(), STATUS_WAIT_MS);
      await this.evaluateAll();
      return;
    }
    this.window.size = this.windowSize();
    let change;
    try {
      change = await followHead(this.window, latest, (n) => chain.blockAt(n), this.window.size + 64);
    } catch (error) {
      if (error instanceof ChainMovedError) return;
      throw error;
    }
    this.head = latest;
    metrics.set('settle_watcher_head_block', { network: network.name }, Number(latest.number));

    if (change.orphaned.length > 0) {
      metrics.count('settle_watcher_reorgs_total', { network: network.name });
      metrics.count('settle_watcher_orphaned_blocks_total', { network: network.name }, change.orphaned.length);
      logger.warn('reorg', {
        network: network.name,
        depth: change.orphaned.length,
        orphaned: change.orphaned,
        head: { number: latest.number.toString(), hash: latest.hash },
        beyondWindow: change.beyondWindow,
      });
      for (const block of change.orphaned) this.remember(block.hash);
    }
    const txs = directory.txsOn(network.name);
    for (const tx of txs) {
      if (tx.inclusion && this.orphaned.has(tx.inclusion.block.hash)) {
        tx.inclusion = undefined;
        tx.needsReceipt = true;
      }
      if (change.beyondWindow && change.orphaned.length > 0) {
        tx.needsReceipt = true;
        tx.needsVerify = true;
      }
    }
    const byRef = new Map(txs.map((tx) => [tx.ref.toLowerCase(), tx]));
    for (const block of change.added) {
      for (const hash of block.transactions) {
        const tx = byRef.get(hash.toLowerCase());
        if (tx) tx.needsReceipt = true;
      }
    }
    const events = (await Promise.all(change.added.map((block) => chain.actionEvents(block.hash)))).flat();
    // Status queries wait for a worker: when none answers, the heads go on and the answer is used when it comes.
    await withinMs(events.length > 0 ? directory.hint(events) : directory.retryUnattributed(), STATUS_WAIT_MS);
    await this.evaluateAll();
    metrics.set(
      'settle_watcher_head_lag_seconds',
      { network: network.name },
      Math.max(0, Date.now() / 1000 - Number(latest.timestamp)),
    );
  }

  /** Keeps enough hashes to see a reorg deeper than any confirmation policy in use (twice the deepest). */
  private windowSize(): number {
    const { network, directory, reorgDepth } = this.options;
    let deepest = 'confirmations' in network.finality ? network.finality.confirmations : 0;
    for (const tx of directory.txsOn(network.name)) {
      if ('confirmations' in tx.policy) deepest = Math.max(deepest, tx.policy.confirmations);
    }
    return Math.max(reorgDepth, 2 * deepest + 8);
  }

  private async evaluateAll(): Promise<void> {
    if (!this.head) return;
    const txs = this.options.directory.txsOn(this.options.network.name);
    const tags = new Map<string, Promise<bigint | undefined>>();
    const tagged = (tag: 'finalized' | 'safe') => {
      if (!tags.has(tag)) tags.set(tag, this.options.chain.tagged(tag));
      return tags.get(tag)!;
    };
    for (let i = 0; i < txs.length; i += EVALUATE_CONCURRENCY) {
      await Promise.all(txs.slice(i, i + EVALUATE_CONCURRENCY).map((tx) => this.evaluate(tx, tagged)));
    }
  }

  private async evaluate(tx: WatchedTx, tagged: (tag: 'finalized' | 'safe') => Promise<bigint | undefined>) {
    const { chain } = this.options;
    const head = this.head!;
    if (tx.needsVerify) await this.verifyReported(tx);
    if (tx.needsReceipt) {
      const inclusion = await chain.inclusion(tx.ref);
      // Mined in a block not processed yet (or not canonical in the window): wait for the next head.
      if (
        !inclusion ||
        (BigInt(inclusion.block.number) <= head.number && this.window.isCanonical(inclusion.block) !== false)
      ) {
        tx.inclusion = inclusion;
        tx.needsReceipt = false;
      }
    }
    const missing = await this.checkPresence(tx);
    const facts: ChainFacts = {
      ...(tx.inclusion ? { inclusion: tx.inclusion } : {}),
      head: head.number,
      ...('tag' in tx.policy && tx.inclusion && !tx.facts.sightings[tx.inclusion.block.hash]?.finalized
        ? { tagged: await tagged(tx.policy.tag) }
        : {}),
      missing,
      isOrphaned: (block) => this.orphaned.has(block.hash) || this.window.isCanonical(block) === false,
    };
    for (const report of reportsDue(tx.policy, tx.ref, tx.facts, facts)) {
      const delivery = await this.options.sender.send(tx, report);
      if (delivery === 'gone') {
        this.options.directory.forget(tx.actionId);
        return;
      }
      if (delivery === 'failed') return;
      tx.facts = recordReport(tx.facts, report);
      if (report.kind === 'dropped') {
        tx.missingSince = undefined;
        tx.missingChecks = 0;
      }
    }
  }

  /** Whether the current ref has been neither pending nor mined for the drop delay (checked at least twice). */
  private async checkPresence(tx: WatchedTx): Promise<boolean> {
    if (tx.inclusion || tx.needsReceipt || !tx.current) {
      tx.missingSince = undefined;
      tx.missingChecks = 0;
      return false;
    }
    const now = Date.now();
    const every = Math.max(this.options.dropAfterMs / 2, this.options.network.headPollMs);
    if (tx.lastPresenceCheck === undefined || now - tx.lastPresenceCheck >= every) {
      tx.lastPresenceCheck = now;
      if (await this.options.chain.knows(tx.ref)) {
        tx.missingSince = undefined;
        tx.missingChecks = 0;
        // Seen again (rebroadcast): a later drop is news again.
        tx.facts = seenAgain(tx.facts, tx.ref);
      } else {
        tx.missingSince ??= now;
        tx.missingChecks += 1;
      }
    }
    return tx.missingSince !== undefined && tx.missingChecks >= 2 && now - tx.missingSince >= this.options.dropAfterMs;
  }

  /** Blocks the workflow was told about that are older than the window: still canonical? (On discovery, deep reorgs.) */
  private async verifyReported(tx: WatchedTx): Promise<void> {
    for (const [hash, block] of Object.entries(tx.facts.sightings)) {
      const number = BigInt(block.number);
      if (tx.facts.orphaned.includes(hash) || this.window.covers(number) || number > this.head!.number) continue;
      const canonical = await this.options.chain.blockAt(number);
      if (canonical && canonical.hash !== hash) this.remember(hash);
    }
    tx.needsVerify = false;
  }

  private remember(hash: string): void {
    this.orphaned.add(hash);
    if (this.orphaned.size > ORPHANED_MEMORY) this.orphaned.delete(this.orphaned.values().next().value!);
  }

  private reportError(error: unknown): void {
    const text = errorText(error);
    this.options.metrics.count('settle_watcher_rpc_errors_total', { network: this.name });
    const now = Date.now();
    // The same failure every head would flood the log: once per 30 s per distinct message.
    if (this.lastError?.text === text && now - this.lastError.at < 30_000) return;
    this.lastError = { text, at: now };
    this.options.logger.warn('network read failed; retrying', { network: this.name, error: text });
  }
}
