/** Human-readable views of an action for the CLI: the live table, plain transition lines, list rows. */
import type { ActionStatus, StepStatus } from '../../contract/status';
import type { TransitionEvent } from '../../contract/transition-events';
import type { ActionSummary } from '../settle-client';

/** The whole status as a table: each step, its network, state, confirmations, and local vs global progress. */
export function renderStatus(status: ActionStatus): string {
  const { progress } = status;
  const lines = [
    `${status.actionId}  ${status.type}  phase: ${status.phase}${status.reason ? ` (${status.reason})` : ''}`,
    `progress: local ${progress.locallyConfirmed}/${progress.total} included or final · global ${progress.final}/${progress.total} final`,
    '',
    ...table(
      ['STEP', 'NETWORK', 'STATE', 'CONFIRMATIONS', 'REF', 'SINCE'],
      status.steps.map((step) => [
        step.id,
        step.network,
        step.state + (step.compensation ? ` (compensation ${step.compensation.state})` : ''),
        confirmations(step),
        shorten(step.ref),
        step.transitions.at(-1)?.at ?? '',
      ]),
    ),
  ];
  for (const alarm of status.alarms) lines.push(`ALARM: step ${alarm.step}: ${alarm.evidence} (${alarm.source})`);
  lines.push('', `updated ${status.updatedAt}`);
  return lines.join('\n');
}

function confirmations(step: StepStatus): string {
  const need = 'confirmations' in step.finality ? String(step.finality.confirmations) : step.finality.tag;
  return step.confirmations === undefined ? `-/${need}` : `${step.confirmations}/${need}`;
}

function shorten(ref: string | undefined): string {
  if (!ref) return '';
  return ref.length > 18 ? `${ref.slice(0, 10)}…${ref.slice(-6)}` : ref;
}

/** One line per transition, for logs and pipes. */
export function renderTransition(event: TransitionEvent): string {
  const who = [event.source, event.operator && `operator ${event.operator}`, event.reason].filter(Boolean).join('; ');
  const subject =
    event.kind === 'phase'
      ? 'phase'
      : `step ${event.step}@${event.network}${event.for === 'compensation' ? ' (compensation)' : ''}`;
  const extra = [event.ref && `ref ${event.ref}`, event.confirmations !== undefined && `${event.confirmations} conf`]
    .filter(Boolean)
    .join(', ');
  return `${event.at}  ${subject}: ${event.from} → ${event.to}${extra ? ` [${extra}]` : ''}  (${who})`;
}

export function renderProgress(status: ActionStatus): string {
  const { progress } = status;
  return `${status.actionId}: phase ${status.phase} · local ${progress.locallyConfirmed}/${progress.total} · global ${progress.final}/${progress.total}`;
}

export function renderSummaries(actions: ActionSummary[]): string {
  if (actions.length === 0) return 'no actions';
  return table(
    ['ACTION', 'TYPE', 'PHASE', 'NETWORKS', 'STARTED', 'REFS'],
    actions.map((a) => [
      a.actionId,
      a.type ?? '',
      a.phase ?? a.execution.toLowerCase(),
      a.networks.join(','),
      a.startedAt,
      String(a.refs.length),
    ]),
  ).join('\n');
}

function table(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  return [header, ...rows].map((row) =>
    row
      .map((cell, i) => cell.padEnd(widths[i]))
      .join('  ')
      .trimEnd(),
  );
}
