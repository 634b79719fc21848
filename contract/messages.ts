import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { EvidenceInput } from './evidence';
import type { ActionStatus } from './status';
import type { CancelInput, CompensateInput, ResolveStepInput, RetryStepInput } from './updates';

/** Public contract v1: the names other programs rely on. */
export const WORKFLOW_TYPE = 'crossNetworkAction';

/** An observer reports what it saw about a step (validated inside the workflow; invalid evidence is logged and dropped). */
export const evidenceSignal = defineSignal<[EvidenceInput]>('evidence');
export const statusQuery = defineQuery<ActionStatus>('status');
export const retryStepUpdate = defineUpdate<ActionStatus, [RetryStepInput]>('retryStep');
export const compensateUpdate = defineUpdate<ActionStatus, [CompensateInput]>('compensate');
export const cancelUpdate = defineUpdate<ActionStatus, [CancelInput]>('cancel');
export const resolveStepUpdate = defineUpdate<ActionStatus, [ResolveStepInput]>('resolveStep');
