/**
 * Spend budgets in the nonce book: reserved in the same update that records a signed transaction, so that racing
 * senders can never overspend a route's rolling window. The oracle of the property test is what the senders were told
 * was accepted, not the book's own reservations.
 */
import fc from 'fast-check';
import { NonceBook, type NonceBookState, type RecordInput, type Spend } from '../../workflows/machine/nonce-book';
import { validateRecord } from '../../workflows/signer-nonces';

const T0 = Date.parse('2026-01-01T00:00:00.000Z');
const WINDOW = 10_000;
const at = (ms: number) => new Date(T0 + ms).toISOString();
const hash = (n: number) => `0x${n.toString(16).padStart(64, '0')}`;
const raw = (n: number) => `0x02${n.toString(16).padStart(8, '0')}`;
const lock = (amount: number, limit = 2500): Spend => ({
  route: '0xescrow:lock(bytes32,address,uint256)',
  amount: String(amount),
  limit: String(limit),
  windowMs: WINDOW,
});

/** Records a new transaction for `key` with the book's next nonce. */
function sign(book: NonceBook, key: string, spend: Spend[], ms: number, n = Object.keys(book.state.records).length) {
  const input: RecordInput = { key, nonce: book.state.next, hash: hash(n + 1), raw: raw(n + 1), mode: 'new', spend };
  return book.record(input, at(ms));
}

describe('the spend budget of a route', () => {
  it('reserves in the update that records the transaction, and refuses the one that does not fit, with when it will', () => {
    const book = new NonceBook();
    expect(sign(book, 'a', [lock(1000)], 0)).toMatchObject({ accepted: true });
    expect(sign(book, 'b', [lock(1000)], 1_000)).toMatchObject({ accepted: true });
    book.settle({ mined: [{ key: 'a', hash: hash(1), blockNumber: '5' }] }, at(2_000));
    const refused = sign(book, 'c', [lock(1000)], 3_000);
    expect(refused).toMatchObject({
      accepted: false,
      next: 2,
      reason: 'no room in the budget of 0xescrow:lock(bytes32,address,uint256)',
      budget: { amount: '1000', limit: '2500', used: '2000', windowMs: WINDOW, pending: 1, availableAt: at(WINDOW) },
    });
    // Nothing was taken: no nonce, no record, no reservation.
    expect(book.state.next).toBe(2);
    expect(book.state.records.c).toBeUndefined();
    expect(book.state.budgets!['0xescrow:lock(bytes32,address,uint256)'].map((r) => r.key)).toEqual(['a', 'b']);
    // Once `a` leaves its window, `c` fits.
    expect(sign(book, 'c', [lock(1000)], WINDOW - 1)).toMatchObject({ accepted: false });
    expect(sign(book, 'c', [lock(1000)], WINDOW)).toMatchObject({ accepted: true });
  });

  it('counts a transaction that is still pending past its window: a stuck one mined late cannot double the spend', () => {
    const book = new NonceBook();
    sign(book, 'a', [lock(2000)], 0);
    expect(sign(book, 'b', [lock(1000)], 5 * WINDOW)).toMatchObject({
      accepted: false,
      budget: { used: '2000', pending: 1 },
    });
    expect((sign(book, 'b', [lock(1000)], 5 * WINDOW) as { budget: object }).budget).not.toHaveProperty('availableAt');
    // Mined and settled long after its window: its room is back at once.
    book.settle({ mined: [{ key: 'a', hash: hash(1), blockNumber: '9' }] }, at(5 * WINDOW));
    expect(sign(book, 'b', [lock(1000)], 5 * WINDOW)).toMatchObject({ accepted: true });
  });

  it('gives the room of a transaction that can never be mined back at once, and a re-sign takes it again', () => {
    const book = new NonceBook();
    sign(book, 'a', [lock(2000)], 0);
    expect(sign(book, 'b', [lock(1000)], 1_000)).toMatchObject({ accepted: false });
    // Another transaction used a's nonce deep down: a is dead.
    book.settle({ mined: [], foreign: [{ key: 'a', nonce: 0 }] }, at(2_000));
    expect(sign(book, 'b', [lock(1000)], 2_000)).toMatchObject({ accepted: true });
    // Signing a again at a new nonce is a new effect: checked again, without counting its own old reservation.
    const resign = (ms: number, amount: number): RecordInput => ({
      key: 'a',
      nonce: book.state.next,
      hash: hash(7),
      raw: raw(7),
      mode: 'supersede',
      replaces: hash(1),
      spend: [lock(amount)],
    });
    expect(book.record(resign(3_000, 2000), at(3_000))).toMatchObject({ accepted: false, budget: { used: '1000' } });
    expect(book.record(resign(3_000, 1500), at(3_000))).toMatchObject({ accepted: true, record: { nonce: 2 } });
    expect(book.state.budgets!['0xescrow:lock(bytes32,address,uint256)']).toEqual([
      expect.objectContaining({ key: 'b', amount: '1000' }),
      expect.objectContaining({ key: 'a', amount: '1500', at: at(3_000) }),
    ]);
  });

  it('never checks a retry or a fee bump of a recorded transaction against the budget: the same effect', () => {
    const book = new NonceBook();
    sign(book, 'a', [lock(2500)], 0);
    expect(sign(book, 'a', [lock(2500)], 100)).toMatchObject({ accepted: false, record: { key: 'a' } });
    const bump = { key: 'a', nonce: 0, hash: hash(9), raw: raw(9), mode: 'replace' as const, replaces: hash(1) };
    expect(book.record(bump, at(200))).toMatchObject({ accepted: true });
    expect(book.state.budgets!['0xescrow:lock(bytes32,address,uint256)']).toHaveLength(1);
  });

  it('keeps routes apart, and a transaction that spends on two routes needs room on both', () => {
    const book = new NonceBook();
    const native: Spend = { route: 'native', amount: '5', limit: '10', windowMs: WINDOW };
    sign(book, 'a', [lock(2000)], 0);
    expect(sign(book, 'b', [native], 0)).toMatchObject({ accepted: true });
    expect(sign(book, 'c', [{ ...native, amount: '5' }, lock(1000)], 0)).toMatchObject({
      accepted: false,
      budget: { route: '0xescrow:lock(bytes32,address,uint256)' },
    });
    expect(book.state.budgets!.native).toHaveLength(1);
  });

  it('carries only what still counts through continue-as-new, and answers the same after it', () => {
    const book = new NonceBook();
    for (let i = 0; i < 50; i++) {
      sign(book, `k${i}`, [lock(10, 1_000_000)], i * 1_000, i);
      book.settle({ mined: [{ key: `k${i}`, hash: hash(i + 1), blockNumber: String(i) }] }, at(i * 1_000));
    }
    book.prune(T0 + 50 * 1_000);
    const next = new NonceBook(JSON.parse(JSON.stringify(book.state)) as NonceBookState);
    expect(next.state.budgets!['0xescrow:lock(bytes32,address,uint256)']).toHaveLength(9);
    expect(next.overBudget([lock(10, 90)], 'x', at(50_000))).toMatchObject({ used: '90' });
    expect(next.overBudget([lock(10, 100)], 'x', at(50_000))).toBeUndefined();
  });

  it('rejects a malformed spend before it reaches the book, naming the entry', () => {
    const good: RecordInput = { key: 'k', nonce: 0, hash: hash(1), raw: raw(1), mode: 'new', spend: [lock(1)] };
    expect(() => validateRecord(good)).not.toThrow();
    expect(() => validateRecord({ ...good, spend: [{ ...lock(1), amount: '-1' }] })).toThrow('spend[0]');
    expect(() => validateRecord({ ...good, spend: [{ ...lock(1), windowMs: 0 }] })).toThrow('windowMs > 0');
  });

  it('never lets racing senders overspend any window, whatever order their records arrive in', () => {
    const limit = 100;
    const op = fc.record({
      key: fc.integer({ min: 0, max: 11 }),
      amount: fc.integer({ min: 0, max: 60 }),
      dt: fc.integer({ min: 0, max: 4_000 }),
      stale: fc.boolean(),
      settle: fc.boolean(),
      continueAsNew: fc.boolean(),
    });
    fc.assert(
      fc.property(fc.array(op, { maxLength: 80 }), (ops) => {
        let book = new NonceBook();
        let now = 0;
        let seq = 0;
        const accepted: { key: string; amount: number; at: number }[] = [];
        for (const { key, amount, dt, stale, settle, continueAsNew } of ops) {
          now += dt;
          // A stale sender read `next` before others recorded: refused for the nonce, it reads again.
          let nonce = stale ? Math.max(0, book.state.next - 1) : book.state.next;
          for (let tries = 0; tries < 2; tries++) {
            const input = { key: `k${key}`, nonce, hash: hash(++seq), raw: raw(seq), mode: 'new' as const };
            const result = book.record({ ...input, spend: [lock(amount, limit)] }, at(now));
            if (result.accepted) accepted.push({ key: input.key, amount, at: now });
            if (result.accepted || result.record || result.budget) break;
            nonce = result.next;
          }
          if (settle) {
            const mined = Object.values(book.state.records).map((r) => ({
              key: r.key,
              hash: r.txs[0].hash,
              blockNumber: '1',
            }));
            book.settle({ mined }, at(now));
          }
          if (continueAsNew) {
            book.prune(T0 + now);
            book = new NonceBook(JSON.parse(JSON.stringify(book.state)) as NonceBookState);
          }
        }
        // Every window ending at an acceptance holds at most the limit of what was accepted.
        for (const { at: end } of accepted) {
          const spent = accepted.filter((a) => a.at > end - WINDOW && a.at <= end).reduce((s, a) => s + a.amount, 0);
          expect(spent).toBeLessThanOrEqual(limit);
        }
      }),
      { numRuns: 300 },
    );
  });
});
