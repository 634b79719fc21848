/**
 * Delivers reports to workflows as `evidence` signals: one JSON log line and one count per signal. A workflow that is
 * gone (completed, terminated) is not an error: its action is no longer followed.
 */
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { evidenceSignal } from '../../contract/messages';
import type { EvidenceInput } from '../../contract/evidence';
import { reportFields, type Report } from './evidence-rules';
import { errorText, type Logger } from './log';
import type { WatcherMetrics } from './metrics';
import type { WatchedTx } from './watched';
import type { ClaimSigner } from './claim-signer';

export type Delivery = 'sent' | 'gone' | 'failed';

export interface EvidenceSender {
  send(tx: WatchedTx, report: Report): Promise<Delivery>;
}

/** The evidence a report becomes: found by step and ref on its network, from `watcher:<network>`. */
export function toEvidence(tx: Pick<WatchedTx, 'stepId' | 'network' | 'for'>, report: Report, observedAt: string) {
  const evidence: EvidenceInput = {
    step: tx.stepId,
    network: tx.network,
    for: tx.for,
    ...reportFields(report),
    ...(report.kind === 'included' && report.output ? { output: report.output } : {}),
    source: `watcher:${tx.network}`,
    observedAt,
  };
  return evidence;
}

export function temporalSender(
  client: Client,
  logger: Logger,
  metrics: WatcherMetrics,
  sign?: ClaimSigner,
): EvidenceSender {
  // While Temporal is unreachable every due report fails on every head: one warning per distinct error per 30 s.
  const warned = new Map<string, number>();
  return {
    async send(tx, report) {
      const unsigned = toEvidence(tx, report, new Date().toISOString());
      const evidence = sign ? sign(tx.actionId, unsigned) : unsigned;
      // The log line names what the signal says, without its source, time and outputs.
      const { source: _source, observedAt: _observedAt, output: _output, ...said } = unsigned;
      const line = { action: tx.actionId, ...said };
      const started = Date.now();
      try {
        await client.workflow.getHandle(tx.actionId).signal(evidenceSignal, evidence);
      } catch (error) {
        if (error instanceof WorkflowNotFoundError) {
          logger.info('action closed; no longer followed', { action: tx.actionId, network: tx.network });
          return 'gone';
        }
        metrics.count('settle_watcher_signal_failures_total', { network: tx.network });
        const text = errorText(error);
        if (Date.now() - (warned.get(text) ?? 0) >= 30_000) {
          warned.set(text, Date.now());
          logger.warn('signal failed; will retry', { ...line, error: text });
        }
        return 'failed';
      }
      metrics.count('settle_watcher_signals_total', { network: tx.network, kind: report.kind });
      logger.info('signal', { ...line, signalMs: Date.now() - started });
      return 'sent';
    },
  };
}
