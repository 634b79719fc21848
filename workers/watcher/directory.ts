/**
 * Which running actions have transactions on the watched networks, and which: listed from Temporal visibility
 * (`SettleNetworks`, `SettleRefs`) and read from each action's `status` query. Rebuilt from Temporal alone, so a
 * restarted watcher follows exactly what is still running.
 */
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { statusQuery, WORKFLOW_TYPE } from '../../contract/messages';
import type { ActionStatus } from '../../contract/status';
import { SettleRefs } from '../../contract/search-attributes';
import type { ActionEvent } from '../../networks/evm/chain-reader';
import { actionIdHash } from '../../networks/evm/templates';
import { errorText, type Logger } from './log';
import type { WatcherMetrics } from './metrics';
import { refreshTx, txKey, WATCHED_PHASES, watchedTxs, type WatchedTx } from './watched';

interface WatchedAction {
  actionId: string;
  /** keccak256(actionId): how Settle's contracts name the action in their events. */
  idHash: string;
  /** SettleRefs as last listed; a change means new transactions to attribute. */
  listedRefs: string;
  /** Whether the status must be read (new action, new refs, an unattributed event, a failed query). */
  stale: boolean;
  lastQueryAt: number;
  /** The status query in flight, if any: a second reason to read the status waits for it. */
  reading?: Promise<void>;
  txs: Map<string, WatchedTx>;
  /** Transactions seen in events of this action that its status did not name yet, with when they were seen. */
  unattributed: Map<string, number>;
}

export interface DirectoryOptions {
  client: Client;
  networks: string[];
  logger: Logger;
  metrics: WatcherMetrics;
  queryTimeoutMs: number;
  /** How long an event's transaction is looked for in its action's status before the listing is left to find it. */
  attributeForMs?: number;
}

const QUERY_CONCURRENCY = 8;
const MIN_REQUERY_MS = 100;
/** An event's transaction not in its action's status yet (the submission is still being recorded): ask again this often. */
const UNATTRIBUTED_RETRY_MS = 250;

/** What a network follower needs from the directory. */
export interface FollowedActions {
  txsOn(network: string): WatchedTx[];
  hint(events: ActionEvent[]): Promise<void>;
  retryUnattributed(): Promise<void>;
  forget(actionId: string): void;
}

export class ActionDirectory implements FollowedActions {
  private readonly actions = new Map<string, WatchedAction>();
  private readonly byHash = new Map<string, string>();
  private readonly networks: ReadonlySet<string>;
  private lastListAt = 0;
  private listing?: Promise<void>;

  constructor(private readonly options: DirectoryOptions) {
    this.networks = new Set(options.networks);
  }

  /** The transactions followed on one network. */
  txsOn(network: string): WatchedTx[] {
    const txs: WatchedTx[] = [];
    for (const action of this.actions.values()) {
      for (const tx of action.txs.values()) if (tx.network === network) txs.push(tx);
    }
    return txs;
  }

  get size(): number {
    return this.actions.size;
  }

  /** Lists running actions on the watched networks and reads the status of those that are new or changed. */
  refresh(): Promise<void> {
    // One listing at a time: a hint that arrives during a listing waits for it instead of starting another.
    this.listing ??= this.list().finally(() => (this.listing = undefined));
    return this.listing;
  }

  private async list(): Promise<void> {
    this.lastListAt = Date.now();
    const networks = [...this.networks].map((n) => `'${n}'`).join(', ');
    const query = `WorkflowType = '${WORKFLOW_TYPE}' AND ExecutionStatus = 'Running' AND SettleNetworks IN (${networks})`;
    const seen = new Set<string>();
    for await (const info of this.options.client.workflow.list({ query, pageSize: 1000 })) {
      seen.add(info.workflowId);
      const refs = (info.typedSearchAttributes.get(SettleRefs) ?? []).join(',');
      const known = this.actions.get(info.workflowId);
      if (!known) this.track(info.workflowId, refs);
      else if (known.listedRefs !== refs) {
        known.listedRefs = refs;
        known.stale = true;
      }
    }
    for (const actionId of [...this.actions.keys()]) if (!seen.has(actionId)) this.forget(actionId);
    await this.readStale();
    this.publishSizes();
  }

  private track(actionId: string, listedRefs: string): WatchedAction {
    const idHash = actionIdHash(actionId).toLowerCase();
    const action: WatchedAction = {
      actionId,
      idHash,
      listedRefs,
      stale: true,
      lastQueryAt: 0,
      txs: new Map(),
      unattributed: new Map(),
    };
    this.actions.set(actionId, action);
    this.byHash.set(idHash, actionId);
    return action;
  }

  /** The action is no longer running (or no longer exists): stop following it. */
  forget(actionId: string): void {
    const action = this.actions.get(actionId);
    if (!action) return;
    this.actions.delete(actionId);
    this.byHash.delete(action.idHash);
    this.publishSizes();
  }

  /**
   * Events naming an action in new blocks: if one names a transaction its action's status did not show, read the
   * status again now (the fast path from a block to a workflow); an action not known yet makes the listing run now.
   */
  async hint(events: ActionEvent[]): Promise<void> {
    let unknownAction = false;
    const now = Date.now();
    for (const event of events) {
      const actionId = this.byHash.get(event.actionIdHash.toLowerCase());
      const action = actionId ? this.actions.get(actionId) : undefined;
      if (!action) {
        unknownAction = true;
        continue;
      }
      const attributed = [...action.txs.values()].some((tx) => tx.ref.toLowerCase() === event.txHash.toLowerCase());
      if (!attributed) {
        action.unattributed.set(event.txHash.toLowerCase(), now);
        action.stale = true;
      }
    }
    if (unknownAction && now - this.lastListAt >= MIN_REQUERY_MS) await this.refresh().catch(() => undefined);
    await this.readStale();
  }

  /** Reads again the actions whose events named transactions their status did not show yet. */
  async retryUnattributed(): Promise<void> {
    const now = Date.now();
    const forMs = this.options.attributeForMs ?? 30_000;
    for (const action of this.actions.values()) {
      for (const [txHash, seenAt] of action.unattributed) if (now - seenAt > forMs) action.unattributed.delete(txHash);
      if (action.unattributed.size > 0 && now - action.lastQueryAt >= UNATTRIBUTED_RETRY_MS) action.stale = true;
    }
    await this.readStale();
  }

  private async readStale(): Promise<void> {
    const now = Date.now();
    const due = [...this.actions.values()].filter(
      (a) => a.reading || (a.stale && now - a.lastQueryAt >= MIN_REQUERY_MS),
    );
    for (let i = 0; i < due.length; i += QUERY_CONCURRENCY) {
      await Promise.all(
        due.slice(i, i + QUERY_CONCURRENCY).map((action) => {
          action.reading ??= this.read(action).finally(() => (action.reading = undefined));
          return action.reading;
        }),
      );
    }
  }

  private async read(action: WatchedAction): Promise<void> {
    action.lastQueryAt = Date.now();
    let status: ActionStatus;
    try {
      const handle = this.options.client.workflow.getHandle(action.actionId);
      status = await this.options.client.withDeadline(Date.now() + this.options.queryTimeoutMs, () =>
        handle.query(statusQuery),
      );
    } catch (error) {
      if (error instanceof WorkflowNotFoundError) this.forget(action.actionId);
      else
        this.options.logger.warn('status query failed; will retry', {
          action: action.actionId,
          error: errorText(error),
        });
      return;
    }
    if (!WATCHED_PHASES.includes(status.phase)) {
      this.forget(action.actionId);
      return;
    }
    action.stale = false;
    for (const latest of watchedTxs(status, this.networks)) {
      const key = txKey(latest);
      const known = action.txs.get(key);
      if (known) refreshTx(known, latest);
      else action.txs.set(key, latest);
      action.unattributed.delete(latest.ref.toLowerCase());
    }
    this.publishSizes();
  }

  private publishSizes(): void {
    this.options.metrics.set('settle_watcher_watched_actions', {}, this.actions.size);
    for (const network of this.networks) {
      this.options.metrics.set('settle_watcher_watched_transactions', { network }, this.txsOn(network).length);
    }
  }
}
