/**
 * Plan builders: the common multi-network actions as ActionSpecs, so callers name what they want (a bridge
 * transfer) instead of writing steps. Each returns a validated ActionSpec input for `SettleClient.start`.
 */
import { z } from 'zod';
import { ActionSpecSchema, FinalityPolicySchema, type ActionSpecInput } from '../contract/action-spec';
import { DurationSchema } from '../contract/duration';
import { SettleError } from '../contract/errors';
import { parseOrThrow } from '../contract/validation';
import { DecimalStringSchema, HexAddressSchema, IdentifierSchema, NetworkNameSchema } from '../contract/primitives';

export const LOCK_FUNCTION = 'function lock(bytes32 actionId, address recipient, uint256 amount)';
export const UNLOCK_FUNCTION = 'function unlock(bytes32 actionId)';
export const MINT_FUNCTION = 'function mint(bytes32 actionId, address recipient, uint256 amount)';
export const BURN_FUNCTION = 'function burn(bytes32 actionId, address recipient, uint256 amount)';
export const MINT_ATTESTED_FUNCTION =
  'function mintAttested(bytes32 actionId, address recipient, uint256 amount, bytes32 messageId, bytes attestation)';

const BridgeParamsSchema = z.strictObject({
  actionId: IdentifierSchema,
  /** Source network (tokens leave it) and destination network (tokens arrive). */
  from: NetworkNameSchema,
  to: NetworkNameSchema,
  /** The token's bridge deployment: its escrow on `from`, its minter on `to`. */
  token: z.strictObject({ escrow: HexAddressSchema, minter: HexAddressSchema }),
  amount: DecimalStringSchema.refine((v) => v !== '0', 'must be more than 0'),
  recipient: HexAddressSchema,
  /** Until global completion; past it, what exists is compensated (a transfer) or held for an operator (a burn). */
  deadline: DurationSchema.optional(),
  /** The signer name (from the worker's networks file) that sends on both networks. */
  signer: z.string().default('bridge'),
  /** Finality per side; by default each network's configured policy. */
  sourceFinality: FinalityPolicySchema.optional(),
  destinationFinality: FinalityPolicySchema.optional(),
});
export type BridgeParams = z.input<typeof BridgeParamsSchema>;

const BurnAttestMintParamsSchema = BridgeParamsSchema.extend({
  /** The network the attestation service reports on (an `await` step: nothing is submitted there). */
  attester: NetworkNameSchema.default('attester'),
  /** How long the attestation may take once the burn is final. */
  attestTimeout: DurationSchema.optional(),
});
export type BurnAttestMintParams = z.input<typeof BurnAttestMintParamsSchema>;

export class PlanError extends SettleError {
  override name = 'PlanError';
}

/**
 * A lock-and-mint bridge transfer: `lock` on the source, final there, then `mint` on the destination (once per action
 * id: a second mint reverts). If the mint fails, or the deadline passes before it is final, the lock is compensated
 * by `unlock`, which returns the tokens.
 *
 * @example
 * const spec = bridgeTransfer({ actionId: 'xfer-1', from: 'chainA', to: 'chainB',
 *   token: { escrow: '0x…', minter: '0x…' }, amount: '1000', recipient: '0x…', deadline: '10m' });
 * await settle.start(spec);
 */
export function bridgeTransfer(params: BridgeParams): ActionSpecInput {
  const p = parseOrThrow(BridgeParamsSchema, params, 'parameters', { error: PlanError, source: 'bridgeTransfer' });
  return plan(p, 'bridge-transfer', 'compensate', [
    {
      id: 'lock',
      network: p.from,
      operation: evmCall(p, p.token.escrow, LOCK_FUNCTION, [ID_HASH, p.recipient, p.amount]),
      ...finality(p.sourceFinality),
      compensation: evmCall(p, p.token.escrow, UNLOCK_FUNCTION, [ID_HASH]),
    },
    {
      id: 'mint',
      network: p.to,
      after: [{ step: 'lock', stage: 'final' }],
      operation: evmCall(p, p.token.minter, MINT_FUNCTION, [ID_HASH, p.recipient, p.amount]),
      ...finality(p.destinationFinality),
    },
  ]);
}

/**
 * Burn, attest, mint: `burn` on the source (final), an `attest` step that an attestation service reports by
 * evidence (with `output.attestation`), then `mintAttested` on the destination with the burn's message id and the
 * attestation. A burn cannot be undone, so a passed deadline holds the action for an operator.
 *
 * @example
 * const spec = burnAttestMint({ actionId: 'bam-1', from: 'chainA', to: 'chainB',
 *   token: { escrow: '0x…', minter: '0x…' }, amount: '5', recipient: '0x…' });
 */
export function burnAttestMint(params: BurnAttestMintParams): ActionSpecInput {
  const p = parseOrThrow(BurnAttestMintParamsSchema, params, 'parameters', {
    error: PlanError,
    source: 'burnAttestMint',
  });
  return plan(p, 'burn-attest-mint', 'hold', [
    {
      id: 'burn',
      network: p.from,
      operation: evmCall(p, p.token.escrow, BURN_FUNCTION, [ID_HASH, p.recipient, p.amount]),
      ...finality(p.sourceFinality),
    },
    {
      id: 'attest',
      network: p.attester,
      after: [{ step: 'burn', stage: 'final' }],
      operation: { kind: 'await', description: 'an attestation of the burn message (output.attestation)' },
      ...(p.attestTimeout !== undefined ? { timeout: p.attestTimeout } : {}),
    },
    {
      id: 'mint',
      network: p.to,
      after: [{ step: 'attest', stage: 'final' }],
      operation: evmCall(p, p.token.minter, MINT_ATTESTED_FUNCTION, [
        ID_HASH,
        p.recipient,
        p.amount,
        '{{steps.burn.output.messageId}}',
        '{{steps.attest.output.attestation}}',
      ]),
      ...finality(p.destinationFinality),
    },
  ]);
}

type StepInput = ActionSpecInput['steps'][number];

/** The action id as `bytes32`: what the bridge contracts key every lock, mint and burn by. */
const ID_HASH = '{{action.idHash}}';

/** The action around its steps, validated: the plan as written (not its parsed form), once the contract accepts it. */
function plan(
  p: { actionId: string; deadline?: number },
  type: string,
  onDeadline: 'compensate' | 'hold',
  steps: StepInput[],
): ActionSpecInput {
  const spec: ActionSpecInput = {
    actionId: p.actionId,
    type,
    ...(p.deadline !== undefined ? { deadline: p.deadline } : {}),
    onDeadline,
    steps,
  };
  parseOrThrow(ActionSpecSchema, spec, 'plan', { error: PlanError });
  return spec;
}

/** A call sent by the plan's signer. */
function evmCall(p: { signer: string }, to: string, fn: string, args: string[]) {
  return { kind: 'evm.call' as const, signer: p.signer, to, function: fn, args };
}

/** The step's own finality policy, when the caller gave one (else the network's). */
function finality(policy: StepInput['finality']): Pick<StepInput, 'finality'> {
  return policy ? { finality: policy } : {};
}
