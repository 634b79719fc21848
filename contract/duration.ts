import { z } from 'zod';

const UNIT_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const DURATION_PATTERN = /^(\d+)(ms|s|m|h|d)$/;

/** Thirty years: longer than any Temporal timer anyone means to set, short enough to stay exact. */
const MAX_DURATION_MS = 30 * 365 * UNIT_MS.d;

/**
 * A duration as written in an ActionSpec: `"30s"`, `"10m"`, `"2h"`, `"7d"`, `"250ms"` or a whole number of
 * milliseconds. Parses to milliseconds.
 *
 * @example DurationSchema.parse('10m') // 600000
 */
export const DurationSchema = z
  .union([z.string(), z.number()], {
    error: 'must be a duration such as "30s", "10m", "2h", "7d" or a number of milliseconds',
  })
  .transform((value, ctx) => {
    const ms = toMilliseconds(value);
    if (ms === undefined) {
      ctx.addIssue({
        code: 'custom',
        message: `must be a positive duration such as "30s", "10m", "2h", "7d" or a number of milliseconds (got ${JSON.stringify(value)})`,
      });
      return z.NEVER;
    }
    return ms;
  });

export type DurationInput = z.input<typeof DurationSchema>;

function toMilliseconds(value: string | number): number | undefined {
  if (typeof value === 'number') {
    return Number.isInteger(value) && value > 0 && value <= MAX_DURATION_MS ? value : undefined;
  }
  const match = DURATION_PATTERN.exec(value.trim());
  if (!match) return undefined;
  const ms = Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS];
  return ms > 0 && ms <= MAX_DURATION_MS ? ms : undefined;
}

/** Formats milliseconds back to the shortest exact unit, for summaries. */
export function formatDuration(ms: number): string {
  for (const unit of ['d', 'h', 'm', 's'] as const) {
    if (ms % UNIT_MS[unit] === 0) return `${ms / UNIT_MS[unit]}${unit}`;
  }
  return `${ms}ms`;
}
