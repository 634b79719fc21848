/**
 * The transactions of running actions that a watcher follows, as found in the actions' status: each ref with its
 * step, whether it is the operation's or the compensation's, the step's finality policy and what the workflow
 * already knows about it.
 */
import type { FinalityPolicy } from '../../contract/action-spec';
import type { ActionStatus, Phase, StepStatus } from '../../contract/status';
import type { EvidenceTarget } from '../../contract/evidence';
import { isTxHash, type Inclusion } from '../../networks/evm/chain-reader';
import { emptyTrack, type TrackFacts } from '../../workflows/machine/track';
import { compensationView, mergeKnown, mergeStatusFacts, type StatusView } from './evidence-rules';

export interface WatchedTx {
  actionId: string;
  stepId: string;
  for: EvidenceTarget;
  network: string;
  ref: string;
  policy: FinalityPolicy;
  /** The track's current ref. Only it is checked for a drop: an older one was replaced on purpose. */
  current: boolean;
  /** What the workflow knows (from its status, and from what this watcher sent). */
  facts: TrackFacts;
  /** Chain side, kept by the network's follower. */
  inclusion?: Inclusion;
  needsReceipt: boolean;
  /** Reported blocks older than the kept window must be checked against the chain once. */
  needsVerify: boolean;
  missingSince?: number;
  missingChecks: number;
  lastPresenceCheck?: number;
}

/** Phases in which an action still takes evidence. */
export const WATCHED_PHASES: Phase[] = ['running', 'compensating', 'needs_action'];

/** The refs a status names for one step's track: the current ref, the one it replaced, those in its transitions. */
function operationRefs(step: StepStatus): string[] {
  const refs = [
    step.ref,
    typeof step.output?.replaces === 'string' ? step.output.replaces : undefined,
    ...step.transitions.filter((t) => (t.for ?? 'operation') === 'operation').map((t) => t.ref),
  ];
  return [...new Set(refs.filter((r): r is string => !!r && isTxHash(r)))];
}

/**
 * The transactions to follow in one action's status, on the given networks (`await` steps have none).
 *
 * @example watchedTxs(status, new Set(['chainA'])) // [{ stepId: 'lock', for: 'operation', ref: '0x…', … }]
 */
export function watchedTxs(status: ActionStatus, networks: ReadonlySet<string>): WatchedTx[] {
  const found: WatchedTx[] = [];
  for (const step of status.steps) {
    if (!networks.has(step.network) || step.kind === 'await') continue;
    const base = { actionId: status.actionId, stepId: step.id, network: step.network, policy: step.finality };
    for (const ref of operationRefs(step)) {
      const view = { ...step, final: step.state === 'final' };
      found.push(fresh({ ...base, for: 'operation', ref, current: ref === step.ref }, view));
    }
    const compensation = step.compensation;
    if (compensation) {
      const refs = [...new Set([...compensation.refs, compensation.ref].filter((r): r is string => !!r))];
      for (const ref of refs.filter(isTxHash)) {
        found.push(
          fresh(
            { ...base, for: 'compensation', ref, current: ref === compensation.ref },
            compensationView(compensation),
          ),
        );
      }
    }
  }
  return found;
}

/**
 * Every ref an action's status names, on every network, lower case: the steps' current, earlier and retired refs, the
 * refs in their transitions and their compensations'. Compared with the `SettleRefs` search attribute, which lists
 * the same refs, to tell whether reading the status again would show a new transaction.
 */
export function statusRefs(status: ActionStatus): Set<string> {
  const refs = new Set<string>();
  const add = (ref: unknown) => typeof ref === 'string' && ref && refs.add(ref.toLowerCase());
  for (const step of status.steps) {
    [step.ref, ...(step.refs ?? []), ...(step.retiredRefs ?? []), step.output?.replaces].forEach(add);
    step.transitions.forEach((t) => add(t.ref));
    if (step.compensation) [step.compensation.ref, ...step.compensation.refs].forEach(add);
  }
  return refs;
}

function fresh(
  identity: Pick<WatchedTx, 'actionId' | 'stepId' | 'for' | 'network' | 'ref' | 'policy' | 'current'>,
  view: StatusView,
): WatchedTx {
  return {
    ...identity,
    facts: mergeStatusFacts(emptyTrack(), view, identity.ref),
    needsReceipt: true,
    needsVerify: true,
    missingChecks: 0,
  };
}

/** Folds a newer reading of the status into a tx already followed: facts only grow; chain-side state is kept. */
export function refreshTx(tx: WatchedTx, latest: WatchedTx): void {
  tx.stepId = latest.stepId;
  tx.policy = latest.policy;
  tx.current = latest.current;
  tx.facts = mergeKnown(tx.facts, latest.facts, tx.ref);
}

export function txKey(tx: Pick<WatchedTx, 'actionId' | 'for' | 'ref'>): string {
  return `${tx.actionId}/${tx.for}/${tx.ref.toLowerCase()}`;
}
