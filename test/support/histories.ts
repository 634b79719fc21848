import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';

export const HISTORIES_DIR = path.resolve(__dirname, '../fixtures/histories');

/**
 * Saves a run's history as a replay fixture when SETTLE_RECORD_HISTORIES=1 (`npm run histories:record`).
 * Fixtures are recorded once, from the workflow code of the day, and replayed by every later test run: a change
 * that would break running workflows then fails CI. An existing fixture is never overwritten.
 */
export async function recordHistory(name: string, handle: WorkflowHandle): Promise<void> {
  if (process.env.SETTLE_RECORD_HISTORIES !== '1') return;
  const file = path.join(HISTORIES_DIR, `${name}.json`);
  // Released histories are never re-recorded: a change of the command sequence gets a new fixture beside them.
  if (existsSync(file)) return;
  const history = await handle.fetchHistory();
  mkdirSync(HISTORIES_DIR, { recursive: true });
  writeFileSync(file, historyToJSON(history));
}
