import { ApplicationFailure } from '@temporalio/common';
import { createWebhookActivities, type WebhookActivities, type WebhookDeps } from './webhook';
import type {
  CheckStepInput,
  NetworkAdapter,
  NetworkInfo,
  Observation,
  SubmitStepInput,
  SubmitStepResult,
} from './types';

export type {
  CheckStepInput,
  NetworkAdapter,
  NetworkInfo,
  Observation,
  SubmitStepInput,
  SubmitStepResult,
} from './types';

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

/** What the workflow learns about the deployment once per run (a local activity, recorded in history). */
export interface DeploymentInfo {
  networks: Record<string, NetworkInfo>;
  /** Whether transitions of this action are pushed to a webhook. */
  notifications: boolean;
}

/**
 * Creates the activities with their clients and signers: secrets stay in the worker.
 *
 * @example
 * const worker = await Worker.create({ activities: createActivities({ networks, adapters }), … });
 */
export function createActivities(deps: ActivityDeps) {
  const adapterFor = (network: string): NetworkAdapter => {
    const adapter = deps.adapters[network];
    if (!adapter) {
      throw ApplicationFailure.nonRetryable(`this worker has no adapter for network "${network}"`, 'UnknownNetwork');
    }
    return adapter;
  };

  const webhook: WebhookActivities = deps.webhook
    ? createWebhookActivities(deps.webhook)
    : { deliverNotification: async () => ({ delivered: false }) };

  return {
    ...webhook,

    /** Network defaults and notification settings for the workflow: read once per run. */
    async describeDeployment(input: { networks: string[]; webhook: boolean }): Promise<DeploymentInfo> {
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

    /** Submits one operation attempt. Idempotent per (action, step, attempt, operation|compensation). */
    async submitStep(input: SubmitStepInput): Promise<SubmitStepResult> {
      return adapterFor(input.network).submit(input);
    },

    /** Reads what the network says about a step's transactions now (the pull path). */
    async checkStep(input: CheckStepInput): Promise<Observation[]> {
      return adapterFor(input.network).check(input);
    },
  };
}

export type SettleActivities = ReturnType<typeof createActivities>;
