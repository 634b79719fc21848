/** The table a chaos run prints, and the raw data it writes (`bench/results/chaos.json`). */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { FAULT_KINDS, type InjectedFault } from './faults';
import { ACTION_KINDS, type PlannedAction } from './load';
import type { ChaosOptions } from './options';
import type { Verdict } from './verdict';

export interface ChaosResult {
  options: ChaosOptions;
  startedAt: string;
  wallSeconds: number;
  actions: { planned: number; started: number; byKind: Record<string, number>; viaApi: number };
  faults: { byKind: Record<string, number>; missed: Record<string, number>; list: InjectedFault[] };
  unplannedRestarts: Record<string, number>;
  broadcasts: Record<string, { broadcasts: number; replacements: number }>;
  verdict: Verdict;
  /** The acceptance zeros, and (full profile) the minimum numbers of faults. */
  passed: boolean;
  failures: string[];
}

export function countFaults(list: InjectedFault[]) {
  const byKind: Record<string, number> = {};
  const missed: Record<string, number> = {};
  for (const kind of FAULT_KINDS) {
    byKind[kind] = list.filter((f) => f.kind === kind && f.struck).length;
    missed[kind] = list.filter((f) => f.kind === kind && !f.struck).length;
  }
  return { byKind, missed };
}

export function countActions(actions: PlannedAction[], started: Set<string>) {
  const byKind: Record<string, number> = {};
  for (const kind of ACTION_KINDS) byKind[kind] = actions.filter((a) => a.kind === kind).length;
  return {
    planned: actions.length,
    started: started.size,
    byKind,
    viaApi: actions.filter((a) => a.via === 'api').length,
  };
}

/** Worker kills of every kind (at a random moment, and at each exact point of a submission). */
export function workerKills(faults: ChaosResult['faults']): number {
  const kinds = [
    'worker-kill',
    'worker-kill-before-broadcast',
    'worker-kill-after-broadcast',
    'worker-kill-in-fee-bump',
  ];
  return kinds.map((k) => faults.byKind[k]).reduce((a, b) => a + b, 0);
}

/** A Markdown table (it goes into the README as printed). */
export function table(result: ChaosResult): string {
  const { verdict, faults, actions } = result;
  const kills = workerKills(faults);
  const can = Object.entries(verdict.continueAsNew)
    .map(([type, n]) => `${n} ${type}`)
    .join(', ');
  const rows: [string, string][] = [
    ['seed', String(result.options.seed)],
    [
      'actions (by kind)',
      `${actions.started} started of ${actions.planned}: ${Object.entries(actions.byKind)
        .map(([k, n]) => `${n} ${k}`)
        .join(', ')}; ${actions.viaApi} through the HTTP API`,
    ],
    [
      'faults injected (by kind)',
      FAULT_KINDS.filter((k) => faults.byKind[k] || faults.missed[k])
        .map((k) => `${faults.byKind[k]} ${k}${faults.missed[k] ? ` (+${faults.missed[k]} missed)` : ''}`)
        .join(', ') + `; worker kills in all: ${kills}`,
    ],
    [
      'continue-as-new (runs continued)',
      `${can || '0'}; of actions that compensated: ${verdict.actions
        .filter((a) => ['compensated', 'cancelled'].includes(a.phase))
        .reduce((n, a) => n + a.continuedRuns, 0)}`,
    ],
    [
      'completed / compensated / held (needs_action) / other',
      `${verdict.byPhase.completed ?? 0} / ${verdict.byPhase.compensated ?? 0} / ${verdict.byPhase.needs_action ?? 0} / ${
        Object.entries(verdict.byPhase)
          .filter(([p]) => !['completed', 'compensated', 'needs_action'].includes(p))
          .map(([p, n]) => `${n} ${p}`)
          .join(', ') || '0'
      }`,
    ],
    ['duplicate effects', String(verdict.duplicateEffects)],
    ['lost actions', String(verdict.lost)],
    ['stuck actions', String(verdict.stuck)],
    ['false finals', String(verdict.falseFinals)],
    [
      'finals reached before the deeper-than-policy reorg and contradicted by it: alarm raised / not',
      `${verdict.alarmedFinals} / ${verdict.closedBeforeDeepReorg}`,
    ],
    [
      'signer transactions not accounted for by an action / nonce gaps left open',
      `${verdict.unaccountedTransactions} / ${verdict.openNonceGaps}`,
    ],
    ['extra transactions sent (mined, reverted)', String(verdict.extraTransactions)],
    ['balances that do not add up', String(verdict.balanceProblems.length)],
    [
      'private keys found in logs / histories',
      `${verdict.secretLeaks.length} (scanned ${verdict.logsScanned} logs, ${verdict.historiesScanned} histories)`,
    ],
    ['wall time', `${Math.round(result.wallSeconds)} s`],
  ];
  return ['| | |', '|---|---|', ...rows.map(([k, v]) => `| ${k} | ${v} |`)].join('\n');
}

export function writeResult(file: string, result: ChaosResult): void {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify(result, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v), 2)}\n`);
}
