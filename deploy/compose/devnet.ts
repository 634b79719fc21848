/**
 * The `chains` service of docker-compose.yml's `devnet` profile: the two local chains of `npm run chains`
 * (devnet/chains.ts: same chain ids, block times and bridge contracts), but listening on the container's interfaces so
 * the worker and the watchers reach them by service name. Writes into the shared config volume what the other services
 * read: the networks file (RPC URLs by service name, the `bridge` signer's key file, the signing policy of the local
 * stack, the watcher trusted as in `npm start`), the watcher's claim-signing key and the HTTP API's token file. The
 * networks file is written last: its presence is the service's health check. Runs until stopped.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ed25519 } from '@noble/curves/ed25519';
import { z } from 'zod';
import { DEFAULT_CHAINS, DEV_KEYS, localNetworksFile, startLocalChains } from '../../devnet/chains';
import { claimPublicKey } from '../../workers/watcher/claim-signer';

export const DevnetComposeConfigSchema = z.object({
  /** The folder shared with the worker, the watchers and the API (a volume), where every file below is written. */
  SETTLE_STATE_DIR: z.string().min(1).default('/etc/settle'),
  /** The host name the other services reach the chains by: the compose service's name. */
  SETTLE_DEVNET_RPC_HOST: z.string().min(1).default('chains'),
  /** The interface the hardhat nodes listen on inside the container. */
  SETTLE_DEVNET_LISTEN: z.string().min(1).default('0.0.0.0'),
});
export type DevnetComposeConfig = z.output<typeof DevnetComposeConfigSchema>;

/** The files this service writes, relative to SETTLE_STATE_DIR; docker-compose.yml names the same paths. */
export const DEVNET_FILES = {
  networks: 'settle.config.json',
  bridgeKey: 'keys/bridge.key',
  watcherKey: 'keys/watcher.key',
  apiTokens: 'api-tokens.json',
} as const;

/** Writes a file only its owner may read, atomically (a reader never sees half of it). */
function writePrivate(file: string, text: string): void {
  mkdirSync(path.dirname(file), { recursive: true });
  const temporary = `${file}.tmp`;
  writeFileSync(temporary, text, { mode: 0o600 });
  chmodSync(temporary, 0o600);
  renameSync(temporary, file);
}

async function main(): Promise<void> {
  const config = DevnetComposeConfigSchema.parse(process.env);
  const at = (name: string) => path.join(config.SETTLE_STATE_DIR, name);
  rmSync(at(DEVNET_FILES.networks), { force: true }); // a file from a previous run would report these chains healthy
  const local = await startLocalChains(DEFAULT_CHAINS.map((spec) => ({ ...spec, host: config.SETTLE_DEVNET_LISTEN })));
  const stop = () => void local.stop().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);

  writePrivate(at(DEVNET_FILES.bridgeKey), `${DEV_KEYS.bridge}\n`);
  const watcherKey = Buffer.from(ed25519.utils.randomPrivateKey()).toString('hex');
  writePrivate(at(DEVNET_FILES.watcherKey), `${watcherKey}\n`);
  const apiToken = randomBytes(32).toString('hex');
  writePrivate(
    at(DEVNET_FILES.apiTokens),
    `${JSON.stringify({ devnet: { token: apiToken, scopes: ['read', 'start', 'operate', 'evidence'] } }, null, 2)}\n`,
  );

  const rpcUrls = Object.fromEntries(
    DEFAULT_CHAINS.map((spec) => [spec.name, `http://${config.SETTLE_DEVNET_RPC_HOST}:${spec.port}`]),
  );
  const networks = {
    ...localNetworksFile(local.chains, { keyFile: at(DEVNET_FILES.bridgeKey), rpcUrls }),
    trust: { verifyClaims: true, sources: { watcher: { publicKey: claimPublicKey(watcherKey) } } },
  };
  writePrivate(at(DEVNET_FILES.networks), `${JSON.stringify(networks, null, 2)}\n`);

  for (const chain of Object.values(local.chains)) {
    process.stdout.write(
      `devnet: ${chain.name}: chain id ${chain.chainId} at ${rpcUrls[chain.name]}, a block every ${chain.blockTimeMs} ms; ` +
        `escrow ${chain.contracts.escrow}, minter ${chain.contracts.minter}\n`,
    );
  }
  process.stdout.write(
    `devnet: networks file ${at(DEVNET_FILES.networks)}; the API's token is in ${at(DEVNET_FILES.apiTokens)}\n`,
  );
}

if (require.main === module) {
  main().catch((error: Error) => {
    process.stderr.write(`devnet: ${error.message}\n`);
    process.exit(1);
  });
}
