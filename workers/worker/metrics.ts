/**
 * The worker's own metrics (prom-client), from two places: the activities it runs (polls and what they observe,
 * submissions, signing-policy refusals), seen by an activity interceptor; and what its action workflows learn
 * (evidence signals, time in each step state, finality violations), reported by the workflow interceptor module
 * `workflow-metrics.ts` through the `settleMetrics` sink. Temporal's own runtime metrics are Core's (see
 * `coreMetricsOptions`), served on the same endpoint.
 */
import type { Context as ActivityContext } from '@temporalio/activity';
import type { ActivityInterceptorsFactory, InjectedSinks } from '@temporalio/worker';
import { collectDefaultMetrics, Counter, Histogram, Registry } from 'prom-client';
import type { Observation, SubmitStepInput } from '../../contract/activity-io';
import { ErrorType } from '../../contract/errors';
import { BoundedLabel } from '../observability';
import type { SettleMetricsSinks } from './workflow-metrics';

/** The bundled interceptor module that feeds the sink. */
export const WORKFLOW_METRICS_MODULE = require.resolve('./workflow-metrics');

/** Seconds: from a block's worth to a week (a step waiting on an operator). */
const DWELL_BUCKETS = [0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600, 24 * 3600, 7 * 24 * 3600];

/**
 * @example
 * const metrics = new WorkerMetrics();
 * await Worker.create({ …, interceptors: { activity: [metrics.activityInterceptor] }, sinks: metrics.sinks });
 */
export class WorkerMetrics {
  readonly registry = new Registry();
  private readonly networks = new BoundedLabel(200);
  private readonly sources = new BoundedLabel(200);
  private readonly kinds = new BoundedLabel(20);
  private readonly states = new BoundedLabel(20);
  private readonly signers = new BoundedLabel(100);

  readonly polls = new Counter({
    name: 'settle_polls_total',
    help: 'checkStep activities (the pull path), by network and outcome: observed (evidence returned), nothing, error.',
    labelNames: ['network', 'outcome'],
    registers: [this.registry],
  });
  readonly evidence = new Counter({
    name: 'settle_evidence_total',
    help: 'Evidence reaching actions, by network, source, kind, and route: signal, poll (checkStep), operator (resolveStep).',
    labelNames: ['network', 'source', 'kind', 'via'],
    registers: [this.registry],
  });
  readonly submissions = new Counter({
    name: 'settle_submissions_total',
    help: 'submitStep activities, by network and outcome: submitted, refused (signing policy or budget), error.',
    labelNames: ['network', 'outcome'],
    registers: [this.registry],
  });
  readonly refusals = new Counter({
    name: 'settle_policy_refusals_total',
    help: 'Submissions the signing policy refused, by network, signer and type (PolicyViolation, BudgetExhausted).',
    labelNames: ['network', 'signer', 'type'],
    registers: [this.registry],
  });
  readonly dwell = new Histogram({
    name: 'settle_step_state_seconds',
    help: 'Time a step spent in a state before leaving it, by network and state (reported when the run ends).',
    labelNames: ['network', 'state'],
    buckets: DWELL_BUCKETS,
    registers: [this.registry],
  });
  readonly violations = new Counter({
    name: 'settle_finality_violations_total',
    help: 'Finality violations (a final block later orphaned), by network (reported when the run ends).',
    labelNames: ['network'],
    registers: [this.registry],
  });

  /** `processMetrics`: the process's own (CPU, memory, event loop lag, GC), under prom-client's standard names. */
  constructor(options: { processMetrics?: boolean } = {}) {
    if (options.processMetrics ?? true) collectDefaultMetrics({ register: this.registry });
  }

  /** Counts polls, observations, submissions and refusals around the activities, without changing them. */
  readonly activityInterceptor: ActivityInterceptorsFactory = (context: ActivityContext) => ({
    inbound: {
      execute: async (input, next) => {
        const type = context.info.activityType;
        if (type !== 'checkStep' && type !== 'submitStep') return next(input);
        const network = this.networks.of((input.args[0] as { network?: unknown } | undefined)?.network);
        try {
          const result = await next(input);
          if (type === 'checkStep') this.polled(network, result as Observation[]);
          else this.submissions.inc({ network, outcome: 'submitted' });
          return result;
        } catch (error) {
          if (type === 'checkStep') this.polls.inc({ network, outcome: 'error' });
          else this.submitFailed(network, input.args[0] as SubmitStepInput | undefined, error);
          throw error;
        }
      },
    },
  });

  /** The sink the workflow interceptor module calls (never during replay). */
  readonly sinks: InjectedSinks<SettleMetricsSinks> = {
    settleMetrics: {
      evidence: {
        fn: (_info, seen) =>
          this.evidence.inc({
            network: this.networks.of(seen.network),
            source: this.sources.of(seen.source),
            kind: this.kinds.of(seen.kind),
            via: seen.via,
          }),
      },
      runEnded: {
        fn: (_info, ended) => {
          for (const { network, state, seconds } of ended.dwell) {
            this.dwell.observe({ network: this.networks.of(network), state: this.states.of(state) }, seconds);
          }
          for (const { network } of ended.finalityViolations)
            this.violations.inc({ network: this.networks.of(network) });
        },
      },
    },
  };

  private polled(network: string, observations: Observation[] | undefined): void {
    const seen = Array.isArray(observations) ? observations : [];
    this.polls.inc({ network, outcome: seen.length > 0 ? 'observed' : 'nothing' });
    for (const observation of seen) {
      this.evidence.inc({
        network,
        source: this.sources.of(observation.source),
        kind: this.kinds.of(observation.kind),
        via: 'poll',
      });
    }
  }

  private submitFailed(network: string, input: SubmitStepInput | undefined, error: unknown): void {
    const type = (error as { type?: unknown })?.type;
    if (type === ErrorType.PolicyViolation || type === ErrorType.BudgetExhausted) {
      const signer = (input?.operation as { signer?: unknown } | undefined)?.signer;
      this.refusals.inc({ network, signer: this.signers.of(signer), type });
      this.submissions.inc({ network, outcome: 'refused' });
    } else {
      this.submissions.inc({ network, outcome: 'error' });
    }
  }
}

/**
 * Temporal's runtime metrics (task slots, poll latencies, schedule-to-start, sticky cache…): Core's Prometheus exporter
 * on a private loopback address, which the worker's endpoint scrapes and serves after its own.
 */
export function coreMetricsOptions(bindAddress: string) {
  return {
    metrics: {
      prometheus: { bindAddress, countersTotalSuffix: true, unitSuffix: true, useSecondsForDurations: true },
    },
  };
}
