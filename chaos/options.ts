/**
 * The options of a chaos run, from the command line (`npm run chaos -- --seed 7 --actions 50`), validated with zod:
 * a profile (`full`, the default, or `reduced`, the one `npm test` runs) and overrides of its numbers.
 */
import { z } from 'zod';
import { FAULT_KINDS, type FaultKind } from './faults';

const Count = z.coerce.number().int().min(0);

const FaultCountsSchema = z.record(z.enum(FAULT_KINDS), Count);

export const ChaosOptionsSchema = z.strictObject({
  profile: z.enum(['full', 'reduced']),
  seed: z.coerce
    .number()
    .int()
    .min(0)
    .max(2 ** 31),
  actions: z.coerce.number().int().min(1).max(5_000),
  /** Seconds over which actions start and faults strike. */
  load: z.coerce.number().min(5),
  /** Seconds the run waits, after the last fault, for every action to settle. */
  drain: z.coerce.number().min(10),
  workers: z.coerce.number().int().min(2).max(8),
  confirmations: z.coerce.number().int().min(2).max(20),
  suggestContinueAsNew: z.coerce.number().int().min(10),
  /** Share of actions started through the HTTP API (the rest through the Temporal client). */
  apiShare: z.coerce.number().min(0).max(1),
  faults: FaultCountsSchema,
  /** The code the processes run, copied once at the start: the committed HEAD or the working tree (default). */
  code: z.enum(['head', 'worktree']),
  /** Where the raw data goes (none when empty). */
  out: z.string(),
});
export type ChaosOptions = z.infer<typeof ChaosOptionsSchema>;

const each = (n: number) => Object.fromEntries(FAULT_KINDS.map((k) => [k, n])) as Record<FaultKind, number>;

export const PROFILES: Record<'full' | 'reduced', Omit<ChaosOptions, 'profile' | 'seed'>> = {
  full: {
    actions: 200,
    load: 900,
    drain: 420,
    workers: 2,
    confirmations: 3,
    suggestContinueAsNew: 40,
    apiShare: 0.25,
    faults: {
      'worker-kill': 10,
      'worker-kill-before-broadcast': 4,
      'worker-kill-after-broadcast': 4,
      'worker-kill-in-fee-bump': 3,
      'server-restart': 2,
      'chain-freeze': 3,
      'watcher-restart': 2,
      'watcher-stop': 1,
      'reorg-shallow': 10,
      'reorg-deep': 1,
      'fee-spike': 2,
      'operator-cancel': 3,
      'operator-retry': 3,
    },
    code: 'worktree',
    out: 'bench/results/chaos.json',
  },
  reduced: {
    actions: 12,
    load: 70,
    drain: 150,
    workers: 2,
    confirmations: 3,
    // Lower than the full run's: with `lean`'s shorter histories, 12 actions at 40 saw none of their runs continue.
    suggestContinueAsNew: 25,
    apiShare: 0.25,
    faults: each(1),
    code: 'worktree',
    out: '',
  },
};

/** `--name value` or `--name=value`; `--fault kind=count` (repeatable) overrides one fault's count. */
export function parseChaosArgs(argv: string[], defaults: Partial<ChaosOptions> = {}): ChaosOptions {
  const raw: Record<string, string> = {};
  const faults: Record<string, string> = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith('--')) throw new Error(`unexpected argument "${arg}" (options are --name value)`);
    const [name, inline] = arg.slice(2).split(/=(.*)/s, 2);
    const value = inline ?? argv[++i];
    if (value === undefined) throw new Error(`--${name} needs a value`);
    if (name === 'fault') {
      const [kind, count] = value.split('=');
      faults[kind] = count;
    } else raw[name] = value;
  }
  const known = Object.keys(ChaosOptionsSchema.shape).filter((k) => k !== 'faults');
  const unknown = Object.keys(raw).filter((k) => !known.includes(k));
  if (unknown.length) {
    throw new Error(
      `chaos options: unknown ${unknown.map((k) => `--${k}`).join(', ')} (known: --${known.join(', --')}, --fault)`,
    );
  }
  const profileName = raw.profile ?? defaults.profile ?? 'full';
  if (profileName !== 'full' && profileName !== 'reduced') {
    throw new Error(`chaos options: --profile must be "full" or "reduced", not "${profileName}"`);
  }
  const profile: 'full' | 'reduced' = profileName;
  const base = { ...PROFILES[profile], ...defaults, profile, seed: defaults.seed ?? Date.now() % 1_000_000 };
  const result = ChaosOptionsSchema.safeParse({ ...base, ...raw, faults: { ...base.faults, ...faults } });
  if (!result.success) {
    const issues = result.error.issues.map((i) => `--${i.path.join('.')}: ${i.message}`).join('; ');
    throw new Error(`chaos options: ${issues}`);
  }
  return result.data;
}
