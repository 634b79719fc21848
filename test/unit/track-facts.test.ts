import type { FinalityPolicy } from '../../contract/action-spec';
import type { Evidence } from '../../contract/evidence';
import {
  addFacts,
  bestSightingKey,
  cloneTrack,
  emptyTrack,
  meetsPolicy,
  trackState,
  trackView,
  violatedSighting,
  type TrackFacts,
} from '../../workflows/machine/track';

const TWO: FinalityPolicy = { confirmations: 2 };
const TX = '0xaa';
const REPLACEMENT = '0xbb';

const block = (number: number, fork = 'a') => ({ number: String(number), hash: `0x${fork}${number}` });

function facts(...evidence: Omit<Evidence, 'for' | 'source'>[]): TrackFacts {
  const track = emptyTrack();
  for (const e of evidence) addFacts(track, { for: 'operation', source: 'watcher', ...e });
  return track;
}

/** The same facts delivered in every order (all permutations): the state and view must not depend on it. */
function inEveryOrder(evidence: Omit<Evidence, 'for' | 'source'>[], policy: FinalityPolicy) {
  const permutations = (items: typeof evidence): (typeof evidence)[] =>
    items.length <= 1
      ? [items]
      : items.flatMap((item, i) =>
          permutations([...items.slice(0, i), ...items.slice(i + 1)]).map((p) => [item, ...p]),
        );
  return permutations(evidence).map((order) => {
    const track = facts(...order);
    const { refs, orphaned, ...view } = trackView(track, policy);
    return {
      ...view,
      refs: [...refs].sort(),
      orphaned: [...orphaned].sort(),
      violated: violatedSighting(track, policy),
    };
  });
}

describe('a track of facts', () => {
  describe('adding facts', () => {
    it('starts empty and pending', () => {
      expect(emptyTrack()).toEqual({
        submitting: false,
        refs: [],
        sightings: {},
        orphaned: [],
        dropped: [],
        failures: [],
      });
      expect(trackState(emptyTrack(), TWO)).toBe('pending');
    });

    it('records each ref, drop, orphaned block and failure once', () => {
      const once = [
        { kind: 'submitted' as const, ref: TX },
        { kind: 'dropped' as const, ref: TX },
        { kind: 'reorged' as const, ref: TX, block: block(1) },
        { kind: 'failed' as const, ref: TX, block: block(2), reason: 'reverted' },
        { kind: 'failed' as const, ref: TX, reason: 'rejected' },
      ];
      const track = facts(...once, ...once);
      expect(track).toEqual({
        submitting: false,
        refs: [TX],
        submittedRef: TX,
        sightings: {},
        orphaned: [block(1).hash],
        dropped: [TX],
        failures: [{ reason: 'reverted', blockHash: block(2).hash }, { reason: 'rejected' }],
      });
    });

    it('keeps apart failures with the same reason in different blocks, and a default reason', () => {
      const track = facts(
        { kind: 'failed', ref: TX, block: block(2), reason: 'reverted' },
        { kind: 'failed', ref: TX, block: block(3), reason: 'reverted' },
        { kind: 'failed', ref: TX },
        { kind: 'failed', ref: TX, reason: 'nonce too low' },
      );
      expect(track.failures).toEqual([
        { reason: 'reverted', blockHash: block(2).hash },
        { reason: 'reverted', blockHash: block(3).hash },
        { reason: 'failed' },
        { reason: 'nonce too low' },
      ]);
    });

    it('names an orphaned block by its block or by its hash, and ignores a reorg that names neither', () => {
      expect(facts({ kind: 'reorged', orphanedHash: '0xdead' }).orphaned).toEqual(['0xdead']);
      expect(facts({ kind: 'reorged', block: block(1), orphanedHash: '0xdead' }).orphaned).toEqual([block(1).hash]);
      expect(facts({ kind: 'reorged', ref: TX }).orphaned).toEqual([]);
    });

    it('ignores a drop that names no transaction', () => {
      expect(facts({ kind: 'dropped' }).dropped).toEqual([]);
    });

    it('remembers the latest submission reported, and every ref seen in any report', () => {
      const track = facts(
        { kind: 'included', ref: '0x01', block: block(1) },
        { kind: 'submitted', ref: TX },
        { kind: 'submitted' },
        { kind: 'submitted', ref: REPLACEMENT },
      );
      expect(track.submittedRef).toBe(REPLACEMENT);
      expect(track.refs).toEqual(['0x01', TX, REPLACEMENT]);
      // A submission report that names no transaction forgets nothing.
      addFacts(track, { for: 'operation', source: 'watcher', kind: 'submitted' });
      expect(track.submittedRef).toBe(REPLACEMENT);
    });

    it('merges outputs, later fields over earlier ones', () => {
      const track = facts(
        { kind: 'included', ref: TX, block: block(1), output: { a: '1', b: '2' } },
        { kind: 'finalized', ref: TX, block: block(1), output: { b: '3' } },
      );
      expect(track.output).toEqual({ a: '1', b: '3' });
      expect(trackView(track, TWO).output).toEqual({ a: '1', b: '3' });
      expect(trackView(facts({ kind: 'submitted', ref: TX }), TWO)).not.toHaveProperty('output');
    });

    it('counts a sighting as one confirmation, keeps the most reported, and marks finalized blocks', () => {
      const track = facts(
        { kind: 'confirmed', ref: TX, block: block(5), confirmations: 4 },
        { kind: 'included', ref: TX, block: block(5) },
        { kind: 'confirmed', ref: TX, block: block(5), confirmations: 2 },
        { kind: 'finalized', ref: REPLACEMENT, block: block(5) },
      );
      expect(track.sightings[block(5).hash]).toEqual({
        number: '5',
        hash: block(5).hash,
        confirmations: 4,
        finalized: true,
        ref: TX,
      });
      expect(facts({ kind: 'included', ref: TX, block: block(5) }).sightings[block(5).hash]).toEqual({
        number: '5',
        hash: block(5).hash,
        confirmations: 1,
        finalized: false,
        ref: TX,
      });
      expect(
        facts({ kind: 'confirmed', ref: TX, block: block(5) } as Evidence).sightings[block(5).hash].confirmations,
      ).toBe(1);
      // Only a `confirmed` report counts confirmations: an inclusion is one, whatever else it carries.
      for (const kind of ['included', 'finalized'] as const)
        expect(facts({ kind, ref: TX, block: block(5), confirmations: 9 }).sightings[block(5).hash].confirmations).toBe(
          1,
        );
      expect(facts({ kind: 'finalized', block: block(5) }).sightings[block(5).hash]).not.toHaveProperty('ref');
    });

    it('attaches a report without a block to the block the track is in, or keeps it apart when there is none', () => {
      const blockless = facts({ kind: 'confirmed', ref: TX, confirmations: 2 });
      // Kept under the key '~' (no block hash looks like it): the facts travel in the workflow's state.
      expect(blockless.sightings).toEqual({ '~': { number: '0', confirmations: 2, finalized: false, ref: TX } });
      expect(trackState(blockless, TWO)).toBe('final');
      expect(trackView(blockless, TWO)).not.toHaveProperty('block');
      expect(trackView(blockless, TWO).confirmations).toBe(2);

      const attached = facts({ kind: 'included', ref: TX, block: block(7) }, { kind: 'confirmed', confirmations: 3 });
      expect(Object.keys(attached.sightings)).toEqual([block(7).hash]);
      expect(attached.sightings[block(7).hash].confirmations).toBe(3);
    });

    it('copies every list and sighting, so changing the copy leaves the original alone', () => {
      const original = facts(
        { kind: 'included', ref: TX, block: block(1), output: { a: '1' } },
        { kind: 'failed', ref: TX, block: block(1), reason: 'reverted' },
        { kind: 'dropped', ref: TX },
        { kind: 'reorged', orphanedHash: '0xdead' },
      );
      const snapshot = structuredClone(original);
      const copy = cloneTrack(original);
      expect(copy).toEqual(original);
      copy.refs.push('x');
      copy.orphaned.push('x');
      copy.dropped.push('x');
      copy.failures.push({ reason: 'x' });
      copy.failures[0].reason = 'changed';
      copy.sightings[block(1).hash].confirmations = 99;
      copy.output!.a = 'changed';
      expect(original).toEqual(snapshot);
      expect(cloneTrack(emptyTrack())).not.toHaveProperty('output');
    });
  });

  describe('the block a track is in', () => {
    it('prefers a finalized block, then the most confirmed, then a named block, then the highest', () => {
      expect(
        bestSightingKey(
          facts(
            { kind: 'confirmed', ref: TX, block: block(9), confirmations: 5 },
            { kind: 'finalized', ref: TX, block: block(3) },
          ),
        ),
      ).toBe(block(3).hash);
      expect(
        bestSightingKey(
          facts(
            { kind: 'included', ref: TX, block: block(9) },
            { kind: 'confirmed', ref: TX, block: block(3), confirmations: 2 },
          ),
        ),
      ).toBe(block(3).hash);
      expect(
        bestSightingKey(
          facts({ kind: 'included', ref: TX, block: block(3) }, { kind: 'included', ref: TX, block: block(9) }),
        ),
      ).toBe(block(9).hash);
      expect(
        bestSightingKey(
          facts({ kind: 'included', ref: TX, block: block(9) }, { kind: 'included', ref: TX, block: block(3) }),
        ),
      ).toBe(block(9).hash);
    });

    it('prefers a named block to a report that named none, with the same confirmations', () => {
      const blocklessFirst = facts({ kind: 'included', ref: TX }, { kind: 'reorged', orphanedHash: '0x00' });
      addFacts(blocklessFirst, { for: 'operation', source: 'watcher', kind: 'included', ref: TX, block: block(4) });
      expect(Object.keys(blocklessFirst.sightings)).toHaveLength(2);
      expect(bestSightingKey(blocklessFirst)).toBe(block(4).hash);
      expect(trackView(blocklessFirst, TWO).block).toEqual(block(4));
      // Even the genesis block (number 0, as low as a report without a block) wins over no block at all.
      const genesis = facts({ kind: 'included', ref: TX });
      addFacts(genesis, { for: 'operation', source: 'watcher', kind: 'included', ref: TX, block: block(0) });
      expect(bestSightingKey(genesis)).toBe(block(0).hash);
    });

    it('prefers a named block to a blockless report whichever was recorded first', () => {
      // A block recorded before the blockless report (as when a block thought orphaned is seen again).
      const track = emptyTrack();
      track.sightings = {
        [block(0).hash]: { number: '0', hash: block(0).hash, confirmations: 1, finalized: false },
        '~': { number: '0', confirmations: 1, finalized: false },
      };
      expect(bestSightingKey(track)).toBe(block(0).hash);
    });

    it('chooses between forks at the same height and depth the same way whatever the order', () => {
      const forks = [
        { kind: 'included' as const, ref: TX, block: block(5, 'a') },
        { kind: 'included' as const, ref: TX, block: block(5, 'b') },
        { kind: 'confirmed' as const, ref: TX, block: block(5, 'a'), confirmations: 2 },
        { kind: 'confirmed' as const, ref: TX, block: block(5, 'b'), confirmations: 2 },
        { kind: 'reorged' as const, ref: TX, block: block(5, 'a') },
        { kind: 'reorged' as const, ref: TX, block: block(5, 'b') },
      ];
      const live = inEveryOrder(forks.slice(0, 4), TWO);
      expect(new Set(live.map((v) => JSON.stringify(v))).size).toBe(1);
      expect(live[0].block).toEqual(block(5, 'b'));
      // Both final and both orphaned: the same violation is reported whatever the order.
      const violated = inEveryOrder(forks, TWO);
      expect(new Set(violated.map((v) => JSON.stringify(v))).size).toBe(1);
      expect(violated[0].violated).toMatchObject({ hash: block(5, 'b').hash });
    });

    it('is none when every block it was seen in was orphaned', () => {
      const track = facts({ kind: 'included', ref: TX, block: block(1) }, { kind: 'reorged', block: block(1) });
      expect(bestSightingKey(track)).toBeUndefined();
      expect(trackState(track, TWO)).toBe('submitted');
    });
  });

  describe('meeting a policy', () => {
    it('is met by finalized evidence under any policy, and by enough confirmations under a count', () => {
      const sighting = { number: '1', confirmations: 1, finalized: true };
      expect(meetsPolicy(sighting, { tag: 'safe' })).toBe(true);
      expect(meetsPolicy({ ...sighting, finalized: false, confirmations: 99 }, { tag: 'finalized' })).toBe(false);
      expect(meetsPolicy({ ...sighting, finalized: false, confirmations: 2 }, TWO)).toBe(true);
      expect(meetsPolicy({ ...sighting, finalized: false, confirmations: 1 }, TWO)).toBe(false);
    });
  });

  describe('a finality violation', () => {
    it('is reported only for an orphaned block that met the policy, the deepest when several did', () => {
      const track = facts(
        { kind: 'confirmed', ref: TX, block: block(1), confirmations: 2 },
        { kind: 'confirmed', ref: TX, block: block(2), confirmations: 5 },
        { kind: 'confirmed', ref: TX, block: block(3), confirmations: 1 },
        { kind: 'reorged', block: block(1) },
        { kind: 'reorged', block: block(3) },
      );
      expect(violatedSighting(track, TWO)).toMatchObject({ hash: block(1).hash });
      addFacts(track, { for: 'operation', source: 'watcher', kind: 'reorged', block: block(2) });
      expect(violatedSighting(track, TWO)).toMatchObject({ hash: block(2).hash, confirmations: 5 });
      expect(
        violatedSighting(facts({ kind: 'confirmed', ref: TX, block: block(1), confirmations: 2 }), TWO),
      ).toBeUndefined();
    });
  });

  describe('its state', () => {
    it('is submitting, then submitted once a transaction is known', () => {
      const track = emptyTrack();
      track.submitting = true;
      expect(trackState(track, TWO)).toBe('submitting');
      expect(trackState(facts({ kind: 'dropped', ref: TX }), TWO)).toBe('submitted');
      const submittedWithoutRefs = { ...emptyTrack(), submittedRef: TX };
      expect(trackState(submittedWithoutRefs, TWO)).toBe('submitted');
    });

    it('is failed, cancelled, when the same-nonce no-op sent to cancel it is what was mined', () => {
      const cancelled = facts(
        { kind: 'submitted', ref: TX },
        { kind: 'confirmed', ref: REPLACEMENT, block: block(1), confirmations: 2 },
      );
      cancelled.noops = [REPLACEMENT];
      expect(trackState(cancelled, TWO)).toBe('failed');
      expect(trackView(cancelled, TWO)).toMatchObject({
        error: 'cancelled: a same-nonce no-op was mined',
        ref: REPLACEMENT,
      });
      const copy = cloneTrack(cancelled);
      copy.noops!.push('x');
      expect(cancelled.noops).toEqual([REPLACEMENT]);
      const mined = facts({ kind: 'confirmed', ref: TX, block: block(1), confirmations: 2 });
      mined.noops = [REPLACEMENT];
      expect(trackState(mined, TWO)).toBe('final');
      expect(trackView(mined, TWO)).not.toHaveProperty('error');
    });

    it('is failed on a revert in the block it is in, or a failure outside any orphaned block', () => {
      expect(trackState(facts({ kind: 'failed', ref: TX, reason: 'rejected' }), TWO)).toBe('failed');
      const reverted = facts(
        { kind: 'confirmed', ref: TX, block: block(1), confirmations: 5 },
        { kind: 'failed', ref: TX, block: block(1), reason: 'reverted' },
      );
      expect(trackState(reverted, TWO)).toBe('failed');
      expect(trackView(reverted, TWO)).toMatchObject({ state: 'failed', error: 'reverted', block: block(1) });
    });

    it('is final in a live block that met the policy even if a revert elsewhere was not yet orphaned', () => {
      const track = facts(
        { kind: 'failed', ref: TX, block: block(1), reason: 'reverted' },
        { kind: 'confirmed', ref: TX, block: block(2), confirmations: 2 },
      );
      expect(trackState(track, TWO)).toBe('final');
      expect(trackView(track, TWO).error).toBe('reverted');
    });

    it('forgets a revert in an orphaned block', () => {
      const track = facts(
        { kind: 'failed', ref: TX, block: block(1), reason: 'reverted' },
        { kind: 'reorged', block: block(1) },
      );
      expect(trackState(track, TWO)).toBe('submitted');
      expect(trackView(track, TWO)).not.toHaveProperty('error');
    });
  });

  describe('its view', () => {
    it('shows the transaction in the block it is in, whatever was submitted since', () => {
      const track = facts({ kind: 'included', ref: TX, block: block(1) }, { kind: 'submitted', ref: REPLACEMENT });
      expect(trackView(track, TWO)).toEqual({
        state: 'included',
        ref: TX,
        refs: [TX, REPLACEMENT],
        block: block(1),
        confirmations: 1,
        orphaned: [],
      });
    });

    it('shows the latest submission still pending, else the latest ref still pending', () => {
      expect(trackView(facts({ kind: 'submitted', ref: TX }, { kind: 'submitted', ref: REPLACEMENT }), TWO).ref).toBe(
        REPLACEMENT,
      );
      const fromReports = facts(
        { kind: 'reorged', ref: '0x01', block: block(1) },
        { kind: 'reorged', ref: '0x02', block: block(2) },
        { kind: 'reorged', ref: '0x03', block: block(3) },
        { kind: 'dropped', ref: '0x03' },
      );
      expect(trackView(fromReports, TWO).ref).toBe('0x02');
    });

    it('shows the latest submission, or the latest ref, when every one was dropped', () => {
      const dropped = facts(
        { kind: 'submitted', ref: REPLACEMENT },
        { kind: 'submitted', ref: TX },
        { kind: 'dropped', ref: TX },
        { kind: 'dropped', ref: REPLACEMENT },
      );
      expect(trackView(dropped, TWO).ref).toBe(TX);
      expect(trackView(facts({ kind: 'dropped', ref: TX }, { kind: 'dropped', ref: REPLACEMENT }), TWO).ref).toBe(
        REPLACEMENT,
      );
    });

    it('shows no ref, block or confirmations before anything is known', () => {
      expect(trackView(emptyTrack(), TWO)).toEqual({ state: 'pending', refs: [], orphaned: [] });
    });

    it('lists the blocks known to be orphaned', () => {
      const track = facts(
        { kind: 'included', ref: TX, block: block(1) },
        { kind: 'reorged', orphanedHash: block(1).hash },
      );
      expect(trackView(track, TWO)).toEqual({ state: 'submitted', ref: TX, refs: [TX], orphaned: [block(1).hash] });
    });

    it('returns copies of its lists', () => {
      const track = facts({ kind: 'reorged', ref: TX, block: block(1) });
      const view = trackView(track, TWO);
      view.refs.push('x');
      view.orphaned.push('x');
      expect(track.refs).toEqual([TX]);
      expect(track.orphaned).toEqual([block(1).hash]);
    });
  });
});
