import { mkdtempSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createPublicClient, http, parseAbi, type Hex, type PublicClient } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { actionIdHash } from '../../networks/evm/templates';
import { bridgeTransfer, type BridgeParams } from '../../client/plans';
import { DEV_KEYS, localNetworksFile, rpc, startLocalChains, type LocalChains } from '../../devnet/chains';
import type { NetworksFile } from '../../networks/config';
import { freePort } from './processes';

export { freePort } from './processes';

export const BRIDGE = privateKeyToAccount(DEV_KEYS.bridge).address;
export const USER = privateKeyToAccount(DEV_KEYS.user).address;

/** Two hardhat chains on free ports with fast blocks (chainA 500 ms, chainB 1 s), the bridge deployed on both. */
export async function startTestChains(blockTimes = { chainA: 500, chainB: 1000 }): Promise<LocalChains> {
  return startLocalChains([
    { name: 'chainA', chainId: 31337, port: await freePort(), blockTimeMs: blockTimes.chainA },
    { name: 'chainB', chainId: 31338, port: await freePort(), blockTimeMs: blockTimes.chainB },
  ]);
}

/** A bridge transfer of `amount` from chainA's escrow to chainB's minter, for USER (3 min deadline by default). */
export function bridgePlan(local: LocalChains, actionId: string, overrides: Partial<BridgeParams> = {}) {
  return bridgeTransfer({
    actionId,
    from: 'chainA',
    to: 'chainB',
    token: { escrow: local.chains.chainA.contracts.escrow, minter: local.chains.chainB.contracts.minter },
    amount: '1000',
    recipient: USER,
    deadline: '3m',
    ...overrides,
  });
}

/**
 * A networks file for the test chains with the bridge key in a temp key file, and the local stack's signing policy
 * (the bridge contracts, native transfers up to 1 ETH) unless `policy` gives another; returns it and its path.
 */
export function writeTestNetworksFile(
  chains: LocalChains['chains'],
  options: {
    confirmations?: number;
    pollIntervalMs?: number;
    rpcUrls?: Record<string, string>;
    /** Crash tests: the worker SIGKILLs itself right after its first broadcast (once: a marker file remembers). */
    killAfterBroadcast?: boolean;
    /** The bridge signer's policy per chain (default: the local stack's, `localBridgePolicy`). */
    policy?: Parameters<typeof localNetworksFile>[1]['policy'];
    /** Whose claims the deployment trusts (the networks file's `trust`). */
    trust?: NetworksFile['trust'];
  } = {},
) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'settle-config-'));
  const keyFile = path.join(dir, 'bridge.key');
  const marker = path.join(dir, 'killed-after-broadcast');
  writeFileSync(keyFile, `${DEV_KEYS.bridge}\n`, { mode: 0o600 });
  const file = {
    ...localNetworksFile(chains, {
      keyFile,
      confirmations: options.confirmations ?? 2,
      pollIntervalMs: options.pollIntervalMs ?? 500,
      ...(options.rpcUrls ? { rpcUrls: options.rpcUrls } : {}),
      ...(options.policy ? { policy: options.policy } : {}),
    }),
    ...(options.killAfterBroadcast ? { faults: { killAfterBroadcastMarker: marker } } : {}),
    ...(options.trust ? { trust: options.trust } : {}),
  };
  const configPath = path.join(dir, 'settle.config.json');
  writeFileSync(configPath, JSON.stringify(file, null, 2));
  return { file: { ...file, baseDir: dir }, configPath, dir, marker };
}

const BRIDGE_EVENTS = parseAbi([
  'event Locked(bytes32 indexed actionId, address indexed depositor, address recipient, uint256 amount)',
  'event Unlocked(bytes32 indexed actionId, address indexed depositor, uint256 amount)',
  'event Minted(bytes32 indexed actionId, address indexed recipient, uint256 amount, bytes32 messageId)',
  'function balanceOf(address) view returns (uint256)',
]);

/** Reads what the chains say about one action: its bridge events and balances. */
export class ChainProbe {
  readonly clients: Record<string, PublicClient>;

  constructor(readonly local: LocalChains) {
    this.clients = Object.fromEntries(
      Object.values(local.chains).map((c) => [c.name, createPublicClient({ transport: http(c.rpcUrl) })]),
    );
  }

  async events(network: string, name: 'Locked' | 'Unlocked' | 'Minted', actionId: string) {
    const chain = this.local.chains[network];
    const address = name === 'Minted' ? chain.contracts.minter : chain.contracts.escrow;
    const event = BRIDGE_EVENTS.find((e) => e.type === 'event' && e.name === name)!;
    return this.clients[network].getLogs({
      address,
      event: event as Extract<(typeof BRIDGE_EVENTS)[number], { type: 'event' }>,
      args: { actionId: actionIdHash(actionId) } as never,
      fromBlock: 0n,
      toBlock: 'latest',
    });
  }

  async balance(network: string, owner: Hex): Promise<bigint> {
    return this.clients[network].readContract({
      address: this.local.chains[network].contracts.token,
      abi: BRIDGE_EVENTS,
      functionName: 'balanceOf',
      args: [owner],
    });
  }

  /** Transactions the bridge signer has mined on a network (its confirmed nonce). */
  async sentCount(network: string): Promise<number> {
    return this.clients[network].getTransactionCount({ address: BRIDGE, blockTag: 'latest' });
  }

  snapshot(network: string): Promise<string> {
    return rpc<string>(this.local.chains[network].rpcUrl, 'evm_snapshot');
  }

  revert(network: string, snapshot: string): Promise<boolean> {
    return rpc<boolean>(this.local.chains[network].rpcUrl, 'evm_revert', [snapshot]);
  }

  blockNumber(network: string): Promise<bigint> {
    return this.clients[network].getBlockNumber();
  }
}

/**
 * A TCP proxy in front of an RPC endpoint that a test can take down (connections refused, open ones cut) and bring
 * back: an unreachable RPC without touching the chain.
 */
export class RpcOutage {
  private server?: net.Server;
  private readonly sockets = new Set<net.Socket>();
  port = 0;

  constructor(private readonly target: { host: string; port: number }) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(port?: number): Promise<void> {
    this.port = port ?? this.port ?? 0;
    this.server = net.createServer((client) => {
      const upstream = net.connect(this.target);
      for (const socket of [client, upstream]) {
        this.sockets.add(socket);
        socket.on('close', () => this.sockets.delete(socket));
        socket.on('error', () => socket.destroy());
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve) => this.server!.listen(this.port, '127.0.0.1', resolve));
    this.port = (this.server.address() as net.AddressInfo).port;
  }

  /** Down: the port refuses connections and every open one is cut. */
  async down(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    if (this.server) await new Promise<void>((resolve) => this.server!.close(() => resolve()));
    this.server = undefined;
  }

  async up(): Promise<void> {
    await this.start(this.port);
  }

  async stop(): Promise<void> {
    await this.down();
  }
}

export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | false>,
  timeoutMs = 60_000,
  intervalMs = 250,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
