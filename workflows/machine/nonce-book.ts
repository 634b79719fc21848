/**
 * The nonce book of one (chain, signer): which nonce is next, every signed transaction still unresolved, keyed by step
 * attempt, and a small tombstone of each settled one. Pure: the `signerNonces` entity workflow only wires it to
 * updates and queries and continues as new.
 *
 * Nonces are assigned compare-and-record: the submit activity signs with the `next` nonce it read, and the record is
 * accepted only if that nonce is still `next`. No nonce is ever allocated without a signed transaction behind it, so a
 * crash cannot leave a hole in the sequence; a hole on chain (a dropped transaction) is repaired by rebroadcasting
 * the recorded transactions below the one being sent.
 *
 * The book stays small: a record keeps its signed bytes until the sender reports one of its versions mined deep in the
 * chain (`settle`); it then shrinks to a tombstone (key, nonce, hash) that answers a late retry of its attempt for a
 * week, and is forgotten. A record nobody settles is never forgotten.
 *
 * Spend budgets: the same update that records a new signed transaction (or a re-sign at a new nonce) reserves what it
 * spends per budgeted route (`Spend`), and refuses it when a route's rolling window has no room, so racing workers can
 * never overspend. A reservation counts while its transaction is unresolved (signed, not yet settled), and for one
 * window from its signing; it is given back at once when its nonce went to another transaction (it can never be mined).
 */

export interface SignedTx {
  hash: string;
  /** The signed raw transaction (public once broadcast; never a key). */
  raw: string;
  signedAt: string;
}

export interface NonceRecord {
  /** `<actionId>/<firstRunId>/<step>/<attempt>/<for>` (legacy `<actionId>/<step>/<attempt>/<for>`): one per attempt. */
  key: string;
  nonce: number;
  /** Every version signed for this attempt: the original, then fee bumps (same nonce) or a re-sign (new nonce). */
  txs: SignedTx[];
  /** Set to `nonce` when that nonce was found used deep in the chain by none of the versions: not offered to settle. */
  foreignAt?: number;
}

/** A settled record: the version that was mined, without its bytes. */
export interface SettledRecord {
  key: string;
  nonce: number;
  hash: string;
  /** The block it was mined in (decimal). */
  block: string;
  /** The version it replaced, when the mined one is a fee bump or a re-sign. */
  replaces?: string;
}
type Tombstone = Omit<SettledRecord, 'key'> & { at: string };

export interface LookupInput {
  key: string;
  /** The chain's pending nonce for the signer: the book never hands out a nonce below it. */
  chainNonce: number;
  /**
   * The action gave this attempt up (compensation was decided while it was being submitted): when the key has no
   * record, it is closed for good, so a submission still racing (a worker past its timeout) can never record one.
   */
  abandonIfAbsent?: boolean;
}
export interface LookupResult {
  record?: NonceRecord;
  /** The attempt's transaction is mined: the answer, without signing or sending anything. */
  settled?: SettledRecord;
  next: number;
  /** The key has no record and never will (closed by `abandonIfAbsent`). */
  abandoned?: boolean;
  /** This book was handed over to the owner with this workflow id: it records nothing more. */
  movedTo?: string;
}

export interface RecordInput {
  key: string;
  nonce: number;
  hash: string;
  raw: string;
  /**
   * `new`: the first transaction of this key, with nonce = next. `replace`: a fee bump, same nonce, of the latest
   * version `replaces`. `supersede`: the latest version `replaces` is dead (its nonce was used by another transaction);
   * re-signed with nonce = next.
   */
  mode: 'new' | 'replace' | 'supersede';
  replaces?: string;
  /** What a `new` or `supersede` transaction spends per budgeted route: reserved if every route has room. */
  spend?: Spend[];
}
export type RecordResult =
  | { accepted: true; record: NonceRecord }
  | {
      accepted: false;
      next: number;
      record?: NonceRecord;
      settled?: SettledRecord;
      reason: string;
      abandoned?: boolean;
      /** Refused because this route's budget has no room now. */
      budget?: BudgetRefusal;
    };

/** What a transaction spends on one budgeted route: `amount` (decimal) of at most `limit` per rolling `windowMs`. */
export interface Spend {
  /** `<contract>:<function signature>` or `native` (the owner is already per chain and signer). */
  route: string;
  amount: string;
  limit: string;
  windowMs: number;
}
/** A route without room: what it holds now, and when this amount fits (absent: once pending transactions settle). */
export interface BudgetRefusal {
  route: string;
  amount: string;
  limit: string;
  used: string;
  windowMs: number;
  /** Reservations counted because their transactions are still unresolved. */
  pending: number;
  availableAt?: string;
}
interface Reservation {
  key: string;
  amount: string;
  at: string;
  windowMs: number;
}

/** What the sender learnt from the chain about records whose nonce is used deep down (see {@link NonceBook.unsettled}). */
export interface SettleInput {
  /** A version of a record is mined at least the settling depth deep. `key` absent: the record is found by hash. */
  mined: { key?: string; hash: string; blockNumber: string }[];
  /** The record's nonce was used, deep down, by a transaction that is none of its versions. */
  foreign?: { key: string; nonce: number }[];
}
/** A record whose nonce the chain used deep down: whether one of its versions did is for the sender to read. */
export interface UnsettledRecord {
  key: string;
  nonce: number;
  hashes: string[];
}

export interface NonceBookState {
  next: number;
  /** Unresolved records, with their signed bytes. */
  records: Record<string, NonceRecord>;
  /** Keys closed without a record (see {@link LookupInput.abandonIfAbsent}), with when. */
  abandoned?: Record<string, string>;
  /** Settled records by key, with when they were settled (or last asked for). */
  settled?: Record<string, Tombstone>;
  /** Handed over to the owner with this workflow id (a book kept under an older scope). */
  movedTo?: string;
  /** Workflow ids of the owners whose books were merged into this one. */
  adopted?: string[];
  /** Spend reservations by route (see {@link Spend}). */
  budgets?: Record<string, Reservation[]>;
}

/** A settled attempt is retried within minutes (hours if workers are down), not weeks: its tombstone is kept a week. */
const RETENTION_MS = 7 * 24 * 3600_000;

/** The nonce book of one signer: the rules, with no Temporal, so they are tested on its own. */
export class NonceBook {
  constructor(readonly state: NonceBookState = { next: 0, records: {} }) {}

  lookup(input: LookupInput, at = ''): LookupResult {
    const { state } = this;
    state.next = Math.max(state.next, input.chainNonce);
    const record = state.records[input.key];
    const settled = this.settledRecord(input.key, at);
    if (!record && !settled && input.abandonIfAbsent && !state.movedTo) (state.abandoned ??= {})[input.key] ??= at;
    const abandoned = !record && !settled && state.abandoned?.[input.key] !== undefined;
    return {
      ...(record ? { record } : {}),
      ...(settled ? { settled } : {}),
      next: state.next,
      ...(abandoned ? { abandoned } : {}),
      ...(state.movedTo ? { movedTo: state.movedTo } : {}),
    };
  }

  record(input: RecordInput, at: string): RecordResult {
    const { state } = this;
    const existing = state.records[input.key];
    const settled = this.settledRecord(input.key, at);
    const refuse = (reason: string, extra: { abandoned?: true; budget?: BudgetRefusal } = {}): RecordResult => ({
      accepted: false,
      next: state.next,
      ...(existing ? { record: existing } : {}),
      ...(settled ? { settled } : {}),
      reason,
      ...extra,
    });
    if (state.movedTo) return refuse(`this nonce book moved to ${state.movedTo}`);
    if (settled) return refuse('this step attempt is settled: its transaction is mined');
    if (state.abandoned?.[input.key] !== undefined) {
      return refuse('this step attempt was abandoned', { abandoned: true });
    }
    const tx: SignedTx = { hash: input.hash, raw: input.raw, signedAt: at };
    const latest = existing?.txs[existing.txs.length - 1];
    if (input.mode === 'new') {
      if (existing) return refuse('this step attempt already has a signed transaction');
      if (input.nonce !== state.next) return refuse(`nonce ${input.nonce} is not next (${state.next})`);
      const budget = this.overBudget(input.spend ?? [], input.key, at);
      if (budget) return refuse(`no room in the budget of ${budget.route}`, { budget });
      const record: NonceRecord = { key: input.key, nonce: input.nonce, txs: [tx] };
      state.records[input.key] = record;
      state.next++;
      this.reserve(input.spend ?? [], input.key, at);
      return { accepted: true, record };
    }
    if (!existing || !latest) return refuse('no transaction to replace for this step attempt');
    if (latest.hash === input.hash) return { accepted: true, record: existing };
    if (latest.hash !== input.replaces) return refuse(`the latest version is ${latest.hash}, not ${input.replaces}`);
    if (input.mode === 'replace') {
      if (input.nonce !== existing.nonce) return refuse(`a replacement must reuse nonce ${existing.nonce}`);
    } else {
      if (input.nonce !== state.next) return refuse(`nonce ${input.nonce} is not next (${state.next})`);
      const budget = this.overBudget(input.spend ?? [], input.key, at);
      if (budget) return refuse(`no room in the budget of ${budget.route}`, { budget });
      existing.nonce = input.nonce;
      delete existing.foreignAt;
      state.next++;
      this.reserve(input.spend ?? [], input.key, at);
    }
    existing.txs.push(tx);
    return { accepted: true, record: existing };
  }

  /** Settled records shrink to tombstones; records whose nonce went to someone else are marked, and kept. */
  settle(input: SettleInput, at: string): { settled: string[] } {
    const { records } = this.state;
    const settled: string[] = [];
    for (const { key, hash, blockNumber } of input.mined) {
      const record = key ? records[key] : Object.values(records).find((r) => r.txs.some((tx) => tx.hash === hash));
      const index = record ? record.txs.findIndex((tx) => tx.hash === hash) : -1;
      if (!record || index < 0) continue;
      const replaces = index > 0 ? { replaces: record.txs[index - 1].hash } : {};
      (this.state.settled ??= {})[record.key] = { nonce: record.nonce, hash, block: blockNumber, ...replaces, at };
      delete records[record.key];
      settled.push(record.key);
    }
    for (const { key, nonce } of input.foreign ?? []) {
      if (records[key]?.nonce === nonce) records[key].foreignAt = nonce;
    }
    return { settled };
  }

  /** Unresolved records whose nonce is below `below` (the signer's nonce deep in the chain), lowest first. */
  unsettled(below: number, limit: number): UnsettledRecord[] {
    return Object.values(this.state.records)
      .filter((r) => r.nonce < below && r.foreignAt !== r.nonce)
      .sort((a, b) => a.nonce - b.nonce)
      .slice(0, limit)
      .map((r) => ({ key: r.key, nonce: r.nonce, hashes: r.txs.map((tx) => tx.hash) }));
  }

  between(from: number, to: number): NonceRecord[] {
    return Object.values(this.state.records)
      .filter((r) => r.nonce >= from && r.nonce < to)
      .sort((a, b) => a.nonce - b.nonce);
  }

  /** Hands the book over to another owner: from now on it records nothing. Returns what the other owner adopts. */
  retire(movedTo: string): NonceBookState {
    this.state.movedTo ??= movedTo;
    return this.state;
  }

  /**
   * Merges the book of an owner kept under an older scope, once per owner. Its records are kept as they are, even one
   * whose nonce this book also gave out (two scopes for one chain did that): the sender finds such a nonce used by
   * another transaction and signs the loser again with a new nonce.
   */
  adopt(from: string, book: NonceBookState): { adopted: boolean } {
    const { state } = this;
    if (state.adopted?.includes(from)) return { adopted: false };
    state.next = Math.max(state.next, book.next);
    for (const [key, record] of Object.entries(book.records)) {
      if (!state.records[key] && !state.settled?.[key]) state.records[key] = record;
    }
    for (const [key, tombstone] of Object.entries(book.settled ?? {})) {
      if (!state.records[key]) (state.settled ??= {})[key] ??= tombstone;
    }
    for (const [key, when] of Object.entries(book.abandoned ?? {})) {
      if (!state.records[key]) (state.abandoned ??= {})[key] ??= when;
    }
    for (const [route, reservations] of Object.entries(book.budgets ?? {})) {
      const mine = ((state.budgets ??= {})[route] ??= []);
      mine.push(...reservations.filter((r) => !mine.some((m) => m.key === r.key)));
    }
    (state.adopted ??= []).push(from);
    return { adopted: true };
  }

  /**
   * The first route of `spend` without room for it at `at` (not counting `key`'s own reservations, which a re-sign
   * replaces), with when it will have room: when enough reservations leave their window, unless pending ones alone fill
   * it.
   */
  overBudget(spend: Spend[], key: string, at: string): BudgetRefusal | undefined {
    const now = Date.parse(at);
    for (const { route, amount, limit, windowMs } of spend) {
      const counted = (this.state.budgets?.[route] ?? []).filter((r) => r.key !== key && this.counts(r, windowMs, now));
      const sum = (list: Reservation[]) => list.reduce((total, r) => total + BigInt(r.amount), 0n);
      const used = sum(counted);
      if (used + BigInt(amount) <= BigInt(limit)) continue;
      const pending = counted.filter((r) => this.pending(r.key));
      // Room needed from reservations leaving their window, oldest first.
      let excess = used + BigInt(amount) - BigInt(limit);
      let availableAt: string | undefined;
      if (sum(pending) + BigInt(amount) <= BigInt(limit)) {
        const leaving = counted.filter((r) => !this.pending(r.key)).sort((a, b) => Date.parse(a.at) - Date.parse(b.at));
        for (const r of leaving) {
          excess -= BigInt(r.amount);
          if (excess <= 0n) {
            availableAt = new Date(Date.parse(r.at) + windowMs).toISOString();
            break;
          }
        }
      }
      const refusal = { route, amount, limit, used: used.toString(), windowMs, pending: pending.length };
      return { ...refusal, ...(availableAt ? { availableAt } : {}) };
    }
    return undefined;
  }

  /** Whether a reservation's transaction is unresolved: signed, neither settled nor beaten to its nonce. */
  private pending(key: string): boolean {
    const record = this.state.records[key];
    return !!record && record.foreignAt !== record.nonce;
  }

  /** Pending reservations count; one whose nonce went to another transaction never will be mined; others, a window. */
  private counts(reservation: Reservation, windowMs: number, now: number): boolean {
    if (this.state.records[reservation.key]) return this.pending(reservation.key);
    return Date.parse(reservation.at) + windowMs > now;
  }

  private reserve(spend: Spend[], key: string, at: string): void {
    for (const route of Object.keys(this.state.budgets ?? {})) {
      this.state.budgets![route] = this.state.budgets![route].filter((r) => r.key !== key);
    }
    for (const { route, amount, windowMs } of spend) {
      ((this.state.budgets ??= {})[route] ??= []).push({ key, amount, at, windowMs });
    }
    this.pruneBudgets(Date.parse(at));
  }

  private pruneBudgets(nowMs: number): void {
    for (const [route, reservations] of Object.entries(this.state.budgets ?? {})) {
      const kept = reservations.filter((r) => this.counts(r, r.windowMs, nowMs));
      if (kept.length > 0) this.state.budgets![route] = kept;
      else delete this.state.budgets![route];
    }
  }

  /** Forgets tombstones and closed keys a week old, and reservations that count no more. Unresolved records stay. */
  prune(nowMs: number): void {
    this.pruneBudgets(nowMs);
    for (const map of [this.state.settled, this.state.abandoned]) {
      for (const [key, value] of Object.entries(map ?? {})) {
        const at = typeof value === 'string' ? value : value.at;
        if (nowMs - Date.parse(at) > RETENTION_MS) delete map![key];
      }
    }
  }

  /** A key's tombstone as a settled record; asking for it keeps it another week. */
  private settledRecord(key: string, at: string): SettledRecord | undefined {
    const tombstone = this.state.settled?.[key];
    if (!tombstone) return undefined;
    if (at) tombstone.at = at;
    const { at: _at, ...rest } = tombstone;
    return { key, ...rest };
  }
}
