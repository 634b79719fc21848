import { z } from 'zod';
import {
  BlockHashSchema,
  BlockRefSchema,
  NetworkNameSchema,
  StepIdSchema,
  StepOutputSchema,
  TimestampSchema,
} from './primitives';

export const EvidenceKindSchema = z.enum([
  'submitted',
  'included',
  'confirmed',
  'finalized',
  'reorged',
  'dropped',
  'failed',
]);
export type EvidenceKind = z.infer<typeof EvidenceKindSchema>;

export const EvidenceTargetSchema = z.enum(['operation', 'compensation']);
export type EvidenceTarget = z.infer<typeof EvidenceTargetSchema>;

const evidenceFields = {
  kind: EvidenceKindSchema,
  ref: z.string().min(1).max(256).optional(),
  block: BlockRefSchema.optional(),
  /** For `reorged`: the orphaned block's hash when `block` is not given. */
  orphanedHash: BlockHashSchema.optional(),
  confirmations: z.number().int('must be a whole number').min(0, 'must not be negative').optional(),
  reason: z.string().min(1).max(2000).optional(),
  /** Values later steps may use as `{{steps.<id>.output.<field>}}` (an attestation, a message id). */
  output: StepOutputSchema.optional(),
  source: z.string().min(1, 'must name who observed this (e.g. "watcher:chainA")').max(200),
  observedAt: TimestampSchema.optional(),
  /**
   * Proof that `source` made this claim: an Ed25519 signature (hex) by the source's key over `claimMessage(actionId,
   * evidence)` (contract/claims.ts). The workflow verifies it with the public key the deployment trusts for that
   * source; a name in the payload alone proves nothing.
   */
  signature: z
    .string()
    .regex(/^(0x)?[0-9a-fA-F]{128}$/, 'must be a 64-byte Ed25519 signature in hex')
    .optional(),
};

function requireKindFields(
  evidence: { kind: EvidenceKind; confirmations?: number; reason?: string; block?: unknown; orphanedHash?: string },
  ctx: z.RefinementCtx,
) {
  if (evidence.kind === 'confirmed' && evidence.confirmations === undefined) {
    ctx.addIssue({ code: 'custom', path: ['confirmations'], message: '"confirmed" evidence needs confirmations' });
  }
  if (evidence.kind === 'failed' && !evidence.reason) {
    ctx.addIssue({ code: 'custom', path: ['reason'], message: '"failed" evidence needs a reason' });
  }
  if (evidence.kind === 'reorged' && !evidence.block && !evidence.orphanedHash) {
    ctx.addIssue({
      code: 'custom',
      path: ['block'],
      message: '"reorged" evidence needs the orphaned block (block.hash or orphanedHash)',
    });
  }
}

/**
 * What an observer saw about one step (signal `evidence`). Names the step by `step`, or by `ref` (+ `network`).
 *
 * @example
 * { step: 'lock', kind: 'included', ref: '0xabc…', block: { number: '1042', hash: '0xdef…' }, source: 'watcher:chainA' }
 */
export const EvidenceSchema = z
  .strictObject({
    step: StepIdSchema.optional(),
    network: NetworkNameSchema.optional(),
    for: EvidenceTargetSchema.default('operation'),
    ...evidenceFields,
    /**
     * This delivery's id: evidence whose id was already received is ignored, however often it is sent again (a signed
     * claim is known by its signature instead). The HTTP API sets it from the request's signature.
     */
    id: z
      .string()
      .regex(/^[\x21-\x7e]{1,128}$/, 'must be 1 to 128 printable characters without spaces')
      .optional(),
  })
  .superRefine((evidence, ctx) => {
    if (!evidence.step && !evidence.ref) {
      ctx.addIssue({
        code: 'custom',
        path: ['step'],
        message: "evidence must name its step, or carry the ref of the step's transaction",
      });
    }
    requireKindFields(evidence, ctx);
  });
export type EvidenceInput = z.input<typeof EvidenceSchema>;
export type Evidence = z.output<typeof EvidenceSchema>;

/** Evidence an operator supplies through `resolveStep`: the step is named by the update itself. */
export const OperatorEvidenceSchema = z
  .strictObject({ for: EvidenceTargetSchema.default('operation'), ...evidenceFields })
  .superRefine(requireKindFields);
export type OperatorEvidence = z.output<typeof OperatorEvidenceSchema>;
