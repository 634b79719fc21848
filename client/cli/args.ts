/**
 * The `settle` command line, parsed without side effects: argv in, a typed command out (or a UsageError). Reading
 * files and validating what they hold happens in inputs.ts, before any connection is made.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { SettleError } from '../../contract/errors';

/** The command line itself is wrong: an unknown command or option, a missing argument (exit code 2). */
export class UsageError extends SettleError {
  override name = 'UsageError';
}

type Flags = Record<string, string | boolean | undefined>;

export interface Global {
  json: boolean;
  address?: string;
  namespace?: string;
}

export type Command = Global &
  (
    | { name: 'help'; topic?: string }
    | { name: 'start'; spec: string }
    | { name: 'status'; actionId: string; watch: boolean; intervalMs: number }
    | { name: 'list'; phase?: string; network?: string; type?: string; limit?: string }
    | { name: 'find'; ref: string }
    | { name: 'evidence'; actionId: string; file?: string; flags: Flags }
    | { name: 'retry'; actionId: string; step?: string; reason?: string; operator?: string }
    | { name: 'compensate' | 'cancel'; actionId: string; reason?: string; operator?: string }
    | {
        name: 'resolve';
        actionId: string;
        file?: string;
        step?: string;
        reason?: string;
        operator?: string;
        flags: Flags;
      }
  );

type Options = NonNullable<ParseArgsConfig['options']>;

const GLOBAL: Options = {
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  address: { type: 'string' },
  namespace: { type: 'string' },
};

/** Fields of one piece of evidence, as flags (`--block-number 1042 --block-hash 0x…`). */
export const EVIDENCE_FLAGS: Options = {
  step: { type: 'string' },
  network: { type: 'string' },
  for: { type: 'string' },
  kind: { type: 'string' },
  ref: { type: 'string' },
  'block-number': { type: 'string' },
  'block-hash': { type: 'string' },
  'orphaned-hash': { type: 'string' },
  confirmations: { type: 'string' },
  reason: { type: 'string' },
  source: { type: 'string' },
  'observed-at': { type: 'string' },
  output: { type: 'string' },
};

const OPERATOR: Options = { reason: { type: 'string' }, operator: { type: 'string' } };

const COMMANDS: Record<string, { options: Options; positionals: string[] }> = {
  start: { options: { spec: { type: 'string' } }, positionals: [] },
  status: { options: { watch: { type: 'boolean', short: 'w' }, interval: { type: 'string' } }, positionals: ['id'] },
  list: {
    options: {
      phase: { type: 'string' },
      network: { type: 'string' },
      type: { type: 'string' },
      limit: { type: 'string' },
    },
    positionals: [],
  },
  find: { options: {}, positionals: ['ref'] },
  evidence: { options: { ...EVIDENCE_FLAGS, file: { type: 'string' } }, positionals: ['id'] },
  retry: { options: { ...OPERATOR, step: { type: 'string' } }, positionals: ['id'] },
  compensate: { options: OPERATOR, positionals: ['id'] },
  cancel: { options: OPERATOR, positionals: ['id'] },
  resolve: {
    options: { ...EVIDENCE_FLAGS, ...OPERATOR, 'evidence-reason': { type: 'string' }, file: { type: 'string' } },
    positionals: ['id'],
  },
};

export const COMMAND_NAMES = Object.keys(COMMANDS);

/**
 * Parses `settle <command> [args]`.
 *
 * @example parseCommand(['status', 'xfer-7f3a', '--watch']) // { name: 'status', actionId: 'xfer-7f3a', watch: true, … }
 */
export function parseCommand(argv: string[]): Command {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    return { name: 'help', json: false, ...(rest[0] ? { topic: rest[0] } : {}) };
  }
  const shape = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!shape) throw new UsageError(`unknown command "${name}"; commands: ${COMMAND_NAMES.join(', ')}`);
  let parsed: { values: Flags; positionals: string[] };
  try {
    parsed = parseArgs({
      args: rest,
      options: { ...GLOBAL, ...shape.options },
      allowPositionals: true,
      strict: true,
    }) as { values: Flags; positionals: string[] };
  } catch (error) {
    throw new UsageError(`${name}: ${(error as Error).message.split('\n')[0]}`);
  }
  const { values, positionals } = parsed;
  const global: Global = {
    json: values.json === true,
    ...(typeof values.address === 'string' ? { address: values.address } : {}),
    ...(typeof values.namespace === 'string' ? { namespace: values.namespace } : {}),
  };
  if (values.help) return { name: 'help', topic: name, ...global };
  if (positionals.length !== shape.positionals.length) {
    const expected = shape.positionals.map((p) => `<${p}>`).join(' ') || 'no arguments';
    throw new UsageError(`${name}: expected ${expected}, got ${positionals.length ? positionals.join(' ') : 'none'}`);
  }
  const [first] = positionals;
  const text = (key: string) => (typeof values[key] === 'string' ? (values[key] as string) : undefined);
  const defined = <T extends object>(object: T): T =>
    Object.fromEntries(Object.entries(object).filter(([, v]) => v !== undefined)) as T;

  switch (name) {
    case 'start': {
      const spec = text('spec');
      if (!spec) throw new UsageError('start: --spec <file|-> is required (- reads the spec from standard input)');
      return { name, spec, ...global };
    }
    case 'status': {
      const interval = text('interval') ?? '500';
      if (!/^\d+$/.test(interval) || Number(interval) < 50) {
        throw new UsageError('status: --interval must be a number of milliseconds, at least 50');
      }
      return { name, actionId: first, watch: values.watch === true, intervalMs: Number(interval), ...global };
    }
    case 'list':
      return defined({
        name,
        phase: text('phase'),
        network: text('network'),
        type: text('type'),
        limit: text('limit'),
        ...global,
      });
    case 'find':
      return { name, ref: first, ...global };
    case 'evidence':
      return defined({ name, actionId: first, file: text('file'), flags: evidenceFlags(values), ...global });
    case 'retry':
      return defined({
        name,
        actionId: first,
        step: text('step'),
        reason: text('reason'),
        operator: text('operator'),
        ...global,
      });
    case 'compensate':
    case 'cancel':
      return defined({ name, actionId: first, reason: text('reason'), operator: text('operator'), ...global });
    case 'resolve': {
      // --reason is the operator's reason for the update; --evidence-reason is a `failed` evidence's reason.
      const flags = evidenceFlags(values);
      delete flags.reason;
      if (text('evidence-reason')) flags.reason = text('evidence-reason');
      return defined({
        name,
        actionId: first,
        file: text('file'),
        step: text('step'),
        reason: text('reason'),
        operator: text('operator'),
        flags,
        ...global,
      });
    }
  }
  throw new UsageError(`unknown command "${name}"`);
}

function evidenceFlags(values: Flags): Flags {
  return Object.fromEntries(Object.keys(EVIDENCE_FLAGS).flatMap((key) => (key in values ? [[key, values[key]]] : [])));
}

export const HELP: Record<string, string> = {
  '': `settle: start, follow, find and act on Settle actions.

Usage: settle <command> [options] [--json]

Commands:
  start --spec <file|->             validate a spec and start its action (idempotent by actionId)
  status <id> [--watch]             the action's phase, progress and steps; --watch follows it live
  list [--phase] [--network] [--type] [--limit]
                                    actions through visibility, newest first
  find <ref>                        the action(s) that had this transaction hash or reference
  evidence <id> --step --kind ...   deliver evidence about a step (or --file <file|->)
  retry <id> --step --reason        a failed or expired step gets a new attempt
  compensate <id> --reason          compensate now whatever effects exist
  cancel <id> --reason              stop; compensate what already took effect
  resolve <id> --step --kind --reason --operator
                                    operator-supplied evidence for a step (or --file <file|->)

Every command takes --json (machine-readable output), --address and --namespace (else TEMPORAL_ADDRESS,
TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_TLS_*… and SETTLE_TASK_QUEUE from the environment).
--operator defaults to SETTLE_OPERATOR, then USER.

Exit codes: 0 done · 1 unexpected error · 2 usage · 3 invalid input (nothing started or sent) · 4 not found ·
5 rejected by the workflow or action closed · 6 Temporal unreachable or bad configuration ·
7 status --watch: the action ended without completing.
`,
  evidence: `settle evidence <id> [--file <file|->] [--step s] [--kind k] [--ref r] [--network n] [--for operation|compensation]
  [--block-number n --block-hash 0x…] [--orphaned-hash 0x…] [--confirmations n] [--reason r] [--source s]
  [--observed-at iso] [--output '{"json":"object"}']
Flags override fields of --file. --source defaults to "settle-cli".
kind: submitted, included, confirmed (with --confirmations), finalized, reorged, dropped, failed (with --reason).`,
  resolve: `settle resolve <id> --step s --kind k --reason why [--operator name] [evidence flags as for "evidence"]
  [--evidence-reason r] [--file <file|->]
--file holds a whole resolveStep input ({ step, evidence, reason, operator }); flags override it.`,
  status: `settle status <id> [--watch] [--interval ms]
--watch redraws as states change (plain lines when output is not a terminal; one JSON status per line with --json)
and exits when the action ends: 0 if it completed, 7 otherwise.`,
};
