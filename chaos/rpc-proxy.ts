/**
 * A JSON-RPC proxy in front of a chain, one per worker and chain, so that a fault can strike a worker at an exact
 * point of a submission: the proxy sees each `eth_sendRawTransaction` and, when armed, kills the worker before the
 * transaction reaches the chain (signed and recorded, never broadcast), right after it reached the chain (broadcast,
 * never acknowledged), or when it is a same-nonce replacement (in the middle of a fee bump). It also keeps every raw
 * transaction it forwarded, so a reorg can put orphaned transactions back in the mempool, as a real network does.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { keccak256, parseTransaction, recoverTransactionAddress, type Hex } from 'viem';

export type BroadcastPoint = 'before-broadcast' | 'after-broadcast' | 'fee-bump';

/** What a chain's proxies have seen: raw transactions by hash, hashes by (sender, nonce). */
export class TransactionLedger {
  readonly raw = new Map<string, Hex>();
  readonly byNonce = new Map<string, Set<string>>();
  broadcasts = 0;
  replacements = 0;

  see(hash: string, raw: Hex, from: string, nonce: number): { fresh: boolean; replacement: boolean } {
    const key = `${from.toLowerCase()}:${nonce}`;
    const hashes = this.byNonce.get(key) ?? new Set<string>();
    const fresh = hashes.size === 0;
    const replacement = !fresh && !hashes.has(hash);
    hashes.add(hash);
    this.byNonce.set(key, hashes);
    this.raw.set(hash, raw);
    return { fresh, replacement };
  }
}

/** One armed fault: the first broadcast that matches, from any worker, kills that worker. */
export interface Trap {
  point: BroadcastPoint;
  spring: (worker: string, hash: string) => void;
}

export class TrapBoard {
  private traps: Trap[] = [];

  arm(trap: Trap): () => void {
    this.traps.push(trap);
    return () => (this.traps = this.traps.filter((t) => t !== trap));
  }

  take(matches: (point: BroadcastPoint) => boolean): Trap | undefined {
    const trap = this.traps.find((t) => matches(t.point));
    if (trap) this.traps = this.traps.filter((t) => t !== trap);
    return trap;
  }
}

interface RpcRequest {
  method?: string;
  params?: unknown[];
}

export class RpcProxy {
  private server?: http.Server;
  port = 0;

  constructor(
    readonly worker: string,
    readonly upstream: string,
    readonly ledger: TransactionLedger,
    readonly traps: TrapBoard,
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    this.server = http.createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (c: Buffer) => chunks.push(c));
      request.on('end', () => void this.handle(Buffer.concat(chunks), response));
      request.on('error', () => response.destroy());
    });
    this.server.keepAliveTimeout = 1_000;
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  private async handle(body: Buffer, response: http.ServerResponse): Promise<void> {
    let parsed: RpcRequest | RpcRequest[] | undefined;
    try {
      parsed = JSON.parse(body.toString()) as RpcRequest | RpcRequest[];
    } catch {
      parsed = undefined;
    }
    const calls = Array.isArray(parsed) ? parsed : parsed ? [parsed] : [];
    let after: (() => void) | undefined;
    for (const call of calls) {
      if (call.method !== 'eth_sendRawTransaction' || typeof call.params?.[0] !== 'string') continue;
      const raw = call.params[0] as Hex;
      const hash = keccak256(raw);
      const tx = parseTransaction(raw);
      const from = await recoverTransactionAddress({ serializedTransaction: raw as never });
      const seen = this.ledger.see(hash, raw, from, tx.nonce ?? 0);
      this.ledger.broadcasts++;
      if (seen.replacement) this.ledger.replacements++;
      const trap = this.traps.take(
        (point) =>
          (point === 'fee-bump' && seen.replacement) ||
          ((point === 'before-broadcast' || point === 'after-broadcast') && seen.fresh),
      );
      if (trap?.point === 'after-broadcast') after = () => trap.spring(this.worker, hash);
      else if (trap) {
        // Killed with the transaction signed and recorded by its nonce owner, but not on the chain.
        trap.spring(this.worker, hash);
        response.destroy();
        return;
      }
    }
    try {
      const upstream = await fetch(this.upstream, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: body.toString(),
      });
      const text = await upstream.text();
      if (after) {
        // On the chain, never acknowledged to the worker.
        after();
        response.destroy();
        return;
      }
      response.writeHead(upstream.status, { 'content-type': 'application/json' });
      response.end(text);
    } catch {
      response.destroy();
    }
  }
}
