/**
 * The sender's guard at the last moment before signing: each signer's compiled policy, checked on the transaction
 * about to be signed, and its budgets, asked of the signer's nonce owner (which reserves them in the same update that
 * records the signed transaction).
 */
import { ApplicationFailure } from '@temporalio/common';
import { formatDuration } from '../../contract/duration';
import { ErrorType, nonRetryable } from '../../contract/errors';
import { parseOrThrow } from '../../contract/validation';
import type { BudgetRefusal, Spend } from '../../workflows/machine/nonce-book';
import { ConfigError } from '../config';
import type { NonceOwner } from './nonce-owner';
import {
  checkCall,
  compilePolicy,
  routeLabel,
  SignerPolicySchema,
  type CheckedCall,
  type CompiledPolicy,
  type SignerPolicyInput,
} from './signing-policy';

export interface SigningGuardOptions {
  network: string;
  send: boolean;
  /** Signer name → private key (only the names are read here). */
  signers: Record<string, unknown>;
  /** Signer name → its policy on this network. A signer that may send needs one. */
  policies: Record<string, SignerPolicyInput>;
}

/**
 * One network's signing policies. A signer without a policy on a network that may send is a start-up error: a
 * deployment never signs for a signer nobody wrote rules for.
 *
 * @example const spend = guard.check('bridge', { to, data, value }); // throws PolicyViolation, or returns the spend
 */
export class SigningGuard {
  private readonly policies = new Map<string, CompiledPolicy>();

  constructor(private readonly options: SigningGuardOptions) {
    const { network } = options;
    for (const signer of Object.keys(options.signers)) {
      const policy = options.policies[signer];
      if (!policy) {
        if (!options.send) continue;
        throw new ConfigError(
          `networks.${network}.policies.${signer}: signer "${signer}" may send on ${network} but has no signing policy ` +
            '(a signer without a policy signs nothing; see docs/evm.md)',
        );
      }
      const parsed = parseOrThrow(SignerPolicySchema, policy, 'signing policy', {
        error: ConfigError,
        source: `networks.${network}.policies.${signer}`,
      });
      this.policies.set(signer, compilePolicy(parsed, { signer, network }));
    }
  }

  /** Checks the decoded call against the signer's policy; returns what it spends per budgeted route. */
  check(signer: string, call: CheckedCall, hint?: string): Spend[] {
    const policy = this.policies.get(signer);
    if (!policy) {
      throw nonRetryable(
        ErrorType.PolicyViolation,
        `policy: ${signer} on ${this.options.network} has no signing policy`,
      );
    }
    return checkCall(policy, call, hint);
  }

  /**
   * Before signing, asks the owner whether the spend fits its routes' budgets now; when it does not, runs `settle` (so
   * transactions mined deep meanwhile give their room back) and asks again, then throws the retryable `waiting for
   * budget` failure.
   */
  async assertRoom(
    owner: NonceOwner,
    input: { key: string; signer: string; spend: Spend[] },
    settle: () => Promise<void>,
  ): Promise<void> {
    if (input.spend.length === 0) return;
    const ask = () => owner.budget({ key: input.key, spend: input.spend, at: new Date().toISOString() });
    if (!(await ask())) return;
    await settle();
    const refusal = await ask();
    if (refusal) throw this.waiting(input.signer, refusal);
  }

  /** The retryable failure of a route without room: what it holds, and when the window allows. */
  waiting(signer: string, refusal: BudgetRefusal): ApplicationFailure {
    const policy = this.policies.get(signer)!;
    const window = formatDuration(refusal.windowMs);
    const seconds =
      refusal.availableAt && Math.max(1, Math.ceil((Date.parse(refusal.availableAt) - Date.now()) / 1000));
    const when = refusal.availableAt
      ? `the window allows it at ${refusal.availableAt} (in ${seconds} s)`
      : `it fits once ${refusal.pending} transaction(s) still pending on this route are mined and leave the window`;
    return ApplicationFailure.retryable(
      `waiting for budget: ${routeLabel(policy, refusal.route)} for ${signer} on ${this.options.network} has ` +
        `${refusal.used} of ${refusal.limit} per ${window} spent or pending, and this call needs ${refusal.amount}; ` +
        `${when}`,
      ErrorType.BudgetExhausted,
    );
  }
}
