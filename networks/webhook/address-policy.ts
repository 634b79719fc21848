/**
 * Where a webhook may connect. An action names its webhook, so without a rule anyone who may start an action could make
 * the worker POST into its own network: the cloud metadata service, an admin port on localhost, a database on 10.x.
 * Only public unicast addresses are reached, unless the deployment allows a host by name
 * (`SETTLE_WEBHOOK_ALLOW_HOSTS`); cloud metadata addresses never. Every address a host resolves to is checked, and the
 * connection then goes to one of those checked addresses (no second lookup that DNS rebinding could answer otherwise).
 */
import { lookup as dnsLookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import ipaddr from 'ipaddr.js';

/** One address a host name resolved to, as `dns.lookup` reports it. */
export interface ResolvedAddress {
  address: string;
  family: 4 | 6;
}

/** Resolves a host name to all its addresses (`dns.lookup` with `all: true` by default; a stub in tests). */
export type Resolver = (hostname: string) => Promise<ResolvedAddress[]>;

export const systemResolver: Resolver = async (hostname) =>
  (await dnsLookup(hostname, { all: true, verbatim: true })).map(({ address, family }) => ({
    address,
    family: family === 6 ? 6 : 4,
  }));

/**
 * Instance metadata and similar host-local services of cloud providers: never reached, even from an allowed host.
 * Most sit in ranges refused anyway (link-local, unique local, CGNAT); Azure's WireServer looks like a public address.
 */
export const METADATA_ADDRESSES: readonly string[] = [
  '169.254.169.254', // AWS, GCP, Azure, OpenStack, DigitalOcean, Oracle (v2)
  '169.254.170.2', // AWS ECS task metadata and credentials
  '169.254.170.23', // AWS EKS pod identity
  '169.254.0.23', // Tencent Cloud
  '100.100.100.200', // Alibaba Cloud
  '192.0.0.192', // Oracle Cloud (v1)
  '168.63.129.16', // Azure WireServer
  'fd00:ec2::254', // AWS IMDS over IPv6
  'fd00:ec2::23', // AWS EKS pod identity over IPv6
  'fd20:ce::254', // GCP metadata over IPv6
];
const METADATA = new Set(METADATA_ADDRESSES.map((address) => ipaddr.parse(address).toNormalizedString()));

/** Why an address is refused: an ipaddr.js range name (`loopback`, `private`, `linkLocal`, …), or `metadata`. */
export type AddressVerdict = { allowed: true } | { allowed: false; reason: string };

/**
 * Classifies one address by the ranges it falls in: only public unicast is allowed. IPv6 forms that embed an IPv4
 * address (mapped, NAT64, 6to4) are judged by the IPv4 address they lead to.
 *
 * @example classifyAddress('10.0.0.1') // { allowed: false, reason: 'private' }
 */
export function classifyAddress(address: string): AddressVerdict {
  if (isIP(address.replace(/%.*$/, '')) === 0) return { allowed: false, reason: 'not an IP address' };
  const parsed = ipaddr.parse(address);
  const ip = embeddedIPv4(parsed) ?? parsed;
  if (METADATA.has(ip.toNormalizedString())) return { allowed: false, reason: 'cloud metadata' };
  const range = ip.range();
  return range === 'unicast' ? { allowed: true } : { allowed: false, reason: range };
}

/** The IPv4 address an IPv6 address stands for when it embeds one; undefined otherwise. */
function embeddedIPv4(ip: ipaddr.IPv4 | ipaddr.IPv6): ipaddr.IPv4 | undefined {
  if (ip.kind() !== 'ipv6') return undefined;
  const v6 = ip as ipaddr.IPv6;
  const bytes = v6.toByteArray();
  switch (v6.range()) {
    case 'ipv4Mapped': // ::ffff:a.b.c.d
    case 'rfc6145': // ::ffff:0:a.b.c.d
      return new ipaddr.IPv4(bytes.slice(12));
    case 'rfc6052': // 64:ff9b::a.b.c.d (the well-known NAT64 prefix; the local-use /48 embeds it elsewhere)
      return v6.parts.slice(2, 6).every((part) => part === 0) ? new ipaddr.IPv4(bytes.slice(12)) : undefined;
    case '6to4': // 2002:aabb:ccdd::/48
      return new ipaddr.IPv4(bytes.slice(2, 6));
    default:
      return undefined;
  }
}

/**
 * The hosts a deployment allows although they resolve to refused addresses (a receiver on localhost for a demo, one on
 * the private network): host names (`localhost`), `*.` suffixes (`*.internal.example`), IP literals (`127.0.0.1`,
 * `::1`) matched against the URL's host as written, and CIDR ranges (`10.20.0.0/16`) matched against the addresses.
 */
export class AllowedHosts {
  private readonly names = new Set<string>();
  private readonly suffixes: string[] = [];
  private readonly ranges: [ipaddr.IPv4 | ipaddr.IPv6, number][] = [];

  constructor(entries: readonly string[] = []) {
    for (const raw of entries) {
      const entry = raw.trim().toLowerCase();
      if (!entry) continue;
      if (entry.includes('/')) {
        if (!ipaddr.isValidCIDR(entry)) throw new Error(`"${entry}" is not a CIDR range`);
        this.ranges.push(ipaddr.parseCIDR(entry));
      } else if (entry.startsWith('*.')) this.suffixes.push(entry.slice(1));
      else this.names.add(normalizeHost(entry));
    }
  }

  /** The URL's host (as `URL.hostname` gives it) is allowed by name. */
  allowsHost(hostname: string): boolean {
    const host = normalizeHost(hostname);
    return this.names.has(host) || this.suffixes.some((suffix) => host.endsWith(suffix));
  }

  /** The address lies in an allowed range. */
  allowsAddress(address: string): boolean {
    if (this.ranges.length === 0 || isIP(address) === 0) return false;
    const ip = ipaddr.process(address);
    return this.ranges.some(([base, bits]) => ip.kind() === base.kind() && ip.match(base, bits));
  }
}

function normalizeHost(host: string): string {
  const bare = host
    .toLowerCase()
    .replace(/^\[(.*)\]$/, '$1')
    .replace(/\.$/, '');
  return isIP(bare) === 0 ? bare : ipaddr.process(bare).toNormalizedString();
}

/** A webhook whose host resolves to an address the deployment does not allow: never retried. */
export class WebhookAddressRefusedError extends Error {
  override name = 'WebhookAddressRefusedError';
  constructor(
    readonly hostname: string,
    readonly refused: { address: string; reason: string }[],
  ) {
    const list = refused.map((r) => `${r.address} (${r.reason})`).join(', ');
    super(`webhook host ${hostname} resolves to ${list}: refused (SETTLE_WEBHOOK_ALLOW_HOSTS allows a host by name)`);
  }
}

export interface CheckHostOptions {
  allowed: AllowedHosts;
  resolve?: Resolver;
}

/**
 * Resolves a webhook's host and checks every address; throws {@link WebhookAddressRefusedError} when any is refused.
 * Returns the checked addresses: connect to those, never look the name up again.
 *
 * @example const addresses = await checkHost('hooks.example.com', { allowed: new AllowedHosts(['localhost']) });
 */
export async function checkHost(hostname: string, options: CheckHostOptions): Promise<ResolvedAddress[]> {
  const host = hostname.replace(/^\[(.*)\]$/, '$1');
  const literal = isIP(host);
  const addresses: ResolvedAddress[] =
    literal === 0 ? await (options.resolve ?? systemResolver)(host) : [{ address: host, family: literal as 4 | 6 }];
  if (addresses.length === 0) throw new WebhookAddressRefusedError(host, [{ address: '-', reason: 'no address' }]);
  const byName = options.allowed.allowsHost(host);
  const refused: { address: string; reason: string }[] = [];
  for (const { address } of addresses) {
    const verdict = classifyAddress(address);
    if (verdict.allowed) continue;
    // Allowing a host never opens the metadata service.
    if (verdict.reason !== 'cloud metadata' && (byName || options.allowed.allowsAddress(address))) continue;
    refused.push({ address, reason: verdict.reason });
  }
  if (refused.length > 0) throw new WebhookAddressRefusedError(host, refused);
  return addresses;
}
