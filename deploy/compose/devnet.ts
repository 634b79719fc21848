/**
 * The `chains` service of docker-compose.yml's `devnet` profile: the two local chains of `npm start` and
 * `npm run cluster` (devnet/chains.ts: same chain ids, block times and bridge contracts), listening on the container's
 * interfaces so that the workers and watchers reach them by service name. It writes into the shared config volume what
 * the native cluster writes into its state folder, with the same functions: the networks file (RPC URLs by service
 * name, the `bridge` signer's key file, the local signing policy), the watchers' claim-signing key trusted by it, and
 * the HTTP API's token file; then a marker, which is the service's health check. Runs until stopped.
 */
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { DEFAULT_CHAINS, startLocalChains, writeLocalState, type LocalChains } from '../../devnet/chains';
import { apiTokensFile, trustTheWatchers } from '../../devnet/cluster/state';

export const DevnetComposeConfigSchema = z.object({
  /** The folder shared with the workers, the watchers and the API (a volume), where every file below is written. */
  SETTLE_STATE_DIR: z.string().min(1).default('/etc/settle'),
  /** The host name the other services reach the chains by: the compose service's name. */
  SETTLE_DEVNET_RPC_HOST: z.string().min(1).default('chains'),
  /** The interface the hardhat nodes listen on inside the container. */
  SETTLE_DEVNET_LISTEN: z.string().min(1).default('0.0.0.0'),
});
export type DevnetComposeConfig = z.output<typeof DevnetComposeConfigSchema>;

/** What this service writes, relative to SETTLE_STATE_DIR; docker-compose.yml names the same paths. */
export const DEVNET_FILES = {
  networks: 'settle.config.json',
  watcherKey: 'secrets/watcher.key',
  apiTokens: 'secrets/api-tokens.json',
  /** Written last: the chains are up and every other file is complete. */
  ready: 'devnet.ready',
} as const;

/**
 * Writes the devnet's files for chains reached at `rpcHost`, with the native cluster's functions, and checks that they
 * land where docker-compose.yml expects them.
 *
 * @example writeDevnetState('/etc/settle', local.chains, 'chains').networks // '/etc/settle/settle.config.json'
 */
export function writeDevnetState(stateDir: string, chains: LocalChains['chains'], rpcHost: string) {
  const reachable = Object.fromEntries(
    Object.entries(chains).map(([name, chain]) => {
      const spec = DEFAULT_CHAINS.find((s) => s.name === name);
      return [name, { ...chain, rpcUrl: `http://${rpcHost}:${spec?.port ?? new URL(chain.rpcUrl).port}` }];
    }),
  );
  const written = {
    networks: writeLocalState(stateDir, reachable),
    watcherKey: '',
    apiTokens: apiTokensFile(stateDir),
    ready: path.resolve(stateDir, DEVNET_FILES.ready),
  };
  written.watcherKey = trustTheWatchers(stateDir, written.networks);
  for (const [what, file] of Object.entries(written)) {
    const expected = path.resolve(stateDir, DEVNET_FILES[what as keyof typeof DEVNET_FILES]);
    if (path.resolve(file) !== expected) throw new Error(`devnet: ${what} written to ${file}, not ${expected}`);
  }
  writeFileSync(written.ready, `${new Date().toISOString()}\n`);
  return written;
}

async function main(): Promise<void> {
  const config = DevnetComposeConfigSchema.parse(process.env);
  rmSync(path.resolve(config.SETTLE_STATE_DIR, DEVNET_FILES.ready), { force: true });
  const local = await startLocalChains(DEFAULT_CHAINS.map((spec) => ({ ...spec, host: config.SETTLE_DEVNET_LISTEN })));
  const stop = () => void local.stop().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  const files = writeDevnetState(config.SETTLE_STATE_DIR, local.chains, config.SETTLE_DEVNET_RPC_HOST);
  for (const chain of Object.values(local.chains)) {
    const url = `http://${config.SETTLE_DEVNET_RPC_HOST}:${new URL(chain.rpcUrl).port}`;
    process.stdout.write(
      `devnet: ${chain.name}: chain id ${chain.chainId} at ${url}, a block every ${chain.blockTimeMs} ms; ` +
        `escrow ${chain.contracts.escrow}, minter ${chain.contracts.minter}\n`,
    );
  }
  process.stdout.write(`devnet: networks file ${files.networks}; the API's token (operator) in ${files.apiTokens}\n`);
}

if (require.main === module) {
  main().catch((error: Error) => {
    process.stderr.write(`devnet: ${error.message}\n`);
    process.exit(1);
  });
}
