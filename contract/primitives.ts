import { z } from 'zod';

// A missing field says so, instead of zod's "expected string, received undefined".
z.config({
  customError: (issue) => (issue.code === 'invalid_type' && issue.input === undefined ? 'is required' : undefined),
});

/** Wei, token amounts and block numbers cross boundaries as decimal strings: bigint does not fit a payload. */
export const DecimalStringSchema = z
  .string()
  .regex(/^(0|[1-9]\d*)$/, 'must be a non-negative integer as a decimal string');

export const HexAddressSchema = z.string().regex(/^0x[0-9a-fA-F]{40}$/, 'must be a 0x-prefixed 20-byte hex address');

export const BlockHashSchema = z.string().regex(/^0x[0-9a-fA-F]{1,64}$/, 'must be a 0x-prefixed hex block hash');

/** Ids end up in workflow ids, template paths and search attributes: keep them plain. */
export const IdentifierSchema = z
  .string()
  .min(1, 'must not be empty')
  .max(128, 'must be at most 128 characters')
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9._:-]*$/,
    'must start with a letter or digit and contain only letters, digits, ".", "_", ":" or "-"',
  );

export const StepIdSchema = z
  .string()
  .min(1, 'must not be empty')
  .max(64, 'must be at most 64 characters')
  .regex(/^[A-Za-z][A-Za-z0-9_-]*$/, 'must start with a letter and contain only letters, digits, "_" or "-"');

export const NetworkNameSchema = z
  .string()
  .min(1, 'must not be empty')
  .max(64, 'must be at most 64 characters')
  .regex(/^[A-Za-z][A-Za-z0-9_-]*$/, 'must start with a letter and contain only letters, digits, "_" or "-"');

export const TimestampSchema = z.iso.datetime({ offset: true, message: 'must be an ISO-8601 timestamp' });

export const BlockRefSchema = z.strictObject({
  number: DecimalStringSchema,
  hash: BlockHashSchema,
});
export type BlockRef = z.infer<typeof BlockRefSchema>;

/** JSON values that step outputs and operation arguments may hold. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
export const JsonValueSchema: z.ZodType<JsonValue> = z.lazy(() =>
  z.union([
    z.string(),
    z.number().refine(Number.isFinite, 'must be a finite number'),
    z.boolean(),
    z.null(),
    z.array(JsonValueSchema),
    z.record(z.string(), JsonValueSchema),
  ]),
);
export const StepOutputSchema = z.record(z.string(), JsonValueSchema);
export type StepOutput = z.infer<typeof StepOutputSchema>;
