/**
 * The watcher signs its claims: an Ed25519 signature over `claimMessage(actionId, evidence)`, so a deployment that
 * verifies claims applies the watcher's evidence at once (the fast path) while a claim that merely carries its name
 * is first checked against the chain. The key lives in a file only its owner may read; its public half goes into the
 * networks file's `trust.sources`.
 */
import { readFileSync, statSync } from 'node:fs';
import { ed25519 } from '@noble/curves/ed25519';
import { claimMessage } from '../../contract/claims';
import type { EvidenceInput } from '../../contract/evidence';
import { ConfigError } from '../worker/config';

export type ClaimSigner = (actionId: string, evidence: EvidenceInput) => EvidenceInput;

/**
 * Reads a hex Ed25519 private key (32 bytes) from a file that group and others cannot read.
 *
 * @example const sign = loadClaimSigner('/etc/settle/watcher.key'); signal(sign(actionId, evidence));
 */
export function loadClaimSigner(keyFile: string): ClaimSigner {
  const mode = statSync(keyFile).mode;
  if (process.platform !== 'win32' && (mode & 0o077) !== 0) {
    throw new ConfigError(
      `SETTLE_WATCH_SIGNING_KEY_FILE: ${keyFile} is readable by group or others (mode ${(mode & 0o777).toString(8)}); chmod 600 it`,
    );
  }
  const hex = readFileSync(keyFile, 'utf8').trim().replace(/^0x/, '');
  if (!/^[0-9a-fA-F]{64}$/.test(hex)) {
    throw new ConfigError(`SETTLE_WATCH_SIGNING_KEY_FILE: ${keyFile} must hold a 32-byte Ed25519 private key in hex`);
  }
  const key = Buffer.from(hex, 'hex');
  return (actionId, evidence) => {
    const message = new TextEncoder().encode(claimMessage(actionId, evidence));
    return { ...evidence, signature: Buffer.from(ed25519.sign(message, key)).toString('hex') };
  };
}

/** The public key (hex) of a signing key, for the networks file's `trust.sources`. */
export function claimPublicKey(privateKeyHex: string): string {
  return Buffer.from(ed25519.getPublicKey(privateKeyHex.replace(/^0x/, ''))).toString('hex');
}
