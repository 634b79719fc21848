/**
 * Evidence is a claim by a source. Whose word settles an awaited step (`acceptFrom`), when a claim about an EVM step
 * is applied at once (proven, by signature, to come from a source the deployment trusts for that network) and when it
 * is first checked against the chain by Settle's own RPC; claims not applied stay visible (`status.claims`). Pure:
 * Ed25519 verification is deterministic and needs no secret.
 */
import { ed25519 } from '@noble/curves/ed25519';
import { claimMessage, type TrustedSource } from '../../contract/claims';
import type { Evidence } from '../../contract/evidence';
import type { Claim } from '../../contract/status';
import { stepSpec, type ActionState } from './action';
import { trackState, type TrackFacts } from './track';

/** What the deployment says about claims: whether unproven chain claims are checked first, and whose keys it knows. */
export interface ClaimTrust {
  verifyClaims: boolean;
  sources: Record<string, TrustedSource>;
}

/** A claim about an EVM step waiting for Settle's own look at the chain. */
export interface PendingClaim {
  stepId: string;
  evidence: Evidence;
  at: string;
  /** Polls made since: a chain that does not agree after a few is taken to contradict the claim. */
  polls: number;
}

export type ClaimDecision = { kind: 'apply' } | { kind: 'verify' } | { kind: 'reject'; reason: string };

const FORWARD = ['included', 'confirmed', 'finalized', 'failed'];
/** Polls that may pass (our RPC may lag the claimant's) before a claim the chain does not show is disputed. */
export const VERIFY_POLLS = 3;
const KEPT_CLAIMS = 50;

/** The trusted source whose key signed this claim, if any: `watcher` covers `watcher` and `watcher:<network>`. */
export function provenSource(state: ActionState, evidence: Evidence): string | undefined {
  const sources = state.trust?.sources ?? {};
  const name = Object.keys(sources).find((n) => evidence.source === n || evidence.source.startsWith(`${n}:`));
  if (!name || !evidence.signature) return undefined;
  const { signature, ...claim } = evidence;
  const message = new TextEncoder().encode(claimMessage(state.spec.actionId, claim));
  try {
    const valid = ed25519.verify(strip0x(signature), message, strip0x(sources[name].publicKey));
    return valid ? name : undefined;
  } catch {
    return undefined;
  }
}

/** A claim's signature, checked once: the trusted source it proves (if any), passed on so it is not checked again. */
export interface Proof {
  source: string | undefined;
}

export function proofOf(state: ActionState, evidence: Evidence): Proof {
  return { source: provenSource(state, evidence) };
}

/** What to do with a signal's claim about a step. */
export function judgeClaim(
  state: ActionState,
  stepId: string,
  evidence: Evidence,
  proof = proofOf(state, evidence),
): ClaimDecision {
  const spec = stepSpec(state, stepId);
  const proven = proof.source;
  if (spec.acceptFrom) {
    const named = spec.acceptFrom.find((s) => evidence.source === s || evidence.source.startsWith(`${s}:`));
    if (!named)
      return { kind: 'reject', reason: `step "${stepId}" accepts evidence only from ${spec.acceptFrom.join(', ')}` };
    if (state.trust?.sources[named] && proven !== named) {
      return { kind: 'reject', reason: `not proven to come from "${named}": no valid signature by its key` };
    }
  }
  const operation = evidence.for === 'compensation' ? spec.compensation : spec.operation;
  if (!operation || operation.kind === 'await' || !state.trust?.verifyClaims) return { kind: 'apply' };
  if (!FORWARD.includes(evidence.kind)) return { kind: 'apply' };
  const networks = proven ? state.trust.sources[proven].networks : undefined;
  if (proven && (!networks || networks.includes(spec.network))) return { kind: 'apply' };
  return { kind: 'verify' };
}

/** Whether the track, as Settle's own polls left it, shows what the claim said. */
export function chainAgrees(track: TrackFacts | undefined, evidence: Evidence): boolean {
  if (!track) return false;
  if (evidence.kind === 'failed') {
    return track.failures.some((f) => !f.blockHash || f.blockHash === evidence.block?.hash);
  }
  const sighting = evidence.block?.hash ? track.sightings[evidence.block.hash] : undefined;
  if (!sighting || track.orphaned.includes(evidence.block!.hash)) return false;
  if (evidence.kind === 'finalized') return sighting.finalized || trackState(track, { confirmations: 1 }) !== 'pending';
  return sighting.confirmations >= (evidence.kind === 'confirmed' ? (evidence.confirmations ?? 1) : 1);
}

/** Deliveries remembered per action (across continue-as-new): a replay of any of them is ignored. */
export const KEPT_DELIVERIES = 256;

/**
 * What identifies a delivery of evidence: a claim proven by a trusted source's signature by that signature (the id
 * field is not covered by it), else the id its sender gave (the HTTP API gives one from the request's MAC). Evidence
 * with neither is not deduplicated: the track's facts are a set, so a repeated fact is harmless, and such evidence
 * comes from a caller the deployment already trusts with Temporal or a bearer token. An unproven signature is no key:
 * a tampered copy sent first must not make the genuine claim look like a replay.
 */
export function deliveryKey(
  state: ActionState,
  evidence: Evidence,
  proof = proofOf(state, evidence),
): string | undefined {
  if (evidence.signature && proof.source) {
    return `sig:${strip0x(evidence.signature).slice(0, 64).toLowerCase()}`;
  }
  return evidence.id === undefined ? undefined : `id:${evidence.id}`;
}

/**
 * Whether this delivery of evidence was received before (and taken: applied, or waiting for the chain). A replay —
 * a captured signed claim sent again, through a second API process, after a restart, or long after — is ignored: a
 * `failed` claim about one attempt must not fail the attempt an operator started after it. Only when the action keeps
 * deliveries (`seenEvidence`, patch `evidence-once`).
 */
export function isReplay(state: ActionState, evidence: Evidence, proof?: Proof): boolean {
  const key = state.seenEvidence && deliveryKey(state, evidence, proof);
  return key !== undefined && !!state.seenEvidence?.includes(key);
}

/** Remembers a delivery that was taken; only the most recent {@link KEPT_DELIVERIES} are kept. */
export function rememberDelivery(state: ActionState, evidence: Evidence, proof?: Proof): void {
  const key = state.seenEvidence && deliveryKey(state, evidence, proof);
  if (key === undefined || !state.seenEvidence) return;
  state.seenEvidence = [...state.seenEvidence, key].slice(-KEPT_DELIVERIES);
}

/** Records a claim that was not applied; only the most recent ones are kept. */
export function recordClaim(state: ActionState, claim: Claim): void {
  state.claims = [...(state.claims ?? []), claim].slice(-KEPT_CLAIMS);
  state.version++;
}

/** A claim as the status shows it. */
export function claimOf(
  state: ActionState,
  stepId: string,
  evidence: Evidence,
  verdict: Claim['verdict'],
  reason: string,
  at: string,
): Claim {
  return {
    step: stepId,
    for: evidence.for,
    kind: evidence.kind,
    ...(evidence.ref ? { ref: evidence.ref } : {}),
    ...(evidence.block ? { block: evidence.block } : {}),
    source: evidence.source,
    proven: provenSource(state, evidence) !== undefined,
    verdict,
    reason,
    at,
  };
}

function strip0x(hex: string): string {
  return hex.startsWith('0x') ? hex.slice(2) : hex;
}

/**
 * After one of Settle's own polls of a track: a claim the chain now shows is done with (the poll applied the facts);
 * one it still does not show after {@link VERIFY_POLLS} polls is disputed. Returns whether claims remain pending.
 */
export function settleClaims(state: ActionState, stepId: string, target: Evidence['for'], at: string): boolean {
  const step = state.steps[stepId];
  const track = target === 'compensation' ? step.compensation : step.operation;
  const kept: PendingClaim[] = [];
  for (const claim of state.unverified ?? []) {
    if (claim.stepId !== stepId || claim.evidence.for !== target) kept.push(claim);
    else if (chainAgrees(track, claim.evidence)) continue;
    else if (claim.polls + 1 < VERIFY_POLLS) kept.push({ ...claim, polls: claim.polls + 1 });
    else {
      const reason = `the chain, read by Settle's own RPC, did not show it after ${VERIFY_POLLS} polls`;
      recordClaim(state, claimOf(state, stepId, claim.evidence, 'disputed', reason, at));
    }
  }
  if (state.unverified?.length !== kept.length || kept.some((c, i) => c !== state.unverified![i])) {
    state.unverified = kept;
    state.version++;
  }
  return kept.some((c) => c.stepId === stepId && c.evidence.for === target);
}
