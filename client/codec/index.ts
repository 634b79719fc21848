/**
 * Data at rest in Temporal: an optional payload codec that encrypts every payload Settle sends (workflow inputs and
 * results, signals, updates, queries, activity inputs and results, memos, failure messages), configured from the env.
 */
import type { DataConverter } from '@temporalio/common';
import { EncryptionCodec } from './encryption-codec';
import { loadCodecKeys } from './keys';

export * from './encryption-codec';
export { CodecEnvSchema, CodecKeysDocumentSchema, loadCodecKeys } from './keys';

/** The module the SDK loads by path (in the workflow bundle too): failure messages and stacks as encoded attributes. */
export const FAILURE_CONVERTER_PATH = require.resolve('./failure-converter');

/**
 * The data converter every Settle process uses, from SETTLE_CODEC_KEYS and SETTLE_CODEC_KEY_ID; `undefined` when the
 * codec is not configured (the SDK's default converter, payloads in plain text).
 *
 * @param error the class a bad configuration is thrown as
 * @example
 * const dataConverter = resolveDataConverter(process.env, ConfigError);
 * const worker = await Worker.create({ …, dataConverter });
 */
export function resolveDataConverter(
  env: Record<string, string | undefined>,
  error: new (message: string) => Error,
): DataConverter | undefined {
  const keys = loadCodecKeys(env, error);
  if (!keys) return undefined;
  return { payloadCodecs: [new EncryptionCodec(keys)], failureConverterPath: FAILURE_CONVERTER_PATH };
}
