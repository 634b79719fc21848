import { z } from 'zod';
import { OperatorEvidenceSchema } from './evidence';
import { StepIdSchema } from './primitives';

const ReasonSchema = z.string().trim().min(1, 'must say why (it goes into the audit trail)').max(2000);
const OperatorSchema = z.string().trim().min(1).max(200).optional();

export const RetryStepInputSchema = z.strictObject({
  step: StepIdSchema,
  reason: ReasonSchema,
  operator: OperatorSchema,
});
export type RetryStepInput = z.input<typeof RetryStepInputSchema>;

export const CompensateInputSchema = z.strictObject({ reason: ReasonSchema, operator: OperatorSchema });
export type CompensateInput = z.input<typeof CompensateInputSchema>;

export const CancelInputSchema = z.strictObject({ reason: ReasonSchema, operator: OperatorSchema });
export type CancelInput = z.input<typeof CancelInputSchema>;

export const ResolveStepInputSchema = z.strictObject({
  step: StepIdSchema,
  evidence: OperatorEvidenceSchema,
  reason: ReasonSchema,
  operator: z.string().trim().min(1, 'must name the operator (it goes into the audit trail)').max(200),
});
export type ResolveStepInput = z.input<typeof ResolveStepInputSchema>;
