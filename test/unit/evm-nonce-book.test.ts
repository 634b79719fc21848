import fc from 'fast-check';
import { NonceBook, validateLookup, validateRecord } from '../../workflows/machine/nonce-book';

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

  it('forgets a record a week after its last signature, and keeps the sequence', () => {
    const book = new NonceBook();
    book.record({ key: 'old', nonce: 0, hash: hash(1), raw: raw(1), mode: 'new' }, AT);
    book.record({ key: 'new', nonce: 1, hash: hash(2), raw: raw(2), mode: 'new' }, '2026-01-07T00:00:00.000Z');
    book.prune(Date.parse('2026-01-08T00:00:01.000Z'));
    expect(Object.keys(book.state.records)).toEqual(['new']);
    expect(book.state.next).toBe(2);
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
  });
});
