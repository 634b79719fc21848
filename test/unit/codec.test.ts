import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { inspect } from 'node:util';
import { randomBytes } from 'node:crypto';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import {
  EncryptionCodec,
  PayloadDecryptionError,
  TamperedPayloadError,
  UnknownKeyError,
  loadCodecKeys,
  resolveDataConverter,
} from '../../client/codec';
import { ClientConfigError, resolveClientConfig } from '../../client/config';

const keyA = randomBytes(32);
const keyB = randomBytes(32);
const b64 = (key: Buffer) => key.toString('base64');

function codec(currentKeyId: string, keys: Record<string, Buffer> = { a: keyA, b: keyB }): EncryptionCodec {
  return new EncryptionCodec({ keys: new Map(Object.entries(keys)), currentKeyId });
}

const spec = { actionId: 'xfer-secret-7f3a', steps: [{ id: 'lock-secret', network: 'attester' }] };
const payload = (value: unknown = spec): Payload => defaultPayloadConverter.toPayload(value);
const text = (bytes: Uint8Array | null | undefined) => Buffer.from(bytes ?? []).toString('utf8');
const valueOf = (decoded: Payload) => defaultPayloadConverter.fromPayload(decoded);

describe('encryption codec', () => {
  it('round-trips a payload, and what it stores reads as neither the value nor its encoding', async () => {
    const [encrypted] = await codec('a').encode([payload()]);
    expect(text(encrypted.metadata!.encoding)).toBe('binary/encrypted');
    expect(text(encrypted.metadata!['encryption-key-id'])).toBe('a');
    expect(Object.keys(encrypted.metadata!).sort()).toEqual(['encoding', 'encryption-cipher', 'encryption-key-id']);
    const stored = Buffer.from(encrypted.data!).toString('latin1');
    for (const plain of ['xfer-secret-7f3a', 'lock-secret', 'json/plain']) expect(stored).not.toContain(plain);
    const [decoded] = await codec('a').decode([encrypted]);
    expect(valueOf(decoded)).toEqual(spec);
    expect(text(decoded.metadata!.encoding)).toBe('json/plain');
  });

  it('encrypts the same value differently each time (a fresh nonce per payload)', async () => {
    const [one, two] = await codec('a').encode([payload(), payload()]);
    expect(Buffer.from(one.data!).equals(Buffer.from(two.data!))).toBe(false);
  });

  it('after a rotation, encrypts with the new key and still decrypts what the old key encrypted', async () => {
    const [old] = await codec('a').encode([payload()]);
    const rotated = codec('b');
    const [fresh] = await rotated.encode([payload()]);
    expect(text(fresh.metadata!['encryption-key-id'])).toBe('b');
    const decoded = await rotated.decode([old, fresh]);
    expect(decoded.map(valueOf)).toEqual([spec, spec]);
  });

  it('refuses a payload whose key was removed, naming the key id and the ids it holds', async () => {
    const [old] = await codec('a').encode([payload()]);
    const withoutA = codec('b', { b: keyB, c: randomBytes(32) });
    await expect(withoutA.decode([old])).rejects.toThrow(UnknownKeyError);
    await expect(withoutA.decode([old])).rejects.toThrow(
      'payload encrypted with key "a", which is not configured (SETTLE_CODEC_KEYS holds "b", "c")',
    );
  });

  it('refuses a payload altered at rest: one flipped bit, a cut tag, or a key id pointing at another key', async () => {
    const [encrypted] = await codec('a').encode([payload()]);
    const flipped = Buffer.from(encrypted.data!);
    flipped[20] ^= 1;
    await expect(codec('a').decode([{ ...encrypted, data: flipped }])).rejects.toThrow(TamperedPayloadError);
    const cut = Buffer.from(encrypted.data!).subarray(0, encrypted.data!.length - 1);
    await expect(codec('a').decode([{ ...encrypted, data: cut }])).rejects.toThrow(TamperedPayloadError);
    const relabelled = { ...encrypted, metadata: { ...encrypted.metadata, 'encryption-key-id': Buffer.from('b') } };
    await expect(codec('a').decode([relabelled])).rejects.toThrow(
      'payload encrypted with key "b" fails authentication: it was altered, or that key id names another key',
    );
  });

  it('refuses an encrypted payload with no key id or another cipher', async () => {
    const [encrypted] = await codec('a').encode([payload()]);
    const { 'encryption-key-id': _dropped, ...noKeyId } = encrypted.metadata!;
    await expect(codec('a').decode([{ ...encrypted, metadata: noKeyId }])).rejects.toThrow(PayloadDecryptionError);
    const otherCipher = { ...encrypted.metadata, 'encryption-cipher': Buffer.from('AES-128-CBC') };
    await expect(codec('a').decode([{ ...encrypted, metadata: otherCipher }])).rejects.toThrow(
      'payload encrypted with AES-128-CBC; this codec reads AES-256-GCM',
    );
  });

  it('passes through payloads written before the codec was turned on', async () => {
    const plain = payload();
    expect(await codec('a').decode([plain])).toEqual([plain]);
  });

  it('never shows a key: inspect and JSON name the key ids only', () => {
    const shown = `${inspect(codec('a'))} ${JSON.stringify(codec('a'))}`;
    expect(shown).toContain("currentKeyId: 'a'");
    for (const key of [keyA, keyB]) {
      expect(shown).not.toContain(key.toString('base64'));
      expect(shown).not.toContain(key.toString('hex'));
    }
  });

  it('refuses a key of the wrong size or a current key it does not hold', () => {
    expect(() => codec('a', { a: randomBytes(16) })).toThrow('key "a" must be 32 bytes');
    expect(() => codec('z')).toThrow('the current key "z" is not among the keys');
  });
});

describe('codec configuration (SETTLE_CODEC_KEYS, SETTLE_CODEC_KEY_ID)', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'settle-codec-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  function keyFile(content: string, mode: number): string {
    const file = path.join(dir, 'codec-keys.json');
    writeFileSync(file, content);
    chmodSync(file, mode);
    return file;
  }

  it('is off when SETTLE_CODEC_KEYS is unset: no data converter, as before', () => {
    expect(resolveDataConverter({}, ClientConfigError)).toBeUndefined();
    expect(resolveClientConfig({ HOME: '/nonexistent' }).dataConverter).toBeUndefined();
  });

  it('reads the keys from a file readable by its owner only, with the current key named', () => {
    const file = keyFile(JSON.stringify({ a: b64(keyA), b: b64(keyB) }), 0o600);
    const keys = loadCodecKeys({ SETTLE_CODEC_KEYS: file, SETTLE_CODEC_KEY_ID: 'b' }, ClientConfigError)!;
    expect(keys.currentKeyId).toBe('b');
    expect([...keys.keys.keys()]).toEqual(['a', 'b']);
    expect(Buffer.from(keys.keys.get('a')!).equals(keyA)).toBe(true);
  });

  it('refuses a key file that its group or others may read', () => {
    for (const mode of [0o644, 0o640, 0o604]) {
      const file = keyFile(JSON.stringify({ a: b64(keyA) }), mode);
      expect(() => loadCodecKeys({ SETTLE_CODEC_KEYS: file }, ClientConfigError)).toThrow(
        `${file}: the codec key file may be read or written by its group or others (mode ${mode.toString(8)}): chmod 600 it`,
      );
    }
  });

  it('takes the keys inline as JSON, and the single key as the current one', () => {
    const keys = loadCodecKeys({ SETTLE_CODEC_KEYS: JSON.stringify({ only: b64(keyA) }) }, ClientConfigError)!;
    expect(keys.currentKeyId).toBe('only');
  });

  it('gives the client, the worker and every process the data converter through the connection config', () => {
    const config = resolveClientConfig({
      HOME: '/nonexistent',
      TEMPORAL_CONFIG_FILE: '/nonexistent/temporal.toml',
      SETTLE_CODEC_KEYS: JSON.stringify({ a: b64(keyA), b: b64(keyB) }),
      SETTLE_CODEC_KEY_ID: 'a',
    });
    const [codecOf] = config.dataConverter!.payloadCodecs!;
    expect(codecOf).toBeInstanceOf(EncryptionCodec);
    expect((codecOf as EncryptionCodec).currentKeyId).toBe('a');
    expect(config.dataConverter!.failureConverterPath).toMatch(/failure-converter\.ts$/);
  });

  it('explains each mistake without ever printing key material', () => {
    const secret = b64(keyA);
    const cases: [Record<string, string>, string][] = [
      [
        { SETTLE_CODEC_KEYS: JSON.stringify({ a: secret, b: b64(keyB) }) },
        'SETTLE_CODEC_KEY_ID: must name the current key among "a", "b"',
      ],
      [
        { SETTLE_CODEC_KEYS: JSON.stringify({ a: secret }), SETTLE_CODEC_KEY_ID: 'z' },
        'SETTLE_CODEC_KEY_ID: "z" is not among SETTLE_CODEC_KEYS ("a")',
      ],
      [{ SETTLE_CODEC_KEY_ID: 'a' }, 'SETTLE_CODEC_KEY_ID: is set but SETTLE_CODEC_KEYS is not'],
      [
        { SETTLE_CODEC_KEYS: `{"a": "${secret}",` },
        'SETTLE_CODEC_KEYS: invalid codec keys:\n(root): must be a JSON object',
      ],
      [{ SETTLE_CODEC_KEYS: JSON.stringify({ a: secret.slice(0, 20) }) }, 'a: must be 32 bytes in base64'],
      [
        { SETTLE_CODEC_KEYS: JSON.stringify({ 'a b': secret }) },
        'must be 1 to 64 letters, digits, dots, dashes or underscores',
      ],
      [{ SETTLE_CODEC_KEYS: '{}' }, 'must hold at least one key'],
      [{ SETTLE_CODEC_KEYS: path.join(dir, 'missing.json') }, 'cannot read the codec key file (ENOENT)'],
    ];
    for (const [env, message] of cases) {
      let thrown: Error | undefined;
      try {
        loadCodecKeys(env, ClientConfigError);
      } catch (error) {
        thrown = error as Error;
      }
      expect(thrown).toBeInstanceOf(ClientConfigError);
      expect(thrown!.message).toContain(message);
      expect(thrown!.message).not.toContain(secret);
      expect(thrown!.message).not.toContain(secret.slice(0, 20));
    }
  });
});
