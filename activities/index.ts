import { ErrorType, nonRetryable } from '../contract/errors';
import { createWebhookActivities, type WebhookActivities, type WebhookDeps } from '../networks/webhook/sender';
import {
  networkTaskQueue,
  type DeploymentInfo,
  type NetworkAdapter,
  type NetworkInfo,
  type SettleActivities,
} from '../contract/activity-io';

export type {
  CheckStepInput,
  DeploymentInfo,
  SettleActivities,
  NetworkAdapter,
  NetworkInfo,
  Observation,
  SubmitStepInput,
  SubmitStepResult,
} from '../contract/activity-io';

export interface ActivityDeps {
  /** What the worker knows of each network (finality default, polling). */
  networks: Record<string, NetworkInfo>;
  /** One adapter per network this worker can reach; signers and RPC clients live inside them, never in history. */
  adapters: Record<string, NetworkAdapter>;
  /** Polling defaults for networks with no configuration (external systems that report by signal). */
  defaultPollIntervalMs?: number;
  /** Push notifications (see `webhookDeps`): secrets, URL, endpoints, allowed hosts. Without it, none are sent. */
  webhook?: WebhookDeps;
  /**
   * The deployment routes each network's activities to its own task queue (`networkTaskQueue`), served by workers
   * that hold the network ({@link servedTaskQueues}); the workflow reads it once per action.
   */
  routeByNetwork?: boolean;
  /** Whose claims this deployment trusts, and whether unproven chain claims are checked first (see DeploymentInfo). */
  trust?: DeploymentInfo['trust'];
}

/**
 * Creates the activities with their clients and signers: secrets stay in the worker.
 *
 * @example
 * const worker = await Worker.create({ activities: createActivities({ networks, adapters }), … });
 */
export function createActivities(deps: ActivityDeps): SettleActivities {
  const adapterFor = (network: string): NetworkAdapter => {
    const adapter = deps.adapters[network];
    if (!adapter) throw nonRetryable(ErrorType.UnknownNetwork, `this worker has no adapter for network "${network}"`);
    return adapter;
  };

  const webhook: WebhookActivities = deps.webhook
    ? createWebhookActivities(deps.webhook)
    : { deliverNotification: async () => ({ delivered: false }) };

  return {
    ...webhook,

    async describeDeployment(input) {
      const described: Record<string, NetworkInfo> = {};
      const networks = input.networks;
      for (const network of networks) {
        described[network] = deps.networks[network] ?? {
          network,
          finality: { tag: 'finalized' },
          pollIntervalMs: deps.defaultPollIntervalMs ?? 60_000,
          maxPollIntervalMs: 10 * 60_000,
          pollable: false,
          canSubmit: false,
          configured: false,
        };
      }
      return {
        networks: described,
        notifications: !!deps.webhook && (input.webhook || !!deps.webhook.defaultUrl),
        ...(deps.routeByNetwork ? { routing: 'by-network' as const } : {}),
        ...(deps.trust ? { trust: deps.trust } : {}),
      };
    },

    async describeNetwork({ network }) {
      const info = deps.networks[network];
      if (!info) throw nonRetryable(ErrorType.UnknownNetwork, `this worker has no configuration for "${network}"`);
      return info;
    },

    async submitStep(input) {
      return adapterFor(input.network).submit(input);
    },

    async checkStep(input) {
      return adapterFor(input.network).check(input);
    },
  };
}

/**
 * The network task queues a worker with these deps serves when routing by network: those of the networks it holds an
 * adapter for and may send on.
 *
 * @example for (const queue of servedTaskQueues(deps, 'settle')) await Worker.create({ taskQueue: queue, activities });
 */
export function servedTaskQueues(deps: ActivityDeps, taskQueue: string): string[] {
  return Object.values(deps.networks)
    .filter((info) => info.canSubmit && deps.adapters[info.network])
    .map((info) => networkTaskQueue(taskQueue, info.network));
}
