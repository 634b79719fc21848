/**
 * The networks file (SETTLE_CONFIG): which networks this worker knows, how final is final on each, how fast to poll,
 * whether it may send, which signers exist, and what each signer may sign there (its signing policy). Keys are never in
 * this file's actions: a signer names an env variable or a key file, read once at start-up. Parsed once with zod and
 * passed down.
 */
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { FinalityPolicySchema } from '../contract/action-spec';
import { DurationSchema } from '../contract/duration';
import { SettleError } from '../contract/errors';
import { parseOrThrow } from '../contract/validation';
import { NetworkNameSchema } from '../contract/primitives';
import { SignerPolicySchema } from './evm/signing-policy';

/** A configuration that stops a process at start-up (the networks file, a signer's key, an env key), named. */
export class ConfigError extends SettleError {
  override name = 'ConfigError';
}

const SignerNameSchema = z.string().regex(/^[A-Za-z][A-Za-z0-9_-]*$/, 'must be a signer name (letters, digits, _ -)');

/** Where a signer's private key comes from: an env variable, or a file holding the 0x-prefixed hex key. */
export const SignerSourceSchema = z.union(
  [z.strictObject({ keyEnv: z.string().regex(/^[A-Z_][A-Z0-9_]*$/) }), z.strictObject({ keyFile: z.string().min(1) })],
  { error: 'must be { "keyEnv": "ENV_NAME" } or { "keyFile": "path/to/key" }' },
);
export type SignerSource = z.infer<typeof SignerSourceSchema>;

export const EvmNetworkConfigSchema = z.strictObject({
  kind: z.literal('evm'),
  chainId: z.number().int().positive(),
  /** Tried in order: the first reachable one is used. */
  rpcUrls: z.array(z.url({ protocol: /^(https?|wss?)$/ })).min(1, 'needs at least one RPC URL'),
  /** Default for steps that name none: `{ "confirmations": n }` or `{ "tag": "finalized" | "safe" }`. */
  finality: FinalityPolicySchema,
  blockTime: DurationSchema,
  /** First wait for evidence before the workflow polls, and the cap of its back-off. */
  pollInterval: DurationSchema.optional(),
  maxPollInterval: DurationSchema.optional(),
  /** Sending is off unless enabled per network. */
  send: z.boolean().default(false),
  /** Signers this worker may use on this network (names from `signers`). */
  signers: z.array(SignerNameSchema).default([]),
  /** Replace a transaction with the same nonce and higher fees when it has been pending this long. */
  feeBumpAfter: DurationSchema.optional(),
  /**
   * Signer name → what it may sign on this network (contracts, functions, amount caps, native transfers, budgets; see
   * docs/evm.md). A network that may send needs one for each of its signers: without one, a signer signs nothing.
   */
  policies: z.record(SignerNameSchema, SignerPolicySchema).default({}),
});
export type EvmNetworkConfig = z.infer<typeof EvmNetworkConfigSchema>;

export const NetworksFileSchema = z
  .strictObject({
    networks: z.record(NetworkNameSchema, z.discriminatedUnion('kind', [EvmNetworkConfigSchema])),
    signers: z.record(SignerNameSchema, SignerSourceSchema).default({}),
    /**
     * Whose claims this deployment trusts. With `verifyClaims`, a signal's claim that would move an EVM step forward is
     * applied at once only when signed (Ed25519) by a source trusted for the step's network; otherwise the workflow
     * reads the chain itself first. `sources`: name (a claim's `source` is the name or `<name>:<anything>`) → hex
     * public key, and the networks it may report on (all if absent). Public facts: recorded in each action's history.
     */
    trust: z
      .strictObject({
        verifyClaims: z.boolean().default(true),
        sources: z
          .record(
            z.string().regex(/^[A-Za-z][A-Za-z0-9_-]*$/, 'must be a source name (letters, digits, _ -)'),
            z.strictObject({
              publicKey: z.string().regex(/^(0x)?[0-9a-fA-F]{64}$/, 'must be a 32-byte Ed25519 public key in hex'),
              networks: z.array(NetworkNameSchema).min(1).optional(),
            }),
          )
          .default({}),
      })
      .optional(),
    /** Fault injection for crash tests only: SIGKILL the worker right after its first broadcast (once per marker file). */
    faults: z.strictObject({ killAfterBroadcastMarker: z.string().min(1).optional() }).optional(),
  })
  .superRefine((file, ctx) => {
    for (const [name, network] of Object.entries(file.networks)) {
      network.signers.forEach((signer, i) => {
        if (!file.signers[signer]) {
          ctx.addIssue({
            code: 'custom',
            path: ['networks', name, 'signers', i],
            message: `unknown signer "${signer}" (not in "signers")`,
          });
        } else if (network.send && !network.policies[signer]) {
          ctx.addIssue({
            code: 'custom',
            path: ['networks', name, 'policies', signer],
            message: `signer "${signer}" may send on ${name} but has no signing policy (a signer without one signs nothing)`,
          });
        }
      });
      for (const signer of Object.keys(network.policies)) {
        if (!network.signers.includes(signer)) {
          ctx.addIssue({
            code: 'custom',
            path: ['networks', name, 'policies', signer],
            message: `a policy for "${signer}", which is not one of this network's signers`,
          });
        }
      }
    }
  });
export type NetworksFile = z.infer<typeof NetworksFileSchema>;

/**
 * Reads SETTLE_CONFIG: a path to a JSON file, or the JSON itself (starting with `{`). Relative key files resolve
 * against the file's folder.
 *
 * @example const file = readNetworksFile(config.SETTLE_CONFIG!);
 */
export function readNetworksFile(source: string): NetworksFile & { baseDir: string } {
  const inline = source.trimStart().startsWith('{');
  let text: string;
  try {
    text = inline ? source : readFileSync(source, 'utf8');
  } catch (error) {
    throw new ConfigError(`SETTLE_CONFIG: cannot read ${source}: ${(error as Error).message}`);
  }
  return {
    ...parseNetworksFile(text, inline ? 'SETTLE_CONFIG' : source),
    baseDir: inline ? '.' : path.dirname(source),
  };
}

export function parseNetworksFile(text: string, name = 'SETTLE_CONFIG'): NetworksFile {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new ConfigError(`${name}: not valid JSON: ${(error as Error).message}`);
  }
  return parseOrThrow(NetworksFileSchema, json, 'networks file', { error: ConfigError, source: name });
}

const PRIVATE_KEY = /^0x[0-9a-fA-F]{64}$/;

/** Reads one signer's key. A missing or malformed key is a start-up error that names the signer, never the key. */
export function readSignerKey(
  name: string,
  source: SignerSource,
  env: Record<string, string | undefined>,
  baseDir: string,
): `0x${string}` {
  let key: string | undefined;
  if ('keyEnv' in source) {
    key = env[source.keyEnv]?.trim();
    if (!key) throw new ConfigError(`signer "${name}": environment variable ${source.keyEnv} is not set`);
  } else {
    const file = path.resolve(baseDir, source.keyFile);
    try {
      key = readFileSync(file, 'utf8').trim();
    } catch (error) {
      throw new ConfigError(`signer "${name}": cannot read key file ${file}: ${(error as NodeJS.ErrnoException).code}`);
    }
    // A signing key that group or others can read is refused, not used.
    const mode = statSync(file).mode;
    if (process.platform !== 'win32' && (mode & 0o077) !== 0) {
      throw new ConfigError(
        `signer "${name}": key file ${file} is readable by group or others (mode ${(mode & 0o777).toString(8)}); chmod 600 it`,
      );
    }
  }
  if (!PRIVATE_KEY.test(key)) throw new ConfigError(`signer "${name}": the key is not a 0x-prefixed 32-byte hex key`);
  return key as `0x${string}`;
}
