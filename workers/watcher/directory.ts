/**
 * Which running actions have transactions on the watched networks, and which: listed from Temporal visibility
 * (`SettleNetworks`, `SettleRefs`) and read from each action's `status` query. Rebuilt from Temporal alone, so a
 * restarted watcher follows exactly what is still running.
 *
 * A status query is a billable action; a list call is not. So the status is read only when visibility shows a ref the
 * last reading did not name (a new transaction to attribute to its step): an action with no transaction yet, or
 * whose refs did not change, is never queried. An event naming a transaction its action's status did not show yet is
 * first looked up in visibility (one list call for every such action at once), and the status is read once the ref is
 * listed there, not polled until the workflow has recorded it.
 */
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { statusQuery, WORKFLOW_TYPE } from '../../contract/messages';
import type { ActionStatus } from '../../contract/status';
import { SettleRefs } from '../../contract/search-attributes';
import type { ActionEvent } from '../../networks/evm/chain-reader';
import { actionIdHash } from '../../networks/evm/templates';
import { errorText, type Logger } from './log';
import type { WatcherMetrics } from './metrics';
import { refreshTx, statusRefs, txKey, WATCHED_PHASES, watchedTxs, type WatchedTx } from './watched';

interface WatchedAction {
  actionId: string;
  /** keccak256(actionId): how Settle's contracts name the action in their events. */
  idHash: string;
  /** SettleRefs as last listed (lower case). */
  listedRefs: Set<string>;
  /** Every ref the last status reading named (lower case): a listed ref not in it is news. */
  readRefs: Set<string>;
  /** Whether the status must be read (a listed ref it did not name, a failed query). */
  stale: boolean;
  lastQueryAt: number;
  /** When visibility was last asked about this action's unattributed transactions. */
  lastLookupAt: number;
  /** The status query in flight, if any: a second reason to read the status waits for it. */
  reading?: Promise<void>;
  txs: Map<string, WatchedTx>;
  /** Transactions seen in events of this action that its status did not name yet, with when they were seen. */
  unattributed: Map<string, number>;
}

/** Where the listed refs name something the last reading of the status did not. */
function hasNewRefs(action: Pick<WatchedAction, 'listedRefs' | 'readRefs'>): boolean {
  for (const ref of action.listedRefs) if (!action.readRefs.has(ref)) return true;
  return false;
}

function refSet(refs: readonly string[] | undefined): Set<string> {
  return new Set((refs ?? []).map((r) => r.toLowerCase()));
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
/** An event's transaction not in visibility yet (the submission is still being recorded): ask again this often. */
const UNATTRIBUTED_RETRY_MS = 250;
/** Workflow ids per visibility lookup of unattributed transactions. */
const LOOKUP_BATCH = 50;

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
      this.listed(info.workflowId, info.typedSearchAttributes.get(SettleRefs));
    }
    for (const actionId of [...this.actions.keys()]) if (!seen.has(actionId)) this.forget(actionId);
    await this.readStale();
    this.publishSizes();
  }

  /** What visibility says of one running action: its refs; a ref the last reading did not name makes it stale. */
  private listed(actionId: string, refs: readonly string[] | undefined): void {
    const action = this.actions.get(actionId) ?? this.track(actionId);
    action.listedRefs = refSet(refs);
    if (hasNewRefs(action)) action.stale = true;
  }

  private track(actionId: string): WatchedAction {
    const idHash = actionIdHash(actionId).toLowerCase();
    const action: WatchedAction = {
      actionId,
      idHash,
      listedRefs: new Set(),
      readRefs: new Set(),
      stale: false,
      lastQueryAt: 0,
      lastLookupAt: 0,
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
   * status again as soon as visibility lists it (the fast path from a block to a workflow); an action not known yet
   * makes the listing run now.
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
      const txHash = event.txHash.toLowerCase();
      if (!action.readRefs.has(txHash) && !action.unattributed.has(txHash)) {
        action.unattributed.set(txHash, now);
        // Asked about at once, not after the retry delay.
        action.lastLookupAt = 0;
      }
    }
    if (unknownAction && now - this.lastListAt >= MIN_REQUERY_MS) await this.refresh().catch(() => undefined);
    await this.lookUpUnattributed();
    await this.readStale();
  }

  /** Looks again in visibility for the transactions events named that their action's status did not show yet. */
  async retryUnattributed(): Promise<void> {
    const now = Date.now();
    const forMs = this.options.attributeForMs ?? 30_000;
    for (const action of this.actions.values()) {
      for (const [txHash, seenAt] of action.unattributed) if (now - seenAt > forMs) action.unattributed.delete(txHash);
    }
    await this.lookUpUnattributed();
    await this.readStale();
  }

  /**
   * The actions with unattributed transactions, due for a lookup: their refs as visibility lists them now (one list
   * call per {@link LOOKUP_BATCH} actions, not billable). A transaction already listed needs no lookup: it makes the
   * action stale at once. One that is not listed yet waits for the next lookup.
   */
  private async lookUpUnattributed(): Promise<void> {
    const now = Date.now();
    const due: WatchedAction[] = [];
    for (const action of this.actions.values()) {
      for (const txHash of action.unattributed.keys()) {
        if (action.readRefs.has(txHash)) action.unattributed.delete(txHash);
      }
      if (action.unattributed.size === 0) continue;
      if ([...action.unattributed.keys()].some((txHash) => action.listedRefs.has(txHash))) action.stale = true;
      else if (now - action.lastLookupAt >= UNATTRIBUTED_RETRY_MS) due.push(action);
    }
    for (let i = 0; i < due.length; i += LOOKUP_BATCH) {
      const batch = due.slice(i, i + LOOKUP_BATCH);
      for (const action of batch) action.lastLookupAt = now;
      const ids = batch.map((a) => `'${a.actionId.replace(/'/g, "\\'")}'`).join(', ');
      try {
        for await (const info of this.options.client.workflow.list({ query: `WorkflowId IN (${ids})` })) {
          if (this.actions.has(info.workflowId))
            this.listed(info.workflowId, info.typedSearchAttributes.get(SettleRefs));
        }
      } catch (error) {
        this.options.logger.warn('visibility lookup failed; will retry', { error: errorText(error) });
      }
    }
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
    // Refs listed before the query was sent were recorded before it: a reading that does not name one (a ref the
    // status does not show) must not make the action stale again.
    const listedBefore = [...action.listedRefs];
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
    action.readRefs = statusRefs(status);
    for (const ref of listedBefore) action.readRefs.add(ref);
    for (const txHash of action.unattributed.keys())
      if (action.readRefs.has(txHash)) action.unattributed.delete(txHash);
    for (const latest of watchedTxs(status, this.networks)) {
      const key = txKey(latest);
      const known = action.txs.get(key);
      if (known) refreshTx(known, latest);
      else action.txs.set(key, latest);
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
