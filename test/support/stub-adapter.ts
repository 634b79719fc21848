import type {
  CheckStepInput,
  NetworkAdapter,
  NetworkInfo,
  Observation,
  SubmitStepInput,
  SubmitStepResult,
} from '../../contract/activity-io';

/**
 * An in-memory network for workflow tests: submissions get deterministic refs, and `check` answers from a script the
 * test sets (or from a simple chain model that confirms one block per check).
 */
export class StubAdapter implements NetworkAdapter {
  readonly submissions: SubmitStepInput[] = [];
  readonly checks: CheckStepInput[] = [];
  /** Answers to `check`; when unset, the model chain reports inclusion, then one more confirmation per poll. */
  answer?: (input: CheckStepInput, nth: number) => Observation[];
  /** Make `submit` fail like a reverted transaction for these step ids (operation or compensation). */
  revert = new Set<string>();
  /** Make `submit` fail like an unreachable RPC this many times per step id (a retryable error). */
  unreachable = new Map<string, number>();
  /** Answer a submission that asks to `observe` with its inclusion (one confirmation), as a chain that mined it at once. */
  includedAtSubmit = false;
  private readonly polls = new Map<string, number>();

  constructor(readonly network: string) {}

  async submit(input: SubmitStepInput): Promise<SubmitStepResult> {
    this.submissions.push(input);
    const outages = this.unreachable.get(input.stepId) ?? 0;
    if (outages > 0) {
      this.unreachable.set(input.stepId, outages - 1);
      throw new Error('fetch failed: connect ECONNREFUSED (RPC unreachable)');
    }
    const key = `${input.for}:${input.stepId}`;
    if (this.revert.has(key) || this.revert.has(input.stepId)) {
      const { ApplicationFailure } = await import('@temporalio/common');
      throw ApplicationFailure.nonRetryable(`execution reverted: ${input.stepId} refused`, 'ExecutionReverted');
    }
    // A nonce record's key names the attempt whose transaction this is: a retry carrying one on gets the same ref.
    // (and a compensation run again gets a new one: its key ends in `compensation-<n>`). Asked to cancel what is
    // pending, it answers with a no-op at the same nonce, as the EVM sender does.
    if (input.cancelIfPending) {
      const noop = refFor(input.actionId, input.stepId, input.attempt, 'noop');
      return { ref: noop, output: { cancels: refFor(input.actionId, input.stepId, input.attempt, input.for) } };
    }
    const [keyAttempt, target] = input.nonceKey
      ? [Number(input.nonceKey.split('/').at(-2)), input.nonceKey.split('/').at(-1)!]
      : [input.attempt, input.for];
    const ref = refFor(input.actionId, input.stepId, keyAttempt, target);
    if (!input.observe || !this.includedAtSubmit) return { ref, output: { network: this.network } };
    const block = { number: '100', hash: blockHash(ref) };
    const seen: Observation = { kind: 'confirmed', ref, block, confirmations: 1, source: `stub:${this.network}` };
    return { ref, output: { network: this.network }, observations: [seen] };
  }

  async check(input: CheckStepInput): Promise<Observation[]> {
    this.checks.push(input);
    const key = `${input.actionId}:${input.stepId}:${input.for}:${input.attempt}`;
    const nth = (this.polls.get(key) ?? 0) + 1;
    this.polls.set(key, nth);
    if (this.answer) return this.answer(input, nth);
    const ref = input.refs[input.refs.length - 1];
    if (!ref) return [];
    const block = { number: '100', hash: blockHash(ref) };
    return [{ kind: 'confirmed', ref, block, confirmations: nth, source: `stub:${this.network}` }];
  }
}

export function refFor(actionId: string, stepId: string, attempt: number, target = 'operation'): string {
  return `0x${Buffer.from(`${actionId}/${stepId}/${attempt}/${target}`).toString('hex').padEnd(64, '0').slice(0, 64)}`;
}

export function blockHash(seed: string, fork = 0): string {
  let h = 0n;
  for (const c of `${seed}#${fork}`) h = (h * 131n + BigInt(c.charCodeAt(0))) % (1n << 255n);
  return `0x${h.toString(16).padStart(64, '0')}`;
}

export function networkInfo(network: string, overrides: Partial<NetworkInfo> = {}): NetworkInfo {
  return {
    network,
    finality: { confirmations: 2 },
    pollIntervalMs: 60_000,
    maxPollIntervalMs: 120_000,
    pollable: true,
    canSubmit: true,
    ...overrides,
  };
}
