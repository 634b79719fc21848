import type { EvmOperation, FinalityPolicy } from './action-spec';
import type { EvidenceInput, EvidenceTarget } from './evidence';
import type { BlockRef, StepOutput } from './primitives';
import type { TrustedSource } from './claims';
import type { TemplateContext } from './templates';
import type { TransitionEvent } from './transition-events';

/** What the workflow needs to know about a network; read once per run through a local activity. */
export interface NetworkInfo {
  network: string;
  /** Default finality policy for steps that name none. */
  finality: FinalityPolicy;
  /** First wait for evidence before polling, and the cap of its back-off. */
  pollIntervalMs: number;
  maxPollIntervalMs: number;
  /** Whether `checkStep` can observe this network (false for networks that only report by signal). */
  pollable: boolean;
  /** Whether this worker may submit transactions on it. */
  canSubmit: boolean;
  /**
   * False for a network the describing worker has no configuration for (a placeholder requiring `finalized`
   * evidence). With routing by network, the workflow asks a worker that serves the network before it relies on it.
   */
  configured?: boolean;
  /** The network's block time: how long the confirmations a policy still needs will take, at least. */
  blockTimeMs?: number;
  /**
   * Submit again (same attempt) when a transaction is still not included after this long: the adapter replaces it
   * with the same nonce and higher fees. Unset: a pending transaction is only rebroadcast when reported dropped.
   */
  resubmitAfterMs?: number;
}

export interface SubmitStepInput {
  actionId: string;
  stepId: string;
  network: string;
  attempt: number;
  for: EvidenceTarget;
  operation: EvmOperation;
  context: TemplateContext;
  /**
   * The key of this submission's nonce record with the signer's nonce owner. Unique to the action's first run (a new
   * run reusing the actionId never adopts an old run's transaction), and shared by a retry with the attempt whose
   * transaction may still be live (the retry replaces it at the same nonce instead of signing a second one). Absent
   * in histories recorded before it existed: the legacy key `actionId/step/attempt/for` applies.
   */
  nonceKey?: string;
  /**
   * Only settle what is already under way (compensation was decided while this was being submitted): rebroadcast the
   * recorded transaction if there is one; if there is none, sign nothing and close the record for good
   * (`NothingSubmitted`).
   */
  existingOnly?: boolean;
  /**
   * With `existingOnly`: a recorded transaction still pending at an open nonce is cancelled with a same-nonce no-op
   * (its result's `output.cancels` names the version it replaces); one already mined is the result as usual.
   */
  cancelIfPending?: boolean;
  /**
   * The workflow never submitted this track before (it was pending, and its nonce key is its own attempt's): no nonce
   * record can exist for the key yet, so the first attempt of this activity may record without looking the key up
   * first — one update to the signer's nonce owner instead of two. Set by runs with the `lean` patch.
   */
  fresh?: boolean;
  /**
   * After sending, look for the transaction in a block for up to `forMs` (at most 10 s: a submission heartbeats after
   * that, and a heartbeat is a billable action), and report what was seen in `observations`: the workflow then knows
   * the inclusion at once and sets its first poll for when the policy can first be met. Set by runs with `lean`.
   */
  observe?: { finality: FinalityPolicy; forMs: number };
}

export interface SubmitStepResult {
  /** The transaction hash (or the adapter's reference) of this attempt. */
  ref: string;
  output?: StepOutput;
  /** With `observe`: what the chain showed of the transaction before the submission returned (none: not seen yet). */
  observations?: Observation[];
}

export interface CheckStepInput {
  actionId: string;
  stepId: string;
  network: string;
  for: EvidenceTarget;
  attempt: number;
  refs: string[];
  finality: FinalityPolicy;
  /** The block the workflow believes the step is in, so the adapter can tell whether it was orphaned. */
  knownBlock?: BlockRef;
}

/** An observation as evidence, without the step (the workflow knows which step it asked about). */
export type Observation = Omit<EvidenceInput, 'step' | 'network' | 'for'>;

/** One adapter per kind of network: it submits operations and reports what it observes. */
export interface NetworkAdapter {
  submit(input: SubmitStepInput): Promise<SubmitStepResult>;
  check(input: CheckStepInput): Promise<Observation[]>;
}

export interface NotificationInput {
  /** The action's `webhook`; the deployment's default when absent. */
  url?: string;
  actionId: string;
  /** 1, 2, 3… per action, in the order the transitions happened. */
  sequence: number;
  event: TransitionEvent;
}

/** What the receiver gets as the JSON body. */
export interface Notification {
  /** Equals the idempotency key: `<actionId>:<sequence>`. */
  id: string;
  actionId: string;
  sequence: number;
  event: TransitionEvent;
}

export interface DeliveryResult {
  delivered: boolean;
  /** The receiver's HTTP status when delivered. */
  status?: number;
}

/** What the workflow learns about the deployment once per run (a local activity, recorded in history). */
export interface DeploymentInfo {
  networks: Record<string, NetworkInfo>;
  /** Whether transitions of this action are pushed to a webhook. */
  notifications: boolean;
  /**
   * `by-network`: each network's submissions and checks go to its own task queue ({@link networkTaskQueue}), served
   * only by workers that hold the network and may send on it. Absent: every activity on the workflow's task queue.
   */
  routing?: 'by-network';
  /**
   * Claims: with `verifyClaims`, a signal's claim that would move an EVM step forward is applied at once only when it
   * is signed by a source trusted for the step's network (`sources`: name → Ed25519 public key, public facts);
   * otherwise Settle first reads the chain itself. Absent: claims are applied as they come (earlier deployments).
   */
  trust?: { verifyClaims: boolean; sources: Record<string, TrustedSource> };
}

/**
 * The task queue of a network's activities when the deployment routes by network: a worker polls it only for the
 * networks it holds and may send on, so a submission never lands on a worker that cannot make it.
 */
export function networkTaskQueue(taskQueue: string, network: string): string {
  return `${taskQueue}/${network}`;
}

/**
 * The task queue of push notification deliveries (runs with the exactly-once rules): workers that sign notifications
 * poll it, so a slow receiver never takes an activity slot from a submission or a check on the action's queue.
 */
export function notificationTaskQueue(taskQueue: string): string {
  return `${taskQueue}-notify`;
}

/**
 * The activities the workflows call, by name: the workflows proxy this interface, and the worker's
 * `createActivities(deps)` implements it, so workflow code never imports activity code.
 */
export interface SettleActivities {
  /** Network defaults and notification settings for the workflow: read once per run. */
  describeDeployment(input: { networks: string[]; webhook: boolean }): Promise<DeploymentInfo>;
  /** Submits one operation attempt. Idempotent per (action, step, attempt, operation|compensation). */
  submitStep(input: SubmitStepInput): Promise<SubmitStepResult>;
  /** Reads what the network says about a step's transactions now (the pull path). */
  checkStep(input: CheckStepInput): Promise<Observation[]>;
  /** What a worker that serves the network knows of it (asked on the network's task queue). */
  describeNetwork(input: { network: string }): Promise<NetworkInfo>;
  /** POSTs one transition to the action's webhook, signed; throws (so Temporal retries) on a non-2xx answer. */
  deliverNotification(input: NotificationInput): Promise<DeliveryResult>;
}
