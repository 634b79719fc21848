import { ActionNotFoundError, ConnectionError, UpdateRejectedError, ValidationError } from '../../client/errors';
import { parseCommand, UsageError } from '../../client/cli/args';
import { EXIT } from '../../client/cli/exit-codes';
import { exitCodeOf, runCli, type CliBackend, type CliIo } from '../../client/cli/main';
import { renderStatus } from '../../client/cli/render';
import type { ActionStatus } from '../../contract/status';

function statusOf(
  phase: ActionStatus['phase'],
  state: 'waiting' | 'included' | 'final',
  confirmations?: number,
): ActionStatus {
  const transitions =
    state === 'waiting' ? [] : [{ from: 'waiting', to: state, at: '2026-01-01T00:00:01Z', source: 'watcher' }];
  return {
    actionId: 'xfer-1',
    type: 'bridge',
    phase,
    progress: { total: 2, locallyConfirmed: state === 'waiting' ? 0 : 1, final: state === 'final' ? 1 : 0 },
    steps: [
      {
        id: 'lock',
        network: 'chainA',
        kind: 'evm.call',
        state,
        attempt: 1,
        finality: { confirmations: 3 },
        ...(confirmations !== undefined ? { confirmations, ref: '0x1234567890abcdef1234567890abcdef' } : {}),
        transitions,
      },
      {
        id: 'mint',
        network: 'chainB',
        kind: 'await',
        state: 'waiting',
        attempt: 1,
        finality: { tag: 'finalized' },
        transitions: [],
      },
    ],
    alarms: [],
    phaseTransitions:
      phase === 'running' ? [] : [{ from: 'running', to: phase, at: '2026-01-01T00:00:02Z', source: 'settle' }],
    startedAt: '2026-01-01T00:00:00Z',
    updatedAt: `2026-01-01T00:00:0${state === 'waiting' ? 0 : 1}Z`,
  };
}

function io(options: { stdin?: string; tty?: boolean; backend?: Partial<CliBackend> } = {}) {
  const out: string[] = [];
  const err: string[] = [];
  let connects = 0;
  const world: CliIo = {
    stdout: { write: (text: string) => out.push(text), isTTY: options.tty },
    stderr: { write: (text: string) => err.push(text) },
    readStdin: async () => options.stdin ?? '',
    env: { SETTLE_OPERATOR: 'tester' },
    connect: async () => {
      connects++;
      return { close: async () => undefined, ...options.backend } as CliBackend;
    },
  };
  return { world, out, err, connects: () => connects };
}

describe('parseCommand', () => {
  it('parses each command with its flags and --json', () => {
    expect(parseCommand(['status', 'x-1', '--watch', '--interval', '200', '--json'])).toEqual({
      name: 'status',
      actionId: 'x-1',
      watch: true,
      intervalMs: 200,
      json: true,
    });
    expect(parseCommand(['list', '--phase', 'running', '--namespace', 'prod'])).toEqual({
      name: 'list',
      phase: 'running',
      json: false,
      namespace: 'prod',
    });
    expect(
      parseCommand([
        'resolve',
        'x-1',
        '--step',
        's',
        '--kind',
        'failed',
        '--reason',
        'why',
        '--evidence-reason',
        'boom',
      ]),
    ).toMatchObject({
      name: 'resolve',
      step: 's',
      reason: 'why',
      flags: { kind: 'failed', reason: 'boom', step: 's' },
    });
  });

  it('refuses unknown commands and options, and missing arguments', () => {
    expect(() => parseCommand(['launch'])).toThrow(UsageError);
    expect(() => parseCommand(['toString'])).toThrow('unknown command "toString"');
    expect(() => parseCommand(['status'])).toThrow('status: expected <id>, got none');
    expect(() => parseCommand(['find', 'a', 'b'])).toThrow('find: expected <ref>, got a b');
    expect(() => parseCommand(['start'])).toThrow('--spec <file|-> is required');
    expect(() => parseCommand(['cancel', 'x', '--force'])).toThrow("Unknown option '--force'");
    expect(() => parseCommand(['status', 'x', '--interval', 'soon'])).toThrow('--interval must be a number');
  });
});

describe('runCli', () => {
  it('rejects an invalid spec from standard input with exit 3, naming the field and rule, without connecting', async () => {
    const { world, err, connects } = io({
      stdin: JSON.stringify({ actionId: 'x', steps: [{ id: 'a', network: 'n' }] }),
    });
    expect(await runCli(['start', '--spec', '-'], world)).toBe(EXIT.invalid);
    expect(err.join('')).toBe('settle: invalid ActionSpec:\n  steps[0].operation: must be an operation object\n');
    expect(connects()).toBe(0);
  });

  it('reports a missing spec file and non-JSON as invalid input', async () => {
    const missing = io();
    expect(await runCli(['start', '--spec', '/nonexistent/spec.json'], missing.world)).toBe(EXIT.invalid);
    expect(missing.err.join('')).toContain('(file): cannot read /nonexistent/spec.json: ENOENT');
    const garbage = io({ stdin: 'actionId: x' });
    expect(await runCli(['start', '--spec', '-', '--json'], garbage.world)).toBe(EXIT.invalid);
    expect(JSON.parse(garbage.err.join('')).error.issues[0]).toMatchObject({
      path: '(root)',
      message: expect.stringMatching(/^must be JSON/),
    });
  });

  it('builds evidence from flags, with numbers and the block, and validates it before connecting', async () => {
    const delivered: unknown[] = [];
    const { world, connects } = io({ backend: { evidence: async (_id, e) => void delivered.push(e) } });
    const args = [
      'evidence',
      'x-1',
      '--step',
      'lock',
      '--kind',
      'confirmed',
      '--confirmations',
      '2',
      '--block-number',
      '9',
      '--block-hash',
      '0x09',
    ];
    expect(await runCli(args, world)).toBe(EXIT.ok);
    expect(delivered).toEqual([
      { step: 'lock', kind: 'confirmed', confirmations: 2, block: { number: '9', hash: '0x09' }, source: 'settle-cli' },
    ]);
    const bad = io();
    expect(
      await runCli(['evidence', 'x-1', '--step', 'lock', '--kind', 'confirmed', '--confirmations', 'two'], bad.world),
    ).toBe(EXIT.invalid);
    expect(bad.err.join('')).toContain('confirmations: Invalid input: expected number, received string');
    expect(bad.connects()).toBe(0);
    expect(connects()).toBe(1);
  });

  it('redraws the whole view on a terminal while watching, and exits 0 once completed', async () => {
    const statuses = [
      statusOf('running', 'waiting'),
      statusOf('running', 'included', 1),
      statusOf('completed', 'final', 3),
    ];
    let reads = 0;
    const { world, out } = io({ tty: true, backend: { status: async () => statuses[Math.min(reads++, 2)] } });
    expect(await runCli(['status', 'xfer-1', '--watch', '--interval', '50'], world)).toBe(EXIT.ok);
    expect(out).toHaveLength(3);
    expect(out.every((frame) => frame.startsWith('\x1b[H\x1b[2J'))).toBe(true);
    expect(out[1]).toContain('progress: local 1/2 included or final · global 0/2 final');
    expect(out[1]).toMatch(/lock\s+chainA\s+included\s+1\/3\s+0x12345678…abcdef/);
    expect(out[2]).toContain('phase: completed');
  });

  it('exits 7 when a watched action ends without completing', async () => {
    const { world, out } = io({ backend: { status: async () => statusOf('cancelled', 'waiting') } });
    expect(await runCli(['status', 'xfer-1', '--watch'], world)).toBe(EXIT.notCompleted);
    expect(out.join('')).toContain('phase: running → cancelled');
  });

  it('maps errors to the documented exit codes', () => {
    expect(exitCodeOf(new UsageError('x'))).toBe(2);
    expect(exitCodeOf(new ValidationError('spec', [{ path: 'a', message: 'b' }]))).toBe(3);
    expect(exitCodeOf(new ActionNotFoundError('x'))).toBe(4);
    expect(exitCodeOf(new UpdateRejectedError('x', 'retryStep', 'no'))).toBe(5);
    expect(exitCodeOf(new ConnectionError('127.0.0.1:7233', 'refused'))).toBe(6);
    expect(exitCodeOf(new Error('boom'))).toBe(1);
  });

  it('prints help with the exit codes', async () => {
    const { world, out } = io();
    expect(await runCli(['--help'], world)).toBe(EXIT.ok);
    expect(out.join('')).toContain('Exit codes: 0 done');
  });
});

describe('renderStatus', () => {
  it('shows each step, its network, state, confirmations, and local vs global progress', () => {
    expect(renderStatus(statusOf('running', 'included', 2))).toBe(
      [
        'xfer-1  bridge  phase: running',
        'progress: local 1/2 included or final · global 0/2 final',
        '',
        'STEP  NETWORK  STATE     CONFIRMATIONS  REF                SINCE',
        'lock  chainA   included  2/3            0x12345678…abcdef  2026-01-01T00:00:01Z',
        'mint  chainB   waiting   -/finalized',
        '',
        'updated 2026-01-01T00:00:01Z',
      ].join('\n'),
    );
  });
});
