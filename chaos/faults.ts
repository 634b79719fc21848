/**
 * The faults a chaos run injects, each at a moment the seeded schedule picks: processes killed (workers at exact
 * points of a submission too), the Temporal server killed and restarted on its database file, a chain frozen so its
 * RPC hangs, the watcher restarted and finally stopped, reorgs (orphaned transactions go back to the mempool, as on a
 * real network), a base-fee spike that leaves transactions pending until bumped, and an operator who cancels and
 * retries actions while their transactions are pending.
 */
import { numberToHex, type Hex } from 'viem';
import { cancelUpdate, retryStepUpdate, statusQuery } from '../contract/messages';
import type { ActionStatus } from '../contract/status';
import { rpc } from '../devnet/chains';
import type { PlannedAction } from './load';
import type { Prng } from './prng';
import type { BroadcastPoint } from './rpc-proxy';
import type { Stack } from './stack';
import { SIGNER } from './verdict';

export const FAULT_KINDS = [
  'worker-kill',
  'worker-kill-before-broadcast',
  'worker-kill-after-broadcast',
  'worker-kill-in-fee-bump',
  'server-restart',
  'chain-freeze',
  'watcher-restart',
  'watcher-stop',
  'reorg-shallow',
  'reorg-deep',
  'fee-spike',
  'operator-cancel',
  'operator-retry',
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export interface InjectedFault {
  kind: FaultKind;
  /** Seconds after the load began: planned, and when it struck. */
  plannedAt: number;
  startedAt?: number;
  endedAt?: number;
  /** False when the moment it waited for never came (e.g. no transaction to catch); it then counts for nothing. */
  struck: boolean;
  detail: string;
  /** A reorg's orphaned blocks, and when (epoch ms) they were orphaned. */
  orphaned?: { chain: string; from: string; to: string; at: number; deep: boolean };
}

export interface FaultContext {
  stack: Stack;
  rng: Prng;
  actions: PlannedAction[];
  started: Set<string>;
  confirmations: number;
  /** Seconds since the load began. */
  clock: () => number;
  log: (line: string) => void;
}

const GWEI = 1_000_000_000n;
const SPIKE_CEILING = 4_000n * GWEI;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One fault at a time per resource (a chain, the server, the watcher): two reorgs of one chain do not interleave. */
class Locks {
  private readonly tails = new Map<string, Promise<void>>();

  async with<T>(resource: string, work: () => Promise<T>): Promise<T> {
    const before = this.tails.get(resource) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    this.tails.set(
      resource,
      before.then(() => mine),
    );
    await before;
    try {
      return await work();
    } finally {
      release();
    }
  }
}

export class FaultInjector {
  readonly injected: InjectedFault[] = [];
  private readonly locks = new Locks();

  constructor(private readonly ctx: FaultContext) {}

  async inject(kind: FaultKind, plannedAt: number): Promise<void> {
    const fault: InjectedFault = { kind, plannedAt, struck: false, detail: '' };
    this.injected.push(fault);
    fault.startedAt = this.ctx.clock();
    try {
      fault.detail = await this.run(kind, fault);
    } catch (error) {
      fault.struck = false;
      fault.detail = `error: ${(error as Error).message.slice(0, 300)}`;
    }
    fault.endedAt = this.ctx.clock();
    this.ctx.log(`fault ${kind} @${fault.startedAt.toFixed(0)}s: ${fault.struck ? '' : '(missed) '}${fault.detail}`);
  }

  private run(kind: FaultKind, fault: InjectedFault): Promise<string> {
    const struck = (detail: string) => {
      fault.struck = true;
      return detail;
    };
    switch (kind) {
      case 'worker-kill':
        return this.killWorker().then(struck);
      case 'worker-kill-before-broadcast':
        return this.trap('before-broadcast', fault);
      case 'worker-kill-after-broadcast':
        return this.trap('after-broadcast', fault);
      case 'worker-kill-in-fee-bump':
        return this.locks.with('fee-spike', () => this.feeSpike(fault, true));
      case 'server-restart':
        return this.locks.with('server', () => this.restartServer()).then(struck);
      case 'chain-freeze':
        return this.withChain((chain) => this.freeze(chain)).then(struck);
      case 'watcher-restart':
        return this.locks.with('watcher', () => this.restartWatcher()).then(struck);
      case 'watcher-stop':
        return this.locks
          .with('watcher', async () => {
            await this.ctx.stack.watcher.stop();
            return 'the watcher is stopped for good: polling alone finishes the run';
          })
          .then(struck);
      case 'reorg-shallow':
        return this.withChain((chain) =>
          this.reorg(chain, this.ctx.rng.int(1, this.ctx.confirmations - 1), fault),
        ).then(struck);
      case 'reorg-deep':
        return this.withChain((chain) => this.reorg(chain, this.ctx.confirmations + 2, fault)).then(struck);
      case 'fee-spike':
        return this.locks.with('fee-spike', () => this.feeSpike(fault, false));
      case 'operator-cancel':
        return this.operatorCancel(fault);
      case 'operator-retry':
        return this.operatorRetry(fault);
    }
  }

  private withChain(work: (chain: string) => Promise<string>): Promise<string> {
    const chain = this.ctx.rng.pick(['chainA', 'chainB']);
    return this.locks.with(`chain:${chain}`, () => work(chain));
  }

  private liveWorker() {
    const live = this.ctx.stack.workers.filter((w) => w.running);
    return live.length ? this.ctx.rng.pick(live) : undefined;
  }

  private async killWorker(): Promise<string> {
    const worker = this.liveWorker();
    if (!worker) return 'no worker running';
    const pid = worker.pid;
    await worker.kill();
    const downMs = this.ctx.rng.int(500, 4_000);
    await sleep(downMs);
    await worker.restart();
    return `${worker.spec.name} (pid ${pid}) SIGKILLed, back after ${downMs} ms + start-up`;
  }

  /** Kills whichever worker next broadcasts a new transaction, at `point`; restarts it. */
  private async trap(point: BroadcastPoint, fault: InjectedFault, waitMs = 90_000): Promise<string> {
    const { stack } = this.ctx;
    let sprung: { worker: string; hash: string } | undefined;
    const disarm = stack.traps.arm({
      point,
      spring: (worker, hash) => {
        sprung = { worker, hash };
        stack.workers.find((w) => w.spec.name === worker)?.signal('SIGKILL');
      },
    });
    const deadline = Date.now() + waitMs;
    while (!sprung && Date.now() < deadline) await sleep(100);
    disarm();
    if (!sprung) return `no worker broadcast a ${point === 'fee-bump' ? 'replacement' : 'new transaction'} in time`;
    fault.struck = true;
    const worker = stack.workers.find((w) => w.spec.name === sprung!.worker)!;
    while (worker.running) await sleep(50);
    await sleep(this.ctx.rng.int(500, 3_000));
    await worker.restart();
    return `${sprung.worker} SIGKILLed ${point} of ${sprung.hash.slice(0, 10)}…, restarted`;
  }

  private async restartServer(): Promise<string> {
    const { temporal } = this.ctx.stack;
    await temporal.kill();
    const downMs = this.ctx.rng.int(1_000, 5_000);
    await sleep(downMs);
    await temporal.start();
    return `SIGKILLed, restarted on the same database file after ${downMs} ms`;
  }

  private async freeze(chain: string): Promise<string> {
    const node = this.ctx.stack.local.chains[chain].process;
    const ms = this.ctx.rng.int(4_000, 12_000);
    node.kill('SIGSTOP');
    try {
      await sleep(ms);
    } finally {
      node.kill('SIGCONT');
    }
    return `${chain} SIGSTOPped for ${ms} ms (RPC hangs), then SIGCONT`;
  }

  private async restartWatcher(): Promise<string> {
    const { watcher } = this.ctx.stack;
    if (!watcher.keepAlive) return 'the watcher was already stopped for good';
    await watcher.kill();
    const downMs = this.ctx.rng.int(1_000, 8_000);
    await sleep(downMs);
    await watcher.restart();
    return `SIGKILLed, restarted after ${downMs} ms`;
  }

  /** Whether the signer has a transaction pending on a chain. */
  private async hasPending(rpcUrl: string): Promise<boolean> {
    const [pending, latest] = await Promise.all(
      ['pending', 'latest'].map((tag) => rpc<Hex>(rpcUrl, 'eth_getTransactionCount', [SIGNER, tag])),
    );
    return BigInt(pending) > BigInt(latest);
  }

  /** The first chain on which the signer has a transaction pending, looked for until `ms` have passed. */
  private async chainWithPending(ms: number): Promise<string | undefined> {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      for (const [name, { rpcUrl }] of Object.entries(this.ctx.stack.local.chains)) {
        if (await this.hasPending(rpcUrl)) return name;
      }
      await sleep(100);
    }
    return undefined;
  }

  /** Waits (at most `ms`) until the signer has a transaction in the chain's mempool. */
  private async signerPending(rpcUrl: string, ms: number): Promise<void> {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      if (await this.hasPending(rpcUrl)) return;
      await sleep(100);
    }
  }

  /**
   * Takes a snapshot, lets `depth` blocks be mined, and reverts to it: those blocks are orphaned. As on a real network,
   * their transactions (and the ones pending) go back to the mempool, to be mined again on the new branch, whose first
   * block is made to differ from the orphaned one.
   */
  private async reorg(chain: string, depth: number, fault: InjectedFault): Promise<string> {
    const { rpcUrl } = this.ctx.stack.local.chains[chain];
    const ledger = this.ctx.stack.ledgers[chain];
    // Strike while the signer has a transaction in flight there, so that the orphaned blocks hold one (if one comes).
    await this.signerPending(rpcUrl, 30_000);
    const snapshot = await rpc<string>(rpcUrl, 'evm_snapshot');
    const base = BigInt(await rpc<Hex>(rpcUrl, 'eth_blockNumber'));
    const baseBlock = await rpc<{ timestamp: Hex }>(rpcUrl, 'eth_getBlockByNumber', [numberToHex(base), false]);
    while (BigInt(await rpc<Hex>(rpcUrl, 'eth_blockNumber')) < base + BigInt(depth)) await sleep(100);
    await rpc(rpcUrl, 'evm_setIntervalMining', [0]);
    const orphaned: { hash: string; nonce: bigint }[] = [];
    let head = base;
    try {
      head = BigInt(await rpc<Hex>(rpcUrl, 'eth_blockNumber'));
      for (let n = base + 1n; n <= head; n++) {
        const block = await rpc<{ transactions: { hash: string; nonce: Hex }[] }>(rpcUrl, 'eth_getBlockByNumber', [
          numberToHex(n),
          true,
        ]);
        orphaned.push(...block.transactions.map((t) => ({ hash: t.hash, nonce: BigInt(t.nonce) })));
      }
      const pending = await rpc<{ transactions: { hash: string; nonce: Hex }[] }>(rpcUrl, 'eth_getBlockByNumber', [
        'pending',
        true,
      ]);
      orphaned.push(...pending.transactions.map((t) => ({ hash: t.hash, nonce: BigInt(t.nonce) })));
      if (!(await rpc<boolean>(rpcUrl, 'evm_revert', [snapshot]))) throw new Error('evm_revert refused');
      const deep = depth >= this.ctx.confirmations;
      fault.orphaned = { chain, from: String(base + 1n), to: String(head), at: Date.now(), deep };
      // A first block unlike any orphaned one (a later timestamp): the new branch really is another branch.
      await rpc(rpcUrl, 'evm_mine', [Number(BigInt(baseBlock.timestamp)) + depth + 7]);
      orphaned.sort((a, b) => (a.nonce < b.nonce ? -1 : a.nonce > b.nonce ? 1 : 0));
      for (const tx of orphaned) {
        const raw = ledger.raw.get(tx.hash);
        if (raw) await rpc(rpcUrl, 'eth_sendRawTransaction', [raw]).catch(() => undefined);
      }
    } finally {
      await rpc(rpcUrl, 'evm_setIntervalMining', [this.ctx.stack.local.chains[chain].blockTimeMs]);
    }
    return `${chain}: ${head - base} blocks orphaned above ${base}; ${orphaned.length} transactions back to the mempool`;
  }

  /**
   * Raises the base fee tenfold and more for a while, block after block: what was signed before stays pending until
   * its sender bumps the fee. With `killInBump`, the worker that broadcasts the first replacement is killed then.
   */
  private async feeSpike(fault: InjectedFault, killInBump: boolean): Promise<string> {
    const picked = this.ctx.rng.pick(['chainA', 'chainB']);
    // A kill in a fee bump needs a transaction pending when the spike starts: on the chain that has one, if either
    // does within 30 s (late in a short run, the picked chain may see no submission again).
    const chain = killInBump ? ((await this.chainWithPending(30_000)) ?? picked) : picked;
    const { rpcUrl, blockTimeMs } = this.ctx.stack.local.chains[chain];
    const latest = await rpc<{ baseFeePerGas: Hex }>(rpcUrl, 'eth_getBlockByNumber', ['latest', false]);
    // What the base fee returns to (a spike right after another starts from the ordinary level, not the last peak).
    const normal = BigInt(latest.baseFeePerGas) < GWEI ? BigInt(latest.baseFeePerGas) : GWEI;
    const ledger = this.ctx.stack.ledgers[chain];
    const replacementsBefore = ledger.replacements;
    // The base fee rises by a quarter every block up to a ceiling, where it stays: a transaction priced from the latest
    // block (a fifth above its base fee) is too cheap for the next one, and stays pending until its sender bumps it.
    let spike = normal + GWEI * 40n;
    let stop = false;
    await this.signerPending(rpcUrl, 30_000);
    const holding = (async () => {
      let head = -1n;
      while (!stop) {
        const now = BigInt(await rpc<Hex>(rpcUrl, 'eth_blockNumber').catch(() => '0x0'));
        if (now !== head) {
          head = now;
          spike = (spike * 5n) / 4n > SPIKE_CEILING ? SPIKE_CEILING : (spike * 5n) / 4n;
          await rpc(rpcUrl, 'hardhat_setNextBlockBaseFeePerGas', [numberToHex(spike)]).catch(() => undefined);
        }
        await sleep(Math.max(50, blockTimeMs / 5));
      }
    })();
    let trapped = '';
    try {
      if (killInBump) trapped = await this.trap('fee-bump', fault, 60_000);
      else await sleep(this.ctx.rng.int(12_000, 20_000));
    } finally {
      stop = true;
      await holding;
      await rpc(rpcUrl, 'hardhat_setNextBlockBaseFeePerGas', [numberToHex(normal)]).catch(() => undefined);
    }
    const bumps = ledger.replacements - replacementsBefore;
    if (!killInBump) fault.struck = true;
    return `${chain} base fee ${normal} → up to ${spike} wei; ${bumps} replacement(s) broadcast during it${trapped ? `; ${trapped}` : ''}`;
  }

  /** The statuses of open actions that `filter` accepts (found through visibility: the running ones), at most 12. */
  private async statuses(
    filter: (a: PlannedAction) => boolean,
    phase: 'running' | 'needs_action',
  ): Promise<{ action: PlannedAction; status: ActionStatus }[]> {
    const client = this.ctx.stack.client();
    const open = new Set<string>();
    const listing = client.workflow.list({ query: `ExecutionStatus = 'Running' AND SettlePhase = '${phase}'` });
    for await (const execution of listing) open.add(execution.workflowId);
    const out: { action: PlannedAction; status: ActionStatus }[] = [];
    const candidates = this.ctx.actions.filter((a) => open.has(a.actionId) && filter(a));
    for (const action of this.ctx.rng.shuffle(candidates).slice(0, 12)) {
      const status = await client.workflow
        .getHandle(action.actionId)
        .query(statusQuery)
        .catch(() => undefined);
      if (status) out.push({ action, status });
    }
    return out;
  }

  /** Cancels an action while one of its transactions is pending (or, failing that, any running one). */
  private async operatorCancel(fault: InjectedFault): Promise<string> {
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      const candidates = await this.statuses((a) => a.kind !== 'payment-held', 'running').catch(() => []);
      const pending = candidates.find(
        ({ status }) => status.phase === 'running' && status.steps.some((s) => s.state === 'submitted'),
      );
      const target =
        pending ??
        (Date.now() > deadline - 20_000 ? candidates.find(({ status }) => status.phase === 'running') : undefined);
      if (target) {
        const reason = 'chaos: the customer withdrew';
        const via = await this.operate(target.action, 'cancel', { reason }).catch((error: Error) => {
          // It settled between the look and the cancel: look for another.
          if (/already completed|closed|409/.test(error.message)) return undefined;
          throw error;
        });
        if (!via) continue;
        fault.struck = true;
        const steps = target.status.steps.map((s) => `${s.id}:${s.state}`).join(',');
        return `${target.action.actionId} (${steps}) cancelled via ${via}`;
      }
      await sleep(1_000);
    }
    return 'no running action to cancel';
  }

  /** Retries a held step (expired or failed), whose first transaction may still be pending. */
  private async operatorRetry(fault: InjectedFault): Promise<string> {
    const deadline = Date.now() + 150_000;
    while (Date.now() < deadline) {
      const candidates = await this.statuses((a) => a.kind === 'payment-held', 'needs_action').catch(() => []);
      const retryable = candidates.filter(
        ({ status }) =>
          status.phase === 'needs_action' && status.steps.some((s) => ['expired', 'failed'].includes(s.state)),
      );
      // Best: a step whose transaction was sent (it may still be pending, or mined since); else any held step.
      const held = retryable.find(({ status }) => status.steps.some((s) => s.ref)) ?? retryable[0];
      if (held) {
        const step = held.status.steps.find((s) => ['expired', 'failed'].includes(s.state))!;
        const via = await this.operate(held.action, 'retry', { step: step.id, reason: 'chaos: try again' });
        fault.struck = true;
        return `${held.action.actionId} step ${step.id} (${step.state}, ref ${step.ref?.slice(0, 10) ?? 'none'}) retried via ${via}`;
      }
      await sleep(1_000);
    }
    return 'no held step to retry';
  }

  /** Half through the HTTP API, half through a Temporal Update directly, as operators do. */
  private async operate(
    action: PlannedAction,
    what: 'cancel' | 'retry',
    body: Record<string, string>,
  ): Promise<string> {
    const { stack } = this.ctx;
    if (this.ctx.rng.chance(0.5)) {
      const response = await fetch(`${stack.apiUrl}/v1/actions/${action.actionId}/${what}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${stack.apiToken}` },
        body: JSON.stringify({ ...body, operator: 'chaos' }),
      });
      if (!response.ok) throw new Error(`API ${what} ${action.actionId}: ${response.status} ${await response.text()}`);
      return 'the HTTP API';
    }
    const handle = stack.client().workflow.getHandle(action.actionId);
    if (what === 'cancel') await handle.executeUpdate(cancelUpdate, { args: [{ reason: body.reason }] });
    else await handle.executeUpdate(retryStepUpdate, { args: [{ step: body.step, reason: body.reason }] });
    return 'a Temporal Update';
  }
}
