/**
 * Racing senders against one nonce book, interleaved for real: each sender's steps (read the chain, look up, sign,
 * record) are separate messages whose arrival and answer fast-check orders, as a Temporal server and several workers
 * would. The oracle is what the senders were told, not the book's own state.
 */
import fc from 'fast-check';
import { NonceBook, type NonceBookState, type RecordInput } from '../../workflows/machine/nonce-book';

const AT = '2026-01-01T00:00:00.000Z';
const hash = (n: number) => `0x${n.toString(16).padStart(64, '0')}`;
const raw = (n: number) => `0x02${n.toString(16).padStart(8, '0')}`;

type Behaviour = 'submit' | 'stubborn' | 'bump' | 'resign' | 'settle' | 'foreign' | 'continueAsNew';
interface Sender {
  behaviour: Behaviour;
  key: number;
}

/** Submissions race the most, on few keys, so that retries of one attempt meet. */
const senderArb: fc.Arbitrary<Sender> = fc.record({
  behaviour: fc.oneof(
    { arbitrary: fc.constant<Behaviour>('submit'), weight: 4 },
    { arbitrary: fc.constant<Behaviour>('stubborn'), weight: 2 },
    { arbitrary: fc.constantFrom<Behaviour>('bump', 'resign', 'settle', 'foreign', 'continueAsNew'), weight: 3 },
  ),
  key: fc.integer({ min: 0, max: 2 }),
});

/** What senders were told was accepted: the oracle. */
interface Accepted {
  key: string;
  nonce: number;
  mode: RecordInput['mode'];
}

function world(s: fc.Scheduler) {
  const chain = { nonce: 0 };
  let book = new NonceBook();
  let seq = 0;
  const accepted: Accepted[] = [];
  /** One message to the owner: sent, applied, answered, each at a moment the scheduler picks. */
  const owner = async <T>(label: string, apply: (book: NonceBook) => T): Promise<T> => {
    await s.schedule(Promise.resolve(), `${label} sent`);
    const answer = structuredClone(apply(book));
    return s.schedule(Promise.resolve(answer), `${label} answered`);
  };
  const rpc = (label: string) => s.schedule(Promise.resolve(), label);
  const record = async (input: RecordInput) => {
    const result = await owner(`record ${input.key} ${input.mode} @${input.nonce}`, (b) => b.record(input, AT));
    if (result.accepted && result.record.txs[result.record.txs.length - 1].hash === input.hash) {
      accepted.push({ key: input.key, nonce: input.nonce, mode: input.mode });
    }
    return result;
  };

  /**
   * The sender's rules: look up; nothing recorded: sign with `next` and record, again with the new next on a race.
   * A `stubborn` sender (an older or broken one) ignores the record a refusal names: the book alone must still hold.
   */
  async function submit(key: string, stubborn = false): Promise<void> {
    await rpc(`read chain nonce for ${key}`);
    const found = await owner(`lookup ${key}`, (b) => b.lookup({ key, chainNonce: chain.nonce }, AT));
    if (found.record || found.settled) return;
    let nonce = found.next;
    for (let race = 0; race < 100; race++) {
      await rpc(`sign ${key} @${nonce}`);
      const result = await record({ key, nonce, hash: hash(++seq), raw: raw(seq), mode: 'new' });
      if (result.accepted || (!stubborn && (result.record || result.settled))) return;
      if (result.abandoned || (stubborn && race > 3)) return;
      nonce = result.next;
    }
    throw new Error(`${key} never recorded`);
  }

  /** A fee bump (same nonce) or a re-sign of a dead transaction (nonce = next) of the latest version found. */
  async function replace(key: string, mode: 'replace' | 'supersede'): Promise<void> {
    const found = await owner(`lookup ${key}`, (b) => b.lookup({ key, chainNonce: chain.nonce }, AT));
    if (!found.record) return;
    const latest = found.record.txs[found.record.txs.length - 1].hash;
    let nonce = mode === 'replace' ? found.record.nonce : found.next;
    for (let race = 0; race < 100; race++) {
      await rpc(`sign ${mode} ${key} @${nonce}`);
      const result = await record({ key, nonce, hash: hash(++seq), raw: raw(seq), mode, replaces: latest });
      if (result.accepted || mode === 'replace' || !result.record) return;
      if (result.record.txs[result.record.txs.length - 1].hash !== latest) return;
      nonce = result.next;
    }
  }

  async function run({ behaviour, key }: Sender): Promise<void> {
    const k = `k${key}`;
    if (behaviour === 'submit' || behaviour === 'stubborn') return submit(k, behaviour === 'stubborn');
    // A retry that finds its attempt's transaction pending too long (bump), or its nonce taken (re-sign).
    if (behaviour === 'bump' || behaviour === 'resign') {
      await submit(k);
      return replace(k, behaviour === 'bump' ? 'replace' : 'supersede');
    }
    if (behaviour === 'foreign') {
      await rpc('someone else sends with the key');
      chain.nonce++;
      return;
    }
    if (behaviour === 'settle') {
      await owner(`settle ${k}`, (b) => {
        const found = b.state.records[k];
        const mined = found ? [{ key: k, hash: found.txs[0].hash, blockNumber: '1' }] : [];
        return b.settle({ mined }, AT);
      });
      return;
    }
    await owner('continue as new', (b) => {
      b.prune(Date.parse(AT) + 3600_000);
      book = new NonceBook(JSON.parse(JSON.stringify(b.state)) as NonceBookState);
    });
  }
  return { run, accepted, chain, book: () => book };
}

describe('racing senders on one nonce book', () => {
  it('never records a nonce twice, never gives a key two records, and leaves no hole', async () => {
    await fc.assert(
      fc.asyncProperty(fc.scheduler(), fc.array(senderArb, { minLength: 2, maxLength: 8 }), async (s, senders) => {
        const { run, accepted, book } = world(s);
        await s.waitFor(Promise.all(senders.map(run)));
        // Every nonce a record was accepted with (first signature or re-sign) was accepted once, for one key.
        const nonces = accepted.filter((a) => a.mode !== 'replace').map((a) => a.nonce);
        expect(new Set(nonces).size).toBe(nonces.length);
        // One first signature per key.
        const firsts = accepted.filter((a) => a.mode === 'new').map((a) => a.key);
        expect(new Set(firsts).size).toBe(firsts.length);
        // The book agrees: each open record holds a nonce it was told about, and no two hold the same one.
        const open = Object.values(book().state.records);
        expect(new Set(open.map((r) => r.nonce)).size).toBe(open.length);
        for (const record of open) {
          expect(accepted).toContainEqual(expect.objectContaining({ key: record.key, nonce: record.nonce }));
        }
        // Without anyone else using the key, the nonces handed out are 0, 1, 2… with no hole.
        if (!senders.some((x) => x.behaviour === 'foreign')) {
          expect([...nonces].sort((a, b) => a - b)).toEqual(nonces.map((_, i) => i));
        }
        // Each submitted key ends with a record or a tombstone.
        for (const { key } of senders.filter((x) => x.behaviour === 'submit')) {
          expect(book().state.records[`k${key}`] ?? book().state.settled?.[`k${key}`]).toBeDefined();
        }
      }),
      { numRuns: 300 },
    );
  });
});
