import {
  ReplayGuard,
  signBody,
  signNotification,
  SignatureError,
  verifyNotification,
  verifySignature,
} from '../../networks/webhook/signature';

const SECRET = 'notification-secret-0123';
const NOW = 1_800_000_000;
const KEY = 'xfer-7f3a:3';
const notification = { id: KEY, actionId: 'xfer-7f3a', sequence: 3, event: { kind: 'phase', to: 'completed' } };
const body = JSON.stringify(notification);

function reasonOf(run: () => unknown): string | undefined {
  try {
    run();
    return undefined;
  } catch (error) {
    if (error instanceof SignatureError) return error.reason;
    throw error;
  }
}

describe('notification signatures (v2: the idempotency key is signed)', () => {
  const headers = (signature: string, key = KEY) => ({ 'settle-signature': signature, 'idempotency-key': key });

  it('signs t, v1 and v2, and the receiver helper verifies the key with the body', () => {
    const signature = signNotification(SECRET, KEY, body, NOW);
    expect(signature).toMatch(/^t=1800000000,v1=[0-9a-f]{64},v2=[0-9a-f]{64}$/);
    expect(verifyNotification({ secret: SECRET, headers: headers(signature), body, now: NOW })).toEqual({
      idempotencyKey: KEY,
      notification,
    });
  });

  it('refuses a tampered idempotency key, with v2 or with v2 stripped (a v1-only header must match the body id)', () => {
    const signature = signNotification(SECRET, KEY, body, NOW);
    const verify = (header: string, key: string) =>
      reasonOf(() => verifyNotification({ secret: SECRET, headers: headers(header, key), body, now: NOW }));
    expect(verify(signature, 'xfer-7f3a:4')).toBe('mismatch');
    const v1Only = signature.replace(/,v2=[0-9a-f]+$/, '');
    expect(verify(v1Only, 'xfer-7f3a:4')).toBe('mismatch');
    // v1 alone, as an older Settle sends it, is accepted while the key is the one in the signed body.
    expect(verify(v1Only, KEY)).toBeUndefined();
  });

  it('refuses a tampered body, another secret, a stale time, a malformed v2 and a missing key', () => {
    const signature = signNotification(SECRET, KEY, body, NOW);
    const verify = (header: string, signed = body, h = headers(header)) =>
      reasonOf(() => verifyNotification({ secret: SECRET, headers: h, body: signed, now: NOW }));
    expect(verify(signature, body.replace('completed', 'failed'))).toBe('mismatch');
    expect(verify(signNotification('another-secret-entirely', KEY, body, NOW))).toBe('mismatch');
    expect(verify(signNotification(SECRET, KEY, body, NOW - 301))).toBe('stale');
    expect(verify(signature.replace(/v2=[0-9a-f]+/, 'v2=zz'))).toBe('malformed');
    expect(verify(signature, body, { 'settle-signature': signature } as never)).toBe('missing');
    // The v2 MAC binds the timestamp too.
    expect(verify(signature.replace(`t=${NOW}`, `t=${NOW - 1}`))).toBe('mismatch');
  });

  it('accepts any of several secrets while they rotate, and a replay guard refuses the same signature twice', () => {
    const signature = signNotification('the-new-secret-0123456', KEY, body, NOW);
    const secret = [SECRET, 'the-new-secret-0123456'];
    const replayGuard = new ReplayGuard();
    const verify = () =>
      reasonOf(() => verifyNotification({ secret, headers: headers(signature), body, now: NOW, replayGuard }));
    expect(verify()).toBeUndefined();
    expect(verify()).toBe('replayed');
  });

  it('keeps receivers on the v1 helpers working: the v1 part of the new header verifies as before', () => {
    const signature = signNotification(SECRET, KEY, body, NOW);
    expect(verifySignature({ secret: SECRET, header: signature, body, now: NOW }).ok).toBe(true);
    expect(signature.startsWith(signBody(SECRET, body, NOW))).toBe(true);
  });
});
