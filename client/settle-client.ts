import {
  Client,
  Connection,
  WorkflowExecutionAlreadyStartedError,
  WorkflowUpdateFailedError,
  type WorkflowExecutionInfo,
  type WorkflowHandle,
} from '@temporalio/client';
import { WorkflowIdReusePolicy, WorkflowNotFoundError, type UpdateDefinition } from '@temporalio/common';
import { z } from 'zod';
import type { crossNetworkAction } from '../workflows/cross-network-action/workflow';
import {
  cancelUpdate,
  compensateUpdate,
  evidenceSignal,
  resolveStepUpdate,
  retryStepUpdate,
  statusQuery,
  WORKFLOW_TYPE,
} from '../contract/messages';
import { NewActionSpecSchema, routeSummary, type ActionSpecInput } from '../contract/action-spec';
import { EvidenceSchema, type EvidenceInput } from '../contract/evidence';
import { parseOrThrow } from '../contract/validation';
import { IdentifierSchema, NetworkNameSchema } from '../contract/primitives';
import { isTerminalPhase, PhaseSchema, StepStateNameSchema, type ActionStatus, type Phase } from '../contract/status';
import {
  CancelInputSchema,
  CompensateInputSchema,
  ResolveStepInputSchema,
  RetryStepInputSchema,
} from '../contract/updates';
import { SettleNetworks, SettlePhase, SettleRefs, SettleType } from '../contract/search-attributes';
import { checkActionId } from './action-id';
import { resolveClientConfig, type ClientConnectionConfig } from './config';
import {
  ActionClosedError,
  ActionNotFoundError,
  ActionSettledError,
  ConnectionError,
  UpdateRejectedError,
  ValidationError,
  WaitTimeoutError,
} from './errors';

/** What `start` returns: the run of this actionId, whether this call created it or it already existed. */
export interface StartedAction {
  actionId: string;
  /** The first run of the action (stable across continue-as-new). */
  runId: string;
  /** False when an action with this id already existed: nothing new was started. */
  created: boolean;
}

/** One action as visibility (the search attributes) sees it; eventually consistent. */
export interface ActionSummary {
  actionId: string;
  runId: string;
  type?: string;
  phase?: Phase;
  networks: string[];
  refs: string[];
  /** Temporal's execution status: RUNNING, COMPLETED, FAILED, TERMINATED, … */
  execution: string;
  startedAt: string;
  closedAt?: string;
}

/** Update inputs as a caller writes them (defaults may be omitted). */
export type RetryStepInput = z.input<typeof RetryStepInputSchema>;
export type CompensateInput = z.input<typeof CompensateInputSchema>;
export type CancelInput = z.input<typeof CancelInputSchema>;
export type ResolveStepInput = z.input<typeof ResolveStepInputSchema>;

export type WaitCondition =
  | { phase: Phase | Phase[] }
  | { step: string; state: z.infer<typeof StepStateNameSchema> | z.infer<typeof StepStateNameSchema>[] };

export interface WaitOptions {
  /** Give up after this long (default 10 minutes). */
  timeoutMs?: number;
  /** How often to read the status (default 500 ms). */
  pollIntervalMs?: number;
  signal?: AbortSignal;
}

/** Refs and filters end up inside a visibility query: plain printable text, no quotes. */
const QueryValueSchema = z
  .string()
  .min(1, 'must not be empty')
  .max(256, 'must be at most 256 characters')
  .regex(/^[^'"\\\s]+$/, 'must not contain quotes, backslashes or spaces');

export const ListFilterSchema = z.strictObject({
  phase: PhaseSchema.optional(),
  network: NetworkNameSchema.optional(),
  type: IdentifierSchema.optional(),
  /** At most this many actions, newest first (default 100, at most 1000). */
  limit: z.number().int('must be a whole number').min(1, 'must be at least 1').max(1000).optional(),
});
export type ListFilter = z.infer<typeof ListFilterSchema>;

export const FindQuerySchema = z.strictObject({ ref: QueryValueSchema });

export interface SettleClientOptions {
  /** Environment to read the connection from (default `process.env`). */
  env?: Record<string, string | undefined>;
  /** Overrides of what the environment says. */
  address?: string;
  namespace?: string;
  taskQueue?: string;
}

/**
 * Typed client for Settle actions: start, follow, find, act. Every input is validated with the contract's zod
 * schemas before anything reaches Temporal; a bad input throws a `ValidationError` naming each field and rule.
 *
 * @example
 * const settle = await SettleClient.connect();
 * await settle.start({ actionId: 'xfer-7f3a', type: 'demo', steps: [{ id: 'attest', network: 'attester', operation: { kind: 'await' } }] });
 * await settle.evidence('xfer-7f3a', { step: 'attest', kind: 'finalized', source: 'attester' });
 * const done = await settle.waitFor('xfer-7f3a', { phase: 'completed' });
 * await settle.close();
 */
export class SettleClient {
  constructor(
    /** The Temporal client underneath, for anything this one does not cover. */
    readonly temporal: Client,
    readonly taskQueue: string,
    private readonly ownedConnection?: Connection,
  ) {}

  /**
   * Connects with Temporal's standard settings (`TEMPORAL_ADDRESS` default `127.0.0.1:7233`, `TEMPORAL_NAMESPACE`
   * default `default`, TLS/mTLS and API key through `@temporalio/envconfig`) and `SETTLE_TASK_QUEUE` (default `settle`).
   *
   * @example
   * const settle = await SettleClient.connect({ env: { TEMPORAL_ADDRESS: 'temporal:7233' } });
   */
  static async connect(options: SettleClientOptions = {}): Promise<SettleClient> {
    const config = resolveClientConfig({
      ...(options.env ?? process.env),
      ...(options.address ? { TEMPORAL_ADDRESS: options.address } : {}),
      ...(options.namespace ? { TEMPORAL_NAMESPACE: options.namespace } : {}),
      ...(options.taskQueue ? { SETTLE_TASK_QUEUE: options.taskQueue } : {}),
    });
    return SettleClient.connectWith(config);
  }

  /** Connects with an already resolved configuration. */
  static async connectWith(config: ClientConnectionConfig): Promise<SettleClient> {
    let connection: Connection;
    try {
      connection = await Connection.connect({ ...config.connection, connectTimeout: config.connectTimeoutMs });
    } catch (error) {
      throw new ConnectionError(config.address, (error as Error).message);
    }
    const client = new Client({ connection, namespace: config.namespace, dataConverter: config.dataConverter });
    return new SettleClient(client, config.taskQueue, connection);
  }

  async close(): Promise<void> {
    await this.ownedConnection?.close();
  }

  /**
   * Validates a spec and starts its action, idempotently: the workflow ID is the `actionId`, and starting the same
   * id again (running or closed) returns the existing run with `created: false` — never a second run.
   *
   * @throws ValidationError when the spec is invalid (nothing is started)
   * @example
   * const { actionId, created } = await settle.start(spec);
   */
  async start(spec: ActionSpecInput): Promise<StartedAction> {
    const parsed = parseOrThrow(NewActionSpecSchema, spec, 'ActionSpec');
    const actionId = parsed.actionId;
    try {
      const handle = await this.temporal.workflow.start<typeof crossNetworkAction>(WORKFLOW_TYPE, {
        workflowId: actionId,
        taskQueue: this.taskQueue,
        args: [spec],
        workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
        staticSummary: routeSummary(parsed),
        // The first phase too: a run with the `lean` patch then upserts only when its refs or phase change.
        typedSearchAttributes: [
          { key: SettlePhase, value: 'running' },
          { key: SettleType, value: parsed.type },
          { key: SettleNetworks, value: [...new Set(parsed.steps.map((s) => s.network))] },
        ],
      });
      return { actionId, runId: handle.firstExecutionRunId, created: true };
    } catch (error) {
      if (!(error instanceof WorkflowExecutionAlreadyStartedError)) throw error;
      const description = await this.temporal.workflow.getHandle(actionId).describe();
      const firstRunId = description.raw.workflowExecutionInfo?.firstRunId;
      return { actionId, runId: firstRunId || description.runId, created: false };
    }
  }

  /**
   * The action's status: phase, progress (local vs global), every step with its transitions.
   *
   * @throws ActionNotFoundError
   */
  async status(actionId: string): Promise<ActionStatus> {
    const handle = this.handle(actionId);
    const description = await this.call(actionId, () => handle.describe());
    // A completed run returned its final status: read it from history, no worker needed.
    if (description.status.name === 'COMPLETED') return handle.result();
    return this.call(actionId, () => handle.query(statusQuery));
  }

  /**
   * Polls the status until the action reaches a phase, or a step reaches a state.
   *
   * @throws ActionSettledError when the action closes without the condition holding
   * @throws WaitTimeoutError
   * @example
   * await settle.waitFor(id, { step: 'lock', state: ['included', 'final'] });
   * await settle.waitFor(id, { phase: 'completed' }, { timeoutMs: 60_000 });
   */
  async waitFor(actionId: string, condition: WaitCondition, options: WaitOptions = {}): Promise<ActionStatus> {
    const timeoutMs = options.timeoutMs ?? 10 * 60_000;
    const interval = options.pollIntervalMs ?? 500;
    const describe = describeCondition(condition);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      options.signal?.throwIfAborted();
      const status = await this.status(actionId);
      if (conditionHolds(status, condition)) return status;
      if (isTerminalPhase(status.phase)) throw new ActionSettledError(actionId, describe, status.phase, status);
      if (Date.now() + interval > deadline) throw new WaitTimeoutError(actionId, describe, status);
      await new Promise((resolve) => setTimeout(resolve, interval));
    }
  }

  /**
   * Actions that have had this reference (a transaction hash, a message id) on any step, through visibility.
   * Visibility is eventually consistent: a ref reported a moment ago may not show yet.
   *
   * @example
   * const [action] = await settle.find({ ref: '0xabc…' });
   */
  async find(query: { ref: string }): Promise<ActionSummary[]> {
    const { ref } = parseOrThrow(FindQuerySchema, query, 'find query');
    return this.visible([`${SettleRefs.name} = '${ref}'`], 100);
  }

  /**
   * Actions by phase, network and type, newest first, through visibility.
   *
   * @example
   * const stuck = await settle.list({ phase: 'needs_action' });
   */
  async list(filter: ListFilter = {}): Promise<ActionSummary[]> {
    const { phase, network, type, limit } = parseOrThrow(ListFilterSchema, filter, 'list filter');
    const clauses = [
      ...(phase ? [`${SettlePhase.name} = '${phase}'`] : []),
      ...(network ? [`${SettleNetworks.name} = '${network}'`] : []),
      ...(type ? [`${SettleType.name} = '${type}'`] : []),
    ];
    return this.visible(clauses, limit ?? 100);
  }

  /**
   * Delivers evidence about a step (signal `evidence`), validated first: the action id, then the evidence, each once.
   * What is signalled is the evidence as given; the workflow validates it again, as it does every signal.
   *
   * @throws ValidationError, ActionNotFoundError, ActionClosedError
   * @example
   * await settle.evidence(id, { step: 'lock', kind: 'included', ref: '0xabc…', block: { number: '1042', hash: '0xdef…' }, source: 'watcher:chainA' });
   */
  async evidence(actionId: string, evidence: EvidenceInput): Promise<void> {
    const handle = this.handle(actionId);
    parseOrThrow(EvidenceSchema, evidence, 'evidence');
    await this.call(actionId, () => handle.signal(evidenceSignal, evidence), 'evidence');
  }

  /** A failed or expired step gets a new attempt. @throws ValidationError, UpdateRejectedError */
  async retryStep(actionId: string, input: RetryStepInput): Promise<ActionStatus> {
    return this.update(actionId, retryStepUpdate, RetryStepInputSchema, input);
  }

  /** Compensates now whatever effects exist. @throws ValidationError, UpdateRejectedError */
  async compensate(actionId: string, input: CompensateInput): Promise<ActionStatus> {
    return this.update(actionId, compensateUpdate, CompensateInputSchema, input);
  }

  /** Before any effect: stops, nothing is submitted; after: as `compensate`. @throws ValidationError, UpdateRejectedError */
  async cancel(actionId: string, input: CancelInput): Promise<ActionStatus> {
    return this.update(actionId, cancelUpdate, CancelInputSchema, input);
  }

  /**
   * Operator-supplied evidence for a step, recorded with operator and reason.
   *
   * @example
   * await settle.resolveStep(id, { step: 'attest', evidence: { kind: 'finalized', source: 'ops-console' }, reason: 'checked on the explorer', operator: 'alice' });
   */
  async resolveStep(actionId: string, input: ResolveStepInput): Promise<ActionStatus> {
    return this.update(actionId, resolveStepUpdate, ResolveStepInputSchema, input, 'parsed');
  }

  /** Checks the action id (the one place the client does): every call on an action goes through here first. */
  private handle(actionId: string): WorkflowHandle<typeof crossNetworkAction> {
    return this.temporal.workflow.getHandle(checkActionId(actionId));
  }

  private async visible(clauses: string[], limit: number): Promise<ActionSummary[]> {
    const query = [`WorkflowType = '${WORKFLOW_TYPE}'`, `ExecutionStatus != 'ContinuedAsNew'`, ...clauses].join(
      ' AND ',
    );
    const found: ActionSummary[] = [];
    for await (const info of this.temporal.workflow.list({ query, pageSize: Math.min(limit, 1000) })) {
      found.push(toSummary(info));
      if (found.length >= limit) break;
    }
    return found;
  }

  /** Maps Temporal's "no such workflow" (and "already closed") to Settle's errors. */
  private async call<T>(actionId: string, run: () => Promise<T>, what?: string): Promise<T> {
    try {
      return await run();
    } catch (error) {
      if (error instanceof WorkflowNotFoundError) {
        if (what && /already completed|closed/i.test(error.message)) throw new ActionClosedError(actionId, what);
        throw new ActionNotFoundError(actionId);
      }
      throw error;
    }
  }

  /**
   * An operator update: the action id is checked, then the input (a ValidationError names each field), then the update
   * runs with the input as given, or `parsed` (trimmed, defaults filled); the workflow's refusal becomes an
   * UpdateRejectedError.
   */
  private async update<I>(
    actionId: string,
    update: UpdateDefinition<ActionStatus, [I]>,
    schema: z.ZodType,
    input: I,
    send: 'as given' | 'parsed' = 'as given',
  ): Promise<ActionStatus> {
    const handle = this.handle(actionId);
    const { name } = update;
    const parsed = parseOrThrow(schema, input, `${name} input`) as I;
    const args: [I] = [send === 'parsed' ? parsed : input];
    try {
      return await this.call(actionId, () => handle.executeUpdate(update, { args }), name);
    } catch (error) {
      if (error instanceof WorkflowUpdateFailedError) {
        throw new UpdateRejectedError(actionId, name, error.cause?.message ?? error.message);
      }
      throw error;
    }
  }
}

function toSummary(info: WorkflowExecutionInfo): ActionSummary {
  const attributes = info.typedSearchAttributes;
  const phase = attributes.get(SettlePhase);
  return {
    actionId: info.workflowId,
    runId: info.runId,
    ...(attributes.get(SettleType) ? { type: attributes.get(SettleType) } : {}),
    ...(phase && PhaseSchema.safeParse(phase).success ? { phase: phase as Phase } : {}),
    networks: attributes.get(SettleNetworks) ?? [],
    refs: attributes.get(SettleRefs) ?? [],
    execution: info.status.name,
    startedAt: info.startTime.toISOString(),
    ...(info.closeTime ? { closedAt: info.closeTime.toISOString() } : {}),
  };
}

function describeCondition(condition: WaitCondition): string {
  if ('phase' in condition) return `phase ${[condition.phase].flat().join(' or ')}`;
  return `step "${condition.step}" ${[condition.state].flat().join(' or ')}`;
}

function conditionHolds(status: ActionStatus, condition: WaitCondition): boolean {
  if ('phase' in condition) return [condition.phase].flat().includes(status.phase);
  const step = status.steps.find((s) => s.id === condition.step);
  if (!step) {
    throw new ValidationError('wait condition', [{ path: 'step', message: `unknown step "${condition.step}"` }]);
  }
  return [condition.state].flat().includes(step.state);
}
