import fc from 'fast-check';
import type { FinalityPolicy } from '../../contract/action-spec';
import type { BlockRef } from '../../contract/primitives';
import { emptyTrack, trackState, type TrackFacts } from '../../workflows/machine/track';
import {
  mergeStatusFacts,
  recordReport,
  reportsDue,
  seenAgain,
  type ChainFacts,
  type Report,
} from '../../workers/watcher/evidence-rules';

const REF = '0x1111111111111111111111111111111111111111111111111111111111111111';
const TWO: FinalityPolicy = { confirmations: 2 };

function block(number: number, fork = 'a'): BlockRef {
  return { number: String(number), hash: `0x${fork.repeat(2)}${number.toString(16).padStart(62, '0')}` };
}

function chain(fields: Omit<Partial<ChainFacts>, 'head'> & { head: number; orphaned?: string[] }): ChainFacts {
  const { head, orphaned = [], ...rest } = fields;
  return { missing: false, isOrphaned: (b) => orphaned.includes(b.hash), ...rest, head: BigInt(head) };
}

const included = (b: BlockRef) => ({ block: b, reverted: false });

/** Sends what is due at each head, as the follower does, and returns every report sent. */
function follow(policy: FinalityPolicy, heads: ChainFacts[], start: TrackFacts = emptyTrack()): Report[] {
  let facts = start;
  const sent: Report[] = [];
  for (const head of heads) {
    for (const report of reportsDue(policy, REF, facts, head)) {
      sent.push(report);
      facts = recordReport(facts, report);
    }
  }
  return sent;
}

describe('reportsDue', () => {
  it('reports inclusion once, then the confirmation count that meets the policy once, never once per block', () => {
    const heads = [10, 10, 11, 12, 13, 14, 15].map((head) => chain({ head, inclusion: included(block(10)) }));

    expect(follow(TWO, heads).map((r) => [r.kind, 'confirmations' in r ? r.confirmations : undefined])).toEqual([
      ['included', undefined],
      ['confirmed', 2],
    ]);
  });

  it('sends only the inclusion when one confirmation is the policy', () => {
    const heads = [10, 11, 12].map((head) => chain({ head, inclusion: included(block(10)) }));

    expect(follow({ confirmations: 1 }, heads).map((r) => r.kind)).toEqual(['included']);
  });

  it('catches up in one go: a transaction found already deep is reported included, then confirmed with its count', () => {
    const due = reportsDue(
      { confirmations: 3 },
      REF,
      emptyTrack(),
      chain({ head: 20, inclusion: included(block(10)) }),
    );

    expect(due).toEqual([
      { kind: 'included', ref: REF, block: block(10) },
      { kind: 'confirmed', ref: REF, block: block(10), confirmations: 11 },
    ]);
  });

  it('carries the decoded events of the receipt on the inclusion report', () => {
    const output = { txHash: REF, amount: '1000' };
    const [report] = reportsDue(
      TWO,
      REF,
      emptyTrack(),
      chain({ head: 10, inclusion: { ...included(block(10)), output } }),
    );

    expect(report).toEqual({ kind: 'included', ref: REF, block: block(10), output });
  });

  it('reports finalized when the policy tag reaches the block, and never for a confirmation policy', () => {
    const safe: FinalityPolicy = { tag: 'safe' };
    const heads = [
      chain({ head: 12, inclusion: included(block(10)), tagged: 9n }),
      chain({ head: 13, inclusion: included(block(10)), tagged: 10n }),
      chain({ head: 14, inclusion: included(block(10)), tagged: 11n }),
    ];

    expect(follow(safe, heads).map((r) => r.kind)).toEqual(['included', 'finalized']);
    expect(follow({ confirmations: 50 }, heads).map((r) => r.kind)).toEqual(['included']);
  });

  it('reports the orphaned block, then the inclusion in its replacement', () => {
    const sent = follow(TWO, [
      chain({ head: 10, inclusion: included(block(10)) }),
      chain({ head: 11, orphaned: [block(10).hash, block(11).hash] }),
      chain({ head: 12, orphaned: [block(10).hash], inclusion: included(block(12, 'b')) }),
      chain({ head: 13, orphaned: [block(10).hash], inclusion: included(block(12, 'b')) }),
    ]);

    expect(sent.map((r) => `${r.kind}${'block' in r ? `@${r.block.number}${r.block.hash.slice(2, 4)}` : ''}`)).toEqual([
      'included@10aa',
      'reorged@10aa',
      'included@12bb',
      'confirmed@12bb',
    ]);
  });

  it('reports a reorg of a block the step was already final in (the workflow raises the alarm)', () => {
    const final = recordReport(recordReport(emptyTrack(), { kind: 'included', ref: REF, block: block(10) }), {
      kind: 'confirmed',
      ref: REF,
      block: block(10),
      confirmations: 2,
    });

    expect(reportsDue(TWO, REF, final, chain({ head: 30, orphaned: [block(10).hash] }))).toEqual([
      { kind: 'reorged', ref: REF, block: block(10) },
    ]);
  });

  it('reports a revert once, with its reason and block, instead of an inclusion', () => {
    const heads = [10, 11, 12].map((head) =>
      chain({
        head,
        inclusion: { block: block(10), reverted: true, reason: 'execution reverted: AlreadyMinted(0x…)' },
      }),
    );

    expect(follow(TWO, heads)).toEqual([
      { kind: 'failed', ref: REF, block: block(10), reason: 'execution reverted: AlreadyMinted(0x…)' },
    ]);
  });

  it('reports the block a transaction reverted in orphaned, with its number, then its inclusion elsewhere', () => {
    const reverted = { block: block(10), reverted: true, reason: 'execution reverted: Paused()' };
    const sent = follow(TWO, [
      chain({ head: 10, inclusion: reverted }),
      chain({ head: 11, orphaned: [block(10).hash] }),
      chain({ head: 12, orphaned: [block(10).hash], inclusion: included(block(11, 'b')) }),
    ]);

    expect(sent.map((r) => `${r.kind}${'block' in r ? `@${r.block.number}${r.block.hash.slice(2, 4)}` : ''}`)).toEqual([
      'failed@10aa',
      'reorged@10aa',
      'included@11bb',
      'confirmed@11bb',
    ]);
  });

  it('keeps what it sent as the step reducer keeps evidence: the same facts give the same track state', () => {
    let facts = emptyTrack();
    for (const report of follow(
      TWO,
      [10, 11].map((head) => chain({ head, inclusion: included(block(10)) })),
    )) {
      facts = recordReport(facts, report);
    }

    expect(trackState(facts, TWO)).toBe('final');
    expect(trackState(recordReport(facts, { kind: 'reorged', ref: REF, block: block(10) }), TWO)).toBe('submitted');
  });

  it('reports a missing transaction dropped once, and again only after it was seen again', () => {
    const sent = follow(TWO, [
      chain({ head: 10 }),
      chain({ head: 11, missing: true }),
      chain({ head: 12, missing: true }),
    ]);
    expect(sent).toEqual([{ kind: 'dropped', ref: REF }]);

    const seen = seenAgain(recordReport(emptyTrack(), sent[0]), REF);
    expect(reportsDue(TWO, REF, seen, chain({ head: 13, missing: true }))).toEqual([{ kind: 'dropped', ref: REF }]);
  });

  it('sends nothing the status already shows: a step final in the block it is in', () => {
    const known = mergeStatusFacts(emptyTrack(), { ref: REF, block: block(10), confirmations: 2, final: true }, REF);

    expect(reportsDue(TWO, REF, known, chain({ head: 40, inclusion: included(block(10)) }))).toEqual([]);
  });

  it('completes what the status lacks: included but not yet confirmed to the policy', () => {
    const known = mergeStatusFacts(emptyTrack(), { ref: REF, block: block(10), confirmations: 1, final: false }, REF);

    expect(reportsDue(TWO, REF, known, chain({ head: 11, inclusion: included(block(10)) }))).toEqual([
      { kind: 'confirmed', ref: REF, block: block(10), confirmations: 2 },
    ]);
  });

  it('ignores a status view about another ref of the same step', () => {
    const other = '0x2222222222222222222222222222222222222222222222222222222222222222';

    expect(
      mergeStatusFacts(emptyTrack(), { ref: other, block: block(10), confirmations: 5, final: true }, REF),
    ).toEqual(emptyTrack());
  });

  it('never sends the same report twice for any sequence of heads over a stable inclusion (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 12 }),
        fc.array(fc.integer({ min: 0, max: 30 }), { minLength: 1, maxLength: 40 }),
        (confirmations, advances) => {
          let head = 10;
          const heads = advances.map((step) => chain({ head: (head += step), inclusion: included(block(10)) }));
          const sent = follow({ confirmations }, heads);
          const keys = sent.map((r) => r.kind);
          expect(new Set(keys).size).toBe(keys.length);
          expect(sent.length).toBeLessThanOrEqual(2);
          expect(keys[0]).toBe('included');
        },
      ),
    );
  });
});
