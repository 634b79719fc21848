import { ErrorType, nonRetryable } from '../contract/errors';
import { createWebhookActivities, type WebhookActivities, type WebhookDeps } from '../networks/webhook/sender';
import type { NetworkAdapter, NetworkInfo, SettleActivities } from '../contract/activity-io';

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
  /** Push notifications: the signing secret and the deployment's default URL. Without it, none are sent. */
  webhook?: WebhookDeps;
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
        };
      }
      return { networks: described, notifications: !!deps.webhook && (input.webhook || !!deps.webhook.defaultUrl) };
    },

    async submitStep(input) {
      return adapterFor(input.network).submit(input);
    },

    async checkStep(input) {
      return adapterFor(input.network).check(input);
    },
  };
}
