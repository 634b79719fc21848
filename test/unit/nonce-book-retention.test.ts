/**
 * What the nonce owner carries through its continue-as-new: unresolved records with their bytes, settled ones as small
 * tombstones for a week, and nothing else. Its state is one Temporal payload (2 MB at most).
 */
import fc from 'fast-check';
import { NonceBook, type NonceBookState } from '../../workflows/machine/nonce-book';

const HOUR = 3600_000;
const DAY = 24 * HOUR;
const START = Date.parse('2026-01-01T00:00:00.000Z');
const PAYLOAD_LIMIT = 2 * 1024 * 1024;

const hash = (n: number) => `0x${n.toString(16).padStart(64, '0')}`;
/** A signed contract call is a few hundred bytes: 220 here (440 hex digits). */
const raw = (n: number) => `0x02${n.toString(16).padStart(438, 'a')}`;
/** `<actionId>/<firstRunId>/<step>/<attempt>/<for>`, as the workflow builds it. */
const keyOf = (n: number) =>
  `xfer-${n.toString(16).padStart(8, '0')}/${'0'.repeat(28)}${n.toString(16).padStart(8, '0')}/lock/1/operation`;
const iso = (ms: number) => new Date(ms).toISOString();

/** The book as continue-as-new hands it to the next run: pruned, then through a JSON payload. */
function continueAsNew(book: NonceBook, nowMs: number): NonceBook {
  book.prune(nowMs);
  return new NonceBook(JSON.parse(JSON.stringify(book.state)) as NonceBookState);
}

const sizeOf = (book: NonceBook) => JSON.stringify(book.state).length;

describe('the nonce book over a long life', () => {
  it('stays bounded under a month of settled submissions at 20 an hour, and keeps what is unresolved', () => {
    let book = new NonceBook();
    const unresolved: string[] = [];
    const sizes: Record<number, number> = {};
    const interval = HOUR / 20;
    const pendingSettle: { key: string; hash: string; at: number }[] = [];
    for (let n = 0, now = START; now < START + 30 * DAY; n++, now += interval) {
      const key = keyOf(n);
      const { next } = book.lookup({ key, chainNonce: n }, iso(now));
      expect(book.record({ key, nonce: next, hash: hash(n + 1), raw: raw(n), mode: 'new' }, iso(now))).toMatchObject({
        accepted: true,
      });
      // One in a thousand is never mined (its action was held and nobody retries it): it is never settled.
      if (n % 1000 === 999) unresolved.push(key);
      else pendingSettle.push({ key, hash: hash(n + 1), at: now + 5 * 60_000 });
      while (pendingSettle.length && pendingSettle[0].at <= now) {
        const mined = pendingSettle.shift()!;
        book.settle({ mined: [{ key: mined.key, hash: mined.hash, blockNumber: String(n) }] }, iso(mined.at));
      }
      if (n % 120 !== 0) continue;
      // What continue-as-new carries (every six hours here) is one payload.
      book = continueAsNew(book, now);
      const day = Math.floor((now - START) / DAY);
      sizes[day] = Math.max(sizes[day] ?? 0, sizeOf(book));
    }
    const largest = Math.max(...Object.values(sizes));
    expect(largest).toBeLessThan(PAYLOAD_LIMIT / 2);
    // The week of tombstones is full by day 8: from then on the state no longer grows.
    expect(sizes[29]).toBeLessThan(sizes[8] * 1.05);
    for (const key of unresolved) {
      expect(book.state.records[key]?.txs[0].raw).toMatch(/^0x02/);
    }
    expect(unresolved.length).toBeGreaterThan(10);
  });

  it('never prunes a record that no settlement names, whatever happens around it', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc.record({ op: fc.constant('submit' as const), key: fc.integer({ min: 0, max: 30 }) }),
            fc.record({ op: fc.constant('settle' as const), key: fc.integer({ min: 0, max: 30 }) }),
            fc.record({ op: fc.constant('bump' as const), key: fc.integer({ min: 0, max: 30 }) }),
            fc.record({ op: fc.constant('continueAsNew' as const), days: fc.integer({ min: 0, max: 400 }) }),
          ),
          { maxLength: 80 },
        ),
        (ops) => {
          let book = new NonceBook();
          let now = START;
          let seq = 0;
          // The model: every version accepted for a key, and which keys a settlement named.
          const versions = new Map<string, string[]>();
          const settled = new Set<string>();
          for (const op of ops) {
            if (op.op === 'continueAsNew') {
              now += op.days * DAY;
              book = continueAsNew(book, now);
              continue;
            }
            const key = `k${op.key}`;
            const record = book.state.records[key];
            if (op.op === 'submit') {
              const { next } = book.lookup({ key, chainNonce: 0 }, iso(now));
              const tx = { key, nonce: next, hash: hash(++seq), raw: raw(seq) };
              if (book.record({ ...tx, mode: 'new' }, iso(now)).accepted) versions.set(key, [tx.hash]);
            } else if (op.op === 'bump' && record) {
              const latest = record.txs[record.txs.length - 1].hash;
              const bump = { key, nonce: record.nonce, hash: hash(++seq), raw: raw(seq), replaces: latest };
              if (book.record({ ...bump, mode: 'replace' }, iso(now)).accepted) versions.get(key)!.push(bump.hash);
            } else if (op.op === 'settle' && record) {
              book.settle({ mined: [{ key, hash: record.txs[0].hash, blockNumber: '1' }] }, iso(now));
              settled.add(key);
            }
          }
          for (const [key, hashes] of versions) {
            if (settled.has(key)) {
              expect(book.state.records[key]).toBeUndefined();
              continue;
            }
            // Recorded and never settled: still there, with the bytes of every version, however much time passed.
            const record = book.state.records[key];
            expect(record?.txs.map((tx) => tx.hash)).toEqual(hashes);
            expect(record.txs.every((tx) => /^0x02/.test(tx.raw))).toBe(true);
          }
        },
      ),
    );
  });
});
