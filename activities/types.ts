import type { EvmOperation, FinalityPolicy } from '../workflows/schemas/action-spec';
import type { EvidenceInput, EvidenceTarget } from '../workflows/schemas/evidence';
import type { BlockRef, StepOutput } from '../workflows/schemas/primitives';
import type { TemplateContext } from '../workflows/templates';

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
}

export interface SubmitStepResult {
  /** The transaction hash (or the adapter's reference) of this attempt. */
  ref: string;
  output?: StepOutput;
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
