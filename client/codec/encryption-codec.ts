import { createCipheriv, createDecipheriv, createSecretKey, randomBytes, type KeyObject } from 'node:crypto';
import { inspect } from 'node:util';
import { METADATA_ENCODING_KEY, type Payload, type PayloadCodec } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { SettleError } from '../../contract/settle-error';

/** The encoding of a payload this codec encrypted: `binary/encrypted`, as in Temporal's encryption samples. */
export const ENCRYPTED_ENCODING = 'binary/encrypted';
/** Metadata naming the key a payload was encrypted with, so that keys can rotate. */
export const KEY_ID_METADATA = 'encryption-key-id';
/** Metadata naming the cipher; a payload naming another one is refused rather than misread. */
export const CIPHER_METADATA = 'encryption-cipher';
export const CIPHER = 'AES-256-GCM';

const NONCE_BYTES = 12;
const TAG_BYTES = 16;
export const KEY_BYTES = 32;
/** What a key id may be: it travels in plain text in every payload's metadata. */
export const KEY_ID_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;

/** A payload this codec cannot decrypt. Decoding fails loudly: a payload is never passed on half-read. */
export class PayloadDecryptionError extends SettleError {
  override name = 'PayloadDecryptionError';
}

/** The payload names a key id this process does not hold (a key removed too early, or another deployment's). */
export class UnknownKeyError extends PayloadDecryptionError {
  override name = 'UnknownKeyError';
  constructor(
    readonly keyId: string,
    readonly configuredKeyIds: string[],
  ) {
    super(
      `payload encrypted with key "${keyId}", which is not configured (SETTLE_CODEC_KEYS holds ${configuredKeyIds.map((id) => `"${id}"`).join(', ')})`,
    );
  }
}

/** The ciphertext does not authenticate under its key: it was altered, or encrypted with another key of that id. */
export class TamperedPayloadError extends PayloadDecryptionError {
  override name = 'TamperedPayloadError';
  constructor(readonly keyId: string) {
    super(
      `payload encrypted with key "${keyId}" fails authentication: it was altered, or that key id names another key`,
    );
  }
}

/** The keys a codec holds: every key it may decrypt with, and the one it encrypts with. */
export interface CodecKeys {
  /** Key id → 32 bytes (AES-256). */
  keys: Map<string, Uint8Array>;
  /** The key new payloads are encrypted with; one of `keys`. */
  currentKeyId: string;
}

/**
 * Encrypts every payload with AES-256-GCM under the current key, and decrypts with whichever configured key the
 * payload names (`encryption-key-id`), so that keys rotate without re-encrypting history. The whole payload (its
 * metadata and data, as protobuf) is encrypted: nothing of the value, not even its encoding, is readable at rest.
 * Payloads that are not `binary/encrypted` (written before the codec was turned on) pass through unchanged.
 *
 * The layout is the one of Temporal's Go and Python encryption samples: a random 12-byte nonce, the ciphertext, the
 * 16-byte tag; no associated data. Key material lives in `KeyObject`s and never shows in logs or `inspect`.
 *
 * @example
 * const codec = new EncryptionCodec({ keys: new Map([['2026-01', key]]), currentKeyId: '2026-01' });
 * const client = new Client({ connection, dataConverter: { payloadCodecs: [codec] } });
 */
export class EncryptionCodec implements PayloadCodec {
  readonly #keys: Map<string, KeyObject>;
  readonly currentKeyId: string;

  constructor({ keys, currentKeyId }: CodecKeys) {
    this.#keys = new Map();
    for (const [keyId, key] of keys) {
      if (!KEY_ID_PATTERN.test(keyId)) throw new SettleError(`key id "${keyId}" must match ${KEY_ID_PATTERN}`);
      if (key.length !== KEY_BYTES) throw new SettleError(`key "${keyId}" must be ${KEY_BYTES} bytes`);
      this.#keys.set(keyId, createSecretKey(key));
    }
    if (!this.#keys.has(currentKeyId)) throw new SettleError(`the current key "${currentKeyId}" is not among the keys`);
    this.currentKeyId = currentKeyId;
  }

  /** The ids of the keys this codec can decrypt with (ids are not secret: they travel in every payload). */
  get keyIds(): string[] {
    return [...this.#keys.keys()];
  }

  async encode(payloads: Payload[]): Promise<Payload[]> {
    const key = this.#keys.get(this.currentKeyId)!;
    return payloads.map((payload) => {
      const nonce = randomBytes(NONCE_BYTES);
      const cipher = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_BYTES });
      const plaintext = temporal.api.common.v1.Payload.encode(payload).finish();
      const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
      return {
        metadata: {
          [METADATA_ENCODING_KEY]: utf8(ENCRYPTED_ENCODING),
          [KEY_ID_METADATA]: utf8(this.currentKeyId),
          [CIPHER_METADATA]: utf8(CIPHER),
        },
        data: Buffer.concat([nonce, ciphertext, cipher.getAuthTag()]),
      };
    });
  }

  async decode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((payload) => this.decrypt(payload));
  }

  private decrypt(payload: Payload): Payload {
    const metadata = payload.metadata ?? {};
    if (text(metadata[METADATA_ENCODING_KEY]) !== ENCRYPTED_ENCODING) return payload;
    const keyId = text(metadata[KEY_ID_METADATA]);
    if (!keyId) throw new PayloadDecryptionError(`encrypted payload has no ${KEY_ID_METADATA} in its metadata`);
    const cipher = text(metadata[CIPHER_METADATA]);
    if (cipher !== undefined && cipher !== CIPHER) {
      throw new PayloadDecryptionError(`payload encrypted with ${cipher}; this codec reads ${CIPHER}`);
    }
    const key = this.#keys.get(keyId);
    if (!key) throw new UnknownKeyError(keyId, this.keyIds);
    const data = payload.data ?? new Uint8Array();
    if (data.length < NONCE_BYTES + TAG_BYTES) throw new TamperedPayloadError(keyId);
    const decipher = createDecipheriv('aes-256-gcm', key, data.subarray(0, NONCE_BYTES), { authTagLength: TAG_BYTES });
    decipher.setAuthTag(data.subarray(data.length - TAG_BYTES));
    let plaintext: Buffer;
    try {
      plaintext = Buffer.concat([
        decipher.update(data.subarray(NONCE_BYTES, data.length - TAG_BYTES)),
        decipher.final(),
      ]);
    } catch {
      throw new TamperedPayloadError(keyId);
    }
    return temporal.api.common.v1.Payload.decode(plaintext);
  }

  /** What logs and `console.log` show: the key ids, never a key. */
  [inspect.custom](): string {
    return `EncryptionCodec { currentKeyId: '${this.currentKeyId}', keyIds: [${this.keyIds.map((id) => `'${id}'`).join(', ')}] }`;
  }

  toJSON(): { currentKeyId: string; keyIds: string[] } {
    return { currentKeyId: this.currentKeyId, keyIds: this.keyIds };
  }
}

function utf8(value: string): Uint8Array {
  return Buffer.from(value, 'utf8');
}

function text(bytes: Uint8Array | null | undefined): string | undefined {
  return bytes ? Buffer.from(bytes).toString('utf8') : undefined;
}
