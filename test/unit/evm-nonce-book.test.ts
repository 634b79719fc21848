import fc from 'fast-check';
import { NonceBook } from '../../workflows/machine/nonce-book';
import { validateLookup, validateRecord, validateSettle } from '../../workflows/signer-nonces';

const AT = '2026-01-01T00:00:00.000Z';
const hash = (n: number) => `0x${n.toString(16).padStart(64, '0')}`;
const raw = (n: number) => `0x02${n.toString(16).padStart(8, '0')}`;

describe('the nonce book of one signer', () => {
  it('never hands out a nonce below the chain', () => {
    const book = new NonceBook();
    expect(book.lookup({ key: 'a/lock/1/operation', chainNonce: 5 })).toEqual({ next: 5 });
    expect(book.lookup({ key: 'a/lock/1/operation', chainNonce: 3 })).toEqual({ next: 5 });
  });

  it('records one transaction per step attempt: a second one for the same key is refused with the first', () => {
    const book = new NonceBook();
    const first = book.record({ key: 'k', nonce: 0, hash: hash(1), raw: raw(1), mode: 'new' }, AT);
    expect(first).toMatchObject({ accepted: true, record: { nonce: 0 } });
    const again = book.record({ key: 'k', nonce: 1, hash: hash(2), raw: raw(2), mode: 'new' }, AT);
    expect(again).toMatchObject({ accepted: false, record: { nonce: 0, txs: [{ hash: hash(1) }] } });
    expect(book.lookup({ key: 'k', chainNonce: 0 })).toMatchObject({ next: 1, record: { nonce: 0 } });
  });

  it('accepts a nonce only if it is still next (compare-and-record)', () => {
    const book = new NonceBook();
    book.record({ key: 'a', nonce: 0, hash: hash(1), raw: raw(1), mode: 'new' }, AT);
    expect(book.record({ key: 'b', nonce: 0, hash: hash(2), raw: raw(2), mode: 'new' }, AT)).toMatchObject({
      accepted: false,
      next: 1,
    });
  });

  it('keeps the nonce for a fee bump and moves it for a re-sign of a dead transaction', () => {
    const book = new NonceBook();
    book.record({ key: 'a', nonce: 0, hash: hash(1), raw: raw(1), mode: 'new' }, AT);
    expect(
      book.record({ key: 'a', nonce: 1, hash: hash(2), raw: raw(2), mode: 'replace', replaces: hash(1) }, AT),
    ).toMatchObject({ accepted: false });
    expect(
      book.record({ key: 'a', nonce: 0, hash: hash(2), raw: raw(2), mode: 'replace', replaces: hash(1) }, AT),
    ).toMatchObject({ accepted: true, record: { nonce: 0, txs: [{ hash: hash(1) }, { hash: hash(2) }] } });
    expect(book.state.next).toBe(1);
    expect(
      book.record({ key: 'a', nonce: 1, hash: hash(3), raw: raw(3), mode: 'supersede', replaces: hash(2) }, AT),
    ).toMatchObject({ accepted: true, record: { nonce: 1 } });
    expect(book.state.next).toBe(2);
    expect(book.between(0, 1)).toEqual([]);
    expect(book.between(0, 2).map((r) => r.key)).toEqual(['a']);
  });

  it('hands out every nonce once, with no gap, whatever order racing attempts and retries arrive in', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 7 }), fc.integer({ min: 0, max: 3 })), { maxLength: 60 }),
        (ops) => {
          const book = new NonceBook();
          let seq = 0;
          for (const [key, chainBump] of ops) {
            // An attempt reads next, signs, and records; a stale read loses the race and reads again.
            let { next } = book.lookup({ key: `k${key}`, chainNonce: 0 });
            for (;;) {
              const result = book.record(
                { key: `k${key}`, nonce: next, hash: hash(++seq), raw: raw(seq), mode: 'new' },
                AT,
              );
              if (result.accepted || result.record) break;
              next = result.next;
            }
            void chainBump;
          }
          const nonces = Object.values(book.state.records)
            .map((r) => r.nonce)
            .sort((a, b) => a - b);
          expect(nonces).toEqual(nonces.map((_, i) => i));
          expect(book.state.next).toBe(nonces.length);
        },
      ),
    );
  });

  it('keeps a record whose transaction is unresolved, bytes and all, however old it is', () => {
    const book = new NonceBook();
    book.record({ key: 'old', nonce: 0, hash: hash(1), raw: raw(1), mode: 'new' }, AT);
    book.prune(Date.parse('2027-01-01T00:00:00.000Z'));
    expect(book.state.records.old).toMatchObject({ nonce: 0, txs: [{ hash: hash(1), raw: raw(1) }] });
    expect(book.between(0, 1).map((r) => r.key)).toEqual(['old']);
  });

  it('shrinks a settled record to a tombstone that answers a late retry, and forgets it a week later', () => {
    const book = new NonceBook();
    book.record({ key: 'a', nonce: 0, hash: hash(1), raw: raw(1), mode: 'new' }, AT);
    book.record({ key: 'a', nonce: 0, hash: hash(2), raw: raw(2), mode: 'replace', replaces: hash(1) }, AT);
    expect(book.settle({ mined: [{ key: 'a', hash: hash(2), blockNumber: '42' }] }, AT)).toEqual({ settled: ['a'] });
    expect(book.state.records).toEqual({});
    const settled = { key: 'a', nonce: 0, hash: hash(2), block: '42', replaces: hash(1) };
    expect(book.lookup({ key: 'a', chainNonce: 0 }, AT)).toEqual({ next: 1, settled });
    // A retry racing the settlement cannot sign a second transaction for the attempt.
    expect(book.record({ key: 'a', nonce: 1, hash: hash(3), raw: raw(3), mode: 'new' }, AT)).toMatchObject({
      accepted: false,
      settled,
    });
    expect(book.between(0, 1)).toEqual([]);
    book.prune(Date.parse('2026-01-07T00:00:00.000Z'));
    expect(book.lookup({ key: 'a', chainNonce: 0 }, AT)).toMatchObject({ settled });
    book.prune(Date.parse('2026-01-08T00:00:01.000Z'));
    expect(book.lookup({ key: 'a', chainNonce: 0 }, AT)).toEqual({ next: 1 });
    expect(book.state.next).toBe(1);
  });

  it('settles a record found by the hash of its mined version, and ignores a hash that is none of its versions', () => {
    const book = new NonceBook();
    book.record({ key: 'a', nonce: 0, hash: hash(1), raw: raw(1), mode: 'new' }, AT);
    expect(book.settle({ mined: [{ hash: hash(9), blockNumber: '1' }] }, AT)).toEqual({ settled: [] });
    expect(book.settle({ mined: [{ key: 'a', hash: hash(9), blockNumber: '1' }] }, AT)).toEqual({ settled: [] });
    expect(book.settle({ mined: [{ hash: hash(1), blockNumber: '7' }] }, AT)).toEqual({ settled: ['a'] });
    expect(book.settle({ mined: [{ hash: hash(1), blockNumber: '7' }] }, AT)).toEqual({ settled: [] });
  });

  it('offers the records whose nonce the chain used deep down for settling, lowest first, once each at a nonce', () => {
    const book = new NonceBook();
    for (const n of [0, 1, 2, 3])
      book.record({ key: `k${n}`, nonce: n, hash: hash(n + 1), raw: raw(n), mode: 'new' }, AT);
    expect(book.unsettled(3, 2)).toEqual([
      { key: 'k0', nonce: 0, hashes: [hash(1)] },
      { key: 'k1', nonce: 1, hashes: [hash(2)] },
    ]);
    // k0's nonce went to a transaction that is none of its versions: kept (its attempt may sign again), not offered.
    book.settle({ mined: [{ key: 'k1', hash: hash(2), blockNumber: '5' }], foreign: [{ key: 'k0', nonce: 0 }] }, AT);
    expect(book.unsettled(3, 2).map((r) => r.key)).toEqual(['k2']);
    expect(book.state.records.k0.txs).toHaveLength(1);
    // Signed again with a new nonce, it is offered again once that nonce is deep.
    book.record({ key: 'k0', nonce: 4, hash: hash(9), raw: raw(9), mode: 'supersede', replaces: hash(1) }, AT);
    expect(book.unsettled(5, 9).map((r) => r.key)).toEqual(['k2', 'k3', 'k0']);
  });

  it('rejects a malformed record or lookup before it reaches the book, naming the field', () => {
    const good = { key: 'k', nonce: 0, hash: hash(1), raw: raw(1), mode: 'new' as const };
    expect(() => validateRecord(good)).not.toThrow();
    expect(() => validateRecord({ ...good, key: '' })).toThrow('key is required');
    expect(() => validateRecord({ ...good, nonce: -1 })).toThrow('nonce must be >= 0');
    expect(() => validateRecord({ ...good, hash: '0x12' })).toThrow('hash must be a 32-byte hex hash');
    expect(() => validateRecord({ ...good, raw: 'signed' })).toThrow('raw must be a hex signed transaction');
    expect(() => validateRecord({ ...good, mode: 'bump' as never })).toThrow('unknown mode');
    expect(() => validateLookup({ key: 'k', chainNonce: 3 })).not.toThrow();
    expect(() => validateLookup({ key: 'k', chainNonce: -1 })).toThrow(
      'lookupNonce: needs a key and a chainNonce >= 0',
    );
    expect(() => validateSettle({ mined: [{ hash: hash(1), blockNumber: '12' }] })).not.toThrow();
    expect(() => validateSettle({ mined: [{ hash: '0x1', blockNumber: '12' }] })).toThrow(
      'settleRecords: mined[0].hash',
    );
    expect(() => validateSettle({ mined: [{ hash: hash(1), blockNumber: '-1' }] })).toThrow(
      'settleRecords: mined[0].blockNumber',
    );
    expect(() => validateSettle({ mined: [], foreign: [{ key: '', nonce: 1 }] })).toThrow('settleRecords: foreign[0]');
  });
});
