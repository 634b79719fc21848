import { z } from 'zod';
import { DurationSchema } from './duration';
import {
  DecimalStringSchema,
  HexAddressSchema,
  IdentifierSchema,
  NetworkNameSchema,
  StepIdSchema,
  type JsonValue,
} from './primitives';
import { parseTemplate, templateExpressions, WHOLE_TEMPLATE } from './templates';

/** Operation arguments: strings (which may hold `{{…}}` templates), safe integers, booleans, and tuples/arrays of them. */
export type OperationArg = string | number | boolean | OperationArg[];
export const OperationArgSchema: z.ZodType<OperationArg> = z.lazy(() =>
  z.union([
    z.string().max(4096, 'must be at most 4096 characters'),
    z.number().refine(Number.isSafeInteger, 'must be a safe integer; pass large amounts as decimal strings'),
    z.boolean(),
    z.array(OperationArgSchema),
  ]),
);

const SignerNameSchema = z
  .string()
  .min(1, 'must name a signer from the worker configuration')
  .max(64, 'must be at most 64 characters')
  .regex(/^[A-Za-z][A-Za-z0-9_-]*$/, 'must be a signer name (letters, digits, "_", "-"), never a key');

const TemplateOrAddressSchema = z.union([HexAddressSchema, z.string().regex(WHOLE_TEMPLATE)], {
  error: 'must be a 0x-prefixed 20-byte hex address or a {{template}}',
});

export const EvmCallOperationSchema = z.strictObject({
  kind: z.literal('evm.call'),
  signer: SignerNameSchema,
  to: TemplateOrAddressSchema,
  function: z
    .string()
    .regex(
      /^function\s+[A-Za-z_$][\w$]*\s*\(.*\)/,
      'must be a human-readable signature such as "function lock(bytes32 id, uint256 amount)"',
    ),
  args: z.array(OperationArgSchema).default([]),
  value: DecimalStringSchema.optional(),
});

export const EvmTransferOperationSchema = z.strictObject({
  kind: z.literal('evm.transfer'),
  signer: SignerNameSchema,
  to: TemplateOrAddressSchema,
  value: DecimalStringSchema,
});

export const AwaitOperationSchema = z.strictObject({
  kind: z.literal('await'),
  /** What the external system is expected to report, for people reading the status. */
  description: z.string().max(500).optional(),
});

export const OperationSchema = z.discriminatedUnion(
  'kind',
  [EvmCallOperationSchema, EvmTransferOperationSchema, AwaitOperationSchema],
  {
    error: (issue) =>
      issue.code === 'invalid_union'
        ? 'kind must be one of "evm.call", "evm.transfer", "await"'
        : 'must be an operation object',
  },
);
export type Operation = z.infer<typeof OperationSchema>;
export type EvmOperation = Exclude<Operation, { kind: 'await' }>;

export const FinalityPolicySchema = z.union(
  [
    z.strictObject({
      confirmations: z.number().int('must be a whole number').min(1, 'must be at least 1').max(10_000),
    }),
    z.strictObject({ tag: z.enum(['finalized', 'safe']) }),
  ],
  { error: 'must be { "confirmations": n } or { "tag": "finalized" | "safe" }' },
);
export type FinalityPolicy = z.infer<typeof FinalityPolicySchema>;

export const StageSchema = z.enum(['included', 'final']);
export type Stage = z.infer<typeof StageSchema>;

export const DependencySchema = z.strictObject({
  step: StepIdSchema,
  stage: StageSchema.default('final'),
});

export const StepSpecSchema = z.strictObject({
  id: StepIdSchema,
  network: NetworkNameSchema,
  operation: OperationSchema,
  finality: FinalityPolicySchema.optional(),
  timeout: DurationSchema.optional(),
  after: z.array(DependencySchema).default([]),
  compensation: OperationSchema.optional(),
  /**
   * The evidence sources that may settle this step (an awaited step: `["attester"]`). A claim from anyone else, or
   * one not proven to come from them (signed with their key, when the deployment knows it), is recorded as rejected
   * and never applied.
   */
  acceptFrom: z.array(z.string().min(1).max(200)).min(1).max(16).optional(),
});
export type StepSpec = z.infer<typeof StepSpecSchema>;

export const OnDeadlineSchema = z.enum(['compensate', 'hold']);

/** A webhook endpoint's name (`SETTLE_WEBHOOK_ENDPOINTS`): no ":", so never mistaken for a URL. */
export const WEBHOOK_ENDPOINT_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/**
 * An action's `webhook`: the name of an endpoint the deployment configures (its URL and secret stay in the worker), or
 * an http(s) URL, signed with the deployment's secret.
 */
export const WebhookSchema = z.union([z.string().regex(WEBHOOK_ENDPOINT_NAME), z.url({ protocol: /^https?$/ })], {
  error: 'must name a webhook endpoint (letters, digits, ".", "_", "-") or be an http(s) URL',
});

/** Query parameters named like credentials (`token`, `access_token`, `api_key`, `sig`, `password`, …). */
const CREDENTIAL_PARAMETER = /(token|secret|passw(or)?d|pwd|key|sig|signature|auth|authorization|credentials?)$/;

/**
 * What in a webhook URL is a credential that workflow history would keep: user info, or a query parameter named like
 * one. Undefined for an endpoint name or a URL without them.
 *
 * @example webhookCredentials('https://h.example/in?token=abc') // 'a query parameter "token"'
 */
export function webhookCredentials(webhook: string): string | undefined {
  if (WEBHOOK_ENDPOINT_NAME.test(webhook) || !URL.canParse(webhook)) return undefined;
  const url = new URL(webhook);
  if (url.username || url.password) return 'credentials (user info before "@")';
  for (const name of url.searchParams.keys()) {
    if (CREDENTIAL_PARAMETER.test(name.toLowerCase().replace(/[^a-z0-9]/g, ''))) {
      return `a query parameter "${name.slice(0, 40)}"`;
    }
  }
  return undefined;
}

export const ActionSpecSchema = z
  .strictObject({
    actionId: IdentifierSchema,
    type: IdentifierSchema.default('action'),
    deadline: DurationSchema.optional(),
    onDeadline: OnDeadlineSchema.default('compensate'),
    /** Where every transition is POSTed (signed): an endpoint's name or a URL. Secrets stay in the worker. */
    webhook: WebhookSchema.optional(),
    steps: z.array(StepSpecSchema).min(1, 'an action has at least one step').max(64, 'an action has at most 64 steps'),
  })
  .superRefine((spec, ctx) => {
    for (const issue of dagIssues(spec.steps)) ctx.addIssue({ code: 'custom', ...issue });
    // The spec travels in every continue-as-new with the action's state: refused at the start, never failing later.
    const size = JSON.stringify(spec).length;
    if (size > MAX_SPEC_BYTES) {
      ctx.addIssue({
        code: 'custom',
        path: [],
        message: `is ${size} bytes; an ActionSpec may be at most ${MAX_SPEC_BYTES}`,
      });
    }
  });

/**
 * A spec as an action may be started with: a webhook URL that carries credentials is refused, since the spec is kept in
 * workflow history. (The workflow's own validation does not apply this rule: runs started before it still replay.)
 */
export const NewActionSpecSchema = ActionSpecSchema.superRefine((spec, ctx) => {
  const credentials = spec.webhook === undefined ? undefined : webhookCredentials(spec.webhook);
  if (credentials) {
    ctx.addIssue({
      code: 'custom',
      path: ['webhook'],
      message: `carries ${credentials}, which workflow history would keep: name an endpoint of SETTLE_WEBHOOK_ENDPOINTS`,
    });
  }
});

/** Well below Temporal's 2 MB payload limit, leaving room for the state an action carries across continue-as-new. */
export const MAX_SPEC_BYTES = 128 * 1024;

/** The spec as a caller writes it (durations as strings, defaults omitted). */
export type ActionSpecInput = z.input<typeof ActionSpecSchema>;
/** The spec after validation: durations in milliseconds, defaults filled in. */
export type ActionSpec = z.output<typeof ActionSpecSchema>;

interface PathIssue {
  path: (string | number)[];
  message: string;
}

/** Duplicate ids, unknown `after` references, cycles and templates that name steps which cannot have run yet. */
function dagIssues(steps: StepSpec[]): PathIssue[] {
  const issues: PathIssue[] = [];
  const index = new Map<string, number>();
  steps.forEach((step, i) => {
    if (index.has(step.id)) {
      issues.push({
        path: ['steps', i, 'id'],
        message: `duplicate step id "${step.id}" (also steps[${index.get(step.id)}])`,
      });
    } else index.set(step.id, i);
  });
  steps.forEach((step, i) =>
    step.after.forEach((dep, j) => {
      if (!index.has(dep.step)) {
        issues.push({ path: ['steps', i, 'after', j, 'step'], message: `unknown step "${dep.step}" in after` });
      } else if (dep.step === step.id) {
        issues.push({ path: ['steps', i, 'after', j, 'step'], message: `step "${step.id}" cannot depend on itself` });
      }
    }),
  );
  if (issues.length > 0) return issues;

  const cycle = findCycle(steps);
  if (cycle) issues.push({ path: ['steps'], message: `steps form a cycle: ${cycle.join(' → ')}` });
  if (issues.length > 0) return issues;

  steps.forEach((step, i) => {
    const reachable = ancestors(step.id, steps);
    const check = (where: (string | number)[], operation: Operation | undefined, allowSelf: boolean) => {
      for (const [argPath, text] of templateStrings(operation)) {
        for (const expression of templateExpressions(text)) {
          const reference = parseTemplate(expression);
          if (!reference) {
            issues.push({ path: [...where, ...argPath], message: `unknown template {{${expression}}}` });
          } else if (
            'step' in reference &&
            !reachable.has(reference.step) &&
            !(allowSelf && reference.step === step.id)
          ) {
            issues.push({
              path: [...where, ...argPath],
              message: `template {{${expression}}} names step "${reference.step}", which is not among this step's dependencies`,
            });
          }
        }
      }
    };
    check(['steps', i, 'operation'], step.operation, false);
    check(['steps', i, 'compensation'], step.compensation, true);
  });
  return issues;
}

function findCycle(steps: StepSpec[]): string[] | undefined {
  const deps = new Map(steps.map((s) => [s.id, s.after.map((d) => d.step)]));
  const color = new Map<string, 'grey' | 'black'>();
  const stack: string[] = [];
  const visit = (id: string): string[] | undefined => {
    if (color.get(id) === 'black') return undefined;
    if (color.get(id) === 'grey') return [...stack.slice(stack.indexOf(id)), id];
    color.set(id, 'grey');
    stack.push(id);
    for (const dep of deps.get(id) ?? []) {
      const found = visit(dep);
      if (found) return found;
    }
    stack.pop();
    color.set(id, 'black');
    return undefined;
  };
  for (const step of steps) {
    const found = visit(step.id);
    if (found) return found;
  }
  return undefined;
}

/** Every step reachable through `after`, transitively. */
export function ancestors(stepId: string, steps: Pick<StepSpec, 'id' | 'after'>[]): Set<string> {
  const byId = new Map(steps.map((s) => [s.id, s]));
  const seen = new Set<string>();
  const todo = [...(byId.get(stepId)?.after ?? []).map((d) => d.step)];
  while (todo.length > 0) {
    const id = todo.pop()!;
    if (seen.has(id)) continue;
    seen.add(id);
    todo.push(...(byId.get(id)?.after ?? []).map((d) => d.step));
  }
  return seen;
}

function* templateStrings(operation: Operation | undefined): Generator<[(string | number)[], string]> {
  if (!operation || operation.kind === 'await') return;
  yield [['to'], operation.to];
  if (operation.kind === 'evm.call') yield* argStrings(operation.args, ['args']);
}

function* argStrings(
  value: OperationArg | OperationArg[] | JsonValue,
  path: (string | number)[],
): Generator<[(string | number)[], string]> {
  if (typeof value === 'string') yield [path, value];
  else if (Array.isArray(value)) for (let i = 0; i < value.length; i++) yield* argStrings(value[i], [...path, i]);
}

/** `bridge-transfer: lock@chainA → mint@chainB`: an action's route, for the Web UI's summary and the CLI. */
export function routeSummary(spec: Pick<ActionSpec, 'type' | 'steps'>): string {
  return `${spec.type}: ${spec.steps.map((s) => `${s.id}@${s.network}`).join(' → ')}`;
}
