/**
 * Routing by network: when the deployment says so (`DeploymentInfo.routing`), a network's submissions and checks go
 * to its own task queue, which only workers that hold the network and may send on it poll.
 */
import { ActivityFailure, type ActivityOptions, log, TimeoutFailure, workflowInfo } from '@temporalio/workflow';
import { networkTaskQueue } from '../../contract/activity-io';
import type { ActionRun } from './action-run';
import { DESCRIBE_NETWORK_OPTIONS, describeNetwork, ROUTED_SCHEDULE_TO_START } from './activity-profiles';

/**
 * With routing by network, a network's activities go to its task queue: only workers that hold it poll there.
 * `scheduleToStart` bounds how long a call waits for such a worker.
 */
export function routed(
  run: ActionRun,
  network: string,
  scheduleToStart: ActivityOptions['scheduleToStartTimeout'] = ROUTED_SCHEDULE_TO_START,
): Partial<ActivityOptions> {
  if (run.state.routing !== 'by-network') return {};
  return { taskQueue: networkTaskQueue(workflowInfo().taskQueue, network), scheduleToStartTimeout: scheduleToStart };
}

/** The worker that described the deployment had no configuration for this network, and routing may find one. */
export function unknownNetwork(run: ActionRun, network: string): boolean {
  return run.state.routing === 'by-network' && run.state.networks[network]?.configured === false;
}

/**
 * The worker that described the deployment may not hold a network another worker serves: its placeholder is never
 * frozen into the action. Before relying on it, ask a worker on the network's queue; nobody there, ask again later.
 */
export async function learnNetwork(run: ActionRun, network: string): Promise<void> {
  try {
    const info = await describeNetwork.executeWithOptions(
      { ...DESCRIBE_NETWORK_OPTIONS, ...routed(run, network, '30s'), summary: `describe ${network}` },
      [{ network }],
    );
    run.state.networks[network] = info;
    run.state.version++;
  } catch (error) {
    log.warn('no worker described the network yet', { network, error: String(error) });
  }
}

/** A call that no worker picked up in time: with routing, no worker serving the network is up. */
export function unserved(error: unknown): boolean {
  return (
    error instanceof ActivityFailure &&
    error.cause instanceof TimeoutFailure &&
    error.cause.timeoutType === 'SCHEDULE_TO_START'
  );
}
