/**
 * What the action shows: the `status` query's ActionStatus, the Web UI's steps table and route summary. Pure: no
 * Temporal imports.
 */
import type { ActionStatus } from '../../contract/status';
import { policyOf, type ActionState } from './action';
import { toStepStatus } from './step';

export function toActionStatus(state: ActionState): ActionStatus {
  const steps = state.spec.steps.map((s) => {
    const status = toStepStatus(state.steps[s.id], policyOf(state, s.id));
    const retrying = state.retrying[`${s.id}:operation`] ?? state.retrying[`${s.id}:compensation`];
    return retrying ? { ...status, retrying } : status;
  });
  return {
    actionId: state.spec.actionId,
    type: state.spec.type,
    phase: state.phase,
    progress: {
      total: steps.length,
      locallyConfirmed: steps.filter((s) => s.state === 'included' || s.state === 'final').length,
      final: steps.filter((s) => s.state === 'final').length,
    },
    steps,
    alarms: state.alarms,
    ...(state.claims?.length ? { claims: state.claims } : {}),
    phaseTransitions: state.phaseTransitions,
    ...(state.reason ? { reason: state.reason } : {}),
    startedAt: state.startedAt,
    updatedAt: state.updatedAt,
  };
}

export { routeSummary } from '../../contract/action-spec';

/** A markdown table of the steps, shown as the run's current details in the Web UI. */
export function stepsTable(status: ActionStatus): string {
  const rows = status.steps.map((s) => {
    const confirmations = s.confirmations === undefined ? '' : String(s.confirmations);
    const need = 'confirmations' in s.finality ? `/${s.finality.confirmations}` : ` (${s.finality.tag})`;
    const compensation = s.compensation ? ` · compensation ${s.compensation.state}` : '';
    return `| ${s.id} | ${s.network} | ${s.state}${compensation} | ${s.ref ?? ''} | ${confirmations}${confirmations ? need : ''} |`;
  });
  const alarms = status.alarms.map((a) => `\n**Finality violation**: step ${a.step}: ${a.evidence}`).join('');
  return (
    [
      `**${status.phase}** · ${status.progress.locallyConfirmed}/${status.progress.total} locally confirmed · ${status.progress.final}/${status.progress.total} final`,
      '',
      '| step | network | state | ref | confirmations |',
      '| --- | --- | --- | --- | --- |',
      ...rows,
    ].join('\n') + alarms
  );
}
