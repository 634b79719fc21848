import type { z } from 'zod';
import {
  ActionSpecSchema,
  CancelInputSchema,
  CompensateInputSchema,
  DurationSchema,
  EvidenceSchema,
  formatDuration,
  formatIssues,
  parseOrThrow,
  ResolveStepInputSchema,
  RetryStepInputSchema,
  ValidationError,
  type ActionSpecInput,
} from '../../contract';

const ESCROW = '0x00000000000000000000000000000000000000a1';
const MINTER = '0x00000000000000000000000000000000000000b2';
const TX = '0x8f2a7d3e1c0b9a8f7e6d5c4b3a29180f7e6d5c4b3a29180f7e6d5c4b3a29180f';
const BLOCK_HASH = '0x5e4d3c2b1a09f8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a39281706f';

/** The example of the design brief, with its `…` filled in. */
const DESIGN_EXAMPLE: ActionSpecInput = {
  actionId: 'xfer-7f3a',
  type: 'bridge-transfer',
  deadline: '30m',
  onDeadline: 'compensate',
  steps: [
    {
      id: 'lock',
      network: 'chainA',
      operation: {
        kind: 'evm.call',
        signer: 'bridge',
        to: ESCROW,
        function: 'function lock(bytes32 id, uint256 amount)',
        args: ['{{action.idHash}}', '1000'],
      },
      finality: { confirmations: 3 },
      timeout: '10m',
      compensation: {
        kind: 'evm.call',
        signer: 'bridge',
        to: ESCROW,
        function: 'function unlock(bytes32 id)',
        args: ['{{action.idHash}}'],
      },
    },
    {
      id: 'attest',
      network: 'attester',
      operation: { kind: 'await' },
      after: [{ step: 'lock', stage: 'final' }],
      timeout: '5m',
    },
    {
      id: 'mint',
      network: 'chainB',
      operation: {
        kind: 'evm.call',
        signer: 'bridge',
        to: MINTER,
        function: 'function mint(bytes32 id, uint256 amount, bytes attestation)',
        args: ['{{action.idHash}}', '1000', '{{steps.attest.output.attestation}}'],
      },
      after: [{ step: 'attest', stage: 'final' }],
    },
  ],
};

type Step = ActionSpecInput['steps'][number];
const [LOCK, ATTEST, MINT] = DESIGN_EXAMPLE.steps as [Step, Step, Step];

function withSteps(...steps: unknown[]): unknown {
  return { ...DESIGN_EXAMPLE, steps };
}

/** The issues a schema reports for a value, one `path: message` line each, as callers see them. */
function issuesOf(schema: z.ZodType, value: unknown, root = ''): string[] {
  const result = schema.safeParse(value);
  if (result.success) throw new Error(`expected ${JSON.stringify(value)} to be rejected`);
  return formatIssues(result.error, root).split('\n');
}

describe('ActionSpecSchema', () => {
  it('accepts the example of the design brief, with durations in milliseconds and defaults filled in', () => {
    const spec = ActionSpecSchema.parse(DESIGN_EXAMPLE);
    expect(spec.deadline).toBe(30 * 60_000);
    expect(spec.steps[0].timeout).toBe(10 * 60_000);
    expect(spec.steps[0].after).toEqual([]);
    expect(spec.steps.map((s) => s.id)).toEqual(['lock', 'attest', 'mint']);
  });

  it('fills in the defaults: type, onDeadline, stage final, empty args', () => {
    const spec = ActionSpecSchema.parse({
      actionId: 'a1',
      steps: [
        {
          id: 'pay',
          network: 'chainA',
          operation: { kind: 'evm.transfer', signer: 'treasury', to: ESCROW, value: '5' },
        },
        {
          id: 'ping',
          network: 'chainA',
          operation: { kind: 'evm.call', signer: 's', to: ESCROW, function: 'function ping()' },
          after: [{ step: 'pay' }],
        },
      ],
    });
    expect(spec).toMatchObject({ type: 'action', onDeadline: 'compensate' });
    expect(spec.steps[1].after).toEqual([{ step: 'pay', stage: 'final' }]);
    expect(spec.steps[1].operation).toMatchObject({ args: [] });
  });

  it('requires an actionId and at least one step', () => {
    expect(issuesOf(ActionSpecSchema, { steps: [LOCK] })).toEqual(['actionId: is required']);
    expect(issuesOf(ActionSpecSchema, withSteps())).toEqual(['steps: an action has at least one step']);
  });

  it('rejects duplicate step ids, naming the duplicate and the first one', () => {
    expect(issuesOf(ActionSpecSchema, withSteps(LOCK, ATTEST, { ...MINT, id: 'lock' }))).toEqual([
      'steps[2].id: duplicate step id "lock" (also steps[0])',
    ]);
  });

  it('rejects an after that names an unknown step', () => {
    expect(issuesOf(ActionSpecSchema, withSteps(LOCK, { ...ATTEST, after: [{ step: 'lokc' }] }))).toEqual([
      'steps[1].after[0].step: unknown step "lokc" in after',
    ]);
  });

  it('rejects a step that depends on itself', () => {
    expect(issuesOf(ActionSpecSchema, withSteps({ ...LOCK, after: [{ step: 'lock' }] }))).toEqual([
      'steps[0].after[0].step: step "lock" cannot depend on itself',
    ]);
  });

  it('rejects a cycle, naming the steps in it', () => {
    const cyclic = withSteps({ ...LOCK, after: [{ step: 'mint', stage: 'included' }] }, ATTEST, MINT);
    expect(issuesOf(ActionSpecSchema, cyclic)).toEqual(['steps: steps form a cycle: lock → mint → attest → lock']);
  });

  it('rejects a stage other than included or final', () => {
    expect(
      issuesOf(ActionSpecSchema, withSteps(LOCK, { ...ATTEST, after: [{ step: 'lock', stage: 'done' }] })),
    ).toEqual(['steps[1].after[0].stage: Invalid option: expected one of "included"|"final"']);
  });

  it.each([
    ['10 minutes', 'steps[0].timeout'],
    ['0s', 'steps[0].timeout'],
    [-5, 'steps[0].timeout'],
    [1.5, 'steps[0].timeout'],
    ['1y', 'steps[0].timeout'],
  ])('rejects the duration %j with a message that names the field and the accepted forms', (timeout, path) => {
    expect(issuesOf(ActionSpecSchema, withSteps({ ...LOCK, timeout }), '')).toEqual([
      `${path}: must be a positive duration such as "30s", "10m", "2h", "7d" or a number of milliseconds (got ${JSON.stringify(timeout)})`,
    ]);
  });

  it('rejects a deadline that is not a duration', () => {
    expect(issuesOf(ActionSpecSchema, { ...DESIGN_EXAMPLE, deadline: true })).toEqual([
      'deadline: must be a duration such as "30s", "10m", "2h", "7d" or a number of milliseconds',
    ]);
  });

  it('rejects an unknown operation kind, listing the known ones', () => {
    expect(issuesOf(ActionSpecSchema, withSteps({ ...LOCK, operation: { kind: 'evm.deploy' } }))).toEqual([
      'steps[0].operation.kind: kind must be one of "evm.call", "evm.transfer", "await"',
    ]);
  });

  it('rejects a compensation that is not an operation', () => {
    expect(issuesOf(ActionSpecSchema, withSteps({ ...LOCK, compensation: 'unlock' }))).toEqual([
      'steps[0].compensation: must be an operation object',
    ]);
  });

  it('rejects a compensation with missing or invalid fields, naming each one', () => {
    const compensation = { kind: 'evm.call', signer: '0xdeadbeef', to: 'escrow' };
    expect(issuesOf(ActionSpecSchema, withSteps({ ...LOCK, compensation }))).toEqual([
      'steps[0].compensation.signer: must be a signer name (letters, digits, "_", "-"), never a key',
      'steps[0].compensation.to: must be a 0x-prefixed 20-byte hex address or a {{template}}',
      'steps[0].compensation.function: is required',
    ]);
  });

  it('rejects a compensation of an unknown kind', () => {
    expect(issuesOf(ActionSpecSchema, withSteps({ ...LOCK, compensation: { kind: 'refund' } }))).toEqual([
      'steps[0].compensation.kind: kind must be one of "evm.call", "evm.transfer", "await"',
    ]);
  });

  it('rejects fields it does not know, so a typo is not silently ignored', () => {
    expect(issuesOf(ActionSpecSchema, withSteps({ ...LOCK, retries: 3 }))).toEqual([
      'steps[0]: Unrecognized key: "retries"',
    ]);
  });

  it('rejects a finality policy that is neither confirmations nor a tag', () => {
    expect(issuesOf(ActionSpecSchema, withSteps({ ...LOCK, finality: { tag: 'latest' } }))).toEqual([
      'steps[0].finality: must be { "confirmations": n } or { "tag": "finalized" | "safe" }',
    ]);
    expect(issuesOf(ActionSpecSchema, withSteps({ ...LOCK, finality: { confirmations: 0 } }))).toEqual([
      'steps[0].finality.confirmations: must be at least 1',
    ]);
  });

  it('rejects an amount that is not a decimal string', () => {
    const transfer = { kind: 'evm.transfer', signer: 'treasury', to: ESCROW, value: '1e18' };
    expect(issuesOf(ActionSpecSchema, withSteps({ ...LOCK, operation: transfer }))).toEqual([
      'steps[0].operation.value: must be a non-negative integer as a decimal string',
    ]);
  });

  it('rejects a template that names a step which is not among the dependencies', () => {
    const mint = { ...MINT, after: [{ step: 'lock', stage: 'final' }] };
    expect(issuesOf(ActionSpecSchema, withSteps(LOCK, { ...ATTEST, after: [] }, mint))).toEqual([
      'steps[2].operation.args[2]: template {{steps.attest.output.attestation}} names step "attest", which is not among this step\'s dependencies',
    ]);
  });

  it('accepts a template that names a dependency reached through another step', () => {
    const args = ['{{steps.lock.ref}}', '1000', '{{ steps.attest.output.attestation }}'];
    const mint = { ...MINT, operation: { ...(MINT.operation as object), args } };
    expect(ActionSpecSchema.safeParse(withSteps(LOCK, ATTEST, mint)).success).toBe(true);
  });

  it("lets a compensation name its own step's ref, but not the operation", () => {
    const unlock = { ...(LOCK.compensation as object), args: ['{{steps.lock.ref}}'] };
    expect(ActionSpecSchema.safeParse(withSteps({ ...LOCK, compensation: unlock })).success).toBe(true);

    const lock = { ...LOCK, operation: { ...(LOCK.operation as object), args: ['{{steps.lock.ref}}'] } };
    expect(issuesOf(ActionSpecSchema, withSteps(lock))).toEqual([
      'steps[0].operation.args[0]: template {{steps.lock.ref}} names step "lock", which is not among this step\'s dependencies',
    ]);
  });

  it('rejects a template it does not know, in arguments and in the target address', () => {
    const lock = {
      ...LOCK,
      operation: { ...(LOCK.operation as object), to: '{{steps.mint.address}}', args: [['{{action.secret}}']] },
    };
    expect(issuesOf(ActionSpecSchema, withSteps(lock))).toEqual([
      'steps[0].operation.to: unknown template {{steps.mint.address}}',
      'steps[0].operation.args[0][0]: unknown template {{action.secret}}',
    ]);
  });
});

describe('EvidenceSchema', () => {
  it('accepts the example of the design brief, defaulting to the operation', () => {
    const evidence = EvidenceSchema.parse({
      step: 'lock',
      kind: 'included',
      ref: TX,
      block: { number: '1042', hash: BLOCK_HASH },
      confirmations: 1,
      source: 'watcher:chainA',
      observedAt: '2026-11-26T10:00:00Z',
    });
    expect(evidence.for).toBe('operation');
  });

  it('accepts evidence that names its step only by ref and network', () => {
    expect(EvidenceSchema.safeParse({ ref: TX, network: 'chainA', kind: 'submitted', source: 'watcher' }).success).toBe(
      true,
    );
  });

  it.each([
    [
      { kind: 'included', source: 'watcher' },
      "evidence.step: evidence must name its step, or carry the ref of the step's transaction",
    ],
    [
      { step: 'lock', kind: 'confirmed', source: 'watcher' },
      'evidence.confirmations: "confirmed" evidence needs confirmations',
    ],
    [{ step: 'lock', kind: 'failed', source: 'watcher' }, 'evidence.reason: "failed" evidence needs a reason'],
    [
      { step: 'lock', kind: 'reorged', source: 'watcher' },
      'evidence.block: "reorged" evidence needs the orphaned block (block.hash or orphanedHash)',
    ],
    [
      { step: 'lock', kind: 'included', source: '' },
      'evidence.source: must name who observed this (e.g. "watcher:chainA")',
    ],
    [
      { step: 'lock', kind: 'confirmed', confirmations: -1, source: 'w' },
      'evidence.confirmations: must not be negative',
    ],
    [
      { step: 'lock', kind: 'included', source: 'w', observedAt: 'yesterday' },
      'evidence.observedAt: must be an ISO-8601 timestamp',
    ],
    [
      { step: 'lock', kind: 'included', source: 'w', block: { number: '0x10', hash: BLOCK_HASH } },
      'evidence.block.number: must be a non-negative integer as a decimal string',
    ],
  ])('rejects %j: %s', (evidence, message) => {
    expect(issuesOf(EvidenceSchema, evidence, 'evidence')).toEqual([message]);
  });

  it('rejects an unknown kind, listing the known ones', () => {
    expect(issuesOf(EvidenceSchema, { step: 'lock', kind: 'mined', source: 'w' }, 'evidence')).toEqual([
      'evidence.kind: Invalid option: expected one of "submitted"|"included"|"confirmed"|"finalized"|"reorged"|"dropped"|"failed"',
    ]);
  });

  it('accepts a reorg that names only the orphaned hash', () => {
    expect(EvidenceSchema.safeParse({ ref: TX, kind: 'reorged', orphanedHash: BLOCK_HASH, source: 'w' }).success).toBe(
      true,
    );
  });
});

describe('update schemas', () => {
  it('accepts the examples of the design brief', () => {
    expect(RetryStepInputSchema.parse({ step: 'mint', reason: 'fee was too low' })).toEqual({
      step: 'mint',
      reason: 'fee was too low',
    });
    expect(CompensateInputSchema.safeParse({ reason: 'counterparty cancelled' }).success).toBe(true);
    expect(CancelInputSchema.safeParse({ reason: 'customer request', operator: 'bob' }).success).toBe(true);
    const resolved = ResolveStepInputSchema.parse({
      step: 'attest',
      evidence: { kind: 'finalized', source: 'ops-console', observedAt: '2026-11-26T10:05:00Z' },
      reason: 'checked on the explorer',
      operator: 'alice',
    });
    expect(resolved.evidence.for).toBe('operation');
  });

  it('requires a reason, for the audit trail', () => {
    expect(issuesOf(RetryStepInputSchema, { step: 'mint', reason: '  ' })).toEqual([
      'reason: must say why (it goes into the audit trail)',
    ]);
    expect(issuesOf(CompensateInputSchema, {})).toEqual(['reason: is required']);
  });

  it('requires resolveStep to name the operator, and checks the evidence it carries', () => {
    expect(
      issuesOf(ResolveStepInputSchema, {
        step: 'attest',
        evidence: { kind: 'failed', source: 'ops-console' },
        reason: 'the attester refused',
        operator: ' ',
      }),
    ).toEqual([
      'evidence.reason: "failed" evidence needs a reason',
      'operator: must name the operator (it goes into the audit trail)',
    ]);
  });

  it('rejects a step id that is not an identifier and fields it does not know', () => {
    expect(issuesOf(RetryStepInputSchema, { step: '../mint', reason: 'r', force: true })).toEqual([
      'step: must start with a letter and contain only letters, digits, "_" or "-"',
      '(root): Unrecognized key: "force"',
    ]);
  });
});

describe('durations', () => {
  it.each([
    ['30s', 30_000],
    ['10m', 600_000],
    ['2h', 7_200_000],
    ['7d', 604_800_000],
    ['250ms', 250],
    [1500, 1500],
  ])('parses %j to %d ms and formats it back', (input, ms) => {
    expect(DurationSchema.parse(input)).toBe(ms);
    expect(DurationSchema.parse(formatDuration(ms))).toBe(ms);
  });
});

describe('ValidationError', () => {
  it('lists every issue with its field path and rule', () => {
    const bad = withSteps({ ...LOCK, finality: { confirmations: 0 } }, { ...ATTEST, timeout: 'soon' });
    let caught: unknown;
    try {
      parseOrThrow(ActionSpecSchema, bad, 'ActionSpec');
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ValidationError);
    const error = caught as ValidationError;
    expect(error.subject).toBe('ActionSpec');
    expect(error.issues).toEqual([
      { path: 'steps[0].finality.confirmations', message: 'must be at least 1' },
      {
        path: 'steps[1].timeout',
        message:
          'must be a positive duration such as "30s", "10m", "2h", "7d" or a number of milliseconds (got "soon")',
      },
    ]);
    expect(error.message).toBe(
      'invalid ActionSpec:\n  steps[0].finality.confirmations: must be at least 1\n  steps[1].timeout: must be a positive duration such as "30s", "10m", "2h", "7d" or a number of milliseconds (got "soon")',
    );
  });

  it('returns the parsed value when it is valid', () => {
    expect(parseOrThrow(ActionSpecSchema, DESIGN_EXAMPLE, 'ActionSpec').actionId).toBe('xfer-7f3a');
  });
});
