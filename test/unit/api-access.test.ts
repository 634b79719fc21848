/**
 * The HTTP API's access rules, through inject: credentials and their scopes, the names they put into the audit trail,
 * the Host check, the insecure demo mode, deadlines, bounded errors, and evidence signatures bound to one action.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ValidationError } from '../../contract/validation';
import {
  ReplayGuard,
  signBody,
  signEvidence,
  verifyEvidenceSignature,
  verifySignature,
} from '../../networks/webhook/signature';
import { buildApi, type ApiBackend } from '../../workers/api/app';
import { ApiConfigError, hostName, parseApiConfig } from '../../workers/api/config';
import { scopedName, type Credential } from '../../workers/api/credentials';
import { toHttp } from '../../workers/api/errors';

const OPS = 'ops-token-0123456789abcdef';
const FEED = 'feed-token-0123456789abcdef';
const TOKENS = JSON.stringify({
  ops: { token: OPS, scopes: ['read', 'operate'] },
  feed: { sha256: createHash('sha256').update(FEED).digest('hex'), scopes: ['evidence'] },
});
const NOW = 1_800_000_000;

/** A backend that records what reaches it and answers as if it went well. */
function recording() {
  const calls: { method: string; args: unknown[] }[] = [];
  const backend = new Proxy({} as ApiBackend, {
    get:
      (_target, method) =>
      async (...args: unknown[]) => {
        calls.push({ method: String(method), args });
        return method === 'start' ? { actionId: 'a-1', runId: 'r', created: true } : { actionId: 'a-1' };
      },
  });
  return { backend, calls };
}

function api(env: Record<string, string>, backend: ApiBackend = recording().backend) {
  return buildApi({ settle: backend, config: parseApiConfig({ SETTLE_API_LOG_LEVEL: 'silent', ...env }) });
}

describe('credentials', () => {
  it('reads named tokens inline or from a file, each with its scopes, a token given as its SHA-256 included', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'settle-tokens-'));
    try {
      const file = path.join(dir, 'tokens.json');
      writeFileSync(file, TOKENS);
      for (const value of [TOKENS, file]) {
        const { access } = parseApiConfig({ SETTLE_API_TOKENS: value });
        expect(access.tokens.match(OPS)).toMatchObject({ name: 'ops', scopes: new Set(['read', 'operate']) });
        expect(access.tokens.match(FEED)).toMatchObject({ name: 'feed', scopes: new Set(['evidence']) });
        expect(access.tokens.match(`${OPS}x`)).toBeUndefined();
      }
      expect(() => parseApiConfig({ SETTLE_API_TOKENS: path.join(dir, 'missing.json') })).toThrow(
        /SETTLE_API_TOKENS: cannot read the JSON file ".*missing\.json"/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses a bad table with the rule each entry breaks', () => {
    const bad = (tokens: unknown) => () => parseApiConfig({ SETTLE_API_TOKENS: JSON.stringify(tokens) });
    expect(bad({ 'a:b': { token: OPS, scopes: ['read'] } })).toThrow(
      'SETTLE_API_TOKENS.a:b: must be 1 to 64 letters, digits',
    );
    expect(bad({ a: { token: 'short', scopes: ['read'] } })).toThrow('a.token: must be at least 16 characters');
    expect(bad({ a: { token: OPS, scopes: [] } })).toThrow('a.scopes: must grant at least one scope');
    expect(bad({ a: { token: OPS, scopes: ['admin'] } })).toThrow(ApiConfigError);
    expect(bad({ a: { token: OPS, sha256: 'ab'.repeat(32), scopes: ['read'] } })).toThrow(
      'give either token or sha256',
    );
    expect(bad({ a: { token: OPS, scopes: ['read'] }, b: { token: OPS, scopes: ['start'] } })).toThrow(
      'SETTLE_API_TOKENS: a and b share one token',
    );
    expect(() =>
      parseApiConfig({
        SETTLE_API_TOKEN: OPS,
        SETTLE_API_TOKENS: JSON.stringify({ default: { token: FEED, scopes: ['read'] } }),
      }),
    ).toThrow('SETTLE_API_TOKEN: is the token "default", which SETTLE_API_TOKENS also names');
    expect(() => parseApiConfig({ SETTLE_EVIDENCE_KEYS: '{"attester": "short"}' })).toThrow(
      'each secret must be at least 16 characters',
    );
  });

  it('scopes a claimed name under the credential, so the part before ":" always names who acted', () => {
    const ops: Credential = { kind: 'token', name: 'ops', scopes: new Set(['operate']) };
    expect(scopedName(ops, undefined)).toBe('ops');
    expect(scopedName(ops, 'alice')).toBe('ops:alice');
    expect(scopedName(ops, 'ops')).toBe('ops');
    expect(scopedName(ops, 'ops:alice')).toBe('ops:alice');
    expect(scopedName(ops, 'opsec:alice')).toBe('ops:opsec:alice');
    expect(scopedName(ops, 'root')).toBe('ops:root');
  });

  it('puts the credential into updates and evidence, and leaves a claim that is not a name to validation', async () => {
    const { backend, calls } = recording();
    const app = api({ SETTLE_API_TOKENS: TOKENS }, backend);
    const as = (token: string) => ({ authorization: `Bearer ${token}` });
    await app.inject({ method: 'POST', url: '/v1/actions/a-1/compensate', headers: as(OPS), payload: { reason: 'r' } });
    await app.inject({
      method: 'POST',
      url: '/v1/actions/a-1/resolve',
      headers: as(OPS),
      payload: { step: 's', reason: 'r', operator: 'alice', evidence: { kind: 'finalized', source: 'x' } },
    });
    await app.inject({
      method: 'POST',
      url: '/v1/actions/a-1/cancel',
      headers: as(OPS),
      payload: { reason: 'r', operator: 7 },
    });
    // A bearer token with the evidence scope may post unsigned evidence; its name comes first in the source.
    const evidence = await app.inject({
      method: 'POST',
      url: '/v1/actions/a-1/evidence',
      headers: as(FEED),
      payload: { step: 's', kind: 'finalized', source: 'eu-1' },
    });
    expect(evidence.statusCode).toBe(202);
    expect(calls.map(({ method, args }) => [method, args[1]])).toEqual([
      ['compensate', { reason: 'r', operator: 'ops' }],
      ['resolveStep', { step: 's', reason: 'r', operator: 'ops:alice', evidence: { kind: 'finalized', source: 'x' } }],
      ['cancel', { reason: 'r', operator: 7 }],
      ['evidence', { step: 's', kind: 'finalized', source: 'feed:eu-1' }],
    ]);
    const denied = await app.inject({ method: 'GET', url: '/v1/actions/a-1', headers: as(FEED) });
    expect(denied.json()).toEqual({ error: 'forbidden', reason: 'the credential "feed" lacks the "read" scope' });
    await app.close();
  });
});

describe('the Host header', () => {
  it('answers for the bind address and the loopback names, any port, and nothing else', async () => {
    const app = api({ SETTLE_API_TOKENS: TOKENS });
    const probe = async (host?: string) =>
      (await app.inject({ method: 'GET', url: '/healthz', headers: host === undefined ? {} : { host } })).statusCode;
    expect(await probe('127.0.0.1:8080')).toBe(200);
    expect(await probe('LOCALHOST')).toBe(200);
    expect(await probe('[::1]:8080')).toBe(200);
    expect(await probe('localhost.:9')).toBe(200);
    expect(await probe('attacker.example')).toBe(421);
    expect(await probe('127.0.0.1.attacker.example:8080')).toBe(421);
    await app.close();
  });

  it('uses SETTLE_API_HOSTS instead when set, and only loopback names for a wildcard bind', () => {
    const listed = parseApiConfig({ SETTLE_API_TOKENS: TOKENS, SETTLE_API_HOSTS: 'settle.internal, [fd00::1]:443' });
    expect(listed.allowedHosts).toEqual(new Set(['settle.internal', 'fd00::1']));
    const wildcard = parseApiConfig({ SETTLE_API_TOKENS: TOKENS, SETTLE_API_HOST: '0.0.0.0' });
    expect(wildcard.allowedHosts).toEqual(new Set(['localhost', '127.0.0.1', '::1']));
    expect(hostName('Example.COM:80')).toBe('example.com');
    expect(hostName('::1')).toBe('::1');
  });
});

describe('the insecure demo mode', () => {
  it('is loud, loopback-only, alone, and names itself in the audit trail', async () => {
    const { backend, calls } = recording();
    const app = api({ SETTLE_API_INSECURE_NO_AUTH: '1' }, backend);
    const response = await app.inject({
      method: 'POST',
      url: '/v1/actions/a-1/cancel',
      payload: { reason: 'r', operator: 'bob' },
    });
    expect(response.statusCode).toBe(200);
    expect(response.headers['x-settle-warning']).toBe('insecure: no authentication (local demo only)');
    expect(calls[0].args[1]).toEqual({ reason: 'r', operator: 'insecure-no-auth:bob' });
    // The Host check still holds.
    expect(
      (await app.inject({ method: 'GET', url: '/healthz', headers: { host: 'attacker.example' } })).statusCode,
    ).toBe(421);
    await app.close();
    expect(() => parseApiConfig({ SETTLE_API_INSECURE_NO_AUTH: '1', SETTLE_API_HOST: '0.0.0.0' })).toThrow(
      'SETTLE_API_INSECURE_NO_AUTH: is for local demos: SETTLE_API_HOST must be loopback, not 0.0.0.0',
    );
    expect(() => parseApiConfig({ SETTLE_API_INSECURE_NO_AUTH: '1', SETTLE_API_TOKENS: TOKENS })).toThrow(
      'SETTLE_API_INSECURE_NO_AUTH: cannot be set together with tokens or evidence keys',
    );
  });
});

describe('bounds', () => {
  it('answers 504 when Temporal does not answer in time, saying the request may still take effect', async () => {
    const hanging = new Proxy({} as ApiBackend, { get: () => () => new Promise(() => undefined) });
    const app = api({ SETTLE_API_TOKENS: TOKENS, SETTLE_API_REQUEST_TIMEOUT: '100ms' }, hanging);
    const response = await app.inject({
      method: 'POST',
      url: '/v1/actions/a-1/cancel',
      headers: { authorization: `Bearer ${OPS}` },
      payload: { reason: 'r' },
    });
    expect(response.statusCode).toBe(504);
    expect(response.json().reason).toMatch(/may still take effect: read the action's status$/);
    await app.close();
  });

  it('answers 408 to a request whose body does not arrive in time', async () => {
    const app = api({ SETTLE_API_TOKENS: TOKENS, SETTLE_API_REQUEST_TIMEOUT: '500ms' });
    const address = new URL(await app.listen({ host: '127.0.0.1', port: 0 }));
    try {
      const started = Date.now();
      const answer = await new Promise<string>((resolve, reject) => {
        const socket = connect(Number(address.port), '127.0.0.1', () =>
          // Headers and a tenth of the body it announces, then nothing.
          socket.write(
            `POST /v1/actions/a-1/cancel HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${OPS}\r\n` +
              'Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"actionId"',
          ),
        );
        let text = '';
        socket.on('data', (chunk) => (text += chunk.toString()));
        socket.on('close', () => resolve(text));
        socket.on('error', reject);
      });
      expect(answer).toMatch(/^HTTP\/1\.1 408/);
      expect(Date.now() - started).toBeLessThan(5_000);
    } finally {
      await app.close();
    }
  });

  it('keeps at most 20 issues and cuts every echoed text', () => {
    const issues = Array.from({ length: 5_000 }, (_, i) => ({
      path: `steps[${i}].${'x'.repeat(2_000)}`,
      message: 'y'.repeat(5_000),
    }));
    const { statusCode, body } = toHttp(new ValidationError('ActionSpec', issues));
    expect(statusCode).toBe(400);
    expect(body.issues).toHaveLength(20);
    expect(body.omittedIssues).toBe(4_980);
    expect(JSON.stringify(body).length).toBeLessThan(16_000);
    expect((body.issues as { message: string }[])[0].message).toMatch(/^y{300}… \(5000 characters\)$/);
  });
});

describe('evidence signatures', () => {
  const keys = new Map([
    ['attester', ['attester-secret-old-0123', 'attester-secret-new-0123']],
    ['watcher', ['watcher-secret-0123456789']],
  ]);
  const body = JSON.stringify({ step: 'attest', kind: 'finalized' });
  const verify = (header: string, actionId = 'a-1', replayGuard?: ReplayGuard) =>
    verifyEvidenceSignature({ secretsOf: (kid) => keys.get(kid), header, actionId, body, now: NOW, replayGuard });

  it('names the key and binds the MAC to the action and the body', () => {
    const header = signEvidence({
      keyId: 'attester',
      secret: 'attester-secret-new-0123',
      actionId: 'a-1',
      body,
      timestamp: NOW,
    });
    expect(header).toMatch(/^t=1800000000,kid=attester,v1=[0-9a-f]{64}$/);
    expect(verify(header)).toEqual({ ok: true, keyId: 'attester', timestamp: NOW, signature: header.split('v1=')[1] });
    expect(verify(header, 'a-2')).toEqual({ ok: false, reason: 'mismatch', keyId: 'attester' });
    const other = signEvidence({
      keyId: 'watcher',
      secret: 'attester-secret-new-0123',
      actionId: 'a-1',
      body,
      timestamp: NOW,
    });
    expect(verify(other)).toEqual({ ok: false, reason: 'mismatch', keyId: 'watcher' });
    const unknown = signEvidence({ keyId: 'mallory', secret: 'x'.repeat(20), actionId: 'a-1', body, timestamp: NOW });
    expect(verify(unknown)).toEqual({ ok: false, reason: 'unknown key', keyId: 'mallory' });
    const stale = signEvidence({
      keyId: 'watcher',
      secret: 'watcher-secret-0123456789',
      actionId: 'a-1',
      body,
      timestamp: NOW - 301,
    });
    expect(verify(stale)).toEqual({ ok: false, reason: 'stale', keyId: 'watcher' });
    expect(verify(signBody('attester-secret-new-0123', body, NOW))).toEqual({ ok: false, reason: 'malformed' });
    expect(verify(`${header},kid=watcher`)).toEqual({ ok: false, reason: 'malformed' });
    expect(() => signEvidence({ keyId: 'a:b', secret: 's', actionId: 'a-1', body })).toThrow('invalid key id');
  });

  it('accepts either secret of a key while rotating, once', () => {
    const guard = new ReplayGuard();
    const old = signEvidence({
      keyId: 'attester',
      secret: 'attester-secret-old-0123',
      actionId: 'a-1',
      body,
      timestamp: NOW,
    });
    expect(verify(old, 'a-1', guard).ok).toBe(true);
    expect(verify(old, 'a-1', guard)).toEqual({ ok: false, reason: 'replayed', keyId: 'attester' });
  });

  it('leaves the webhook scheme as it was', () => {
    const header = signBody('webhook-secret-0123456789', body, NOW);
    expect(verifySignature({ secret: 'webhook-secret-0123456789', header, body, now: NOW }).ok).toBe(true);
    const evidenceHeader = signEvidence({
      keyId: 'k',
      secret: 'webhook-secret-0123456789',
      actionId: 'a',
      body,
      timestamp: NOW,
    });
    expect(verifySignature({ secret: 'webhook-secret-0123456789', header: evidenceHeader, body, now: NOW })).toEqual({
      ok: false,
      reason: 'mismatch',
    });
  });
});
