/**
 * What every bundle of Settle's workflows is built from: the worker's (`workers/worker/main.ts`), the tests'
 * (`test/support/temporal.ts`) and the benches', so that tests and benches run the bundle production runs.
 */
import path from 'node:path';
import type { BundleOptions } from '@temporalio/worker';

const WORKFLOWS = path.resolve(__dirname, '../../workflows');

/**
 * `preloadModules`: workflows/shared-modules.ts, loaded once per worker and shared by every workflow in its reusable V8
 * context (zod, the contract's schemas, the machine), instead of once per cached workflow.
 *
 * @example const workflowBundle = await bundleWorkflowCode({ ...workflowBundleOptions, logger });
 */
export const workflowBundleOptions = {
  workflowsPath: WORKFLOWS,
  preloadModules: [path.join(WORKFLOWS, 'shared-modules')],
} satisfies BundleOptions;
