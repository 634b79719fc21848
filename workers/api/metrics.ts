/**
 * The API process's metrics (prom-client): its HTTP requests, and a sampler of Temporal visibility that gives the
 * deployment-wide view no single worker has: actions by phase (`SettlePhase`), actions with no transition for longer
 * than a threshold (stuck), and each nonce owner's backlog of signed, unsettled transactions.
 */
import type { Client } from '@temporalio/client';
import type { FastifyInstance } from 'fastify';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { statusQuery } from '../../contract/messages';
import { isTerminalPhase, PhaseSchema } from '../../contract/status';
import { nonceBookQuery, SIGNER_NONCES_WORKFLOW } from '../../workflows/signer-nonces';

const ACTION_WORKFLOW = 'crossNetworkAction';
const PHASES = PhaseSchema.options;

export interface VisibilitySamplerOptions {
  /** How often visibility is read. */
  everyMs: number;
  /** An action whose last transition is older than this is stuck. */
  stuckAfterMs: number;
  /** At most this many running actions older than the threshold get their status read per sample. */
  stuckScanLimit: number;
  /** Each status or nonce-book query may take this long. */
  queryTimeoutMs?: number;
  now?: () => number;
}

export class ApiMetrics {
  readonly registry = new Registry();

  readonly requests = new Counter({
    name: 'settle_api_requests_total',
    help: 'HTTP requests answered, by method, route (its pattern) and status code.',
    labelNames: ['method', 'route', 'status'],
    registers: [this.registry],
  });
  readonly latency = new Histogram({
    name: 'settle_api_request_seconds',
    help: 'Time to answer a request (event streams excluded), by method and route.',
    labelNames: ['method', 'route'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  readonly actions = new Gauge({
    name: 'settle_actions',
    help: 'Actions by phase (SettlePhase in Temporal visibility; closed ones while the namespace retains them).',
    labelNames: ['phase'],
    registers: [this.registry],
  });
  readonly stuck = new Gauge({
    name: 'settle_actions_stuck',
    help: 'Running actions with no transition for longer than SETTLE_API_METRICS_STUCK_AFTER, by phase.',
    labelNames: ['phase'],
    registers: [this.registry],
  });
  readonly stuckScanComplete = new Gauge({
    name: 'settle_actions_stuck_scan_complete',
    help: '1 when the last sample read every candidate for settle_actions_stuck, 0 when it hit the scan limit.',
    registers: [this.registry],
  });
  readonly nonceBacklog = new Gauge({
    name: 'settle_nonce_owner_backlog',
    help: 'Transactions a nonce owner holds signed and not yet settled (mined deep or replaced), by owner.',
    labelNames: ['owner'],
    registers: [this.registry],
  });
  readonly nonceNext = new Gauge({
    name: 'settle_nonce_owner_next_nonce',
    help: 'The next nonce a nonce owner hands out, by owner.',
    labelNames: ['owner'],
    registers: [this.registry],
  });
  readonly samples = new Counter({
    name: 'settle_visibility_samples_total',
    help: 'Visibility samples taken for the gauges above, by outcome (ok, error).',
    labelNames: ['outcome'],
    registers: [this.registry],
  });

  /** `processMetrics`: the process's own (CPU, memory, event loop lag, GC), under prom-client's standard names. */
  constructor(options: { processMetrics?: boolean } = {}) {
    if (options.processMetrics ?? true) collectDefaultMetrics({ register: this.registry });
  }

  /** Counts every answered request by its route pattern (never the raw URL: ids would grow the registry). */
  instrument(app: FastifyInstance): void {
    app.addHook('onResponse', async (request, reply) => {
      const route = request.routeOptions.url ?? 'unmatched';
      const labels = { method: request.method, route };
      this.requests.inc({ ...labels, status: String(reply.statusCode) });
      if (!route.endsWith('/events')) this.latency.observe(labels, reply.elapsedTime / 1000);
    });
  }

  /** Reads visibility every `everyMs` (first at once); `stop()` ends it. */
  startSampler(client: Client, options: VisibilitySamplerOptions): { stop(): Promise<void> } {
    let running: Promise<void> = Promise.resolve();
    const sample = () => {
      running = this.sample(client, options).then(
        () => void this.samples.inc({ outcome: 'ok' }),
        () => void this.samples.inc({ outcome: 'error' }),
      );
    };
    sample();
    const timer = setInterval(() => void running.then(sample), options.everyMs);
    timer.unref();
    return {
      async stop() {
        clearInterval(timer);
        await running;
      },
    };
  }

  async sample(client: Client, options: VisibilitySamplerOptions): Promise<void> {
    await Promise.all([
      this.samplePhases(client),
      this.sampleStuck(client, options),
      this.sampleOwners(client, options),
    ]);
  }

  /** One count per phase; runs that continued as new are left out (their successor carries the action). */
  private async samplePhases(client: Client): Promise<void> {
    const counts = await Promise.all(
      PHASES.map((phase) =>
        client.workflow.count(
          `WorkflowType = '${ACTION_WORKFLOW}' AND ExecutionStatus != 'ContinuedAsNew' AND SettlePhase = '${phase}'`,
        ),
      ),
    );
    PHASES.forEach((phase, i) => this.actions.set({ phase }, counts[i].count));
  }

  /**
   * Only a running action started longer ago than the threshold can be stuck: visibility lists those (cheap), and their
   * `status` (its `updatedAt`: the last transition) decides, for at most `stuckScanLimit` of them.
   */
  private async sampleStuck(client: Client, options: VisibilitySamplerOptions): Promise<void> {
    const now = options.now?.() ?? Date.now();
    const since = new Date(now - options.stuckAfterMs).toISOString();
    const query = `WorkflowType = '${ACTION_WORKFLOW}' AND ExecutionStatus = 'Running' AND StartTime < '${since}'`;
    const ids: string[] = [];
    let complete = true;
    for await (const execution of client.workflow.list({ query, pageSize: 100 })) {
      if (ids.length >= options.stuckScanLimit) {
        complete = false;
        break;
      }
      ids.push(execution.workflowId);
    }
    const byPhase = new Map<string, number>(PHASES.filter((p) => !isTerminalPhase(p)).map((p) => [p, 0]));
    for (const id of ids) {
      const status = await withTimeout(client.workflow.getHandle(id).query(statusQuery), options.queryTimeoutMs).catch(
        () => undefined,
      );
      if (!status || isTerminalPhase(status.phase)) continue;
      if (now - Date.parse(status.updatedAt) > options.stuckAfterMs) {
        byPhase.set(status.phase, (byPhase.get(status.phase) ?? 0) + 1);
      }
    }
    for (const [phase, count] of byPhase) this.stuck.set({ phase }, count);
    this.stuckScanComplete.set(complete ? 1 : 0);
  }

  /** One `nonceBook` query per running owner: its records are the transactions it holds unsettled. */
  private async sampleOwners(client: Client, options: VisibilitySamplerOptions): Promise<void> {
    const query = `WorkflowType = '${SIGNER_NONCES_WORKFLOW}' AND ExecutionStatus = 'Running'`;
    const books: [string, { records: number; next: number }][] = [];
    for await (const execution of client.workflow.list({ query, pageSize: 100 })) {
      const book = await withTimeout(
        client.workflow.getHandle(execution.workflowId).query(nonceBookQuery),
        options.queryTimeoutMs,
      ).catch(() => undefined);
      if (book && !book.movedTo) books.push([execution.workflowId, book]);
    }
    // Replaced at once, so that an owner that retired (or a scrape in the middle of a sample) shows no stale value.
    this.nonceBacklog.reset();
    this.nonceNext.reset();
    for (const [owner, book] of books) {
      this.nonceBacklog.set({ owner }, book.records);
      this.nonceNext.set({ owner }, book.next);
    }
  }
}

function withTimeout<T>(promise: Promise<T>, ms = 5_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
