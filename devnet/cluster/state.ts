/**
 * What the cluster keeps in its state folder besides the databases: the ports it picked (so a restart finds its
 * PostgreSQL and Temporal's membership where they were), the API's credentials and the watcher's key (mode 600), and
 * `cluster.json`, where the running cluster publishes its addresses and process ids.
 */
import { randomBytes, randomInt } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ed25519 } from '@noble/curves/ed25519';
import { z } from 'zod';
import { claimPublicKey } from '../../workers/watcher/claim-signer';
import { freePort, portFree } from './supervisor';
import type { TemporalPorts } from './temporal';

const PortSchema = z.number().int().min(1).max(65_535);
const PortsSchema = z.object({
  postgres: PortSchema,
  frontendHttp: PortSchema,
  frontendMembership: PortSchema,
  history: PortSchema,
  historyMembership: PortSchema,
  matching: PortSchema,
  matchingMembership: PortSchema,
  worker: PortSchema,
  workerMembership: PortSchema,
  metrics: PortSchema,
});
export type ClusterPorts = z.infer<typeof PortsSchema> & TemporalPorts;

/**
 * Temporal records its hosts' ports in a `smallint` column (cluster_membership.rpc_port): its ports must stay below
 * 32768, where Linux never hands out ephemeral ports, so they are drawn from 10000–32767 instead of asked of the OS.
 */
async function lowFreePort(taken: Set<number>): Promise<number> {
  for (;;) {
    const port = 10_000 + randomInt(22_768);
    if (!taken.has(port) && (await portFree(port))) return port;
  }
}

/** The ports of the last run when they are still free, else new free ones; written back to `ports.json`. */
export async function clusterPorts(stateDir: string): Promise<ClusterPorts> {
  const file = path.join(stateDir, 'ports.json');
  const kept = existsSync(file) ? PortsSchema.partial().safeParse(JSON.parse(readFileSync(file, 'utf8'))) : undefined;
  const previous: Partial<ClusterPorts> = kept?.success ? kept.data : {};
  const ports: Record<string, number> = {};
  const taken = new Set<number>();
  for (const name of Object.keys(PortsSchema.shape)) {
    const old = previous[name as keyof ClusterPorts];
    const low = name !== 'postgres';
    const reusable = old !== undefined && !taken.has(old) && (!low || old < 32_768) && (await portFree(old));
    let port = reusable ? old : low ? await lowFreePort(taken) : await freePort();
    while (taken.has(port)) port = await freePort();
    taken.add(port);
    ports[name] = port;
  }
  writeFileSync(file, `${JSON.stringify(ports, null, 2)}\n`);
  return PortsSchema.parse(ports);
}

export function secretsDir(stateDir: string): string {
  const dir = path.resolve(stateDir, 'secrets');
  mkdirSync(stateDir, { recursive: true });
  mkdirSync(dir, { recursive: true });
  chmodSync(dir, 0o700);
  return dir;
}

function writeSecret(file: string, text: string): void {
  writeFileSync(file, text, { mode: 0o600 });
  chmodSync(file, 0o600);
}

/**
 * The HTTP API's credentials (SETTLE_API_TOKENS as a file): one token, `operator`, with every scope, made once.
 * Returns the file's path.
 */
export function apiTokensFile(stateDir: string): string {
  const file = path.join(secretsDir(stateDir), 'api-tokens.json');
  if (!existsSync(file)) {
    const tokens = {
      operator: { token: randomBytes(24).toString('hex'), scopes: ['read', 'start', 'operate', 'evidence'] },
    };
    writeSecret(file, `${JSON.stringify(tokens, null, 2)}\n`);
  }
  return file;
}

/**
 * The watchers sign their claims with a key kept here (made once), whose public half the networks file trusts, as in
 * `npm start`; anything else is checked against the chain before it moves a step. Returns the key file.
 */
export function trustTheWatchers(stateDir: string, networksFile: string): string {
  return trustWatcherKey(path.join(secretsDir(stateDir), 'watcher.key'), networksFile);
}

/** Makes the watcher's claim key at `keyFile` (once, mode 600) and trusts its public half in the networks file. */
export function trustWatcherKey(keyFile: string, networksFile: string): string {
  if (!existsSync(keyFile)) writeSecret(keyFile, `${Buffer.from(ed25519.utils.randomPrivateKey()).toString('hex')}\n`);
  const file = JSON.parse(readFileSync(networksFile, 'utf8')) as Record<string, unknown>;
  file.trust = {
    verifyClaims: true,
    sources: { watcher: { publicKey: claimPublicKey(readFileSync(keyFile, 'utf8').trim()) } },
  };
  writeFileSync(networksFile, JSON.stringify(file, null, 2));
  return keyFile;
}

/** Replaces `cluster.json` in one step, so a reader never sees half of it. */
export function publish(stateDir: string, content: unknown): void {
  const file = path.join(stateDir, 'cluster.json');
  writeFileSync(`${file}.tmp`, `${JSON.stringify(content, null, 2)}\n`);
  renameSync(`${file}.tmp`, file);
}
