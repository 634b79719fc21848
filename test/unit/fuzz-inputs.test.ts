/**
 * Malformed specs and evidence, thousands of them, through every front door: the client, the CLI's parser and the
 * HTTP API. Each gets a clear error (field path and rule), nothing reaches Temporal, nothing crashes.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import fc from 'fast-check';
import { ActionNotFoundError, SettleClient, signEvidence, ValidationError } from '../../client';
import { EXIT } from '../../client/cli/exit-codes';
import { runCli, type CliBackend } from '../../client/cli/main';
import { buildApi } from '../../workers/api/app';
import { parseApiConfig } from '../../workers/api/config';
import { ActionSpecSchema } from '../../contract/action-spec';
import { EvidenceSchema } from '../../contract/evidence';

const RUNS = 1_000;
const SECRET = 'fuzz-evidence-secret-0123';
const TOKEN = 'fuzz-api-token-0123456789';

/** A Temporal client that records every call that would reach the server. */
function recordingTemporal(): { temporal: Client; calls: string[] } {
  const calls: string[] = [];
  const record = (name: string) => () => {
    calls.push(name);
    throw new Error(`${name} must not be reached with invalid input`);
  };
  const handle = { signal: record('signal'), executeUpdate: record('executeUpdate'), describe: record('describe') };
  const temporal = {
    workflow: { start: record('start'), getHandle: () => handle, list: record('list') },
  } as unknown as Client;
  return { temporal, calls };
}

// --- Malformed specs: a valid spec with one or more things broken, or arbitrary JSON. ---

const stepId = fc.stringMatching(/^[a-z][a-z0-9]{0,6}$/);
const validSpec = fc
  .record({
    actionId: fc.stringMatching(/^[a-z0-9][a-z0-9-]{0,12}$/),
    type: fc.constantFrom('demo', 'bridge-transfer'),
    steps: fc.uniqueArray(stepId, { minLength: 1, maxLength: 4 }),
  })
  .map(({ actionId, type, steps }) => ({
    actionId,
    type,
    steps: steps.map((id, i) => ({
      id,
      network: 'chainA',
      operation: { kind: 'await' },
      after: i > 0 ? [{ step: steps[i - 1], stage: 'final' }] : [],
    })),
  }));
type Spec = { actionId: unknown; steps: Record<string, unknown>[] } & Record<string, unknown>;

/** Breakers apply in sequence: a spec already broken may not have steps any more. */
function stepsOf(spec: Spec): Record<string, unknown>[] {
  const steps = Array.isArray(spec.steps) ? spec.steps.filter((s) => typeof s === 'object' && s !== null) : [];
  return steps.length > 0 ? steps : [{ id: 'only', network: 'n', operation: { kind: 'await' } }];
}

const junk = fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.string({ maxLength: 20 }), fc.constant(null), fc.integer());

const specBreakers: fc.Arbitrary<(spec: Spec) => unknown>[] = [
  fc.constantFrom('actionId', 'steps').map((key) => (spec: Spec) => ({ ...spec, [key]: undefined })),
  fc
    .tuple(fc.constantFrom('actionId', 'type', 'steps', 'deadline', 'onDeadline', 'webhook'), junk)
    .map(([key, value]) => (spec: Spec) => ({ ...spec, [key]: value })),
  fc.string({ minLength: 1, maxLength: 8 }).map((key) => (spec: Spec) => ({ ...spec, [`x-${key}`]: 1 })),
  fc
    .constantFrom('', ' ', '-lead', 'a b', 'ä', 'x'.repeat(129))
    .map((id) => (spec: Spec) => ({ ...spec, actionId: id })),
  fc.constantFrom('soon', '0s', '-5m', 1.5, 0, '10 minutes').map((deadline) => (spec: Spec) => ({ ...spec, deadline })),
  fc
    .constantFrom('ftp://x', 'not a url', 'javascript:alert(1)')
    .map((webhook) => (spec: Spec) => ({ ...spec, webhook })),
  fc.constant((spec: Spec) => ({ ...spec, steps: [] })),
  fc.constant((spec: Spec) => ({
    ...spec,
    steps: Array.from({ length: 65 }, (_, i) => ({ ...stepsOf(spec)[0], id: `s${i}`, after: [] })),
  })),
  fc.constant((spec: Spec) => ({ ...spec, steps: [...stepsOf(spec), stepsOf(spec)[0]] })),
  fc.constant((spec: Spec) => ({
    ...spec,
    steps: stepsOf(spec).map((s, i) => (i === 0 ? { ...s, after: [{ step: s.id }] } : s)),
  })),
  fc.constant((spec: Spec) => ({
    ...spec,
    steps: stepsOf(spec).map((s, i) => (i === 0 ? { ...s, after: [{ step: stepsOf(spec).at(-1)!.id }] } : s)),
  })),
  fc.constantFrom('network', 'operation', 'id').map((key) => (spec: Spec) => ({
    ...spec,
    steps: stepsOf(spec).map((s, i) => (i === 0 ? { ...s, [key]: undefined } : s)),
  })),
  fc
    .tuple(fc.constantFrom('id', 'network', 'operation', 'finality', 'timeout', 'after', 'compensation'), junk)
    .map(([key, value]) => (spec: Spec) => ({
      ...spec,
      steps: stepsOf(spec).map((s, i) => (i === 0 ? { ...s, [key]: value } : s)),
    })),
  fc
    .constantFrom(
      { kind: 'evm.call', signer: 'bridge', to: '0x1234', function: 'lock()' },
      { kind: 'evm.transfer', signer: '0xPRIVATEKEY!', to: '0x0000000000000000000000000000000000000001', value: '1' },
      { kind: 'evm.transfer', signer: 's', to: '0x0000000000000000000000000000000000000001', value: '-1' },
      { kind: 'evm.call', signer: 's', to: '{{steps.nowhere.ref}}', function: 'function f()', args: [1.5] },
      { kind: 'teleport' },
      { kind: 'await', extra: true },
    )
    .map((operation) => (spec: Spec) => ({
      ...spec,
      steps: stepsOf(spec).map((s, i) => (i === 0 ? { ...s, operation } : s)),
    })),
  fc
    .constantFrom({ confirmations: 0 }, { confirmations: 2.5 }, { tag: 'latest' }, {})
    .map((finality) => (spec: Spec) => ({
      ...spec,
      steps: stepsOf(spec).map((s, i) => (i === 0 ? { ...s, finality } : s)),
    })),
];

const malformedSpec: fc.Arbitrary<unknown> = fc
  .oneof(
    { weight: 4, arbitrary: fc.tuple(validSpec, fc.array(fc.oneof(...specBreakers), { minLength: 1, maxLength: 3 })) },
    { weight: 1, arbitrary: fc.tuple(fc.jsonValue({ maxDepth: 3 }), fc.constant([])) },
  )
  .map(([spec, breakers]) => breakers.reduce<unknown>((s, breaker) => breaker(s as Spec), spec))
  .map((spec) => JSON.parse(JSON.stringify(spec ?? null)) as unknown)
  .filter((spec) => !ActionSpecSchema.safeParse(spec).success);

// --- Malformed evidence. ---

const validEvidence = fc.constantFrom<Record<string, unknown>>(
  { step: 'attest', kind: 'finalized', source: 'watcher' },
  { step: 'lock', kind: 'included', ref: '0xabc', block: { number: '10', hash: '0x0a' }, source: 'watcher:chainA' },
  { ref: '0xabc', network: 'chainA', kind: 'confirmed', confirmations: 3, source: 'watcher:chainA' },
);
const evidenceBreakers: fc.Arbitrary<(e: Record<string, unknown>) => unknown>[] = [
  fc.constantFrom('kind', 'source').map((key) => (e: Record<string, unknown>) => ({ ...e, [key]: undefined })),
  fc.constant((e: Record<string, unknown>) => ({ ...e, step: undefined, ref: undefined })),
  fc
    .tuple(
      fc.constantFrom('kind', 'step', 'ref', 'block', 'confirmations', 'for', 'observedAt', 'output', 'network'),
      junk,
    )
    .map(([key, value]) => (e: Record<string, unknown>) => ({ ...e, [key]: value })),
  fc
    .constantFrom(
      { kind: 'confirmed', confirmations: undefined },
      { kind: 'failed', reason: undefined },
      { kind: 'reorged', block: undefined, orphanedHash: undefined },
      { confirmations: -1 },
      { block: { number: '01', hash: '0x0a' } },
      { block: { number: '1', hash: 'abc' } },
      { observedAt: 'yesterday' },
      { for: 'both' },
      { secretKey: '0xdeadbeef' },
    )
    .map((patch) => (e: Record<string, unknown>) => ({ ...e, ...patch })),
];
const malformedEvidence: fc.Arbitrary<unknown> = fc
  .oneof(
    {
      weight: 4,
      arbitrary: fc.tuple(validEvidence, fc.array(fc.oneof(...evidenceBreakers), { minLength: 1, maxLength: 3 })),
    },
    { weight: 1, arbitrary: fc.tuple(fc.jsonValue({ maxDepth: 3 }), fc.constant([])) },
  )
  .map(([evidence, breakers]) =>
    breakers.reduce<unknown>((e, breaker) => breaker(e as Record<string, unknown>), evidence),
  )
  .map((evidence) => JSON.parse(JSON.stringify(evidence ?? null)) as unknown)
  .filter((evidence) => !EvidenceSchema.safeParse(evidence).success);

/** A clear error: at least one issue, each naming a field path and a rule in words. */
function expectClear(issues: { path: string; message: string }[]): void {
  expect(issues.length).toBeGreaterThan(0);
  for (const issue of issues) {
    expect(issue.path).toMatch(/^(\(root\)|\(file\)|[A-Za-z][\w.[\]-]*)$/);
    expect(issue.message).toMatch(/[a-z]{3,}/);
    expect(issue.message).not.toContain('[object');
  }
}

describe('the client', () => {
  it(`rejects ${RUNS} malformed specs with clear errors and starts nothing`, async () => {
    const { temporal, calls } = recordingTemporal();
    const settle = new SettleClient(temporal, 'settle');
    const fields = new Set<string>();
    await fc.assert(
      fc.asyncProperty(malformedSpec, async (spec) => {
        const error = await settle.start(spec as never).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(ValidationError);
        expectClear((error as ValidationError).issues);
        for (const issue of (error as ValidationError).issues) fields.add(issue.path.replace(/\[\d+\]/g, '[]'));
      }),
      { numRuns: RUNS },
    );
    expect(calls).toEqual([]);
    // The generator reaches every level of the spec, not just its surface.
    for (const field of ['(root)', 'actionId', 'steps', 'deadline', 'webhook', 'steps[].id', 'steps[].after[].step']) {
      expect(fields).toContain(field);
    }
    expect([...fields].some((f) => f.startsWith('steps[].operation'))).toBe(true);
  });

  it(`rejects ${RUNS} malformed evidence bodies with clear errors and signals nothing`, async () => {
    const { temporal, calls } = recordingTemporal();
    const settle = new SettleClient(temporal, 'settle');
    await fc.assert(
      fc.asyncProperty(malformedEvidence, async (evidence) => {
        const error = await settle.evidence('action-1', evidence as never).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(ValidationError);
        expectClear((error as ValidationError).issues);
      }),
      { numRuns: RUNS },
    );
    expect(calls).toEqual([]);
  });
});

/** A backend where no action exists. */
const unknownActions = new Proxy({} as CliBackend, {
  get: (_target, name) =>
    name === 'then' // not a promise
      ? undefined
      : name === 'close'
        ? async () => undefined
        : async () => Promise.reject(new ActionNotFoundError('x')),
});

describe('the CLI parser, in process', () => {
  function cli(stdin: string) {
    const err: string[] = [];
    let connects = 0;
    const io = {
      stdout: { write: () => undefined },
      stderr: { write: (text: string) => err.push(text) },
      readStdin: async () => stdin,
      env: {},
      connect: async () => {
        connects++;
        return unknownActions;
      },
    };
    return { io, err, connects: () => connects };
  }

  it(`rejects ${RUNS} malformed spec files with exit 3 and the field path and rule, without connecting`, async () => {
    const text = fc.oneof(
      { weight: 5, arbitrary: malformedSpec.map((spec) => JSON.stringify(spec)) },
      { weight: 1, arbitrary: fc.string({ maxLength: 40 }).filter((s) => !isJson(s)) },
    );
    await fc.assert(
      fc.asyncProperty(text, async (stdin) => {
        const { io, err, connects } = cli(stdin);
        expect(await runCli(['start', '--spec', '-', '--json'], io)).toBe(EXIT.invalid);
        const report = JSON.parse(err.join(''));
        expect(report.exitCode).toBe(EXIT.invalid);
        expectClear(report.error.issues);
        expect(connects()).toBe(0);
      }),
      { numRuns: RUNS },
    );
  });

  it('never crashes on arbitrary arguments: a usage error, invalid input, or help', async () => {
    const word = fc.oneof(
      fc.constantFrom(
        'start',
        'status',
        'evidence',
        'resolve',
        'retry',
        '--kind',
        '--step',
        '--spec',
        '--json',
        '-',
        '--confirmations',
        'toString',
        '__proto__',
        'constructor',
        '--help',
      ),
      fc.string({ maxLength: 8 }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(word, { maxLength: 6 }), async (argv) => {
        const { io, connects } = cli('{');
        const code = await runCli(argv, io);
        // Only a valid command reaches the backend (where no action exists).
        if (connects() === 0) expect([EXIT.ok, EXIT.usage, EXIT.invalid]).toContain(code);
        else expect(code).toBe(EXIT.notFound);
      }),
      { numRuns: 300 },
    );
  });
});

describe('the HTTP API, through inject', () => {
  // Thousands of requests from one credential: lift its rate limit for the run.
  const config = parseApiConfig({
    SETTLE_API_LOG_LEVEL: 'silent',
    SETTLE_API_TOKEN: TOKEN,
    SETTLE_EVIDENCE_SECRET: SECRET,
    SETTLE_API_RATE_LIMIT: '1000000',
  });

  it(`answers ${RUNS} malformed specs with 400 and the zod issues, and starts nothing`, async () => {
    const { temporal, calls } = recordingTemporal();
    const app = buildApi({ settle: new SettleClient(temporal, 'settle'), config });
    const body = fc.oneof(
      { weight: 5, arbitrary: malformedSpec.map((spec) => JSON.stringify(spec)) },
      { weight: 1, arbitrary: fc.string({ maxLength: 40 }).filter((s) => !isJson(s)) },
    );
    await fc.assert(
      fc.asyncProperty(body, async (payload) => {
        const response = await app.inject({
          method: 'POST',
          url: '/v1/actions',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
          payload,
        });
        expect(response.statusCode).toBe(400);
        expectClear(response.json().issues);
      }),
      { numRuns: RUNS },
    );
    expect(calls).toEqual([]);
    expect((await app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
    await app.close();
  });

  it(`answers ${RUNS} malformed, correctly signed evidence bodies with 400, and unsigned ones with 401; signals nothing`, async () => {
    const { temporal, calls } = recordingTemporal();
    const app = buildApi({ settle: new SettleClient(temporal, 'settle'), config });
    let n = 0;
    await fc.assert(
      fc.asyncProperty(malformedEvidence, fc.boolean(), async (evidence, sign) => {
        // A unique body each time: the same signed body twice would be a replay.
        const payload = JSON.stringify(evidence) + ' '.repeat(n++);
        const response = await app.inject({
          method: 'POST',
          url: `/v1/actions/action-${n}/evidence`,
          headers: {
            'content-type': 'application/json',
            // Signed with the key "default" (SETTLE_EVIDENCE_SECRET), for this action.
            ...(sign
              ? {
                  'settle-signature': signEvidence({
                    keyId: 'default',
                    secret: SECRET,
                    actionId: `action-${n}`,
                    body: payload,
                  }),
                }
              : {}),
          },
          payload,
        });
        if (!sign) return expect(response.statusCode).toBe(401);
        expect(response.statusCode).toBe(400);
        expectClear(response.json().issues);
      }),
      { numRuns: RUNS },
    );
    expect(calls).toEqual([]);
    await app.close();
  });
});

describe('the real CLI process', () => {
  it('rejects a handful of malformed specs with exit 3, never trying to reach Temporal', async () => {
    const samples = fc.sample(malformedSpec, { numRuns: 4, seed: 42 });
    for (const spec of samples) {
      const run = await spawnCli(['start', '--spec', '-'], JSON.stringify(spec));
      // Exit 6 would mean it tried to connect (nothing listens on port 1).
      expect(run.code).toBe(EXIT.invalid);
      expect(run.stderr).toMatch(/^settle: invalid ActionSpec:\n( {2}\S.*: .+\n)+$/);
    }
  });
});

function isJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

function spawnCli(args: string[], stdin: string): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.resolve(__dirname, '../../bin/settle.js'), ...args], {
      env: { PATH: process.env.PATH, TEMPORAL_ADDRESS: '127.0.0.1:1', SETTLE_CONNECT_TIMEOUT_MS: '1000' },
      stdio: ['pipe', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stderr }));
    child.stdin.end(stdin);
  });
}
