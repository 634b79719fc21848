import { ed25519 } from '@noble/curves/ed25519';
import { ActionSpecSchema, type ActionSpecInput } from '../../contract/action-spec';
import { claimMessage } from '../../contract/claims';
import type { Evidence } from '../../contract/evidence';
import { applyStepEvent, initialState, type ActionState } from '../../workflows/machine/action';
import {
  chainAgrees,
  claimOf,
  deliveryKey,
  isReplay,
  judgeClaim,
  KEPT_DELIVERIES,
  proofOf,
  provenSource,
  recordClaim,
  rememberDelivery,
  settleClaims,
  VERIFY_POLLS,
  type ClaimTrust,
} from '../../workflows/machine/claims';
import { addFacts, emptyTrack, type TrackFacts } from '../../workflows/machine/track';

const AT = '2026-11-26T10:00:00.000Z';
const TX = `0x${'1'.repeat(64)}`;
const BLOCK = { number: '7', hash: `0x${'b'.repeat(64)}` };
const OTHER_BLOCK = { number: '8', hash: `0x${'e'.repeat(64)}` };

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');
const watcherKey = ed25519.utils.randomPrivateKey();
const attesterKey = ed25519.utils.randomPrivateKey();
const publicKey = (key: Uint8Array) => hex(ed25519.getPublicKey(key));

function call(fn: string) {
  return { kind: 'evm.call' as const, signer: 'bridge', to: `0x${'a1'.padStart(40, '0')}`, function: `function ${fn}` };
}

const SPEC: ActionSpecInput = {
  actionId: 'xfer',
  steps: [
    { id: 'lock', network: 'chainA', operation: call('lock()'), compensation: call('unlock()') },
    { id: 'attest', network: 'attester', operation: { kind: 'await' }, acceptFrom: ['attester', 'backup'] },
    { id: 'mint', network: 'chainB', operation: call('mint()') },
  ],
};

function stateOf(trust?: ClaimTrust): ActionState {
  const state = initialState(ActionSpecSchema.parse(SPEC), {}, AT);
  if (trust) state.trust = trust;
  return state;
}

const TRUST: ClaimTrust = {
  verifyClaims: true,
  sources: {
    watcher: { publicKey: publicKey(watcherKey), networks: ['chainA'] },
    attester: { publicKey: `0x${publicKey(attesterKey)}` },
  },
};

function claim(fields: Partial<Evidence> & Pick<Evidence, 'kind'>): Evidence {
  return { for: 'operation', source: 'watcher:chainA', ...fields };
}

/** Signs a claim for an action as a source would (contract/claims.ts). */
function signed(evidence: Evidence, key: Uint8Array, actionId = 'xfer', prefix = ''): Evidence {
  const signature = hex(ed25519.sign(new TextEncoder().encode(claimMessage(actionId, evidence)), key));
  return { ...evidence, signature: `${prefix}${signature}` };
}

const included = claim({ kind: 'included', ref: TX, block: BLOCK });

describe('claims', () => {
  describe('provenSource', () => {
    it('names the trusted source whose key signed the claim, for its name or a name:detail', () => {
      const state = stateOf(TRUST);
      expect(provenSource(state, signed(included, watcherKey))).toBe('watcher');
      expect(provenSource(state, signed(claim({ ...included, source: 'watcher' }), watcherKey))).toBe('watcher');
      expect(provenSource(state, signed(claim({ ...included, source: 'attester' }), attesterKey, 'xfer', '0x'))).toBe(
        'attester',
      );
    });

    it('proves nothing without a signature, with another key, for another source name, or with garbage', () => {
      const state = stateOf(TRUST);
      expect(provenSource(state, included)).toBeUndefined();
      expect(provenSource(state, signed(included, attesterKey))).toBeUndefined();
      expect(provenSource(state, signed(claim({ ...included, source: 'watcherx' }), watcherKey))).toBeUndefined();
      expect(provenSource(state, signed(included, watcherKey, 'other-action'))).toBeUndefined();
      expect(provenSource(state, { ...included, signature: 'zz' })).toBeUndefined();
      expect(provenSource(stateOf(), signed(included, watcherKey))).toBeUndefined();
    });
  });

  describe('judgeClaim', () => {
    it('applies every claim when the deployment does not verify claims', () => {
      const state = stateOf({ ...TRUST, verifyClaims: false });
      expect(judgeClaim(state, 'lock', included)).toEqual({ kind: 'apply' });
      expect(judgeClaim(stateOf(), 'lock', included)).toEqual({ kind: 'apply' });
    });

    it('checks an unproven claim that moves an EVM step forward against the chain first', () => {
      const state = stateOf(TRUST);
      for (const kind of ['included', 'confirmed', 'finalized', 'failed'] as const)
        expect(judgeClaim(state, 'lock', claim({ kind, ref: TX, block: BLOCK }))).toEqual({ kind: 'verify' });
      expect(
        judgeClaim(state, 'lock', claim({ kind: 'included', for: 'compensation', ref: TX, block: BLOCK })),
      ).toEqual({ kind: 'verify' });
    });

    it('applies at once a claim that only moves a step back, or is about something awaited', () => {
      const state = stateOf(TRUST);
      for (const kind of ['reorged', 'dropped', 'submitted'] as const)
        expect(judgeClaim(state, 'lock', claim({ kind, ref: TX, orphanedHash: BLOCK.hash }))).toEqual({
          kind: 'apply',
        });
      expect(
        judgeClaim(state, 'mint', claim({ kind: 'included', for: 'compensation', ref: TX, block: BLOCK })),
      ).toEqual({ kind: 'apply' });
    });

    it('applies at once a claim proven to come from a source trusted for that network', () => {
      const state = stateOf(TRUST);
      expect(judgeClaim(state, 'lock', signed(included, watcherKey))).toEqual({ kind: 'apply' });
      // Trusted for chainA only.
      expect(judgeClaim(state, 'mint', signed(included, watcherKey))).toEqual({ kind: 'verify' });
      // A source with no list of networks is trusted on all of them.
      expect(judgeClaim(state, 'mint', signed(claim({ ...included, source: 'attester' }), attesterKey))).toEqual({
        kind: 'apply',
      });
    });

    it('takes a step with acceptFrom only from the sources it names, proven when the deployment knows their key', () => {
      const state = stateOf(TRUST);
      const attested = claim({ kind: 'finalized', source: 'attester:eu' });
      expect(judgeClaim(state, 'attest', claim({ kind: 'finalized', source: 'watcher:chainA' }))).toEqual({
        kind: 'reject',
        reason: 'step "attest" accepts evidence only from attester, backup',
      });
      expect(judgeClaim(state, 'attest', attested)).toEqual({
        kind: 'reject',
        reason: 'not proven to come from "attester": no valid signature by its key',
      });
      expect(judgeClaim(state, 'attest', signed(attested, attesterKey))).toEqual({ kind: 'apply' });
      // A named source the deployment has no key for is taken at its word.
      expect(judgeClaim(state, 'attest', claim({ kind: 'finalized', source: 'backup' }))).toEqual({ kind: 'apply' });
      expect(judgeClaim(stateOf(), 'attest', attested)).toEqual({ kind: 'apply' });
    });
  });

  describe('chainAgrees', () => {
    const track = (...evidence: Partial<Evidence>[]): TrackFacts => {
      const facts = emptyTrack();
      for (const e of evidence) addFacts(facts, claim({ kind: 'included', ...e }));
      return facts;
    };

    it('never agrees about a track that does not exist', () => {
      expect(chainAgrees(undefined, included)).toBe(false);
    });

    it('agrees that a transaction is in a block it saw, live, deep enough', () => {
      const seen = track({ kind: 'confirmed', ref: TX, block: BLOCK, confirmations: 2 });
      expect(chainAgrees(seen, included)).toBe(true);
      expect(chainAgrees(seen, claim({ kind: 'confirmed', ref: TX, block: BLOCK, confirmations: 2 }))).toBe(true);
      expect(chainAgrees(seen, claim({ kind: 'confirmed', ref: TX, block: BLOCK, confirmations: 3 }))).toBe(false);
      expect(chainAgrees(seen, claim({ kind: 'included', ref: TX, block: OTHER_BLOCK }))).toBe(false);
      expect(chainAgrees(seen, claim({ kind: 'included', ref: TX }))).toBe(false);
      const orphaned = track({ ref: TX, block: BLOCK }, { kind: 'reorged', block: BLOCK });
      expect(chainAgrees(orphaned, included)).toBe(false);
    });

    it('agrees that a block is finalized once it saw it finalized, or saw the transaction in it', () => {
      const finalizedClaim = claim({ kind: 'finalized', ref: TX, block: BLOCK });
      expect(chainAgrees(track({ kind: 'finalized', ref: TX, block: BLOCK }), finalizedClaim)).toBe(true);
      expect(chainAgrees(track({ ref: TX, block: BLOCK }), finalizedClaim)).toBe(true);
      expect(chainAgrees(track({ ref: TX, block: OTHER_BLOCK }), finalizedClaim)).toBe(false);
    });

    it('agrees that a transaction failed when it saw a failure in that block or in none', () => {
      const failedClaim = claim({ kind: 'failed', ref: TX, block: BLOCK, reason: 'reverted' });
      expect(chainAgrees(track({ kind: 'failed', ref: TX, block: BLOCK, reason: 'x' }), failedClaim)).toBe(true);
      expect(chainAgrees(track({ kind: 'failed', ref: TX, reason: 'x' }), failedClaim)).toBe(true);
      expect(chainAgrees(track({ kind: 'failed', ref: TX, block: OTHER_BLOCK, reason: 'x' }), failedClaim)).toBe(false);
      expect(chainAgrees(track({ ref: TX, block: BLOCK }), failedClaim)).toBe(false);
    });
  });

  describe('claims not applied', () => {
    it('are shown with what they said, who said it, whether it was proven, and why they were not applied', () => {
      const state = stateOf(TRUST);
      expect(claimOf(state, 'lock', signed(included, watcherKey), 'rejected', 'nope', AT)).toEqual({
        step: 'lock',
        for: 'operation',
        kind: 'included',
        ref: TX,
        block: BLOCK,
        source: 'watcher:chainA',
        proven: true,
        verdict: 'rejected',
        reason: 'nope',
        at: AT,
      });
      const bare = claimOf(state, 'attest', claim({ kind: 'finalized', source: 'x' }), 'disputed', 'why', AT);
      expect(bare).toMatchObject({ proven: false, verdict: 'disputed' });
      expect(bare).not.toHaveProperty('ref');
      expect(bare).not.toHaveProperty('block');
    });

    it('keep only the 50 most recent, and count as a change', () => {
      const state = stateOf();
      for (let i = 0; i < 55; i++)
        recordClaim(state, claimOf(state, 'lock', claim({ kind: 'included', ref: `r${i}` }), 'rejected', 'x', AT));
      expect(state.claims).toHaveLength(50);
      expect(state.claims![0].ref).toBe('r5');
      expect(state.claims!.at(-1)!.ref).toBe('r54');
      expect(state.version).toBe(55);
    });
  });

  describe('settleClaims', () => {
    function pending(state: ActionState, stepId: string, evidence: Evidence, polls = 0) {
      state.unverified = [...(state.unverified ?? []), { stepId, evidence, at: AT, polls }];
    }

    it('is done with a claim the chain now shows, and keeps the others', () => {
      const state = stateOf(TRUST);
      applyStepEvent(
        state,
        'lock',
        { type: 'evidence', evidence: { ...included, source: 'settle:poll' } },
        { at: AT, source: 'poll' },
      );
      const other = claim({ kind: 'included', ref: TX, block: BLOCK });
      pending(state, 'lock', included);
      pending(state, 'mint', other);
      pending(state, 'lock', { ...included, for: 'compensation' });
      const version = state.version;
      expect(settleClaims(state, 'lock', 'operation', AT)).toBe(false);
      expect(state.unverified!.map((c) => [c.stepId, c.evidence.for])).toEqual([
        ['mint', 'operation'],
        ['lock', 'compensation'],
      ]);
      expect(state.version).toBe(version + 1);
    });

    it('counts the polls that did not show a claim, and disputes it after the last', () => {
      const state = stateOf(TRUST);
      pending(state, 'lock', included);
      for (let poll = 1; poll < VERIFY_POLLS; poll++) {
        expect(settleClaims(state, 'lock', 'operation', AT)).toBe(true);
        expect(state.unverified![0].polls).toBe(poll);
      }
      expect(state.claims).toBeUndefined();
      expect(settleClaims(state, 'lock', 'operation', '2026-11-26T11:00:00.000Z')).toBe(false);
      expect(state.unverified).toEqual([]);
      expect(state.claims).toEqual([
        expect.objectContaining({
          step: 'lock',
          verdict: 'disputed',
          reason: `the chain, read by Settle's own RPC, did not show it after ${VERIFY_POLLS} polls`,
          at: '2026-11-26T11:00:00.000Z',
        }),
      ]);
    });

    it('changes nothing when no claim about that track is pending', () => {
      const state = stateOf(TRUST);
      expect(settleClaims(state, 'lock', 'operation', AT)).toBe(false);
      expect(state.unverified ?? []).toEqual([]);
      const version = state.version;
      pending(state, 'mint', included);
      const before = state.unverified;
      expect(settleClaims(state, 'lock', 'operation', AT)).toBe(false);
      expect(state.unverified).toBe(before);
      expect(state.version).toBe(version);
    });
  });
});

describe('each delivery of evidence is taken once', () => {
  const keeping = (trust?: ClaimTrust) => Object.assign(stateOf(trust), { seenEvidence: [] as string[] });
  const refusal = claim({ step: 'attest', kind: 'failed', reason: 'no quorum', source: 'attester' });

  it('knows a proven claim by its signature, whatever id it is sent with', () => {
    const state = keeping(TRUST);
    const proven = signed(refusal, attesterKey);
    expect(isReplay(state, proven)).toBe(false);
    rememberDelivery(state, proven);
    expect(isReplay(state, proven)).toBe(true);
    expect(isReplay(state, { ...proven, id: 'fresh-id' })).toBe(true);
    expect(isReplay(state, { ...proven, signature: `0x${proven.signature!.toUpperCase()}` })).toBe(true);
    expect(isReplay(state, signed({ ...refusal, reason: 'other' }, attesterKey))).toBe(false);
  });

  it('knows other evidence by its id, and does not deduplicate evidence with neither', () => {
    const state = keeping(TRUST);
    rememberDelivery(state, { ...refusal, id: 'mac:0123' });
    expect(isReplay(state, { ...refusal, id: 'mac:0123' })).toBe(true);
    expect(isReplay(state, { ...refusal, id: 'mac:4567' })).toBe(false);
    rememberDelivery(state, refusal);
    expect(isReplay(state, refusal)).toBe(false);
    expect(state.seenEvidence).toEqual(['id:mac:0123']);
  });

  it('takes an unproven signature for no key: a tampered copy sent first cannot shadow the genuine claim', () => {
    const state = keeping(TRUST);
    const genuine = signed(refusal, attesterKey);
    const tampered = { ...genuine, reason: 'forged' };
    expect(deliveryKey(state, tampered)).toBeUndefined();
    rememberDelivery(state, tampered);
    expect(isReplay(state, genuine)).toBe(false);
    expect(deliveryKey(stateOf(), genuine)).toBeUndefined();
  });

  it('checks a signature once: the proof, passed on, serves the replay guard, the memory and the judgement', () => {
    const state = keeping(TRUST);
    const proven = signed(refusal, attesterKey);
    const verify = jest.spyOn(ed25519, 'verify');
    try {
      const proof = proofOf(state, proven);
      expect(proof.source).toBe('attester');
      expect(isReplay(state, proven, proof)).toBe(false);
      expect(judgeClaim(state, 'attest', proven, proof)).toEqual({ kind: 'apply' });
      rememberDelivery(state, proven, proof);
      expect(verify).toHaveBeenCalledTimes(1);
      // Without one, each computes it again (and all agree).
      expect(isReplay(state, proven)).toBe(true);
      expect(verify).toHaveBeenCalledTimes(2);
    } finally {
      verify.mockRestore();
    }
  });

  it('keeps the most recent deliveries only, and nothing for actions recorded before the rule', () => {
    const state = keeping();
    for (let i = 0; i <= KEPT_DELIVERIES; i++) rememberDelivery(state, { ...refusal, id: `d-${i}` });
    expect(state.seenEvidence).toHaveLength(KEPT_DELIVERIES);
    expect(isReplay(state, { ...refusal, id: 'd-0' })).toBe(false);
    expect(isReplay(state, { ...refusal, id: `d-${KEPT_DELIVERIES}` })).toBe(true);
    const legacy = stateOf();
    rememberDelivery(legacy, { ...refusal, id: 'd-0' });
    expect(legacy.seenEvidence).toBeUndefined();
    expect(isReplay(legacy, { ...refusal, id: 'd-0' })).toBe(false);
  });
});
