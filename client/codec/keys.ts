import { readFileSync, statSync } from 'node:fs';
import { z } from 'zod';
import { parseOrThrow } from '../../contract/validation';
import { KEY_BYTES, KEY_ID_PATTERN, type CodecKeys } from './encryption-codec';

const KeyIdSchema = z.string().regex(KEY_ID_PATTERN, 'must be 1 to 64 letters, digits, dots, dashes or underscores');

/** A key as written in the keys document: 32 bytes in canonical base64 (`openssl rand -base64 32`). */
const KeySchema = z
  .string()
  .refine(
    (text) =>
      Buffer.from(text, 'base64').length === KEY_BYTES && Buffer.from(text, 'base64').toString('base64') === text,
    `must be ${KEY_BYTES} bytes in base64 (openssl rand -base64 32)`,
  )
  .transform((text) => new Uint8Array(Buffer.from(text, 'base64')));

/** The keys document: `{ "<key id>": "<base64 of 32 bytes>", … }`, every key that may still be needed to decrypt. */
export const CodecKeysDocumentSchema = z.record(z.string(), KeySchema).superRefine((keys, context) => {
  if (Object.keys(keys).length === 0) context.addIssue({ code: 'custom', message: 'must hold at least one key' });
  for (const keyId of Object.keys(keys)) {
    const checked = KeyIdSchema.safeParse(keyId);
    if (!checked.success)
      context.addIssue({ code: 'custom', path: [keyId], message: `key id ${checked.error.issues[0].message}` });
  }
});

/**
 * The payload codec's settings. Unset: no codec, payloads are stored as the SDK writes them (JSON in plain text).
 * Keys and their values are never printed: errors name the key ids and the file, not the material.
 */
export const CodecEnvSchema = z.object({
  /**
   * The keys: a path to a JSON file readable by its owner only (mode 600 or 400), or the JSON itself,
   * `{ "2026-01": "<base64 of 32 bytes>", "2025-07": "…" }`. Keep old keys while history encrypted with them exists.
   */
  SETTLE_CODEC_KEYS: z.string().trim().min(1, 'must be a file path or a JSON object of keys').optional(),
  /** The key new payloads are encrypted with; may be omitted when SETTLE_CODEC_KEYS holds one key. */
  SETTLE_CODEC_KEY_ID: KeyIdSchema.optional(),
});

/**
 * The codec's keys from an env object (not `process.env` unless passed), or `undefined` when SETTLE_CODEC_KEYS is unset.
 * A key file that its group or others may read or write is refused.
 *
 * @param error the class a bad configuration is thrown as (ClientConfigError, the worker's ConfigError, …)
 * @example
 * const keys = loadCodecKeys({ SETTLE_CODEC_KEYS: '/etc/settle/codec-keys.json', SETTLE_CODEC_KEY_ID: '2026-01' });
 */
export function loadCodecKeys(
  env: Record<string, string | undefined>,
  error: new (message: string) => Error,
): CodecKeys | undefined {
  const { SETTLE_CODEC_KEYS: source, SETTLE_CODEC_KEY_ID: keyId } = parseOrThrow(CodecEnvSchema, env, 'configuration', {
    error,
  });
  if (source === undefined) {
    if (keyId !== undefined)
      throw new error('invalid configuration:\nSETTLE_CODEC_KEY_ID: is set but SETTLE_CODEC_KEYS is not');
    return undefined;
  }
  const inline = source.startsWith('{');
  const where = inline ? 'SETTLE_CODEC_KEYS' : source;
  const text = inline ? source : readKeyFile(source, error);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    // JSON.parse's message quotes the text around the fault: it could be key material.
    throw new error(`${where}: invalid codec keys:\n(root): must be a JSON object of key ids to base64 keys`);
  }
  const document = parseOrThrow(CodecKeysDocumentSchema, json, 'codec keys', { error, source: where });
  const keys = new Map(Object.entries(document));
  const ids = [...keys.keys()].map((id) => `"${id}"`).join(', ');
  const currentKeyId = keyId ?? (keys.size === 1 ? [...keys.keys()][0] : undefined);
  if (currentKeyId === undefined) {
    throw new error(`invalid configuration:\nSETTLE_CODEC_KEY_ID: must name the current key among ${ids}`);
  }
  if (!keys.has(currentKeyId)) {
    throw new error(
      `invalid configuration:\nSETTLE_CODEC_KEY_ID: "${currentKeyId}" is not among SETTLE_CODEC_KEYS (${ids})`,
    );
  }
  return { keys, currentKeyId };
}

/** Reads the key file, refusing one that anyone but its owner may read or write: keys do not sit in shared files. */
function readKeyFile(path: string, error: new (message: string) => Error): string {
  try {
    const stats = statSync(path);
    if (!stats.isFile()) throw new error(`${path}: the codec key file is not a regular file`);
    if (process.platform !== 'win32' && (stats.mode & 0o077) !== 0) {
      const mode = (stats.mode & 0o777).toString(8).padStart(3, '0');
      throw new error(
        `${path}: the codec key file may be read or written by its group or others (mode ${mode}): chmod 600 it`,
      );
    }
    return readFileSync(path, 'utf8');
  } catch (cause) {
    if (cause instanceof error) throw cause;
    throw new error(`${path}: cannot read the codec key file (${(cause as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}
