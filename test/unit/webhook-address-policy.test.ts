import { MockActivityEnvironment } from '@temporalio/testing';
import { ApplicationFailure } from '@temporalio/common';
import {
  AllowedHosts,
  checkHost,
  classifyAddress,
  WebhookAddressRefusedError,
  type ResolvedAddress,
  type Resolver,
} from '../../networks/webhook/address-policy';
import { createWebhookActivities } from '../../networks/webhook/sender';
import type { PostRequest, Transport } from '../../networks/webhook/transport';
import type { TransitionEvent } from '../../client';

/** A resolver that answers from a table and records what it was asked: nothing here touches DNS or a socket. */
function stubResolver(table: Record<string, string[]>): Resolver & { asked: string[] } {
  const asked: string[] = [];
  const resolve = async (hostname: string): Promise<ResolvedAddress[]> => {
    asked.push(hostname);
    const addresses = table[hostname];
    if (!addresses) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' });
    return addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
  };
  return Object.assign(resolve, { asked });
}

/** A transport that records the request instead of connecting. */
function recordingTransport(): Transport & { requests: PostRequest[] } {
  const requests: PostRequest[] = [];
  const post: Transport = async (request) => {
    requests.push(request);
    return { status: 204, bodyBytes: 0, truncated: false, socketBytes: 0 };
  };
  return Object.assign(post, { requests });
}

const event: TransitionEvent = {
  actionId: 'a-1',
  sequence: 1,
  kind: 'phase',
  from: 'running',
  to: 'completed',
  at: '2026-11-26T10:00:00.000Z',
  source: 'test',
};

describe('classifyAddress', () => {
  it.each([
    ['127.0.0.1', 'loopback'],
    ['127.8.9.10', 'loopback'],
    ['::1', 'loopback'],
    ['169.254.169.254', 'cloud metadata'],
    ['169.254.1.1', 'linkLocal'],
    ['fe80::1', 'linkLocal'],
    ['fe80::1%eth0', 'linkLocal'],
    ['10.0.0.1', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['192.168.1.1', 'private'],
    ['fc00::1', 'uniqueLocal'],
    ['fd12:3456::1', 'uniqueLocal'],
    ['fd00:ec2::254', 'cloud metadata'],
    ['100.64.0.1', 'carrierGradeNat'],
    ['100.100.100.200', 'cloud metadata'],
    ['168.63.129.16', 'cloud metadata'],
    ['0.0.0.0', 'unspecified'],
    ['::', 'unspecified'],
    ['224.0.0.1', 'multicast'],
    ['ff02::1', 'multicast'],
    ['255.255.255.255', 'broadcast'],
    ['192.0.2.1', 'reserved'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:169.254.169.254', 'cloud metadata'],
    ['64:ff9b::a9fe:a9fe', 'cloud metadata'],
    ['64:ff9b::a00:1', 'private'],
    ['2002:a00:1::1', 'private'],
    ['2001::1', 'teredo'],
    ['not-an-address', 'not an IP address'],
  ])('refuses %s (%s)', (address, reason) => {
    expect(classifyAddress(address)).toEqual({ allowed: false, reason });
  });

  it.each(['93.184.216.34', '8.8.8.8', '172.32.0.1', '2606:4700::1111', '::ffff:93.184.216.34', '64:ff9b::5db8:d822'])(
    'allows the public address %s',
    (address) => {
      expect(classifyAddress(address)).toEqual({ allowed: true });
    },
  );
});

describe('checkHost (with a stub resolver: nothing is contacted)', () => {
  const resolve = stubResolver({
    'public.example': ['93.184.216.34'],
    'loopback.example': ['127.0.0.1'],
    'metadata.example': ['169.254.169.254'],
    'private.example': ['10.0.0.1'],
    'home.example': ['192.168.1.1'],
    'link.example': ['fe80::1'],
    'cgnat.example': ['100.64.0.1'],
    'mixed.example': ['93.184.216.34', '10.0.0.1'],
    localhost: ['127.0.0.1', '::1'],
    'svc.internal.example': ['10.20.1.2'],
    'other.internal.example': ['10.21.0.1'],
  });
  const nothingAllowed = new AllowedHosts([]);

  it('returns the addresses of a public host: those are what the connection uses', async () => {
    await expect(checkHost('public.example', { allowed: nothingAllowed, resolve })).resolves.toEqual([
      { address: '93.184.216.34', family: 4 },
    ]);
  });

  it.each([
    ['loopback.example', '127.0.0.1 (loopback)'],
    ['metadata.example', '169.254.169.254 (cloud metadata)'],
    ['private.example', '10.0.0.1 (private)'],
    ['home.example', '192.168.1.1 (private)'],
    ['link.example', 'fe80::1 (linkLocal)'],
    ['cgnat.example', '100.64.0.1 (carrierGradeNat)'],
    ['localhost', '127.0.0.1 (loopback), ::1 (loopback)'],
  ])('refuses %s, which resolves to %s', async (host, refused) => {
    const error = await checkHost(host, { allowed: nothingAllowed, resolve }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WebhookAddressRefusedError);
    expect((error as Error).message).toContain(`resolves to ${refused}: refused`);
  });

  it('refuses a host when any one of its addresses is refused', async () => {
    await expect(checkHost('mixed.example', { allowed: nothingAllowed, resolve })).rejects.toThrow(
      'mixed.example resolves to 10.0.0.1 (private): refused',
    );
  });

  it('judges an IP literal without asking the resolver', async () => {
    const before = resolve.asked.length;
    await expect(checkHost('127.0.0.1', { allowed: nothingAllowed, resolve })).rejects.toThrow('(loopback)');
    await expect(checkHost('[::1]', { allowed: nothingAllowed, resolve })).rejects.toThrow('(loopback)');
    await expect(checkHost('93.184.216.34', { allowed: nothingAllowed, resolve })).resolves.toHaveLength(1);
    expect(resolve.asked.length).toBe(before);
  });

  it('lets the deployment allow a host by name, a suffix, an IP literal or a range, never the metadata service', async () => {
    const allowed = new AllowedHosts(['localhost', '127.0.0.1', '::1', 'metadata.example', '*.internal.example']);
    await expect(checkHost('localhost', { allowed, resolve })).resolves.toHaveLength(2);
    await expect(checkHost('127.0.0.1', { allowed, resolve })).resolves.toHaveLength(1);
    await expect(checkHost('[::1]', { allowed, resolve })).resolves.toHaveLength(1);
    await expect(checkHost('svc.internal.example', { allowed, resolve })).resolves.toHaveLength(1);
    // A name allowed by the deployment that resolves to the metadata service is still refused.
    await expect(checkHost('metadata.example', { allowed, resolve })).rejects.toThrow('(cloud metadata)');
    await expect(checkHost('169.254.169.254', { allowed: new AllowedHosts(['169.254.169.254']) })).rejects.toThrow(
      '(cloud metadata)',
    );
    // Allowing one host allows no other that resolves to the same kind of address.
    await expect(checkHost('private.example', { allowed, resolve })).rejects.toThrow('(private)');

    const range = new AllowedHosts(['10.20.0.0/16']);
    await expect(checkHost('svc.internal.example', { allowed: range, resolve })).resolves.toHaveLength(1);
    await expect(checkHost('other.internal.example', { allowed: range, resolve })).rejects.toThrow('10.21.0.1');
  });

  it('refuses an allow-list entry that is neither a host nor a range', () => {
    expect(() => new AllowedHosts(['10.0.0.0/33'])).toThrow('"10.0.0.0/33" is not a CIDR range');
  });
});

describe('deliverNotification checks the address before connecting, and connects to what it checked', () => {
  const activity = new MockActivityEnvironment();
  const input = (url: string) => ({ url, actionId: 'a-1', sequence: 1, event });

  it('refuses a webhook that resolves to a refused address without sending anything, and does not retry', async () => {
    const transport = recordingTransport();
    const resolve = stubResolver({ 'rebind.example': ['169.254.169.254'] });
    const { deliverNotification } = createWebhookActivities({ secret: 's'.repeat(16), resolve, transport });
    const error = await activity.run(deliverNotification, input('https://rebind.example/hook')).catch((e) => e);
    expect(error).toBeInstanceOf(ApplicationFailure);
    expect(error).toMatchObject({ type: 'InvalidWebhook', nonRetryable: true });
    expect((error as Error).message).toContain('169.254.169.254 (cloud metadata)');
    expect(transport.requests).toHaveLength(0);
  });

  it('looks the host up once per attempt and hands the checked addresses to the connection (no rebinding)', async () => {
    const transport = recordingTransport();
    let calls = 0;
    // A rebinding resolver: public when checked, loopback if anyone asked again.
    const resolve: Resolver = async () => [{ address: calls++ === 0 ? '93.184.216.34' : '127.0.0.1', family: 4 }];
    const { deliverNotification } = createWebhookActivities({ secret: 's'.repeat(16), resolve, transport });
    await expect(activity.run(deliverNotification, input('https://public.example/hook'))).resolves.toEqual({
      delivered: true,
      status: 204,
    });
    expect(calls).toBe(1);
    expect(transport.requests).toHaveLength(1);
    expect(transport.requests[0].addresses).toEqual([{ address: '93.184.216.34', family: 4 }]);
    expect(transport.requests[0].url.host).toBe('public.example');
  });
});
