import { generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import { defaultPayloadConverter } from '@temporalio/common';
import { payloadToJSON } from '@temporalio/common/lib/proto-utils';
import type { FastifyInstance } from 'fastify';
import { EncryptionCodec } from '../../client/codec';
import {
  CodecServerConfigError,
  CodecServerConfigSchema,
  parseCodecServerConfig,
} from '../../workers/codec-server/config';
import { buildCodecServer } from '../../workers/codec-server/server';

const UI = 'http://127.0.0.1:8233';
const TOKEN = 'codec-token-0123456789abcdef0123456789';
const codec = new EncryptionCodec({ keys: new Map([['k1', randomBytes(32)]]), currentKeyId: 'k1' });
const baseConfig = CodecServerConfigSchema.parse({
  SETTLE_CODEC_SERVER_TOKEN: TOKEN,
  SETTLE_CODEC_SERVER_ORIGINS: UI,
  SETTLE_CODEC_SERVER_LOG_LEVEL: 'silent',
});

const spec = { actionId: 'xfer-secret-7f3a', steps: [{ id: 'lock-secret' }] };
async function encryptedBody() {
  const payloads = await codec.encode([defaultPayloadConverter.toPayload(spec)]);
  return { payloads: payloads.map((p) => payloadToJSON(p)) };
}

function post(app: FastifyInstance, url: string, body: unknown, headers: Record<string, string> = {}) {
  return app.inject({
    method: 'POST',
    url,
    payload: body as object,
    headers: { 'content-type': 'application/json', ...headers },
  });
}

describe('codec server', () => {
  let app: FastifyInstance;
  beforeAll(() => {
    app = buildCodecServer({ config: baseConfig, codec });
  });
  afterAll(() => app.close());

  it('decodes payloads for the Web UI: proto JSON in, plaintext proto JSON out, never cached', async () => {
    const response = await post(app, '/decode', await encryptedBody(), {
      authorization: `Bearer ${TOKEN}`,
      origin: UI,
      'x-namespace': 'default',
    });
    expect(response.statusCode).toBe(200);
    expect(response.headers['access-control-allow-origin']).toBe(UI);
    expect(response.headers['cache-control']).toBe('no-store');
    const [decoded] = response.json().payloads;
    expect(Buffer.from(decoded.metadata.encoding, 'base64').toString()).toBe('json/plain');
    expect(JSON.parse(Buffer.from(decoded.data, 'base64').toString())).toEqual(spec);
  });

  it('encodes, and serves both under a namespace segment as the CLI templates it', async () => {
    const plain = { payloads: [payloadToJSON(defaultPayloadConverter.toPayload(spec))] };
    const encoded = await post(app, '/default/encode', plain, { authorization: `Bearer ${TOKEN}` });
    expect(encoded.statusCode).toBe(200);
    const [payload] = encoded.json().payloads;
    expect(Buffer.from(payload.metadata.encoding, 'base64').toString()).toBe('binary/encrypted');
    const decoded = await post(app, '/default/decode', encoded.json(), { authorization: `Bearer ${TOKEN}` });
    expect(JSON.parse(Buffer.from(decoded.json().payloads[0].data, 'base64').toString())).toEqual(spec);
  });

  it('answers the Web UI preflight from its origin, with the headers the UI sends', async () => {
    const response = await app.inject({
      method: 'OPTIONS',
      url: '/decode',
      headers: { origin: UI, 'access-control-request-method': 'POST' },
    });
    expect(response.statusCode).toBe(204);
    expect(response.headers['access-control-allow-origin']).toBe(UI);
    expect(response.headers['access-control-allow-headers']).toBe(
      'authorization, authorization-extras, content-type, x-namespace',
    );
    expect(response.headers['access-control-allow-credentials']).toBeUndefined();
  });

  it('refuses any other origin, preflight or not, even with the right token', async () => {
    const preflight = await app.inject({ method: 'OPTIONS', url: '/decode', headers: { origin: 'http://evil.test' } });
    expect(preflight.statusCode).toBe(403);
    expect(preflight.headers['access-control-allow-origin']).toBeUndefined();
    const call = await post(app, '/decode', await encryptedBody(), {
      authorization: `Bearer ${TOKEN}`,
      origin: 'http://127.0.0.1:8234',
    });
    expect(call.statusCode).toBe(403);
    expect(call.body).not.toContain('xfer-secret');
  });

  it('refuses a call without a token, or with a wrong one', async () => {
    const attempts: Record<string, string>[] = [
      {},
      { authorization: TOKEN },
      { authorization: `Bearer ${TOKEN}x` },
      { authorization: 'Basic eDp5' },
    ];
    for (const headers of attempts) {
      const response = await post(app, '/decode', await encryptedBody(), { origin: UI, ...headers });
      expect(response.statusCode).toBe(401);
      expect(response.headers['www-authenticate']).toBe('Bearer');
      expect(response.body).not.toContain('xfer-secret');
    }
  });

  it('reports a payload it cannot decrypt as a bad request naming why', async () => {
    const other = new EncryptionCodec({ keys: new Map([['k0', randomBytes(32)]]), currentKeyId: 'k0' });
    const payloads = await other.encode([defaultPayloadConverter.toPayload(spec)]);
    const response = await post(
      app,
      '/decode',
      { payloads: payloads.map((p) => payloadToJSON(p)) },
      { authorization: `Bearer ${TOKEN}` },
    );
    expect(response.statusCode).toBe(400);
    expect(response.json().error).toBe(
      'payload encrypted with key "k0", which is not configured (SETTLE_CODEC_KEYS holds "k1")',
    );
  });

  it('refuses a body that is not Payloads, without echoing it', async () => {
    const auth = { authorization: `Bearer ${TOKEN}` };
    const notJson = await app.inject({
      method: 'POST',
      url: '/decode',
      payload: '{"payloads": [secret',
      headers: { 'content-type': 'application/json', ...auth },
    });
    expect(notJson.statusCode).toBe(400);
    expect(notJson.body).not.toContain('secret');
    const wrongShape = await post(app, '/decode', { payloads: [{ data: 'not base64!' }] }, auth);
    expect(wrongShape.statusCode).toBe(400);
    expect(wrongShape.json().error).toBe('invalid payloads:\npayloads[0].data: must be base64');
  });
});

describe("codec server with the Web UI users' access tokens", () => {
  const ISSUER = 'https://login.example.test/';
  const AUDIENCE = 'temporal-ui';
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwks = {
    keys: [
      { ...rsa.publicKey.export({ format: 'jwk' }), kid: 'rsa-1', alg: 'RS256', use: 'sig' },
      { ...ec.publicKey.export({ format: 'jwk' }), kid: 'ec-1', alg: 'ES256', use: 'sig' },
    ],
  };
  const now = Date.UTC(2026, 10, 26, 10, 0, 0);
  let reads = 0;
  let app: FastifyInstance;
  beforeAll(() => {
    const config = CodecServerConfigSchema.parse({
      SETTLE_CODEC_SERVER_JWKS_URL: 'https://login.example.test/.well-known/jwks.json',
      SETTLE_CODEC_SERVER_JWT_ISSUER: ISSUER,
      SETTLE_CODEC_SERVER_JWT_AUDIENCE: AUDIENCE,
      SETTLE_CODEC_SERVER_LOG_LEVEL: 'silent',
    });
    const fetchJwks = async () => {
      reads += 1;
      return jwks;
    };
    app = buildCodecServer({ config, codec, fetchJwks, now: () => now });
  });
  afterAll(() => app.close());

  const b64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
  function jwt(header: Record<string, unknown>, claims: Record<string, unknown>, key?: KeyObject): string {
    const signed = `${b64url(header)}.${b64url(claims)}`;
    const alg = header.alg;
    const signature = !key
      ? Buffer.alloc(0)
      : alg === 'ES256'
        ? sign('sha256', Buffer.from(signed), { key, dsaEncoding: 'ieee-p1363' })
        : sign('sha256', Buffer.from(signed), key);
    return `${signed}.${signature.toString('base64url')}`;
  }
  const claims = { iss: ISSUER, aud: [AUDIENCE, 'other'], sub: 'alice', exp: now / 1000 + 300 };
  const decode = async (token: string) =>
    post(app, '/decode', await encryptedBody(), { authorization: `Bearer ${token}`, origin: UI });

  it('accepts a token the identity provider signed (RS256 or ES256) for this audience', async () => {
    expect((await decode(jwt({ alg: 'RS256', kid: 'rsa-1' }, claims, rsa.privateKey))).statusCode).toBe(200);
    expect((await decode(jwt({ alg: 'ES256', kid: 'ec-1' }, claims, ec.privateKey))).statusCode).toBe(200);
    expect(reads).toBe(1);
  });

  it('refuses an expired token, another issuer or audience, an unsigned or HMAC token, a foreign key', async () => {
    const foreign = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const refused: [string, string][] = [
      [
        jwt({ alg: 'RS256', kid: 'rsa-1' }, { ...claims, exp: now / 1000 - 120 }, rsa.privateKey),
        'the token has expired',
      ],
      [jwt({ alg: 'RS256', kid: 'rsa-1' }, { ...claims, iss: 'https://evil.test/' }, rsa.privateKey), 'another issuer'],
      [jwt({ alg: 'RS256', kid: 'rsa-1' }, { ...claims, aud: 'other' }, rsa.privateKey), 'another audience'],
      [jwt({ alg: 'RS256', kid: 'rsa-1' }, { ...claims, exp: undefined }, rsa.privateKey), 'the token has no expiry'],
      [jwt({ alg: 'none', kid: 'rsa-1' }, claims), 'algorithm none is not accepted'],
      [jwt({ alg: 'HS256', kid: 'rsa-1' }, claims), 'algorithm HS256 is not accepted'],
      [jwt({ alg: 'RS256', kid: 'rsa-1' }, claims, foreign.privateKey), 'bad signature'],
      [jwt({ alg: 'ES256', kid: 'rsa-1' }, claims, ec.privateKey), 'no signing key "rsa-1"'],
      ['not-a-jwt', 'not a JWT'],
    ];
    for (const [token, reason] of refused) {
      const response = await decode(token);
      expect(response.statusCode).toBe(401);
      expect(response.json().error).toContain(reason);
    }
  });
});

describe('codec server configuration', () => {
  const keys = { SETTLE_CODEC_KEYS: JSON.stringify({ k1: randomBytes(32).toString('base64') }) };

  it('binds to loopback, for the local Web UI, by default', () => {
    const config = parseCodecServerConfig({ ...keys, SETTLE_CODEC_SERVER_TOKEN: TOKEN });
    expect(config).toMatchObject({
      SETTLE_CODEC_SERVER_HOST: '127.0.0.1',
      SETTLE_CODEC_SERVER_PORT: 8888,
      SETTLE_CODEC_SERVER_ORIGINS: ['http://127.0.0.1:8233', 'http://localhost:8233'],
    });
    expect(config.codecKeys.currentKeyId).toBe('k1');
  });

  it('never runs open, never without keys, never for every origin', () => {
    const cases: [Record<string, string>, string][] = [
      [keys, 'a codec server must never be open'],
      [{ SETTLE_CODEC_SERVER_TOKEN: TOKEN }, 'SETTLE_CODEC_KEYS: the codec server needs the codec keys'],
      [{ ...keys, SETTLE_CODEC_SERVER_TOKEN: 'short' }, 'each token must be at least 32 characters'],
      [{ ...keys, SETTLE_CODEC_SERVER_TOKEN: TOKEN, SETTLE_CODEC_SERVER_ORIGINS: '*' }, 'must be an origin'],
      [
        { ...keys, SETTLE_CODEC_SERVER_TOKEN: TOKEN, SETTLE_CODEC_SERVER_ORIGINS: 'http://ui.test/' },
        'must be an origin',
      ],
      [{ ...keys, SETTLE_CODEC_SERVER_JWKS_URL: 'http://idp.test/jwks' }, 'must be https'],
      [
        { ...keys, SETTLE_CODEC_SERVER_JWKS_URL: 'https://idp.test/jwks' },
        'SETTLE_CODEC_SERVER_JWT_ISSUER: is required',
      ],
    ];
    for (const [env, message] of cases) {
      expect(() => parseCodecServerConfig(env)).toThrow(CodecServerConfigError);
      expect(() => parseCodecServerConfig(env)).toThrow(message);
    }
  });
});
