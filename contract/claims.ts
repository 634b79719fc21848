/**
 * Claims: evidence is a claim by a source. The message a source signs (Ed25519) so the workflow can tell a claim it
 * made from one that merely carries its name. Pure and bundle-safe: the watcher signs with it, the workflow verifies.
 */
import type { EvidenceInput } from './evidence';

/** One line per field, in a fixed order; the action id binds the claim to one action. */
export function claimMessage(actionId: string, evidence: Omit<EvidenceInput, 'signature'>): string {
  return [
    'settle-claim-v1',
    actionId,
    evidence.step ?? '',
    evidence.network ?? '',
    evidence.for ?? 'operation',
    evidence.kind,
    evidence.ref ?? '',
    evidence.block?.number ?? '',
    evidence.block?.hash ?? '',
    evidence.orphanedHash ?? '',
    evidence.confirmations === undefined ? '' : String(evidence.confirmations),
    evidence.reason ?? '',
    evidence.source,
    evidence.observedAt ?? '',
  ].join('\n');
}

/** A source the deployment trusts: its Ed25519 public key (hex), and the networks it may report on (all if absent). */
export interface TrustedSource {
  publicKey: string;
  networks?: string[];
}
