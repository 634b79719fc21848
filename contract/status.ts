import { z } from 'zod';
import { FinalityPolicySchema } from './action-spec';
import { BlockRefSchema, StepOutputSchema } from './primitives';

export const PhaseSchema = z.enum([
  'running',
  'completed',
  'compensating',
  'compensated',
  'failed',
  'needs_action',
  'cancelled',
]);
export type Phase = z.infer<typeof PhaseSchema>;

/** Phases after which nothing changes any more: the run closes. (`needs_action` is not one: an operator acts.) */
export const TERMINAL_PHASES: readonly Phase[] = ['completed', 'compensated', 'failed', 'cancelled'];

export function isTerminalPhase(phase: string): boolean {
  return (TERMINAL_PHASES as readonly string[]).includes(phase);
}

export const StepStateNameSchema = z.enum([
  'waiting',
  'submitting',
  'submitted',
  'included',
  'final',
  'failed',
  'expired',
  'compensating',
  'compensated',
  /** Its compensation failed (reverted): an operator may run it again (`retryStep`) as a new attempt. */
  'compensation_failed',
  'skipped',
]);
export type StepStateName = z.infer<typeof StepStateNameSchema>;

export const TransitionSchema = z.object({
  from: z.string(),
  to: z.string(),
  at: z.string(),
  source: z.string(),
  operator: z.string().optional(),
  reason: z.string().optional(),
  /** Which record moved: the step's operation (default) or its compensation. */
  for: z.enum(['operation', 'compensation']).optional(),
  block: BlockRefSchema.optional(),
  confirmations: z.number().optional(),
  ref: z.string().optional(),
});
export type Transition = z.infer<typeof TransitionSchema>;

/** Progress of one transaction (or awaited report): the operation's, or the compensation's. */
export const TrackStateSchema = z.enum(['pending', 'submitting', 'submitted', 'included', 'final', 'failed']);
export type TrackState = z.infer<typeof TrackStateSchema>;

export const TrackSchema = z.object({
  state: TrackStateSchema,
  ref: z.string().optional(),
  /** Every ref this track has had (replacements, retries): so a late report about any of them is recognised. */
  refs: z.array(z.string()),
  block: BlockRefSchema.optional(),
  confirmations: z.number().optional(),
  /** Hashes of blocks known to be orphaned: evidence naming them is stale. */
  orphaned: z.array(z.string()),
  output: StepOutputSchema.optional(),
  error: z.string().optional(),
});
export type Track = z.infer<typeof TrackSchema>;

export const FinalityViolationSchema = z.object({
  step: z.string(),
  for: z.enum(['operation', 'compensation']),
  finalBlock: BlockRefSchema.optional(),
  evidence: z.string(),
  source: z.string(),
  at: z.string(),
});
export type FinalityViolation = z.infer<typeof FinalityViolationSchema>;

/** A submission retrying after RPC or network errors (a revert is never retried: it fails the step). */
export const RetryingSchema = z.object({
  for: z.enum(['operation', 'compensation']),
  reason: z.string(),
  attempts: z.number(),
  since: z.string(),
});
export type Retrying = z.infer<typeof RetryingSchema>;

export const StepStatusSchema = z.object({
  id: z.string(),
  network: z.string(),
  kind: z.string(),
  state: StepStateNameSchema,
  attempt: z.number(),
  finality: FinalityPolicySchema,
  ref: z.string().optional(),
  /** Every ref of this attempt's operation (replacements included), and earlier attempts' refs. */
  refs: z.array(z.string()).optional(),
  retiredRefs: z.array(z.string()).optional(),
  block: BlockRefSchema.optional(),
  confirmations: z.number().optional(),
  /** Blocks this attempt was seen in that are known to be orphaned. */
  orphaned: z.array(z.string()).optional(),
  output: StepOutputSchema.optional(),
  error: z.string().optional(),
  startedAt: z.string().optional(),
  retrying: RetryingSchema.optional(),
  compensation: TrackSchema.optional(),
  transitions: z.array(TransitionSchema),
});
export type StepStatus = z.infer<typeof StepStatusSchema>;

/**
 * A claim Settle did not apply: `rejected` (from a source the step does not accept, or not proven to come from it),
 * or `disputed` (the chain, read by Settle's own RPC, contradicts it). Kept so an operator sees who said what.
 */
export const ClaimSchema = z.object({
  step: z.string(),
  for: z.enum(['operation', 'compensation']),
  kind: z.string(),
  ref: z.string().optional(),
  block: BlockRefSchema.optional(),
  source: z.string(),
  proven: z.boolean(),
  verdict: z.enum(['rejected', 'disputed']),
  reason: z.string(),
  at: z.string(),
});
export type Claim = z.infer<typeof ClaimSchema>;

export const ActionStatusSchema = z.object({
  actionId: z.string(),
  type: z.string(),
  phase: PhaseSchema,
  progress: z.object({ total: z.number(), locallyConfirmed: z.number(), final: z.number() }),
  steps: z.array(StepStatusSchema),
  alarms: z.array(FinalityViolationSchema),
  /** Claims not applied (the most recent ones): rejected, or disputed by the chain. */
  claims: z.array(ClaimSchema).optional(),
  /** Phase changes, with who caused them: the action's own audit trail. */
  phaseTransitions: z.array(TransitionSchema),
  reason: z.string().optional(),
  startedAt: z.string(),
  updatedAt: z.string(),
});
export type ActionStatus = z.infer<typeof ActionStatusSchema>;
