import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ed25519 } from '@noble/curves/ed25519';
import { EvidenceSchema, type EvidenceInput } from '../../contract/evidence';
import { claimPublicKey, loadClaimSigner } from '../../workers/watcher/claim-signer';
import { provenSource } from '../../workflows/machine/claims';
import type { ActionState } from '../../workflows/machine/action';

const dir = mkdtempSync(path.join(os.tmpdir(), 'settle-claim-key-'));
const privateKey = Buffer.from(ed25519.utils.randomPrivateKey()).toString('hex');

function keyFile(mode: number): string {
  const file = path.join(dir, `key-${mode.toString(8)}`);
  writeFileSync(file, `${privateKey}\n`);
  chmodSync(file, mode);
  return file;
}

const claim: EvidenceInput = {
  step: 'lock',
  network: 'chainA',
  for: 'operation',
  kind: 'confirmed',
  ref: `0x${'ab'.repeat(32)}`,
  block: { number: '12', hash: `0x${'cd'.repeat(32)}` },
  confirmations: 3,
  source: 'watcher:chainA',
  observedAt: '2026-12-01T00:00:00.000Z',
};

function stateFor(actionId: string, sources: Record<string, { publicKey: string }>): ActionState {
  return { spec: { actionId }, trust: { verifyClaims: true, sources } } as unknown as ActionState;
}

describe('the watcher signs its claims', () => {
  it('signs a claim that the workflow proves came from the watcher, for that action only', () => {
    const sign = loadClaimSigner(keyFile(0o600));
    const signed = EvidenceSchema.parse(sign('act-1', claim));
    const sources = { watcher: { publicKey: claimPublicKey(privateKey) } };
    expect(provenSource(stateFor('act-1', sources), signed)).toBe('watcher');
    expect(provenSource(stateFor('act-2', sources), signed)).toBeUndefined();
    // Any field changed after signing breaks the proof.
    expect(provenSource(stateFor('act-1', sources), { ...signed, confirmations: 30 })).toBeUndefined();
    expect(provenSource(stateFor('act-1', sources), { ...signed, source: 'watcher:chainB' })).toBeUndefined();
  });

  it('proves nothing with a key the deployment does not trust for that source', () => {
    const sign = loadClaimSigner(keyFile(0o600));
    const signed = EvidenceSchema.parse(sign('act-1', claim));
    const other = Buffer.from(ed25519.getPublicKey(ed25519.utils.randomPrivateKey())).toString('hex');
    expect(provenSource(stateFor('act-1', { watcher: { publicKey: other } }), signed)).toBeUndefined();
    expect(provenSource(stateFor('act-1', { attester: { publicKey: claimPublicKey(privateKey) } }), signed)).toBe(
      undefined,
    );
  });

  it('refuses a key file that group or others can read', () => {
    expect(() => loadClaimSigner(keyFile(0o644))).toThrow(/readable by group or others \(mode 644\); chmod 600 it/);
  });
});
