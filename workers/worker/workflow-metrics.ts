/**
 * A workflow interceptor module (bundled into the sandbox by the worker when its metrics are on): what an action's
 * workflow learns, reported through the `settleMetrics` sink, since workflow code cannot reach prom-client. Sink calls
 * are not commands (the history does not change) and are not made while replaying, so nothing is counted twice.
 *
 * - evidence signals and operator evidence (`resolveStep`), by network, source and kind, as they are handled;
 * - at the end of each run (the action closes, or continues as new): how long each step stayed in each state before
 *   leaving it, and the finality violations raised, both only for what happened in this run.
 */
import {
  proxySinks,
  workflowInfo,
  type Sinks,
  type WorkflowInterceptors,
  type WorkflowInterceptorsFactory,
} from '@temporalio/workflow';
import type { ActionStatus } from '../../contract/status';
import type { ActionState } from '../../workflows/machine/action';
import { toActionStatus } from '../../workflows/machine/views';

/** Time a step spent in one state, observed when it left it. */
export interface StateDwell {
  network: string;
  state: string;
  seconds: number;
}

export interface EvidenceSeen {
  network: string;
  source: string;
  kind: string;
  via: 'signal' | 'operator';
}

export interface SettleMetricsSinks extends Sinks {
  settleMetrics: {
    evidence(seen: EvidenceSeen): void;
    runEnded(ended: { dwell: StateDwell[]; finalityViolations: { network: string }[] }): void;
  };
}

/** How much of an action's record an earlier run already reported: transitions per step, and alarms. */
interface Reported {
  transitions: Record<string, number>;
  alarms: number;
}

const { settleMetrics } = proxySinks<SettleMetricsSinks>();

export const interceptors: WorkflowInterceptorsFactory = (): WorkflowInterceptors => {
  if (workflowInfo().workflowType !== 'crossNetworkAction') return {};
  let networkOf: Record<string, string> = {};
  let reported: Reported = { transitions: {}, alarms: 0 };
  const runEnded = (status: ActionStatus | undefined) => {
    if (status) settleMetrics.runEnded(newSince(status, reported));
  };
  return {
    inbound: [
      {
        async execute(input, next) {
          const [spec, continued] = input.args as [
            { steps?: { id?: string; network?: string }[] } | undefined,
            { state?: ActionState } | undefined,
          ];
          networkOf = Object.fromEntries(
            (Array.isArray(spec?.steps) ? spec.steps : []).map((s) => [String(s?.id), String(s?.network)]),
          );
          const carried = statusOf(continued?.state);
          if (carried) reported = reportedIn(carried);
          const result = await next(input);
          runEnded(result as ActionStatus);
          return result;
        },
        async handleSignal(input, next) {
          if (input.signalName === 'evidence') {
            const evidence = (input.args[0] ?? {}) as Record<string, unknown>;
            settleMetrics.evidence(seen(evidence, networkOf, 'signal'));
          }
          return next(input);
        },
        async handleUpdate(input, next) {
          const result = await next(input);
          if (input.name === 'resolveStep') {
            const { step, evidence } = (input.args[0] ?? {}) as { step?: unknown; evidence?: Record<string, unknown> };
            settleMetrics.evidence(seen({ ...evidence, step }, networkOf, 'operator'));
          }
          return result;
        },
      },
    ],
    outbound: [
      {
        async continueAsNew(input, next) {
          runEnded(statusOf((input.args[1] as { state?: ActionState } | undefined)?.state));
          return next(input);
        },
      },
    ],
  };
};

function seen(evidence: Record<string, unknown>, networkOf: Record<string, string>, via: EvidenceSeen['via']) {
  const network = typeof evidence.network === 'string' ? evidence.network : networkOf[String(evidence.step)];
  return {
    network: network ?? 'unknown',
    source: typeof evidence.source === 'string' ? evidence.source : 'unknown',
    kind: typeof evidence.kind === 'string' ? evidence.kind : 'unknown',
    via,
  };
}

/** The carried state as a status; a state this code cannot read is not reported rather than failing the workflow. */
function statusOf(state: ActionState | undefined): ActionStatus | undefined {
  if (!state) return undefined;
  try {
    return toActionStatus({ ...state, retrying: state.retrying ?? {} });
  } catch {
    return undefined;
  }
}

function reportedIn(status: ActionStatus): Reported {
  return {
    transitions: Object.fromEntries(status.steps.map((s) => [s.id, s.transitions.length])),
    alarms: status.alarms.length,
  };
}

/**
 * The dwell times and violations in `status` that `reported` has not covered. A step's first state began with the
 * action; times that run backwards (a source's clock) count as zero.
 */
export function newSince(status: ActionStatus, reported: Reported) {
  const dwell: StateDwell[] = [];
  for (const step of status.steps) {
    const from = reported.transitions[step.id] ?? 0;
    step.transitions.forEach((transition, i) => {
      if (i < from) return;
      const entered = i === 0 ? status.startedAt : step.transitions[i - 1].at;
      const seconds = Math.max(0, (Date.parse(transition.at) - Date.parse(entered)) / 1000);
      if (Number.isFinite(seconds)) dwell.push({ network: step.network, state: transition.from, seconds });
    });
  }
  const networkOf = new Map(status.steps.map((s) => [s.id, s.network]));
  const finalityViolations = status.alarms
    .slice(reported.alarms)
    .map((alarm) => ({ network: networkOf.get(alarm.step) ?? 'unknown' }));
  return { dwell, finalityViolations };
}
