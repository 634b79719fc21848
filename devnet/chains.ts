/**
 * Local chains: hardhat nodes on 127.0.0.1 with interval mining, and the bridge contracts deployed on them.
 * `npm run chains` starts chainA and chainB (1 s and 2 s blocks), deploys, writes `.settle/chains.json` and a
 * networks file `.settle/settle.config.json` for the worker (with a signing policy that allows exactly the bridge
 * contracts deployed here), and runs until Ctrl-C.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createPublicClient, createWalletClient, http, maxUint256, type Abi, type Hex } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import escrowArtifact from '../contracts/artifacts/BridgeEscrow.json';
import minterArtifact from '../contracts/artifacts/BridgeMinter.json';
import tokenArtifact from '../contracts/artifacts/SettleToken.json';
import { BURN_FUNCTION, LOCK_FUNCTION, MINT_ATTESTED_FUNCTION, MINT_FUNCTION, UNLOCK_FUNCTION } from '../client/plans';
import type { SignerPolicy } from '../networks/evm/signing-policy';

/** Hardhat's well-known development accounts (public keys of a public mnemonic): for local chains only. */
export const DEV_KEYS = {
  /** Deployer, token holder and bridge operator: the `bridge` signer. */
  bridge: '0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80',
  /** A user who receives minted tokens. */
  user: '0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d',
} as const satisfies Record<string, Hex>;

export interface ChainSpec {
  name: string;
  chainId: number;
  port: number;
  blockTimeMs: number;
  host?: string;
}

export interface RunningChain {
  name: string;
  chainId: number;
  rpcUrl: string;
  blockTimeMs: number;
  process: ChildProcess;
  stop(): Promise<void>;
}

export interface BridgeContracts {
  token: Hex;
  escrow: Hex;
  minter: Hex;
}

/**
 * Starts a hardhat node bound to 127.0.0.1 (never 0.0.0.0). Mining is automatic until `startIntervalMining`, so
 * deployment is instant.
 */
export async function startChain(
  spec: ChainSpec,
  options: { stdio?: 'inherit' | 'ignore' } = {},
): Promise<RunningChain> {
  const host = spec.host ?? '127.0.0.1';
  const dir = mkdtempSync(path.join(os.tmpdir(), `settle-${spec.name}-`));
  const configFile = path.join(dir, 'hardhat.config.js');
  writeFileSync(
    configFile,
    `module.exports = ${JSON.stringify({
      paths: { root: dir, cache: path.join(dir, 'cache'), artifacts: path.join(dir, 'artifacts') },
      networks: { hardhat: { chainId: spec.chainId, mining: { auto: true, interval: 0 } } },
    })};\n`,
  );
  const cli = require.resolve('hardhat/internal/cli/cli.js');
  const child = spawn(
    process.execPath,
    [cli, '--config', configFile, 'node', '--hostname', host, '--port', String(spec.port)],
    {
      cwd: path.resolve(__dirname, '..'),
      stdio: ['ignore', options.stdio ?? 'ignore', options.stdio ?? 'ignore'],
      env: { ...process.env, HARDHAT_DISABLE_TELEMETRY_PROMPT: 'true' },
    },
  );
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const rpcUrl = `http://${host}:${spec.port}`;
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await Promise.race([
      waitForRpc(rpcUrl, 60_000),
      exited.then(() => {
        throw new Error(`hardhat node ${spec.name} exited (code ${child.exitCode}) before serving ${rpcUrl}`);
      }),
    ]);
  } catch (error) {
    await stop();
    throw error;
  }
  return { name: spec.name, chainId: spec.chainId, rpcUrl, blockTimeMs: spec.blockTimeMs, process: child, stop };
}

export async function rpc<T = unknown>(rpcUrl: string, method: string, params: unknown[] = []): Promise<T> {
  const response = await fetch(rpcUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }),
  });
  const body = (await response.json()) as { result?: T; error?: { message: string } };
  if (body.error) throw new Error(`${method}: ${body.error.message}`);
  return body.result as T;
}

async function waitForRpc(rpcUrl: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await rpc(rpcUrl, 'eth_chainId');
      return;
    } catch (error) {
      if (Date.now() > deadline) throw new Error(`${rpcUrl} does not answer after ${timeoutMs} ms: ${String(error)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

/** Switches a chain from automine to one block every `blockTimeMs`. */
export async function startIntervalMining(chain: Pick<RunningChain, 'rpcUrl' | 'blockTimeMs'>): Promise<void> {
  await rpc(chain.rpcUrl, 'evm_setAutomine', [false]);
  await rpc(chain.rpcUrl, 'evm_setIntervalMining', [chain.blockTimeMs]);
}

/**
 * Deploys the token, escrow and minter (the minter may mint the token; the operator approves the escrow), while the
 * chain still automines.
 */
export async function deployBridge(
  chain: Pick<RunningChain, 'rpcUrl' | 'chainId' | 'name'>,
  operatorKey: Hex = DEV_KEYS.bridge,
): Promise<BridgeContracts> {
  const account = privateKeyToAccount(operatorKey);
  const viemChain = {
    id: chain.chainId,
    name: chain.name,
    nativeCurrency: { name: 'Ether', symbol: 'ETH', decimals: 18 },
    rpcUrls: { default: { http: [chain.rpcUrl] } },
  } as const;
  const wallet = createWalletClient({ account, chain: viemChain, transport: http(chain.rpcUrl) });
  const reader = createPublicClient({ chain: viemChain, transport: http(chain.rpcUrl) });
  const deploy = async (artifact: { abi: unknown[]; bytecode: string }, args: unknown[]): Promise<Hex> => {
    const hash = await wallet.deployContract({ abi: artifact.abi as Abi, bytecode: artifact.bytecode as Hex, args });
    const receipt = await reader.waitForTransactionReceipt({ hash, pollingInterval: 50 });
    if (!receipt.contractAddress) throw new Error(`deployment on ${chain.name} failed: ${hash}`);
    return receipt.contractAddress;
  };
  const send = async (to: Hex, abi: unknown[], functionName: string, args: unknown[]) => {
    const hash = await wallet.writeContract({ address: to, abi: abi as Abi, functionName, args });
    await reader.waitForTransactionReceipt({ hash, pollingInterval: 50 });
  };
  const token = await deploy(tokenArtifact, ['Settle Token', 'STL', 10n ** 24n]);
  const escrow = await deploy(escrowArtifact, [token, account.address]);
  const minter = await deploy(minterArtifact, [token, account.address]);
  await send(token, tokenArtifact.abi, 'setMinter', [minter]);
  await send(token, tokenArtifact.abi, 'approve', [escrow, maxUint256]);
  return { token, escrow, minter };
}

export interface LocalChains {
  chains: Record<string, RunningChain & { contracts: BridgeContracts }>;
  stop(): Promise<void>;
}

export const DEFAULT_CHAINS: ChainSpec[] = [
  { name: 'chainA', chainId: 31337, port: 8545, blockTimeMs: 1000 },
  { name: 'chainB', chainId: 31338, port: 8546, blockTimeMs: 2000 },
];

/** Starts the chains in parallel, deploys the bridge on each, then turns on interval mining. */
export async function startLocalChains(
  specs: ChainSpec[] = DEFAULT_CHAINS,
  options: { stdio?: 'inherit' | 'ignore' } = {},
): Promise<LocalChains> {
  const started = await Promise.allSettled(specs.map((spec) => startChain(spec, options)));
  const running = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const stop = async () => {
    await Promise.all(running.map((chain) => chain.stop()));
  };
  try {
    const failed = started.find((s) => s.status === 'rejected');
    if (failed) throw failed.reason;
    const chains: LocalChains['chains'] = {};
    for (const chain of running) {
      chains[chain.name] = { ...chain, contracts: await deployBridge(chain) };
      await startIntervalMining(chain);
    }
    return { chains, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** Per call: a million token units (the demo and the tests move 1 to 1000). */
export const LOCAL_AMOUNT_CAP = '1000000';
/** Per call: 1 ETH in wei. */
export const LOCAL_NATIVE_CAP = '1000000000000000000';
const HOUR_MS = 3_600_000;

/**
 * The `bridge` signer's signing policy on a local chain: the bridge entry points of the contracts deployed there
 * (escrow lock, unlock and burn; minter mint and mintAttested), never the token itself (its `mint`, `transfer`), each
 * amount capped per call and budgeted per hour per route; and, because the chain is local, native transfers of at most
 * 1 ETH to any address.
 *
 * @example localBridgePolicy(chains.chainB.contracts).contracts[minter].functions // mint, mintAttested
 */
export function localBridgePolicy(contracts: BridgeContracts): SignerPolicy {
  const amount = { arg: 'amount', max: LOCAL_AMOUNT_CAP, budget: { limit: '100000000', window: HOUR_MS } };
  return {
    contracts: {
      [contracts.escrow]: {
        label: 'escrow',
        functions: [
          { function: LOCK_FUNCTION, amount },
          { function: UNLOCK_FUNCTION },
          { function: BURN_FUNCTION, amount },
        ],
      },
      [contracts.minter]: {
        label: 'minter',
        functions: [
          { function: MINT_FUNCTION, amount },
          { function: MINT_ATTESTED_FUNCTION, amount },
        ],
      },
    },
    native: { to: 'any', max: LOCAL_NATIVE_CAP, budget: { limit: '100000000000000000000', window: HOUR_MS } },
  };
}

/**
 * A networks file (SETTLE_CONFIG) for local chains, with the `bridge` signer's key in a key file and its signing policy
 * on each chain ({@link localBridgePolicy} unless `policy` says otherwise).
 */
export function localNetworksFile(
  chains: LocalChains['chains'],
  options: {
    keyFile: string;
    confirmations?: number;
    pollIntervalMs?: number;
    rpcUrls?: Record<string, string>;
    policy?: (chain: LocalChains['chains'][string]) => SignerPolicy;
  },
) {
  return {
    networks: Object.fromEntries(
      Object.values(chains).map((chain) => [
        chain.name,
        {
          kind: 'evm' as const,
          chainId: chain.chainId,
          rpcUrls: [options.rpcUrls?.[chain.name] ?? chain.rpcUrl],
          finality: { confirmations: options.confirmations ?? 3 },
          blockTime: chain.blockTimeMs,
          // The watcher is the fast path; polling is the fallback when it is not running.
          pollInterval: options.pollIntervalMs ?? 4 * chain.blockTimeMs,
          send: true,
          signers: ['bridge'],
          policies: { bridge: (options.policy ?? ((c) => localBridgePolicy(c.contracts)))(chain) },
        },
      ]),
    ),
    signers: { bridge: { keyFile: options.keyFile } },
  };
}

/** Writes `.settle/chains.json`, the bridge key file and the networks file; returns the networks file's path. */
export function writeLocalState(stateDir: string, chains: LocalChains['chains']): string {
  mkdirSync(path.join(stateDir, 'keys'), { recursive: true });
  const keyFile = path.resolve(stateDir, 'keys', 'bridge.key');
  writeFileSync(keyFile, `${DEV_KEYS.bridge}\n`, { mode: 0o600 });
  chmodSync(keyFile, 0o600); // a key file kept from an earlier run
  const summary = Object.fromEntries(
    Object.values(chains).map((c) => [c.name, { chainId: c.chainId, rpcUrl: c.rpcUrl, contracts: c.contracts }]),
  );
  writeFileSync(path.join(stateDir, 'chains.json'), `${JSON.stringify(summary, null, 2)}\n`);
  const configFile = path.resolve(stateDir, 'settle.config.json');
  writeFileSync(configFile, `${JSON.stringify(localNetworksFile(chains, { keyFile }), null, 2)}\n`);
  return configFile;
}

if (require.main === module) {
  const stateDir = process.env.SETTLE_STATE_DIR ?? '.settle';
  startLocalChains()
    .then((local) => {
      const configFile = writeLocalState(stateDir, local.chains);
      for (const chain of Object.values(local.chains)) {
        process.stdout.write(
          `${chain.name}: chain id ${chain.chainId} on ${chain.rpcUrl}, a block every ${chain.blockTimeMs} ms; ` +
            `token ${chain.contracts.token}, escrow ${chain.contracts.escrow}, minter ${chain.contracts.minter}\n`,
        );
      }
      process.stdout.write(`networks file: ${configFile} (SETTLE_CONFIG=${configFile} npm run worker); Ctrl-C stops\n`);
      const stop = () => void local.stop().then(() => process.exit(0));
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    })
    .catch((error: Error) => {
      process.stderr.write(`${error.message}\n`);
      process.exit(1);
    });
}
