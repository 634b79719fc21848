import {
  ReplayGuard,
  signBody,
  SignatureError,
  verifyNotification,
  verifySignature,
} from '../../networks/webhook/signature';

const SECRET = 'a-secret-of-sufficient-length';
const NOW = 1_800_000_000;
const body = JSON.stringify({ step: 'lock', kind: 'included', source: 'watcher:chainA' });

describe('request signatures', () => {
  it('accepts a body signed with the secret within the window', () => {
    const header = signBody(SECRET, body, NOW - 10);
    expect(header).toMatch(/^t=1799999990,v1=[0-9a-f]{64}$/);
    expect(verifySignature({ secret: SECRET, header, body, now: NOW })).toEqual({
      ok: true,
      timestamp: NOW - 10,
      signature: header.split('v1=')[1],
    });
  });

  it('rejects a missing, malformed, stale or mismatching signature, and names why', () => {
    const check = (header: string | undefined, signed = body) =>
      verifySignature({ secret: SECRET, header, body: signed, now: NOW });
    expect(check(undefined)).toEqual({ ok: false, reason: 'missing' });
    expect(check('sha256=abc')).toEqual({ ok: false, reason: 'malformed' });
    expect(check(`t=${NOW},v1=zz`)).toEqual({ ok: false, reason: 'malformed' });
    expect(check(signBody(SECRET, body, NOW - 301))).toEqual({ ok: false, reason: 'stale' });
    expect(check(signBody(SECRET, body, NOW + 301))).toEqual({ ok: false, reason: 'stale' });
    expect(check(signBody('another-secret-entirely', body, NOW))).toEqual({ ok: false, reason: 'mismatch' });
    expect(check(signBody(SECRET, body, NOW), body.replace('lock', 'mint'))).toEqual({ ok: false, reason: 'mismatch' });
  });

  it('binds the timestamp: moving it invalidates the signature', () => {
    const [, v1] = signBody(SECRET, body, NOW).split(',');
    expect(verifySignature({ secret: SECRET, header: `t=${NOW - 1},${v1}`, body, now: NOW }).ok).toBe(false);
  });

  it('accepts any of several secrets while they rotate', () => {
    const header = signBody('the-new-secret-0123456', body, NOW);
    expect(verifySignature({ secret: [SECRET, 'the-new-secret-0123456'], header, body, now: NOW }).ok).toBe(true);
  });

  it('accepts a signature once: a replay within the window is rejected', () => {
    const guard = new ReplayGuard();
    const header = signBody(SECRET, body, NOW);
    expect(verifySignature({ secret: SECRET, header, body, now: NOW, replayGuard: guard }).ok).toBe(true);
    expect(verifySignature({ secret: SECRET, header, body, now: NOW + 5, replayGuard: guard })).toEqual({
      ok: false,
      reason: 'replayed',
    });
  });

  it('forgets signatures once their window has closed (they are stale by then anyway)', () => {
    const guard = new ReplayGuard();
    expect(guard.claim('abc', NOW + 300, NOW)).toBe(true);
    expect(guard.claim('abc', NOW + 300, NOW + 299)).toBe(false);
    expect(guard.claim('abc', NOW + 700, NOW + 301)).toBe(true);
  });
});

describe('verifyNotification (receiver side of webhooks)', () => {
  it('returns the idempotency key and the parsed notification', () => {
    const notification = { id: 'a:1', actionId: 'a', sequence: 1, event: { kind: 'phase' } };
    const raw = JSON.stringify(notification);
    const headers = { 'settle-signature': signBody(SECRET, raw), 'idempotency-key': 'a:1' };
    expect(verifyNotification({ secret: SECRET, headers, body: raw })).toEqual({ idempotencyKey: 'a:1', notification });
  });

  it('throws a SignatureError naming the reason', () => {
    const error = (() => {
      try {
        verifyNotification({ secret: SECRET, headers: {}, body: '{}' });
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(SignatureError);
    expect((error as SignatureError).reason).toBe('missing');
  });
});
